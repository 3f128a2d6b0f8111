import ArgumentParser
import Baseline
import Foundation
import IWDetectCore
import Pipeline

struct BaselineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Show, recompute, export and import the behavioural baseline.",
        subcommands: [Show.self, Recompute.self, Export.self, Import.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current snapshot per metric and segment: n, mean, std, p95, p99, min, max, readiness.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "One JSON object per metric.") var json = false

        func run() async throws {
            let config = try common.engineConfig()
            let model = try BaselineMaintenance.load(config, from: try common.existingDatabase())
            let window = model.snapshotWindow.map { "\(Timestamp.formatHour($0.lowerBound))..\(Timestamp.formatHour($0.upperBound + 1))" } ?? "none"
            let rows = BaselineRows(model)
            if json {
                for r in rows.rows { print(r.json(snapshotID: model.snapshotID, window: window).serialized()) }
                return
            }
            let samples = model.settings.windowSamples.map { ", or its newest hours holding \($0) samples" } ?? ""
            print("snapshot \(model.snapshotID), window \(window) (UTC)\(samples), ready at \(model.settings.minSamples) samples over a span of \(model.settings.minSpan)" +
                  (model.settings.segmentField.map { ", segments by \($0)" } ?? ""))
            print(pad("metric", 22) + pad("segment", 20) + pad("n", 9) + ["mean", "std", "median", "mad", "p95", "p99", "min", "max"].map { pad($0, 11) }.joined() + "ready")
            for r in rows.rows {
                let cells = r.stats.map { [fmt($0.mean), fmt($0.std), fmt($0.robust.median), fmt($0.robust.mad), fmt($0.p95), fmt($0.p99), fmt($0.min), fmt($0.max)] }
                    ?? Array(repeating: "-", count: 8)
                print(pad(r.metric, 22) + pad(r.segment.isEmpty ? "(global)" : r.segment, 20) + pad(String(r.stats?.n ?? 0), 9)
                      + cells.map { pad($0, 11) }.joined() + (r.whyNotReady ?? "yes"))
            }
            if model.excluded > 0 { print("\(model.excluded) events were kept out of the baseline (they fired a security rule or were blocked)") }
            for q in model.quarantineSummary {
                print("quarantine \(q.segment.isEmpty ? "(global)" : q.segment): \(q.events) events since \(q.since), \(String(format: "%.1f", q.share * 100)) % of the segment's, "
                      + "from \(q.users)\(q.users >= model.settings.quarantine.minUsers ? "+" : "") users and \(q.sessions)\(q.sessions >= model.settings.quarantine.minSessions ? "+" : "") sessions")
            }
            let c = model.quarantineCounts
            if c.events > 0 { print("\(c.events) events were quarantined (they fired only statistical rules): \(c.admitted) shift(s) admitted, \(c.refused) quarantine(s) refused") }
        }
    }

    /// One row per metric and segment, global first.
    struct BaselineRows {
        struct Row {
            var metric: String
            var segment: String
            var stats: MetricStats?
            var whyNotReady: String?

            func json(snapshotID: Int64, window: String) -> JSONValue {
                var members: [(String, JSONValue)] = [
                    ("metric", .string(metric)), ("segment", .string(segment)), ("snapshot_id", .int(snapshotID)),
                    ("window", .string(window)), ("n", .int(stats?.n ?? 0)),
                ]
                let r = stats?.robust
                for (k, v) in [("mean", stats?.mean), ("std", stats?.std), ("median", r?.median), ("mad", r?.mad),
                               ("p01", r?.p01), ("p05", r?.p05), ("p10", r?.p10), ("p25", r?.p25), ("p75", r?.p75), ("p90", r?.p90),
                               ("p95", stats?.p95), ("p99", stats?.p99), ("p999", r?.p999), ("min", stats?.min), ("max", stats?.max)] {
                    members.append((k, v.map { JSONValue.number($0) } ?? .null))
                }
                members.append(("ready", .bool(whyNotReady == nil)))
                members.append(("why_not_ready", whyNotReady.map { JSONValue.string($0) } ?? .null))
                return .object(members)
            }
        }

        var rows: [Row] = []

        init(_ model: BaselineModel) {
            for (s, segment) in model.segments.enumerated() {
                for (m, metric) in model.metrics.enumerated() {
                    let st = model.snapshot[s][m]
                    if s > 0 && st == nil { continue }
                    let why = model.whyNotReady(st).map { "no: \($0)" + (s > 0 ? " (the global baseline is used)" : "") }
                    rows.append(Row(metric: metric.name, segment: segment, stats: st, whyNotReady: why))
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the current snapshot as reviewable JSON (one file per snapshot).")
        @OptionGroup var common: CommonOptions
        @Option(help: "The directory to write to.") var out = "baselines"

        func run() async throws {
            let config = try common.engineConfig()
            let model = try BaselineMaintenance.load(config, from: try common.existingDatabase())
            guard model.snapshotID > 0 else { throw CLIError("no snapshot yet: ingest some events or run `iw-detect baseline recompute` first") }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let path = (out as NSString).appendingPathComponent(SnapshotFile.fileName(model))
            try Data((SnapshotFile.encode(model).pretty() + "\n").utf8).write(to: URL(fileURLWithPath: path))
            print(path)
            printErr("\(model.entries.count) metric/segment baselines of snapshot \(model.snapshotID) written")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seed the database with an exported snapshot.",
            discussion: "The seed stands in for baselines that are not ready yet (a new deployment); the deployment's own baselines replace it as soon as they are. Importing again replaces the seed."
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "A file written by `iw-detect baseline export`.") var file: String
        @Flag(help: "Wait for a running ingest to finish instead of exiting 1.") var wait = false

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("\(file): cannot read the file") }
            let config = try common.engineConfig()
            let entries: [SnapshotEntry]
            do { entries = try SnapshotFile.decode(data, file: file, metrics: config.metrics) } catch { throw CLIError(error.description) }
            let db = try openStateDatabase(config.databasePath)
            let lock = try common.lockDatabase(waiting: wait, command: "baseline import")
            defer { lock.release() }
            let n = try BaselineStore.importSeed(entries, source: file, into: db)
            printErr("seeded \(n) metric/segment baselines from \(file); they are used until this deployment's own baselines are ready")
        }
    }

    struct Recompute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the snapshot now from the stored hourly buckets (for cron or a systemd timer).",
            discussion: "A running ingest holds the database and recomputes on its own schedule (baseline.recompute_every of stream time); recompute then exits 1 unless --wait."
        )
        @OptionGroup var common: CommonOptions
        @Flag(help: "Wait for a running ingest to finish instead of exiting 1.") var wait = false

        func run() async throws {
            let config = try common.engineConfig()
            let db = try common.existingDatabase()
            let lock = try common.lockDatabase(waiting: wait, command: "baseline recompute")
            defer { lock.release() }
            let (before, after, model, clock) = try BaselineMaintenance.recompute(config, in: db)
            let old = Dictionary(before.map { ($0.metric + "/" + $0.segment, $0.stats) }, uniquingKeysWith: { a, _ in a })
            print("snapshot \(model.snapshotID) at stream time \(clock)")
            for e in after {
                let o = old[e.metric + "/" + e.segment]
                let change = o.map { "n \($0.n)→\(e.stats.n), mean \(fmt($0.mean))→\(fmt(e.stats.mean)), p99 \(fmt($0.p99))→\(fmt(e.stats.p99))" } ?? "new: n \(e.stats.n)"
                print("  \(e.metric)\(e.segment.isEmpty ? "" : " [\(e.segment)]"): \(change)")
            }
        }
    }
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
func fmt(_ x: Double) -> String { abs(x) >= 1000 || x == x.rounded() ? String(format: "%.0f", x) : String(format: "%.3f", x) }
