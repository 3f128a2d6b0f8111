import Foundation
import IWDetectCore
@testable import Rules
import Testing

/// Window functions against a naive reference: all events kept, each window recomputed from
/// scratch, on random streams with out-of-order timestamps within the allowed lateness.
@Suite struct WindowFunctionTests {
    struct RefEvent { var t: Int64; var key: String; var value: Double; var label: String; var passes: Bool }

    /// The naive reference for one function at event `e`: events of `e.key` that pass the filter,
    /// with time in (e.t - window, e.t], seen so far (the current one included).
    static func reference(_ fn: String, _ seen: [RefEvent], _ e: RefEvent, window: Int64) -> Double? {
        let inWindow = seen.filter { $0.key == e.key && $0.passes && $0.t > e.t - window && $0.t <= e.t }
        switch fn {
        case "count": return Double(inWindow.count)
        case "sum": return inWindow.reduce(0) { $0 + $1.value }
        case "rolling_mean": return inWindow.isEmpty ? nil : inWindow.reduce(0) { $0 + $1.value } / Double(inWindow.count)
        case "max": return inWindow.map(\.value).max()
        case "count_distinct": return Double(Set(inWindow.map(\.label)).count)
        case "rolling_std":
            guard inWindow.count >= 2 else { return nil }
            let mean = inWindow.reduce(0) { $0 + $1.value } / Double(inWindow.count)
            return (inWindow.reduce(0) { $0 + ($1.value - mean) * ($1.value - mean) } / Double(inWindow.count)).squareRoot()
        case "ewma":
            // half-life = window / 8
            guard !inWindow.isEmpty else { return nil }
            var num = 0.0, den = 0.0
            for x in inWindow {
                let w: Double = pow(2, -Double(e.t - x.t) / Double(window / 8))
                num += w * x.value
                den += w
            }
            return num / den
        case "cusum":
            // In time order (ties in arrival order), robust z against median 50, MAD 20, k 0.5.
            guard !inWindow.isEmpty else { return nil }
            var s = 0.0
            for x in inWindow.enumerated().sorted(by: { ($0.element.t, $0.offset) < ($1.element.t, $1.offset) }) {
                s = max(0, s + (x.element.value - 50) / (1.4826 * 20) - 0.5)
            }
            return s
        default: return nil
        }
    }

    @Test(arguments: ["count", "sum", "rolling_mean", "max", "count_distinct", "rolling_std", "ewma", "cusum"])
    func matchesANaiveReference(fn: String) throws {
        let call = switch fn {
        case "count": "count(user_id, 10m)"
        case "count_distinct": "count_distinct(source_ip, user_id, 10m)"
        case "cusum": "cusum(output_tokens, 0.5, 10m, user_id)"
        case "ewma": "ewma(output_tokens, 75s, user_id)"  // 8 half-lives: 10m
        default: "\(fn)(output_tokens, 10m, user_id)"
        }
        // `> -1` makes the rule fire whenever the value exists, so every detection reports it.
        let yaml = "- {name: r, severity: low, condition: 'risk_score > 0.5 AND \(call) > -1', dedup: {key: [log_id], window: 1s}}"
        let loaded = RuleLoader.load(sources: [("r.yaml", yaml)], metrics: MetricDefinition.defaults, fields: FieldTable())
        let fields = loaded.fields
        var engine = RuleEngine(ruleSet: try #require(loaded.ruleSet))
        var rng = SplitMix64(seed: UInt64(fn.utf8.count) * 7919)
        var seen: [RefEvent] = []
        var clock: Int64 = 0
        var checked = 0
        var st = MetricStats(n: 1000, mean: 50, std: 29, p95: 95, p99: 99, min: 0, max: 100, snapshotID: 1, ready: true)
        st.robust.median = 50
        st.robust.mad = 20
        let baseline = FixedBaseline(stats: [MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!: st])
        for i in 0..<3_000 {
            if i == 1_500 {
                // A restart: every series goes through its persisted form.
                for r in engine.state.indices {
                    for w in engine.state[r].indices {
                        for (key, series) in engine.state[r][w] {
                            let restored = WindowSeries(serialized: series.serialized())
                            #expect(restored == series)
                            engine.state[r][w][key] = restored
                        }
                    }
                }
            }
            // Mostly forward in time, sometimes up to 4 minutes late (the allowed lateness is 5m).
            clock += Int64(rng.next() % 20) * 1_000_000
            let late = rng.unit() < 0.2 ? Int64(rng.next() % 240) * 1_000_000 : 0
            let e = RefEvent(t: clock - late, key: "u\(rng.next() % 5)", value: Double(rng.next() % 1000) / 10,
                             label: "ip\(rng.next() % 7)", passes: rng.unit() < 0.7)
            var v = Array(repeating: FieldValue.missing, count: fields.count)
            // Only the fields the rule references have slots.
            func set(_ path: String, _ x: FieldValue) { if let slot = fields.existingSlot(for: path) { v[slot] = x } }
            set("user_id", .string(e.key))
            set("log_id", .string("e\(i)"))
            set("risk_score", .number(e.passes ? 0.9 : 0.1))
            set("output_tokens", .number(e.value))
            set("source_ip", .string(e.label))
            var out: [Detection] = []
            engine.evaluate(Event(time: EventTime(micros: e.t), values: v, origin: .init(source: "t", line: Int64(i))),
                            baseline: baseline, into: &out)
            seen.append(e)
            let expected = e.passes ? WindowFunctionTests.reference(fn, seen, e, window: 600_000_000) : nil
            let got = out.first.flatMap { d in d.evidence.first { $0.0 == call }?.1 }
            if let expected {
                guard case .number(let x)? = got else { Issue.record("event \(i): no value, expected \(expected)"); return }
                #expect(abs(x - expected) <= 1e-9 * max(1, abs(expected)), "event \(i) at \(e.t): \(x) vs \(expected)")
                checked += 1
            } else {
                #expect(out.isEmpty, "event \(i): the filter failed, the rule must not fire")
            }
        }
        #expect(checked > 1_500)
    }

    @Test func newFunctionsCompileWithTheirSignatures() throws {
        for (condition, ok) in [("sum(output_tokens, 1h) > 10", true), ("max(output_tokens, 1h, user_id) > baseline.p99", true),
                                ("count_distinct(source_ip, user_id, 1h) > 3", true), ("sum(1h) > 1", false),
                                ("count_distinct(source_ip, 1h) > 1", false), ("max(not_a_metric, 1h) > 1", false)] {
            let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: '\(condition)'}")],
                                         metrics: MetricDefinition.defaults, fields: FieldTable())
            #expect((loaded.ruleSet != nil) == ok, "\(condition): \(loaded.diagnostics)")
        }
    }
}
