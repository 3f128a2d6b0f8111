import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

@Suite struct DeterminismTests {
    static func generated(_ n: Int, seed: UInt64 = 7) -> [String] {
        var o = TrafficGenerator.Options()
        o.lines = n
        o.seed = seed
        var g = TrafficGenerator(options: o)
        var lines: [String] = []
        g.generate { lines.append($0) }
        return lines
    }

    @Test func oneRunAndPiecesGiveIdenticalAlerts() async throws {
        let lines = DeterminismTests.generated(12_000)
        let whole = TempDir()
        var config = testConfig(whole)
        config.batchLines = 997  // batch boundaries must not matter either
        try await ingest(lines, whole, config: config)

        let pieces = TempDir()
        var pconfig = testConfig(pieces)
        pconfig.batchLines = 3_001
        let cuts = [0, 2_345, 2_346, 7_777, 12_000]
        for k in 0..<(cuts.count - 1) {
            try await ingest(Array(lines[cuts[k]..<cuts[k + 1]]), pieces, name: "piece-\(k).jsonl", config: pconfig)
        }
        let a = try storedAlerts(whole.file("state.db"))
        let b = try storedAlerts(pieces.file("state.db"))
        #expect(a.count >= 8, "the generated attacks raise alerts")
        #expect(canonical(a) == canonical(b))
    }

    @Test func reingestingTheSameFileResumesAndRepeatsNothing() async throws {
        let dir = TempDir()
        let lines = DeterminismTests.generated(3_000)
        let first = try await ingest(lines, dir, config: testConfig(dir))
        #expect(first.accepted == 3_000)
        let second = try await ingest(lines, dir, config: testConfig(dir))
        #expect(second.linesRead == 0, "the checkpoint says the file was read to its end")
        #expect(second.resumedAtLine == 3_001)
    }
}
