import ArgumentParser
import Baseline
import Foundation
import IWDetectCore
import Pipeline

struct BaselineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Show or recompute the behavioural baseline.",
        subcommands: [Show.self, Recompute.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current snapshot per metric: n, mean, std, p95, p99, min, max, readiness.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "One JSON object per metric.") var json = false

        func run() async throws {
            let engine = try Engine(config: try common.engineConfig())
            let model = engine.baselineModel
            let window = model.snapshotWindow.map { "\(Timestamp.formatDay($0.lowerBound))..\(Timestamp.formatDay($0.upperBound))" } ?? "none"
            if json {
                for m in model.metrics.indices {
                    let s = model.snapshot[m]
                    print(JSONValue.object([
                        ("metric", .string(model.metrics[m].name)), ("snapshot_id", .int(model.snapshotID)), ("window", .string(window)),
                        ("n", .int(s?.n ?? 0)), ("mean", s.map { .number($0.mean) } ?? .null), ("std", s.map { .number($0.std) } ?? .null),
                        ("p95", s.map { .number($0.p95) } ?? .null), ("p99", s.map { .number($0.p99) } ?? .null),
                        ("min", s.map { .number($0.min) } ?? .null), ("max", s.map { .number($0.max) } ?? .null),
                        ("ready", .bool(s?.ready ?? false)), ("why_not_ready", readiness(s, model).map { .string($0) } ?? .null),
                    ]).serialized())
                }
                return
            }
            print("snapshot \(model.snapshotID), window \(window) (UTC days), min samples \(model.settings.minSamples)")
            print(pad("metric", 22) + pad("n", 9) + pad("mean", 12) + pad("std", 12) + pad("p95", 12) + pad("p99", 12) + pad("min", 12) + pad("max", 12) + "ready")
            for m in model.metrics.indices {
                let s = model.snapshot[m]
                let cells = s.map { [fmt($0.mean), fmt($0.std), fmt($0.p95), fmt($0.p99), fmt($0.min), fmt($0.max)] } ?? Array(repeating: "-", count: 6)
                print(pad(model.metrics[m].name, 22) + pad(String(s?.n ?? 0), 9) + cells.map { pad($0, 12) }.joined() + (readiness(s, model) ?? "yes"))
            }
            if model.excluded > 0 { print("\(model.excluded) events were kept out of the baseline (they alerted or were blocked)") }
        }

        func readiness(_ s: MetricStats?, _ model: BaselineModel) -> String? {
            guard let s else { return "no: no samples in the window" }
            return s.ready ? nil : "no: \(s.n) samples, needs \(model.settings.minSamples)"
        }
    }

    struct Recompute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute the snapshot now from the stored daily buckets (for cron or a systemd timer).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let engine = try Engine(config: try common.engineConfig())
            let (before, after) = try engine.recomputeBaseline()
            let old = Dictionary(uniqueKeysWithValues: before.map { ($0.metric, $0.stats) })
            print("snapshot \(engine.baselineModel.snapshotID) at stream time \(engine.streamClock)")
            for e in after {
                let o = old[e.metric]
                let change = o.map { "n \($0.n)→\(e.stats.n), mean \(fmt($0.mean))→\(fmt(e.stats.mean)), p99 \(fmt($0.p99))→\(fmt(e.stats.p99))" } ?? "new: n \(e.stats.n)"
                print("  \(e.metric): \(change)")
            }
        }
    }
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
func fmt(_ x: Double) -> String { abs(x) >= 1000 || x == x.rounded() ? String(format: "%.0f", x) : String(format: "%.3f", x) }
