import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// kill -9 of `serve` under load, at many points, restarted each time on the same port while the
/// load keeps posting (and re-posting what was not answered 200).
@Suite(.serialized) struct ServeCrashTests {
    @Test func killNineUnderLoadAtTwentyFourPointsProcessesEveryAcknowledgedRecordExactlyOnce() throws {
        let dir = TempDir()
        dir.write("rules/r.yaml", ServeInputTests.everyEvent)
        dir.write("config.yaml", "stdout: false\n")
        let db = dir.file("state.db")
        let args = ["--rules", dir.file("rules"), "--config", dir.file("config.yaml")]
        let port = HTTPRecorder.freePort()
        let total = 4000
        let ackedPath = dir.write("acked", "")
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        load.arguments = ["python3", packageRoot + "/Tests/Fixtures/http_load.py", "http://127.0.0.1:\(port)/", "--rate", "400",
                          "--connections", "16", "--seconds", String(total / 400), "--acked", ackedPath, "--retry"]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()

        var random = SplitMix64(seed: 20261202)
        var kills = 0
        while kills < 24 {
            let serve = try ServeProcess(dir, db: db, port: port, arguments: args)
            usleep(UInt32(100_000 + random.next() % 400_000))
            serve.killNine()
            #expect(serve.process.terminationReason == .uncaughtSignal)
            kills += 1
        }
        // The last run takes the rest of the load, then stops cleanly.
        let serve = try ServeProcess(dir, db: db, port: port, arguments: args)
        load.waitUntilExit()
        #expect(serve.terminate() == 0)

        let acked = Set((try String(contentsOfFile: ackedPath, encoding: .utf8)).split(separator: "\n").map { "seq-\($0)" })
        #expect(acked.count == total, "the load's retries got every record answered 200")
        let alerts = try rows(db, "SELECT group_value, suppressed FROM alerts")
        let processed = Set(alerts.map { $0[0] })
        #expect(processed == acked, "\(acked.subtracting(processed).count) acknowledged records lost")
        // Each record the journal took (a request whose answer was lost to a kill is taken again
        // when the load re-posts it) was processed once: one detection per record, counted as the
        // alert or as a duplicate suppressed on it.
        let detections = alerts.reduce(0) { $0 + 1 + Int($1[1])! }
        let journaled = Int(try rows(dir.file("state.input.db"), "SELECT seq FROM sqlite_sequence WHERE name = 'journal_records'")[0][0])!
        #expect(detections == journaled, "\(detections) detections for \(journaled) journaled records")
        #expect(journaled >= total && journaled < total + 16 * kills, "\(journaled) records journaled for \(total) sent")
    }
}
