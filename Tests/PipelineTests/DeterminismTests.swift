import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

@Suite struct DeterminismTests {
    static func generated(_ n: Int, seed: UInt64 = 7, profile: TrafficGenerator.Profile = .default) -> [String] {
        var o = TrafficGenerator.Options(profile: profile)
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
        // The scheduled recomputes happened at the same stream times: identical snapshots, to the bit.
        let snapshots = { (path: String) throws -> [String] in
            try Database(path: path).query(
                "SELECT s.id, s.window_start_hour, s.window_end_hour, s.computed_at_stream, t.metric, t.segment, t.n, t.mean, t.std, "
                    + "t.p95, t.p99, t.min, t.max, t.ready, t.span_hours, t.p01, t.p05, t.p10, t.p25, t.median, t.p75, t.p90, t.p999, t.mad, t.mean_abs_dev FROM baseline_snapshots s JOIN baseline_stats t ON t.snapshot_id = s.id "
                    + "ORDER BY s.id, t.metric, t.segment"
            ) { r in (0..<25).map { r.isNull(Int32($0)) ? "null" : r.text(Int32($0)) }.joined(separator: " ") }
        }
        let sa = try snapshots(whole.file("state.db")), sb = try snapshots(pieces.file("state.db"))
        #expect(sa.count > 50)
        #expect(sa == sb)
    }

    /// Reading and decoding on a thread of their own (threads: 2) changes nothing the pipeline
    /// produces: the same alerts, snapshots, rollups, index and rejects as one thread.
    @Test func oneThreadAndTwoGiveTheSameState() async throws {
        var lines = DeterminismTests.generated(12_000)
        for at in [17, 4_001, 9_999] { lines.insert(at % 2 == 0 ? "{\"broken\": " : "not json at all", at: at) }
        func state(threads: Int) async throws -> [String] {
            let dir = TempDir()
            var config = testConfig(dir)
            config.threads = threads
            config.batchLines = 997
            let summary = try await ingest(lines, dir, config: config)
            #expect(summary.rejectedTotal == 3)
            let db = try Database(path: dir.file("state.db"))
            func rows(_ sql: String) throws -> [String] {
                try db.query(sql) { r in (0..<r.columnCount).map { r.isNull(Int32($0)) ? "null" : r.text(Int32($0)) }.joined(separator: " ") }
            }
            var out = canonical(try storedAlerts(dir.file("state.db"))).map { "\($0)" }
            out += try rows("SELECT t.metric, t.segment, t.n, t.mean, t.std, t.p99, t.median FROM baseline_stats t ORDER BY t.snapshot_id, t.metric, t.segment")
            out += try rows("SELECT res, bucket, data FROM rollups ORDER BY res, bucket")
            out += try rows("SELECT kind, bucket, hex(data) FROM forensic_chunks ORDER BY chunk")
            out += try rows("SELECT line, reason FROM rejects ORDER BY line")
            return out
        }
        let one = try await state(threads: 1), two = try await state(threads: 2)
        #expect(one.count > 100)
        #expect(one == two)
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
