import Baseline
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// Anti-poisoning without lock-out: events that fired only statistical rules wait in quarantine;
/// a sustained, broad shift is admitted as the new normal, a narrow one never trains.
@Suite struct QuarantineTests {
    static let day = 86_400

    /// A rule that reads a baseline (so its events are quarantined), one episode at a time.
    static func rules() -> TempDir {
        ruleFolder("""
            - name: long_outputs
              severity: medium
              condition: above(output_tokens, 4)
              dedup: {key: [], mode: episode, quiet: 2h}
            """)
    }

    /// Two days of ordinary traffic from 200 users (an event every two minutes, outputs 100…299,
    /// median 200), then two days in which `shifted(i)` events have outputs of 500…699 (every
    /// one of them more than 4 robust standard deviations above the old median).
    static func traffic(shifted: (Int) -> Bool) -> [String] {
        (0..<(4 * 720)).map { i in
            let t = i * 120
            let user = "user-\(i % 200)", session = "s-\(i % 200)-\(t / day)"
            let output = 100 + (i * 53) % 200 + (t >= 2 * day && shifted(i) ? 400 : 0)
            return logLine(time: at(t), user: user, session: session, id: "e-\(i)", outputTokens: output)
        }
    }

    func run(_ lines: [String], cuts: [Int] = [], minShare: Double = 0.1) async throws -> (alerts: [[String: Any]], model: BaselineModel) {
        let dir = TempDir()
        var config = testConfig(dir)
        config.baseline.quarantine.minShare = minShare
        let rules = QuarantineTests.rules()
        config.rulePaths = [rules.path]
        config.baseline.segmentField = nil
        let bounds = [0] + cuts + [lines.count]
        for k in 0..<(bounds.count - 1) {
            try await ingest(Array(lines[bounds[k]..<bounds[k + 1]]), dir, name: "p\(k).jsonl", config: config)
        }
        let engine = try Engine(config: config)
        let alerts = try storedAlerts(dir.file("state.db"))
        withExtendedLifetime(rules) {}
        return (alerts, engine.baselineModel)
    }

    static func median(_ model: BaselineModel) -> Double? {
        let m = model.metrics.firstIndex { $0.name == "output_tokens" }!
        return model.globalStats(metric: m)?.robust.median
    }

    @Test func aBenignPopulationWideShiftIsAdmittedAndStopsAlertingWithinTheQuarantineTime() async throws {
        let lines = QuarantineTests.traffic { _ in true }
        let (alerts, model) = try await run(lines)
        let shifts = alerts.filter { $0["rule"] as? String == "baseline_shift_accepted" }
        #expect(shifts.count == 1, "\(alerts.map { $0["rule"] ?? "" })")
        let shift = try #require(shifts.first)
        let values = try #require(shift["values"] as? [String: Any])
        let moved = try #require((values["metrics"] as? [[String: Any]])?.first)
        #expect(moved["metric"] as? String == "output_tokens")
        #expect(abs((moved["old_median"] as? Double ?? 0) - 200) < 5)
        #expect(abs((moved["new_median"] as? Double ?? 0) - 600) < 10)
        #expect(values["users"] as? Int == 20 && values["sessions"] as? Int == 20, "counted up to the thresholds")
        #expect((values["share"] as? Double ?? 0) > 0.99)
        #expect(values["since"] as? String == at(2 * QuarantineTests.day))
        // Admitted at the first hourly recompute 24 hours after the shift began.
        let admitted = try #require(shift["event_time"] as? String)
        #expect(admitted == at(3 * QuarantineTests.day + 3_600) || admitted == at(3 * QuarantineTests.day), "\(admitted)")
        // One episode of long outputs, which ended when the shift was admitted.
        let episodes = alerts.filter { $0["rule"] as? String == "long_outputs" }
        #expect(episodes.count == 1)
        let episode = try #require(episodes.first?["episode"] as? [String: Any])
        #expect((episode["last_event_time"] as? String ?? "") <= admitted)
        #expect(episode["closed_at"] as? String != nil, "the episode closed: the new normal no longer alerts")
        // The baseline now describes the new normal.
        #expect(abs((QuarantineTests.median(model) ?? 0) - 600) < 10)
        #expect(model.quarantineCounts.admitted == 1)

        // Replayed in pieces, cutting inside the quarantine, the outcome is the same.
        let pieces = try await run(lines, cuts: [1_500, 2_000, 2_300])
        #expect(canonical(pieces.alerts) == canonical(alerts))
        #expect(QuarantineTests.median(pieces.model) == QuarantineTests.median(model))
    }

    @Test func aShiftByAFewAccountsIsNeverAdmittedAndKeepsAlerting() async throws {
        // Five users' events shift; they are 2.5 % of the traffic, so the share refuses it.
        let few = try await run(QuarantineTests.traffic { $0 % 200 < 5 })
        #expect(!few.alerts.contains { $0["rule"] as? String == "baseline_shift_accepted" })
        #expect(abs((QuarantineTests.median(few.model) ?? 0) - 200) < 5)
        #expect(few.model.quarantineCounts.refused > 0)
        let episode = try #require(few.alerts.last { $0["rule"] as? String == "long_outputs" }?["episode"] as? [String: Any])
        // Their events come five in a row every 400 minutes: the last ones still alert.
        #expect((episode["last_event_time"] as? String ?? "") >= at(4 * QuarantineTests.day - 7 * 3_600), "still alerting at the end")

        // Ten users' events shift, and a share of 1 % is enough: the share admits it, the breadth
        // (10 users, not 20) does not, so it stays in quarantine and never trains.
        let narrow = try await run(QuarantineTests.traffic { $0 % 200 < 10 }, minShare: 0.01)
        #expect(!narrow.alerts.contains { $0["rule"] as? String == "baseline_shift_accepted" })
        #expect(abs((QuarantineTests.median(narrow.model) ?? 0) - 200) < 5)
        #expect(narrow.model.quarantineCounts.refused == 0 && narrow.model.quarantineCounts.admitted == 0)
        let last = try #require(narrow.alerts.last { $0["rule"] as? String == "long_outputs" }?["episode"] as? [String: Any])
        #expect((last["last_event_time"] as? String ?? "") >= at(4 * QuarantineTests.day - 7 * 3_600))
    }
}
