import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// The generator's profiles: the same seed gives the same bytes, and the benchmark's traffic alerts
/// as often as it says with the bundled rules.
@Suite struct TrafficProfileTests {
    static func hash(_ lines: [String]) -> String {
        var h = StableHash()
        for l in lines { h.combine(l) }
        return h.hex
    }

    @Test func theDefaultProfileKeepsItsBytes() {
        // The hash of what the generator wrote before it had profiles: tests and the bundled
        // example depend on these bytes.
        #expect(TrafficProfileTests.hash(DeterminismTests.generated(2_000)) == "f839bae18a20f4be")
    }

    @Test(arguments: [TrafficGenerator.Profile.realistic, .storm])
    func aSeedGivesTheSameBytes(_ profile: TrafficGenerator.Profile) {
        let a = DeterminismTests.generated(3_000, seed: 5, profile: profile)
        #expect(a == DeterminismTests.generated(3_000, seed: 5, profile: profile))
        #expect(a != DeterminismTests.generated(3_000, seed: 6, profile: profile))
        #expect(a != DeterminismTests.generated(3_000, seed: 5, profile: .default))
    }

    @Test func realisticLinesHaveTheDeploymentsShape() throws {
        let lines = DeterminismTests.generated(3_000, seed: 5, profile: .realistic)
        let bytes = lines.reduce(0) { $0 + $1.utf8.count } / lines.count
        #expect((2_300...2_800).contains(bytes), "about 2.5 KB a line, got \(bytes)")
        var calls: [Int: Int] = [:]
        var paragraphs = 0
        var times: [String] = []
        for l in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
            calls[(o["tool_calls"] as? [Any])?.count ?? -1, default: 0] += 1
            if (o["model_output"] as? String)?.contains("\n\n") == true { paragraphs += 1 }
            times.append(try #require(o["timestamp"] as? String))
        }
        #expect(Set(calls.keys) == Set(0...6), "benign events call tools 1 to 6 times, or not at all: \(calls)")
        #expect(paragraphs > lines.count / 2, "most answers have several paragraphs")
        #expect(times == times.sorted(), "in event-time order")
        // About 400 events an hour: 3,000 lines span about 7.5 hours.
        let span = Timestamp.parse(times.last!)!.micros - Timestamp.parse(times.first!)!.micros
        #expect((6.5...8.5).contains(Double(span) / 3.6e9), "\(Double(span) / 3.6e9) hours")
    }

    /// Two days of traffic through the real pipeline with the bundled rules: incidents start on
    /// the second day, so the fraction is taken over its lines.
    @Test(arguments: [(TrafficGenerator.Profile.realistic, 0.012...0.03), (.storm, 0.08...0.125)])
    func theAlertingFractionIsThePromisedOne(_ profile: TrafficGenerator.Profile, range: ClosedRange<Double>) async throws {
        let lines = DeterminismTests.generated(13_000, seed: 3, profile: profile)
        let secondDay = lines.firstIndex { $0.contains("\"timestamp\":\"2026-11-02") }!
        #expect(secondDay > 7_000, "the first day is all benign, and about 24 hours long")
        let dir = TempDir()
        let summary = try await ingest(lines, dir, config: testConfig(dir))
        let raised = summary.alerts.values.reduce(0, +)
        let fraction = Double(raised) / Double(lines.count - secondDay)
        #expect(range.contains(fraction), "\(profile): \(raised) alerts in \(lines.count - secondDay) lines: \(fraction)")
    }
}
