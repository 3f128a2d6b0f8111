import IWDetectCore
import Yams

/// An example embedded in a rule file: events in, the number of alerts expected out.
///
/// ```yaml
/// tests:
///   - name: four high-score injections in five minutes fire
///     events:
///       - {at: 0s, user_id: u, session_id: s, injection_score: 0.9}
///     expect: 1                # alerts after dedup; 0 means silence
///     baseline:                # optional fixed baseline snapshot, ready, by metric
///       output_tokens: {mean: 200, std: 50, p95: 400, p99: 500}
/// ```
/// `at` is an offset from 2026-01-01T00:00:00Z and becomes the event's `timestamp`; keys may use
/// the guide's aliases (`injection_score`). A derived field (`blocked`) is computed from the
/// event's other fields as in the pipeline, so setting it in a test event is a warning.
public struct RuleTestCase: Sendable {
    public var rule: String
    public var name: String
    public var file: String
    public var line: Int
    /// Each event as one JSON line.
    public var events: [String]
    public var expectedAlerts: Int
    /// Metric name → stats of a ready snapshot.
    public var baseline: [String: MetricStats]

    /// The time `at` offsets count from.
    public static let epoch = EventTime(micros: 1_767_225_600_000_000)  // 2026-01-01T00:00:00Z

    static func parse(_ node: Yams.Node, rule: String, file: String, diagnostics: inout [Diagnostic]) -> [RuleTestCase] {
        guard case .sequence(let items) = node else {
            diagnostics.append(RuleLoader.at(node, file, "bad_test", "tests must be a list of {name, events, expect}"))
            return []
        }
        var out: [RuleTestCase] = []
        for item in items {
            guard case .mapping(let m) = item else {
                diagnostics.append(RuleLoader.at(item, file, "bad_test", "a test must be a mapping with name, events and expect"))
                continue
            }
            for (k, _) in m where !["name", "events", "expect", "baseline"].contains(k.string ?? "") {
                diagnostics.append(RuleLoader.at(k, file, "unknown_key", "unknown key '\(k.string ?? "?")' in a test; use name, events, expect, baseline", .warning))
            }
            let name = m["name"]?.string ?? "test at line \(item.mark?.line ?? 0)"
            guard let expect = m["expect"]?.int, expect >= 0 else {
                diagnostics.append(RuleLoader.at(m["expect"] ?? item, file, "bad_test", "test '\(name)' needs expect: the number of alerts (0 for silence)"))
                continue
            }
            guard let eventsNode = m["events"], case .sequence(let events) = eventsNode else {
                diagnostics.append(RuleLoader.at(item, file, "bad_test", "test '\(name)' needs events: a list of event mappings"))
                continue
            }
            var lines: [String] = []
            var ok = true
            for e in events {
                guard case .mapping(let fields) = e else {
                    diagnostics.append(RuleLoader.at(e, file, "bad_test", "each event of '\(name)' must be a mapping of fields"))
                    ok = false
                    continue
                }
                var members: [(String, JSONValue)] = []
                for (k, v) in fields {
                    let key = k.string ?? ""
                    if key == "at" {
                        guard let d = v.string.flatMap(EventTime.Duration.init(parsing:)) else {
                            diagnostics.append(RuleLoader.at(v, file, "bad_duration", "at must be an offset such as 90s or 5m"))
                            ok = false
                            continue
                        }
                        members.append(("timestamp", .string((epoch + d).description)))
                    } else {
                        if let derived = DerivedField(rawValue: key) {
                            // The decoder computes it, whatever the event says.
                            diagnostics.append(RuleLoader.at(k, file, "derived_field", "'\(key)' is computed from \(derived.inputs.joined(separator: " and ")); set those in the event instead", .warning))
                        }
                        members.append((fieldAliases[key] ?? key, json(v)))
                    }
                }
                lines.append(JSONValue.object(expand(members)).serialized())
            }
            var baseline: [String: MetricStats] = [:]
            if let b = m["baseline"], case .mapping(let metrics) = b {
                for (k, v) in metrics {
                    guard case .mapping(let stats) = v else { continue }
                    func stat(_ s: String) -> Double? { stats[s]?.float ?? stats[s]?.int.map(Double.init) }
                    let mean = stat("mean") ?? 0
                    let n = stat("n") ?? 1000
                    guard n >= 0, n <= 1e15, n == n.rounded() else {
                        diagnostics.append(RuleLoader.at(stats["n"] ?? v, file, "bad_test", "test '\(name)': baseline n must be a whole number of samples (0 to 1e15)"))
                        ok = false
                        continue
                    }
                    var st = MetricStats(
                        n: Int64(n), mean: mean, std: stat("std") ?? 0, p95: stat("p95") ?? mean,
                        p99: stat("p99") ?? mean, min: stat("min") ?? 0, max: stat("max") ?? mean, snapshotID: 0, ready: true)
                    // The robust stats a test names replace the normal approximation's.
                    let robust: [(String, WritableKeyPath<RobustStats, Double>)] = [
                        ("median", \.median), ("p50", \.median), ("mad", \.mad), ("p01", \.p01), ("p05", \.p05), ("p10", \.p10),
                        ("p25", \.p25), ("p75", \.p75), ("p90", \.p90), ("p999", \.p999),
                    ]
                    for (key, path) in robust { if let x = stat(key) { st.robust[keyPath: path] = x } }
                    if stat("mad") != nil { st.robust.meanAbsoluteDeviation = st.robust.mad * 1.4826 * 0.797885 }
                    baseline[k.string ?? ""] = st
                }
            }
            if ok {
                out.append(RuleTestCase(rule: rule, name: name, file: file, line: item.mark?.line ?? 0, events: lines,
                                        expectedAlerts: expect, baseline: baseline))
            }
        }
        return out
    }

    /// Dotted keys (`tool_calls.name`) in a test event become nested objects; a list value under a
    /// projected path becomes a list of objects (`tool_name: [a, b]` → `tool_calls: [{name: a}, {name: b}]`).
    static func expand(_ members: [(String, JSONValue)]) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        for (key, value) in members {
            let parts = key.split(separator: ".").map(String.init)
            guard parts.count == 2 else { out.append((key, value)); continue }
            if case .array(let items) = value {
                out.append((parts[0], .array(items.map { .object([(parts[1], $0)]) })))
            } else {
                out.append((parts[0], .object([(parts[1], value)])))
            }
        }
        return out
    }

    static func json(_ node: Yams.Node) -> JSONValue {
        switch node {
        case .scalar(let s):
            if s.style != .plain { return .string(s.string) }
            if let b = node.bool { return .bool(b) }
            if let i = node.int { return .int(Int64(i)) }
            if let f = node.float { return .number(f) }
            if node.null != nil { return .null }
            return .string(s.string)
        case .sequence(let items): return .array(items.map(json))
        case .mapping(let m): return .object(m.map { ($0.key.string ?? "", json($0.value)) })
        case .alias: return .null
        }
    }
}
