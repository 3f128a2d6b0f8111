import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// `iw-detect tail` against a writer process that appends and rotates: every event is processed
/// exactly once, whatever the rotation style.
@Suite struct TailTests {
    /// One alert per event (dedup by log_id), so the alerts on stdout list the events processed.
    static let everyEventRule = """
        - name: every_event
          severity: low
          condition: user_id != ''
          dedup: {key: [log_id]}
        """

    /// A running `tail` with its folder, and a writer to drive.
    final class Run: @unchecked Sendable {
        // @unchecked: the process handles are used from the test's own thread only.
        let dir = TempDir()
        let process = Process()
        let stdoutPath: String
        let stderrPath: String
        var db: String { dir.file("state.db") }

        init(_ patterns: [String], extra: [String] = [], start: Bool = true) throws {
            dir.write("rules/every.yaml", TailTests.everyEventRule)
            try FileManager.default.createDirectory(atPath: dir.file("logs"), withIntermediateDirectories: true)
            stdoutPath = dir.write("stdout", "")
            stderrPath = dir.write("stderr", "")
            if start { try launch(patterns, extra: extra) }
        }

        func launch(_ patterns: [String], extra: [String] = []) throws {
            process.executableURL = URL(fileURLWithPath: iwDetectBinary)
            process.arguments = ["tail"] + patterns.map { dir.file("logs/" + $0) } +
                ["--db", db, "--rules", dir.file("rules"), "--rotate-wait", "0.3", "--poll-interval", "50"] + extra
            process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
            try process.run()
        }

        /// Runs the writer to completion.
        func write(_ steps: [[Any]]) throws {
            let json = String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)
            let r = try run("/usr/bin/env", ["python3", packageRoot + "/Tests/Fixtures/log_writer.py", dir.file("logs"), json])
            #expect(r.status == 0, "writer: \(r.stderr)")
        }

        /// The event ids of the alerts on stdout so far, in order.
        var alerted: [String] {
            jsonLines((try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "").compactMap { $0["event_id"] as? String }
        }

        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// Waits until `count` alerts are out (or 30 s), then stops tail with SIGTERM.
        @discardableResult
        func finish(expecting count: Int) -> [String] {
            let deadline = Date().addingTimeInterval(30)
            while alerted.count < count && Date() < deadline && process.isRunning { usleep(20_000) }
            usleep(400_000)  // anything extra would show up now
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(stderr)")
            return alerted
        }
    }

    static func ids(_ range: Range<Int>) -> [String] { range.map { "e\($0)" } }

    @Test func renameAndCreate() throws {
        let run = try Run(["app.log"])
        // The rotated file gets two more lines after the rename (the app has not reopened yet).
        try run.write([["write", "app.log", 0, 10], ["sleep", 0.2], ["rename", "app.log", "app.log.1"],
                       ["write", "app.log.1", 10, 12], ["write", "app.log", 12, 20]])
        #expect(run.finish(expecting: 20) == Self.ids(0..<20), "\(run.stderr)")
        #expect(run.stderr.contains("no longer under its name"))
        #expect(run.stderr.contains("let go after rotation"))
    }

    @Test func copytruncateWithTheCopyMatchedByTheGlob() throws {
        let run = try Run(["app.log*"])
        try run.write([["write", "app.log", 0, 10], ["sleep", 0.3], ["copy", "app.log", "app.log.1"], ["truncate", "app.log"],
                       ["write", "app.log", 10, 20]])
        let got = run.finish(expecting: 20)
        #expect(Set(got) == Set(Self.ids(0..<20)) && got.count == 20, "the copy is not read again: \(got) \(run.stderr)")
    }

    @Test func truncationInPlace() throws {
        let run = try Run(["app.log"])
        try run.write([["write", "app.log", 0, 10], ["sleep", 0.3], ["truncate", "app.log"], ["write", "app.log", 10, 15]])
        #expect(run.finish(expecting: 15) == Self.ids(0..<15), "\(run.stderr)")
        #expect(run.stderr.contains("truncated: reading it again from line 1"))
    }

    @Test func deletionAndRecreation() throws {
        let run = try Run(["app.log"])
        try run.write([["write", "app.log", 0, 10], ["sleep", 0.3], ["delete", "app.log"], ["sleep", 0.1], ["write", "app.log", 10, 20]])
        #expect(run.finish(expecting: 20) == Self.ids(0..<20), "\(run.stderr)")
    }

    @Test func aFileThatAppearsAfterStart() throws {
        let run = try Run(["late.log"])
        usleep(300_000)
        #expect(run.process.isRunning, "tail waits for a file that does not exist yet")
        try run.write([["write", "late.log", 0, 8]])
        #expect(run.finish(expecting: 8) == Self.ids(0..<8), "\(run.stderr)")
    }

    @Test func aGlobPicksUpNewMatches() throws {
        let run = try Run(["*.log"])
        try run.write([["write", "a.log", 0, 5], ["sleep", 0.3], ["write", "b.log", 5, 10], ["write", "a.log", 10, 12]])
        let got = run.finish(expecting: 12)
        #expect(Set(got) == Set(Self.ids(0..<12)) && got.count == 12, "\(got) \(run.stderr)")
        #expect(run.stderr.contains("b.log: following, new file: from line 1"))
    }

    @Test func aLineWrittenInTwoHalvesIsOneEvent() throws {
        let run = try Run(["app.log"])
        try run.write([["write", "app.log", 0, 1], ["half", "app.log", 1, 0.6], ["write", "app.log", 2, 3]])
        #expect(run.finish(expecting: 3) == Self.ids(0..<3), "\(run.stderr)")
        #expect(run.stderr.contains("3 lines read, 3 accepted, 0 rejected"), "\(run.stderr)")
    }

    @Test func fromEndSkipsWhatWasThereAndRestartResumes() throws {
        let run = try Run(["app.log"], start: false)
        try run.write([["write", "app.log", 0, 5]])
        try run.launch(["app.log"], extra: ["--from", "end"])
        usleep(500_000)
        try run.write([["write", "app.log", 5, 8]])
        #expect(run.finish(expecting: 3) == Self.ids(5..<8), "\(run.stderr)")
        // A restart resumes after what was read; --from applies only to files never read.
        let again = Process()
        again.executableURL = URL(fileURLWithPath: iwDetectBinary)
        again.arguments = run.process.arguments
        let out = run.dir.write("stdout2", "")
        again.standardOutput = FileHandle(forWritingAtPath: out)
        again.standardError = FileHandle.nullDevice
        try run.write([["write", "app.log", 8, 10]])
        try again.run()
        let deadline = Date().addingTimeInterval(20)
        func got() -> [String] { jsonLines((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").compactMap { $0["event_id"] as? String } }
        while got().count < 2 && Date() < deadline { usleep(20_000) }
        usleep(300_000)
        kill(again.processIdentifier, SIGTERM)
        again.waitUntilExit()
        #expect(got() == Self.ids(8..<10))
    }
}

/// Rules reloaded while `tail` runs: SIGHUP with a new rule, then with a broken one.
@Suite struct TailReloadTests {
    @Test func sighupLoadsANewRuleAndABrokenSetKeepsThePreviousRules() throws {
        let run = try TailTests.Run(["app.log"])
        try run.write([["write", "app.log", 0, 3]])
        let deadline = Date().addingTimeInterval(20)
        while run.alerted.count < 3 && Date() < deadline { usleep(20_000) }
        // A new rule, then SIGHUP: it fires from the next batch on.
        run.dir.write("rules/second.yaml", "- {name: u5_seen, severity: high, condition: \"user_id == 'u5'\"}\n")
        kill(run.process.processIdentifier, SIGHUP)
        while !run.stderr.contains("rules reloaded") && Date() < deadline { usleep(20_000) }
        try run.write([["write", "app.log", 3, 6]])
        while run.alerted.count < 7 && Date() < deadline { usleep(20_000) }
        // A broken rule file, then SIGHUP: reported, and both rules keep firing.
        run.dir.write("rules/broken.yaml", "- {name: broken, severity: high, condition: 'user_id =='}\n")
        kill(run.process.processIdentifier, SIGHUP)
        while !run.stderr.contains("rule reload refused") && Date() < deadline { usleep(20_000) }
        run.dir.write("rules/third.yaml", "- {name: u7_seen, severity: high, condition: \"user_id == 'u7'\"}\n")  // not loaded: no reload asked
        // e5 again: a repeat for both rules' dedup; e6 and e7 are new.
        try run.write([["write", "app.log", 5, 8]])
        _ = run.finish(expecting: 9)
        let final = jsonLines(try String(contentsOfFile: run.stdoutPath, encoding: .utf8)).map { "\($0["rule"] as? String ?? "?"):\($0["event_id"] as? String ?? "?")" }
        #expect(final.count == 9, "\(final)")
        #expect(final.contains("u5_seen:e5"), "the new rule fired: \(final)")
        #expect(final.filter { $0.hasPrefix("u5_seen:") }.count == 1, "dedup of the new rule holds: \(final)")
        #expect(final.contains("every_event:e7"), "the previous rules kept running after the broken reload: \(final)")
        #expect(!final.contains { $0.hasPrefix("u7_seen") }, "no reload happened without SIGHUP")
        #expect(run.stderr.contains("broken.yaml:1:"), "the broken set's diagnostics are logged: \(run.stderr)")
        #expect(run.stderr.contains("still running the previous 2 rule(s)"))
    }

    @Test func aRuleFileChangeReloadsWithWatchRules() throws {
        let run = try TailTests.Run(["app.log"], extra: ["--watch-rules", "--log-format", "json"])
        try run.write([["write", "app.log", 0, 2]])
        let deadline = Date().addingTimeInterval(20)
        while run.alerted.count < 2 && Date() < deadline { usleep(20_000) }
        run.dir.write("rules/second.yaml", "- {name: u3_seen, severity: high, condition: \"user_id == 'u3'\"}\n")
        while !run.stderr.contains("rules reloaded") && Date() < deadline { usleep(50_000) }
        try run.write([["write", "app.log", 2, 4]])
        let ids = run.finish(expecting: 5)
        #expect(ids.filter { $0 == "e3" }.count == 2, "every_event and u3_seen both fired on e3: \(ids)")
        let logs = jsonLines(run.stderr)
        #expect(logs.contains { ($0["message"] as? String)?.hasPrefix("rules reloaded") == true && ($0["added"] as? [String]) == ["u3_seen"] },
                "JSON log lines with metadata: \(run.stderr)")
    }
}
