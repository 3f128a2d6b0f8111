import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Baseline
import Testing

/// The monitoring guide's two validation tests (Step 7), run through the real pipeline.
@Suite struct GuideValidationTests {
    @Test func fiveInjectionsInOneSessionRaiseRapidFire() async throws {
        let dir = TempDir()
        let lines = (0..<5).map { logLine(time: at($0 * 30), user: "test-attacker", session: "test-session", id: "inj-\($0)", injection: 0.85) }
        let summary = try await ingest(lines, dir, config: testConfig(dir))
        #expect(summary.accepted == 5)
        let alerts = try storedAlerts(dir.file("state.db"))
        let rapid = alerts.filter { $0["rule"] as? String == "rapid_fire_injection_attempts" }
        #expect(rapid.count == 1, "one alert: the fifth event is a suppressed repeat")
        let alert = try #require(rapid.first)
        #expect(alert["user_id"] as? String == "test-attacker")
        #expect(alert["session_id"] as? String == "test-session")
        #expect(alert["severity"] as? String == "high")
        #expect(alert["action"] as? String == "alert_and_rate_limit")
        #expect(alert["event_time"] as? String == at(90))
        let values = try #require(alert["values"] as? [String: Any])
        #expect(values["count(session_id, 5m)"] as? Double == 4)
        #expect(values["injection_score"] as? Double == 0.85)
        #expect(alert["event_ids"] as? [String] == ["inj-0", "inj-1", "inj-2", "inj-3"])
        #expect((alert["recommended_action"] as? String)?.hasPrefix("Review session logs") == true)
    }

    @Test func threeInjectionsDoNotRaiseRapidFire() async throws {
        let dir = TempDir()
        // A near miss: three in five minutes, then a fourth twenty minutes later.
        let lines = [0, 60, 120, 1320].map { logLine(time: at($0), user: "u", session: "s", injection: 0.9) }
        let summary = try await ingest(lines, dir, config: testConfig(dir))
        #expect(summary.accepted == 4, "every event was evaluated")
        #expect(try storedAlerts(dir.file("state.db")).filter { $0["rule"] as? String == "rapid_fire_injection_attempts" }.isEmpty)
        // The same events with the fourth inside the five minutes do fire: the silence above is the window's.
        let control = TempDir()
        let close = [0, 60, 120, 180].map { logLine(time: at($0), user: "u", session: "s", injection: 0.9) }
        try await ingest(close, control, config: testConfig(control))
        #expect(try storedAlerts(control.file("state.db")).filter { $0["rule"] as? String == "rapid_fire_injection_attempts" }.count == 1)
    }

    @Test func outputThreeTimesP99RaisesOutputLengthAnomaly() async throws {
        let dir = TempDir()
        var config = testConfig(dir)
        config.baseline.minSamples = 100
        // Two hours of ordinary traffic: 240 events, 30 s apart, output 100…339 tokens.
        var tokens: [Int] = []
        var lines: [String] = []
        for i in 0..<240 {
            let t = 100 + (i * 37) % 240
            tokens.append(t)
            lines.append(logLine(time: at(i * 30), user: "user-\(i % 7)", session: "s-\(i % 7)", outputTokens: t))
        }
        let sorted = tokens.sorted()
        let exactP99 = Double(sorted[Int((0.99 * Double(sorted.count - 1)).rounded(.down))])
        let anomalous = Int(3 * exactP99)
        lines.append(logLine(time: at(7300), user: "exfil", session: "exfil-s", id: "big-one", outputTokens: anomalous))
        let summary = try await ingest(lines, dir, config: config)
        #expect(summary.recomputes >= 3)
        let alerts = try storedAlerts(dir.file("state.db")).filter { $0["rule"] as? String == "output_length_anomaly" }
        #expect(alerts.count == 1)
        let alert = try #require(alerts.first)
        #expect(alert["event_id"] as? String == "big-one")
        #expect(alert["user_id"] as? String == "exfil")
        let values = try #require(alert["values"] as? [String: Any])
        #expect(values["output_tokens"] as? Double == Double(anomalous))
        let baseline = try #require(values["baseline.output_tokens"] as? [String: Any])
        #expect(baseline["n"] as? Double == 240)
        #expect(baseline["ready"] as? Bool == true)
        let p99 = try #require(baseline["p99"] as? Double)
        #expect(p99 >= exactP99 && p99 <= exactP99 * 1.0081, "p99 \(p99) within the sketch's bound of \(exactP99)")
    }

    @Test func baselineNotReadyMeansNoBaselineAlert() async throws {
        let dir = TempDir()
        // Ten events only: the baseline is not ready, so a huge output is not an anomaly yet.
        var lines = (0..<10).map { logLine(time: at($0 * 400), outputTokens: 100) }
        lines.append(logLine(time: at(4100), outputTokens: 100_000))
        let config = testConfig(dir)
        let summary = try await ingest(lines, dir, config: config)
        #expect(summary.accepted == 11)
        #expect(try storedAlerts(dir.file("state.db")).filter { $0["rule"] as? String == "output_length_anomaly" }.isEmpty)
        // It was silent because the baseline was not ready, and for no other reason.
        let model = try BaselineMaintenance.load(config, from: openStateDatabase(dir.file("state.db")))
        let m = try #require(model.metrics.firstIndex { $0.name == "output_tokens" })
        let stats = try #require(model.globalStats(metric: m))
        #expect(stats.n >= 5 && stats.n < config.baseline.minSamples && !stats.ready, "n \(stats.n) is below min_samples \(config.baseline.minSamples)")
        let control = TempDir()
        var ready = testConfig(control)
        ready.baseline.minSamples = 5
        try await ingest(lines, control, config: ready)
        #expect(try storedAlerts(control.file("state.db")).filter { $0["rule"] as? String == "output_length_anomaly" }.count == 1,
                "with a ready baseline the same output is an anomaly")
    }
}
