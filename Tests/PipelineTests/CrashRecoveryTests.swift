import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// kill -9 in the middle of an ingest, then a restart: nothing lost, nothing counted twice.
@Suite struct CrashRecoveryTests {
    // Synchronous on purpose: polling with Task.sleep depends on the cooperative pool, which other
    // tests block while they wait for their child processes, and the ingest could finish unseen.
    /// In both thread modes: reading and decoding on the pipeline's thread, or ahead on their own.
    @Test(arguments: [1, 2]) func killNineMidIngestThenResumeGivesTheSameAlerts(threads: Int) throws {
        let dir = TempDir()
        let lines = DeterminismTests.generated(40_000, seed: 11)
        let input = dir.write("big.jsonl", lines.joined(separator: "\n") + "\n")
        let config = dir.write("config.yaml", "batch_lines: 500\nstdout: false\n")
        let rules = packageRoot + "/rules"

        let reference = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("ref.db"), "--rules", rules, "--config", config])
        #expect(reference.status == 0)

        let crashDB = dir.file("crash.db")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = ["ingest", input, "--db", crashDB, "--rules", rules, "--config", config, "--threads", "\(threads)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until some batches are committed, then kill without warning.
        var committed: Int64 = 0
        let deadline = Date().addingTimeInterval(60)
        while committed < 2_000 && p.isRunning && Date() < deadline {
            usleep(5_000)
            if let db = try? Database(path: crashDB, readOnly: true) {
                committed = (try? db.query("SELECT line FROM checkpoints", [], { $0.int(0) }).first) ?? 0
            }
        }
        #expect(p.isRunning, "the ingest was still running when killed (committed up to line \(committed))")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)

        let resumed = try run(iwDetectBinary, ["ingest", input, "--db", crashDB, "--rules", rules, "--config", config, "--json-summary", "--threads", "\(threads)"])
        #expect(resumed.status == 0)
        let summary = try #require(jsonLines(resumed.stderr).last)
        let reread = try #require(summary["lines_read"] as? Int)
        #expect(reread < 40_000 && reread > 0, "the restart resumed from the checkpoint instead of starting over")

        #expect(canonical(try storedAlerts(dir.file("ref.db"))) == canonical(try storedAlerts(crashDB)))
        // No event counted twice: the baselines agree to the last bit.
        let a = try Database(path: dir.file("ref.db")).query("SELECT metric, hour, count, mean, m2 FROM baseline_hour_buckets ORDER BY metric, hour") { "\($0.text(0)) \($0.int(1)) \($0.int(2)) \($0.double(3)) \($0.double(4))" }
        let b = try Database(path: crashDB).query("SELECT metric, hour, count, mean, m2 FROM baseline_hour_buckets ORDER BY metric, hour") { "\($0.text(0)) \($0.int(1)) \($0.int(2)) \($0.double(3)) \($0.double(4))" }
        #expect(a == b)
        // The dashboard's rollups, the forensic index and the security log: the same as one pass.
        func rows(_ path: String, _ sql: String) throws -> [String] {
            try Database(path: path).query(sql) { s in (0..<s.columnCount).map { s.text(Int32($0)) }.joined(separator: " ") }
        }
        for sql in ["SELECT res, bucket, data FROM rollups ORDER BY res, bucket",
                    "SELECT event_id, time, reasons, record FROM security_events ORDER BY time, event_id"] {
            #expect(try rows(dir.file("ref.db"), sql) == rows(crashDB, sql), "\(sql)")
        }
        // Chunks close at other points after a restart, and a pair is written again after one:
        // the postings, and the set of user-session pairs, are what must be equal.
        func index(_ path: String) throws -> (postings: [String], pairs: Set<String>) {
            let e = try ForensicIndex.entries(Database(path: path))
            return (e.postings.map { "\($0.0.bucket) \($0.0.tag) \($0.1.line) \($0.1.offset) \($0.1.second)" }.sorted(),
                    Set(e.pairs.map { "\($0.user.bucket) \($0.user.tag) \($0.1.session.bucket) \($0.1.session.tag)" }))
        }
        let indexed = try index(crashDB), oneRun = try index(dir.file("ref.db"))
        #expect(indexed.postings.count == 40_000)
        #expect(indexed.postings == oneRun.postings)
        #expect(!indexed.pairs.isEmpty && indexed.pairs == oneRun.pairs)
    }
}
