import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// Real scan and audit events captured from InferenceWall's observability plugin.
@Suite struct InferenceWallFixtureTests {
    @Test func capturedScanAndAuditEventsAreIngestedAndDetectable() async throws {
        let dir = TempDir()
        dir.write("rules/inferwall.yaml", """
            - name: inferwall_block_burst
              description: Detects more than three blocked injection scans within five minutes.
              condition: log_type == 'scan' AND decision == 'block' AND matches.signature_id contains 'INJ-D-002' AND count(policy, 5m) > 3
              severity: high
              dedup: { key: [], window: 15m }
            """)
        var config = testConfig(dir)
        config.rulePaths = [dir.file("rules")]
        let engine = try Engine(config: config)
        let summary = try await engine.ingest(.file(packageRoot + "/Tests/Fixtures/inferwall_scan_and_audit_events.jsonl"))
        #expect(summary.linesRead == 33)
        #expect(summary.accepted == 33, "scan and audit events all carry a timestamp: \(summary.rejected)")
        let alerts = try storedAlerts(dir.file("state.db"))
        #expect(alerts.count == 1, "one alert for the whole burst: the rule dedups on itself")
        let alert = try #require(alerts.first)
        let ids = try #require(alert["event_ids"] as? [String])
        #expect(ids.count == 4 && ids.allSatisfy { $0.hasPrefix("req-") }, "InferenceWall's request_id is the event id")
        #expect(summary.baselineExcluded >= 11, "blocked scans never train the baseline")
    }
}
