import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// kill -9 of `tail` at many random points while a writer appends and rotates: the final alerts
/// and baselines are those of one uninterrupted run over the same files.
@Suite struct TailCrashTests {
    static let rules = """
        - name: long_input
          severity: low
          condition: input_tokens > 20
          dedup: {key: [log_id]}
        - name: busy_session
          severity: medium
          condition: count(session_id, 30s) > 3
          dedup: {key: [session_id], window: 1m}
        """

    func startTail(_ dir: TempDir, db: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = ["tail", dir.file("logs/app.log*"), "--db", db, "--rules", dir.file("rules"), "--config", dir.file("config.yaml"),
                       "--rotate-wait", "0.2", "--poll-interval", "20"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Lines committed to `db`, summed over its file checkpoints.
    func committed(_ db: String) -> Int64 {
        guard let d = try? Database(path: db, readOnly: true) else { return 0 }
        return (try? d.query("SELECT coalesce(sum(line - 1), 0) FROM checkpoints", [], { $0.int(0) }).first) ?? 0
    }

    /// Runs a tail until `lines` lines are committed, then stops it cleanly.
    func drain(_ dir: TempDir, db: String, lines: Int64) throws {
        let p = try startTail(dir, db: db)
        let deadline = Date().addingTimeInterval(60)
        while committed(db) < lines && Date() < deadline { usleep(20_000) }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(committed(db) == lines)
    }

    @Test func killNineAtFiftyRandomPointsGivesTheUninterruptedResult() throws {
        let dir = TempDir()
        dir.write("rules/r.yaml", Self.rules)
        dir.write("config.yaml", "batch_lines: 50\nstdout: false\n")
        try FileManager.default.createDirectory(atPath: dir.file("logs"), withIntermediateDirectories: true)
        // 3,000 events over about six seconds, rotated by rename every 600.
        var steps: [[Any]] = []
        for k in 0..<5 {
            steps.append(["write", "app.log", k * 600, (k + 1) * 600, 0.002])
            if k < 4 { steps.append(["rename", "app.log", "app.log.\(k + 1)"]) }
        }
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["python3", packageRoot + "/Tests/Fixtures/log_writer.py", dir.file("logs"),
                            String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)]
        try writer.run()

        let db = dir.file("crashed.db")
        var random = SplitMix64(seed: 20261201)
        var kills = 0
        while kills < 50 || writer.isRunning {
            let p = try startTail(dir, db: db)
            usleep(UInt32(30_000 + random.next() % 220_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal, "killed, not ended")
            kills += 1
        }
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0)
        try drain(dir, db: db, lines: 3000)

        // The reference: one run over the final files.
        let reference = dir.file("reference.db")
        try drain(dir, db: reference, lines: 3000)

        let alerts = "SELECT id, rule, group_value, event_time, suppressed FROM alerts ORDER BY seq"
        let alertRow = { (s: Statement) in "\(s.text(0)) \(s.text(1)) \(s.text(2)) \(s.int(3)) \(s.int(4))" }
        let want = try Database(path: reference).query(alerts, [], alertRow)
        let got = try Database(path: db).query(alerts, [], alertRow)
        #expect(want.count > 500, "the rules fired: \(want.count) alerts")
        #expect(got == want, "\(kills) kills: same alerts, count and order (\(got.count) vs \(want.count))")
        let buckets = "SELECT metric, segment, hour, count, mean, m2, min, max FROM baseline_hour_buckets ORDER BY metric, segment, hour"
        let bucketRow = { (s: Statement) in "\(s.text(0)) \(s.text(1)) \(s.int(2)) \(s.int(3)) \(s.double(4)) \(s.double(5)) \(s.double(6)) \(s.double(7))" }
        #expect(try Database(path: db).query(buckets, [], bucketRow) == Database(path: reference).query(buckets, [], bucketRow),
                "identical baselines: no event counted twice or lost")
    }
}
