import Baseline
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// Seasonal baselines: an anomaly inside the metric's global range (a missing daily peak) is found
/// against the hour's baseline, not against the whole day's.
@Suite struct SeasonalBaselineTests {
    static let day = 86_400

    static func rules() -> TempDir {
        ruleFolder("""
            - name: off_cycle
              severity: low
              condition: outside(output_tokens, 4)
              dedup: {key: [], mode: episode, quiet: 2h}
            """)
    }

    /// Ten days of a daily cycle, an event every 5 minutes from 200 users: outputs near 200 at
    /// night and near 600 from 10:00 to 18:00 UTC (noise ±20); on day 9 the peak does not come:
    /// the outputs stay at the night level all day, which is well inside the global range.
    static func traffic() -> [String] {
        (0..<(10 * 288)).map { i in
            let t = i * 300
            let hour = (t % day) / 3600
            let peak = hour >= 10 && hour < 18 && t / day != 9
            let output = (peak ? 600 : 200) + (i * 37) % 41 - 20
            return logLine(time: at(t), user: "user-\(i % 200)", session: "s-\(i % 200)-\(t / day)", id: "e-\(i)", outputTokens: output)
        }
    }

    func run(seasonal: Bool, cuts: [Int] = []) async throws -> (alerts: [[String: Any]], db: String, dir: TempDir) {
        let dir = TempDir()
        let rules = SeasonalBaselineTests.rules()
        var config = testConfig(dir)
        config.rulePaths = [rules.path]
        config.baseline.segmentField = nil
        if seasonal { config.baseline.seasonality = Seasonality(mode: .hourOfDay) }
        let lines = SeasonalBaselineTests.traffic()
        let bounds = [0] + cuts + [lines.count]
        for k in 0..<(bounds.count - 1) {
            try await ingest(Array(lines[bounds[k]..<bounds[k + 1]]), dir, name: "p\(k).jsonl", config: config)
        }
        let alerts = try storedAlerts(dir.file("state.db"))
        withExtendedLifetime(rules) {}
        return (alerts, dir.file("state.db"), dir)
    }

    @Test func aMissingDailyPeakIsFoundAgainstTheHoursBaselineAndOnlyThere() async throws {
        let flat = try await run(seasonal: false)
        #expect(flat.alerts.filter { $0["rule"] as? String == "off_cycle" }.allSatisfy { ($0["event_time"] as? String ?? "") < at(9 * SeasonalBaselineTests.day) },
                "without seasons, night-level outputs at noon are inside the range: \(flat.alerts.map { $0["event_time"] ?? "" })")

        let (alerts, _, _) = try await run(seasonal: true)
        let found = alerts.filter { $0["rule"] as? String == "off_cycle" }
        // Once the hours have their own baselines (after the first days), only day 9's missing peak alerts.
        let late = found.filter { ($0["event_time"] as? String ?? "") >= at(3 * SeasonalBaselineTests.day) }
        #expect(late.count == 1, "\(found.map { $0["event_time"] ?? "" })")
        let alert = try #require(late.first)
        #expect(alert["event_time"] as? String == at(9 * SeasonalBaselineTests.day + 10 * 3600))
        let evidence = try #require((alert["values"] as? [String: Any])?["baseline.output_tokens"] as? [String: Any])
        #expect(evidence["season"] as? Int == 10)
        #expect((evidence["median"] as? Double ?? 0) > 500, "the 10:00 baseline is the peak's: \(evidence)")
        let episode = try #require(alert["episode"] as? [String: Any])
        #expect((episode["last_event_time"] as? String ?? "") >= at(9 * SeasonalBaselineTests.day + 17 * 3600))

        // Replayed in pieces, with the seasonal state persisted between them, the same alerts.
        let pieces = try await run(seasonal: true, cuts: [700, 1_500, 2_650])
        #expect(canonical(pieces.alerts) == canonical(alerts))
    }

    @Test func seasonsWithFewSamplesArePooledTowardTheOverallBaseline() throws {
        let season = try #require(Seasonality(mode: .hourOfDay, prior: 100))
        var overall = MetricStats(n: 10_000, mean: 300, std: 100, p95: 500, p99: 600, min: 0, max: 900, snapshotID: 1, ready: true)
        overall.robust.median = 300
        overall.robust.mad = 30
        var hour = MetricStats(n: 100, mean: 600, std: 50, p95: 700, p99: 750, min: 0, max: 900, snapshotID: 1, ready: true)
        hour.robust.median = 600
        hour.robust.mad = 10
        // 100 samples against a prior of 100: halfway in location; the scale halfway between the
        // hour's and the overall one widened by the 300 between them.
        let half = try #require(season.pooled(hour, overall, bin: 14))
        #expect(half.mean == 450 && half.robust.median == 450)
        #expect(abs(half.std - (25 + 0.5 * (100.0 * 100 + 300 * 300).squareRoot())) < 1e-9)
        #expect(abs(half.robust.mad - (5 + 0.5 * (30.0 * 30 + (300 / 1.4826) * (300 / 1.4826)).squareRoot())) < 1e-9)
        #expect(half.season == 14 && half.seasonSamples == 100 && half.n == 10_000 && half.ready)
        // A season at its own level is not far out while little known…
        #expect(abs(half.robustZ(600) ?? 99) < 1.5)
        // …and is once well known.
        hour.n = 9_900
        let most = try #require(season.pooled(hour, overall, bin: 14))
        #expect(abs(most.mean - 597) < 1e-9, "\(most.mean)")
        #expect((most.robustZ(300) ?? 0) < -4, "the overall level is far below a well-known peak hour")
        #expect(season.pooled(nil, overall, bin: 3)?.mean == 300, "an empty season reads as the overall baseline")
        #expect(season.pooled(nil, overall, bin: 3)?.season == 3)
    }
}
