import Foundation
import IWDetectTestSupport
import Testing

/// The binary outside the checkout: run from $PATH, copied elsewhere, installed under a prefix.
@Suite struct InstalledBinaryTests {
    func attackInput(_ dir: TempDir) -> String {
        let lines = (0..<5).map { logLine(time: at($0 * 30), user: "attacker", session: "s-9", injection: 0.9) }
        return dir.write("work/attack.jsonl", lines.joined(separator: "\n") + "\n")
    }

    @Test func aCopiedBinaryRunFromPathUsesItsBuiltInRules() throws {
        let dir = TempDir()
        let bin = dir.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: iwDetectBinary, toPath: bin + "/iw-detect")
        let input = attackInput(dir)
        // argv[0] is a bare name found on $PATH, the working directory has no rules/ folder.
        let r = try run("/usr/bin/env", ["iw-detect", "ingest", input, "--db", dir.file("work/state.db")],
                        environment: ["PATH": bin + ":/usr/bin:/bin", "IW_DETECT_RULES": ""], directory: dir.file("work"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(jsonLines(r.stdout).map { $0["rule"] as? String } == ["rapid_fire_injection_attempts"])
        let listed = try run(bin + "/iw-detect", ["rules", "list", "--json"], environment: ["IW_DETECT_RULES": ""], directory: dir.path)
        let files = Set(jsonLines(listed.stdout).compactMap { $0["file"] as? String })
        #expect(files.contains("@bundled/injection.yaml"), "\(files)")
    }

    @Test func anInstalledBinaryReadsTheRulesInstalledBesideIt() throws {
        let dir = TempDir()
        let prefix = dir.file("prefix")
        let install = try run(packageRoot + "/scripts/install", [prefix], environment: ["IW_DETECT_BINARY": iwDetectBinary])
        #expect(install.status == 0, "\(install.stderr)")
        let installedRules = prefix + "/share/iw-detect/rules"
        #expect(FileManager.default.fileExists(atPath: installedRules + "/injection.yaml"))
        // The operator's edit of the installed copy is what the binary runs.
        try FileManager.default.removeItem(atPath: installedRules)
        dir.write("prefix/share/iw-detect/rules/local.yaml", """
            - name: any_injection
              severity: low
              condition: injection_score > 0.5
            """)
        let r = try run(prefix + "/bin/iw-detect", ["ingest", attackInput(dir), "--db", dir.file("work/state.db")],
                        environment: ["IW_DETECT_RULES": ""], directory: dir.file("work"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Set(jsonLines(r.stdout).compactMap { $0["rule"] as? String }) == ["any_injection"])
    }

    @Test func aMissingRulePathSaysHowToNameRules() throws {
        let dir = TempDir()
        let r = try run(iwDetectBinary, ["ingest", attackInput(dir), "--db", dir.file("state.db"), "--rules", dir.file("nowhere")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("nowhere:0:0: error: no such file or directory"))
        #expect(r.stderr.contains("--rules") && r.stderr.contains("IW_DETECT_RULES"), "\(r.stderr)")
    }
}
