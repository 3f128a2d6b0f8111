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

    /// The same burst with `mode: episode`: one alert for the whole burst, closed 30 minutes after
    /// its last detection, with every detection counted on it; a later burst is a new episode.
    /// Replayed in pieces, the episodes and their closes are the same.
    @Test func anEpisodeIsOneAlertPerBurstAndRecordsItsClose() async throws {
        let rules = ruleFolder("""
            - name: injection_episode
              severity: medium
              condition: injection_score > 0.7
              dedup: {key: [user_id], mode: episode, quiet: 30m}
            """)
        var lines = (0..<120).map { logLine(time: at($0 * 30), user: "burst", session: "burst-s", id: "b-\($0)", injection: 0.9) }
        lines += (0..<10).map { logLine(time: at(7_200 + $0 * 60), user: "burst", session: "burst-s", id: "c-\($0)", injection: 0.9) }
        lines.append(logLine(time: at(20_000), user: "other", id: "late", injection: 0.01))
        func run(_ pieces: [Range<Int>]) async throws -> [[String: Any]] {
            let dir = TempDir()
            var config = testConfig(dir)
            config.rulePaths = [rules.path]
            for (k, r) in pieces.enumerated() { try await ingest(Array(lines[r]), dir, name: "p\(k).jsonl", config: config) }
            return try storedAlerts(dir.file("state.db"))
        }
        let whole = try await run([0..<lines.count])
        #expect(whole.map { $0["event_time"] as? String } == [at(0), at(7_200)])
        let episodes = whole.map { $0["episode"] as? [String: Any] ?? [:] }
        #expect(episodes.map { $0["events"] as? Int } == [120, 10])
        #expect(episodes.map { $0["last_event_time"] as? String } == [at(119 * 30), at(7_200 + 540)])
        #expect(episodes.map { $0["closed_at"] as? String } == [at(119 * 30 + 1_800), at(7_740 + 1_800)])
        #expect(episodes.map { $0["quiet"] as? String } == ["30m", "30m"])
        // Cut inside the first burst, in the quiet gap and inside the second burst.
        let pieces = try await run([0..<50, 50..<121, 121..<125, 125..<lines.count])
        #expect(canonical(pieces) == canonical(whole))
    }
}
