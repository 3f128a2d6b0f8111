import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The commands that read the state database: honest about a missing database, about what they
/// leave out, and about ambiguous ids.
@Suite struct ReadCommandTests {
    let rules = packageRoot + "/rules"

    @Test(arguments: [
        ["baseline", "show"], ["baseline", "show", "--json"], ["baseline", "export"], ["baseline", "recompute"],
        ["alerts", "list"], ["alerts", "show", "abc"], ["alerts", "redeliver"], ["rejects"],
    ])
    func aMissingDatabaseIsAnErrorNotAnEmptyAnswer(_ command: [String]) throws {
        let dir = TempDir()
        let db = dir.file("typo.db")
        let r = try run(iwDetectBinary, command + ["--db", db], directory: dir.path)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("iw-detect: no database at \(db)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: db), "no empty database is created")
    }

    /// `baseline show` reads the baseline only: a webhook sink whose secret is not set is no obstacle.
    @Test func baselineShowNeedsNoSinkSecrets() throws {
        let dir = TempDir()
        let db = dir.file("s.db")
        let input = dir.write("in.jsonl", (0..<20).map { logLine(time: at($0), id: "e\($0)") }.joined(separator: "\n") + "\n")
        #expect(try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", rules]).status == 0)
        let config = dir.write("c.yaml", "sinks:\n  - {name: pager, type: webhook, url_env: IW_TEST_UNSET_PAGER_URL}\nroutes: {critical: [pager]}\n")
        let show = try run(iwDetectBinary, ["baseline", "show", "--json", "--db", db, "--config", config])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(jsonLines(show.stdout).contains { $0["metric"] as? String == "output_tokens" }, "\(show.stdout)")
    }

    func storm(_ dir: TempDir, users: Int) throws -> String {
        let db = dir.file("s.db")
        let lines = (0..<users).map { logLine(time: at($0), user: "u\($0)", id: "t\($0)", tools: ["shell_exec"]) }
        let r = try run(iwDetectBinary, ["ingest", dir.write("storm.jsonl", lines.joined(separator: "\n") + "\n"), "--db", db, "--rules", rules])
        #expect(r.status == 0)
        return db
    }

    @Test func listsSayWhatTheLimitLeftOut() throws {
        let dir = TempDir()
        let db = try storm(dir, users: 30)
        let some = try run(iwDetectBinary, ["alerts", "list", "--db", db, "--json", "--limit", "10"])
        #expect(jsonLines(some.stdout).count == 10)
        #expect(some.stderr.contains("showing 10 of 30 alerts; use --limit 30 for all"), "\(some.stderr)")
        let all = try run(iwDetectBinary, ["alerts", "list", "--db", db, "--json", "--limit", "30"])
        #expect(jsonLines(all.stdout).count == 30 && !all.stderr.contains("showing"))
        let bad = try run(iwDetectBinary, ["alerts", "list", "--db", db, "--limit", "0"])
        #expect(bad.status != 0)

        let input = dir.write("bad.jsonl", String(repeating: "nope\n", count: 7))
        _ = try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", rules])
        let rejects = try run(iwDetectBinary, ["rejects", "--db", db, "--json", "--limit", "3"])
        #expect(jsonLines(rejects.stdout).count == 3)
        #expect(rejects.stderr.contains("showing 3 of 7 rejects; use --limit 7 for all"), "\(rejects.stderr)")
    }

    @Test func anAmbiguousIdPrefixListsTheCandidates() throws {
        let dir = TempDir()
        let db = try storm(dir, users: 40)
        let ids = jsonLines(try run(iwDetectBinary, ["alerts", "list", "--db", db, "--json"]).stdout).compactMap { $0["id"] as? String }
        // Forty 16-digit hex ids: some share a first digit.
        let byFirst = Dictionary(grouping: ids, by: { $0.prefix(1) })
        let (prefix, shared) = try #require(byFirst.first { $0.value.count > 1 })
        let r = try run(iwDetectBinary, ["alerts", "show", String(prefix), "--db", db])
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(shared.count) alerts have ids starting with \(prefix); give more of the id"), "\(r.stderr)")
        #expect(shared.allSatisfy { r.stderr.contains($0) })
        #expect(r.stdout.isEmpty, "no alert is picked")
        let one = try run(iwDetectBinary, ["alerts", "show", String(shared[0].prefix(12)), "--db", db])
        #expect(one.status == 0)
        #expect(jsonLines(one.stdout).first?["id"] as? String == shared[0])
        let none = try run(iwDetectBinary, ["alerts", "show", "%", "--db", db])
        #expect(none.status == 1 && none.stderr.contains("no alert with id %"), "a LIKE wildcard matches nothing")
    }

    @Test func rejectsOfAFileAreFoundHoweverItIsNamed() throws {
        let dir = TempDir()
        let db = dir.file("s.db")
        dir.write("logs/app.jsonl", "not json\n")
        dir.write("other.jsonl", "also not json\n")
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"), withDestinationPath: dir.file("logs"))
        // Ingested by a relative name from the folder above.
        #expect(try run(iwDetectBinary, ["ingest", "logs/app.jsonl", "--db", db, "--rules", rules], directory: dir.path).status == 0)
        #expect(try run(iwDetectBinary, ["ingest", dir.file("other.jsonl"), "--db", db, "--rules", rules]).status == 0)
        for (name, cwd) in [("logs/app.jsonl", dir.path), (dir.file("logs/app.jsonl"), "/"), ("app.jsonl", dir.file("logs")),
                            (dir.file("link/app.jsonl"), "/"), ("./logs/../logs/app.jsonl", dir.path)] {
            let r = try run(iwDetectBinary, ["rejects", "--db", db, "--json", "--source", name], directory: cwd)
            #expect(jsonLines(r.stdout).map { $0["source"] as? String } == ["logs/app.jsonl"], "--source \(name) from \(cwd)")
        }
    }
}
