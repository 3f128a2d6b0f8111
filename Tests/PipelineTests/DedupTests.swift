import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

@Suite struct DedupTests {
    @Test func anHourLongBurstGivesOneAlertPerSuppressionWindow() async throws {
        let dir = TempDir()
        // 120 injections, 30 s apart, for one hour: the rule holds from the 4th on.
        let lines = (0..<120).map { logLine(time: at($0 * 30), user: "burst", session: "burst-s", id: "b-\($0)", injection: 0.9) }
        let summary = try await ingest(lines, dir, config: testConfig(dir))
        let alerts = try storedAlerts(dir.file("state.db")).filter { $0["rule"] as? String == "rapid_fire_injection_attempts" }
        // Windows of 15 minutes opened at 90 s, 990 s, 1890 s and 2790 s.
        #expect(alerts.map { $0["event_time"] as? String } == [at(90), at(990), at(1890), at(2790)])
        #expect(alerts.map { $0["suppressed_since_previous"] as? Int } == [0, 29, 29, 29])
        #expect(alerts.map { $0["suppressed_total"] as? Int64 } == [29, 29, 29, 26])
        #expect(summary.suppressed["rapid_fire_injection_attempts"] == 113)
        #expect(summary.detections == 117)
    }
}
