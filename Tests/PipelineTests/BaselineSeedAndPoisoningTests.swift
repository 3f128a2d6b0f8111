import Baseline
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

@Suite struct BaselineSeedAndPoisoningTests {
    /// Ordinary traffic: one event every two minutes, outputs 100…299 tokens, from 20 users.
    static func ordinary(from start: Int, count: Int) -> [String] {
        (0..<count).map { i in
            logLine(time: at(start + i * 120), user: "user-\(i % 20)", session: "s-\(i % 20)", id: "o-\(start)-\(i)",
                    outputTokens: 100 + (i * 53) % 200)
        }
    }

    @Test func anExportedSnapshotSeedsAFreshDeployment() async throws {
        let trained = TempDir()
        try await ingest(BaselineSeedAndPoisoningTests.ordinary(from: 0, count: 1_000), trained, config: testConfig(trained))
        // The hourly snapshot lags the last events; recompute first, as before any export.
        let recompute = try run(iwDetectBinary, ["baseline", "recompute", "--db", trained.file("state.db"), "--rules", packageRoot + "/rules"])
        #expect(recompute.status == 0 && recompute.stdout.contains("output_tokens: n 990→1000"), "\(recompute.stdout)")
        let export = try run(iwDetectBinary, ["baseline", "export", "--db", trained.file("state.db"), "--rules", packageRoot + "/rules",
                                              "--out", trained.file("baselines")])
        #expect(export.status == 0, "\(export.stderr)")
        let file = export.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(file.hasSuffix(".json"))

        // A new deployment: no history, so by itself no baseline-based rule could fire.
        let fresh = TempDir()
        let imported = try run(iwDetectBinary, ["baseline", "import", file, "--db", fresh.file("state.db"), "--rules", packageRoot + "/rules"])
        #expect(imported.status == 0, "\(imported.stderr)")
        try await ingest([logLine(time: at(500_000), user: "x", id: "huge", outputTokens: 5_000)], fresh, config: testConfig(fresh))
        let alerts = try storedAlerts(fresh.file("state.db")).filter { $0["rule"] as? String == "output_length_anomaly" }
        #expect(alerts.count == 1)
        let evidence = (alerts.first?["values"] as? [String: Any])?["baseline.output_tokens"] as? [String: Any]
        #expect(evidence?["snapshot_id"] as? Int == 0, "the seed stood in")
        #expect(evidence?["n"] as? Int == 1_000)
        // The robust statistics travel with the seed: the evidence's median and MAD are the file's.
        let exported = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        let entry = (exported?["entries"] as? [[String: Any]])?.first { $0["metric"] as? String == "output_tokens" && $0["segment"] as? String == "" }
        let median = try #require(entry?["median"] as? Double)
        #expect(median >= 190 && median <= 210, "outputs 100…299: median \(median)")
        #expect(evidence?["median"] as? Double == median)
        #expect(evidence?["mad"] as? Double == entry?["mad"] as? Double)
        #expect((evidence?["rz"] as? Double ?? 0) > 50)
    }

    @Test(arguments: [
        (#"{"format":"other"}"#, "format must be"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"nope","segment":"","n":1,"mean":1,"std":0,"p95":1,"p99":1,"min":1,"max":1}]}"#, "unknown metric"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"output_tokens","segment":"","n":5,"mean":1,"std":-1,"p95":1,"p99":1,"min":1,"max":1}]}"#, "std must not be negative"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"output_tokens","segment":"","n":5,"mean":1,"std":0,"p95":9,"p99":2,"min":1,"max":10}]}"#, "min ≤ p95 ≤ p99 ≤ max"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"output_tokens","segment":"","n":"5","mean":1,"std":0,"p95":1,"p99":1,"min":1,"max":1}]}"#, "\"n\" must be a number"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"output_tokens","segment":"","n":5,"mean":1,"std":0,"p95":1,"p99":1,"min":1,"max":1,"median":1}]}"#, "give all of them or none"),
        (#"{"format":"iw-detect-baseline/1","entries":[{"metric":"output_tokens","segment":"","n":5,"mean":5,"std":1,"p95":9,"p99":9,"min":1,"max":10,"median":5,"mad":1,"mean_abs_dev":1,"p01":1,"p05":1,"p10":6,"p25":4,"p75":6,"p90":8,"p999":10}]}"#, "p10 ≤ p25"),
    ])
    func badSnapshotFilesAreRefusedWithTheEntry(text: String, message: String) {
        #expect {
            _ = try SnapshotFile.decode(Data(text.utf8), file: "s.json", metrics: MetricDefinition.defaults)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".hasPrefix("s.json")
        }
    }

    /// Days of ordinary traffic, then a campaign whose outputs creep up from 700 to 3,000 tokens
    /// over five days, every ten minutes, while ordinary traffic goes on.
    static func campaign() -> [String] {
        var lines = ordinary(from: 0, count: 3 * 720)  // three days
        let start = 3 * 86_400
        var events: [(Int, String)] = ordinary(from: start, count: 5 * 720).enumerated().map { (start + $0.offset * 120, $0.element) }
        for k in 0..<(5 * 144) {
            let t = start + k * 600 + 7
            events.append((t, logLine(time: at(t), user: "slow-attacker", session: "c-\(k / 144)", id: "c-\(k)",
                                      outputTokens: 700 + k * 2_300 / (5 * 144))))
        }
        lines += events.sorted { $0.0 < $1.0 }.map(\.1)
        return lines
    }

    func campaignRun(excludeAlerting: Bool) async throws -> (p99Before: Double, p99After: Double, lastDayDetections: Int) {
        let dir = TempDir()
        var config = testConfig(dir)
        config.baseline.excludeAlerting = excludeAlerting
        config.baseline.segmentField = nil
        let lines = BaselineSeedAndPoisoningTests.campaign()
        let before = Array(lines.prefix(3 * 720 + 1))
        let engine1 = try Engine(config: config)
        _ = try await engine1.ingest(.file(dir.write("before.jsonl", before.joined(separator: "\n") + "\n")))
        let m = config.metrics.firstIndex { $0.name == "output_tokens" }!
        let p99Before = try #require(engine1.baselineModel.globalStats(metric: m)?.p99)
        let engine2 = try Engine(config: config)
        let summary = try await engine2.ingest(.file(dir.write("after.jsonl", lines.dropFirst(before.count).joined(separator: "\n") + "\n")))
        _ = summary
        let p99After = try #require(engine2.baselineModel.globalStats(metric: m)?.p99)
        let alerts = try storedAlerts(dir.file("state.db")).filter {
            $0["rule"] as? String == "output_length_anomaly" && ($0["event_time"] as? String ?? "") >= at(7 * 86_400)
        }
        return (p99Before, p99After, alerts.count)
    }

    @Test func aSlowCampaignDoesNotMoveTheBaselineItIsJudgedAgainst() async throws {
        let guarded = try await campaignRun(excludeAlerting: true)
        #expect(abs(guarded.p99After - guarded.p99Before) <= 0.02 * guarded.p99Before,
                "p99 \(guarded.p99Before) → \(guarded.p99After): the alerting events did not train it")
        #expect(guarded.lastDayDetections > 0, "on the campaign's last day its events still alert")

        // The same stream without the exclusion: the campaign teaches the baseline its sizes.
        let open = try await campaignRun(excludeAlerting: false)
        #expect(open.p99After > 2 * open.p99Before)
        #expect(open.lastDayDetections == 0, "the baseline learned the attack as normal")
    }
}
