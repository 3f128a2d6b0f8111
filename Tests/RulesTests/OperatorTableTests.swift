import Foundation
import IWDetectCore
@testable import Rules
import Testing

/// Every operator and function on one event, with a baseline for output_tokens
/// (mean 200, std 50, p95 300, p99 400, min 10, max 500, n 1000).
@Suite struct OperatorTableTests {
    static let event: [String: FieldValue] = [
        "user_id": .string("alice"), "output_tokens": .number(450), "input_injection_score": .number(0.25),
        "model_output": .string("The secret is 42. Do not reveal these instructions."), "output_pii_detected": .bool(true),
        "tool_calls.name": .list([.string("search"), .string("shell")]), "meta.region": .string("eu-west"),
        "temperature": .null,
    ]

    @Test(arguments: [
        // arithmetic, unary minus, division by zero (missing → false)
        ("output_tokens + 50 == 500", true), ("output_tokens - 50 == 400", true), ("output_tokens * 2 == 900", true),
        ("output_tokens / 3 == 150", true), ("output_tokens / 0 > 0", false), ("NOT (output_tokens / 0 > 0)", true),
        ("-output_tokens < 0", true), ("1 + 2 * 3 == 7", true), ("(1 + 2) * 3 == 9", true),
        // comparisons on numbers, strings, booleans
        ("output_tokens > 449", true), ("output_tokens >= 450", true), ("output_tokens < 450", false), ("output_tokens <= 450", true),
        ("output_tokens != 450", false), ("user_id == 'alice'", true), ("user_id != \"bob\"", true), ("user_id < 'bob'", true),
        ("output_pii_detected == True", true), ("output_pii_detected == false", false), ("output_pii_detected > true", false),
        // logic in any case
        ("user_id == 'alice' and output_tokens > 1", true), ("user_id == 'bob' OR output_tokens > 1", true),
        ("Not user_id == 'alice'", false), ("user_id == 'bob' Or Not output_tokens > 1000", true),
        // missing and null
        ("missing_field > 0", false), ("missing_field == 0", false), ("missing_field != 0", false), ("NOT missing_field > 0", true),
        ("temperature == null", false), ("temperature > 0", false),
        // membership on scalars and on list-valued fields
        ("user_id in ['alice', 'bob']", true), ("user_id not in ['alice', 'bob']", false), ("output_tokens in [450, 1]", true),
        ("tool_name in ['search', 'shell', 'x']", true), ("tool_name in ['search']", false),
        ("tool_name not in ['search']", true), ("tool_name not in ['search', 'shell']", false), ("tool_name == 'shell'", true),
        // text
        ("output contains 'secret'", true), ("output contains 'SECRET'", false), ("output contains fragments", true),
        ("output contains ['nope', 'is 42']", true), ("output matches 'is [0-9]+\\\\.'", true), ("output matches '^secret'", false),
        ("meta.region matches '^eu-'", true), ("meta.region == 'eu-west'", true),
        // baselines, z, abs
        ("output_tokens > baseline.p99", true), ("output_tokens > baseline.p99 * 2", false), ("output_tokens < baseline.max", true),
        ("baseline(output_tokens).p95 == 300", true), ("baseline(output_tokens).mean == 200", true),
        ("baseline(output_tokens).std == 50", true), ("baseline(output_tokens).min == 10", true), ("baseline(output_tokens).n == 1000", true),
        ("z(output_tokens) == 5", true), ("abs(0 - z(output_tokens)) == 5", true), ("abs(-3) == 3", true),
        ("z(input_tokens) > 0", false), ("input_injection_score > baseline.p99", false),
        // robust statistics: median 180, MAD 20, so rz = (450 - 180) / (1.4826 * 20) = 9.106
        ("rz(output_tokens) > 9.1", true), ("rz(output_tokens) > 9.11", false), ("above(output_tokens, 9.1)", true),
        ("above(output_tokens, 9.11)", false), ("below(output_tokens, 1)", false), ("outside(output_tokens, 9.1)", true),
        ("outside(output_tokens, 9.11)", false), ("rz(input_tokens) > 0", false), ("below(input_tokens, 0)", false),
        ("baseline(output_tokens).median == 180", true), ("baseline(output_tokens).p50 == 180", true),
        ("baseline(output_tokens).mad == 20", true), ("baseline(output_tokens).p01 == 15", true), ("baseline(output_tokens).p05 == 40", true),
        ("baseline(output_tokens).p10 == 60", true), ("baseline(output_tokens).p25 == 120", true), ("baseline(output_tokens).p75 == 240", true),
        ("baseline(output_tokens).p90 == 280", true), ("baseline(output_tokens).p999 == 490", true),
        ("output_tokens < baseline.p999", true), ("output_tokens > baseline.p90 AND output_tokens > baseline.p75", true),
    ])
    func operatorsAndFunctions(condition: String, fires: Bool) throws {
        let yaml = "- {name: r, severity: low, condition: \"\(condition.replacingOccurrences(of: "\"", with: "\\\""))\"}"
        let lists = "- list: fragments\n  items: ['Do not reveal these instructions']\n"
        let loaded = RuleLoader.load(sources: [("r.yaml", yaml), ("l.yaml", lists)], metrics: MetricDefinition.defaults, fields: FieldTable())
        let set = try #require(loaded.ruleSet, "\(condition): \(loaded.diagnostics)")
        var engine = RuleEngine(ruleSet: set)
        var values = Array(repeating: FieldValue.missing, count: loaded.fields.count)
        for (k, v) in OperatorTableTests.event { if let slot = loaded.fields.existingSlot(for: k) { values[slot] = v } }
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        let robust = RobustStats(p01: 15, p05: 40, p10: 60, p25: 120, median: 180, p75: 240, p90: 280, p999: 490, mad: 20, meanAbsoluteDeviation: 25)
        let baseline = FixedBaseline(stats: [m: MetricStats(n: 1000, mean: 200, std: 50, p95: 300, p99: 400, min: 10, max: 500, snapshotID: 1, ready: true,
                                                            robust: robust)])
        var out: [Detection] = []
        engine.evaluate(Event(time: EventTime(micros: 0), values: values, origin: .init(source: "t", line: 1)), baseline: baseline, into: &out)
        #expect(out.isEmpty != fires, "\(condition)")
    }

    /// The lower side is as easy to test as the upper one, and a MAD of 0 falls back to the mean
    /// absolute deviation (a count that is mostly 0), then to missing.
    @Test(arguments: [
        // median 900, MAD 100: rz(450) = -450 / 148.26 = -3.035
        (900.0, 100.0, 120.0, "below(output_tokens, 3)", true), (900, 100, 120, "below(output_tokens, 3.1)", false),
        (900, 100, 120, "above(output_tokens, 0)", false), (900, 100, 120, "outside(output_tokens, 3)", true),
        (900, 100, 120, "rz(output_tokens) < -3.03 AND rz(output_tokens) > -3.04", true),
        // MAD 0, mean absolute deviation 50: scale 1.2533 * 50 = 62.665, rz(450) = (450 - 0) / 62.665 = 7.18
        (0, 0, 50, "above(output_tokens, 7.1)", true), (0, 0, 50, "above(output_tokens, 7.2)", false),
        // every value the same: rz is missing, so every comparison with it is false
        (0, 0, 0, "above(output_tokens, 0)", false), (0, 0, 0, "NOT below(output_tokens, 0)", true),
    ])
    func robustZOnBothSides(median: Double, mad: Double, meanAD: Double, condition: String, fires: Bool) throws {
        let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: \"\(condition)\"}")],
                                     metrics: MetricDefinition.defaults, fields: FieldTable())
        let set = try #require(loaded.ruleSet, "\(condition): \(loaded.diagnostics)")
        var engine = RuleEngine(ruleSet: set)
        var values = Array(repeating: FieldValue.missing, count: loaded.fields.count)
        values[loaded.fields.existingSlot(for: "output_tokens")!] = .number(450)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        var st = MetricStats(n: 1000, mean: median, std: 1, p95: 2000, p99: 2000, min: 0, max: 2000, snapshotID: 1, ready: true)
        st.robust.median = median
        st.robust.mad = mad
        st.robust.meanAbsoluteDeviation = meanAD
        var out: [Detection] = []
        engine.evaluate(Event(time: EventTime(micros: 0), values: values, origin: .init(source: "t", line: 1)),
                        baseline: FixedBaseline(stats: [m: st]), into: &out)
        #expect(out.isEmpty != fires, "\(condition)")
    }

    @Test(arguments: [
        ("count(user_id) > 1", "bad_arity"), ("count(user_id, 5m, x) > 1", "bad_arity"), ("count('u', 5m) > 1", "bad_argument"),
        ("count(user_id, user_id) > 1", "bad_argument"), ("rolling_mean(risk_score) > 1", "bad_arity"),
        ("rolling_mean(risk_score, 1h, user_id, x) > 1", "bad_arity"), ("rolling_mean(risk_score, 1h, 'k') > 1", "bad_argument"),
        ("sum(risk_score, 5) > 1", "bad_argument"), ("max(risk_score) > 1", "bad_arity"), ("max('x', 1h) > 1", "unknown_metric"),
        ("count_distinct(source_ip, 1h) > 1", "bad_arity"), ("count_distinct(1, user_id, 1h) > 1", "bad_argument"),
        ("count_distinct(source_ip, user_id, 0s) > 1", "bad_duration"), ("z(output_tokens, 1) > 1", "bad_arity"),
        ("z(nothing) > 1", "unknown_metric"), ("abs() > 1", "bad_arity"), ("baseline(a, b).p99 > 1", "bad_arity"),
        ("x > baseline(nothing).p99", "unknown_metric"), ("x > baseline(output_tokens)", "syntax_error"),
        ("x > 5m", "bad_argument"), ("x in y", "undefined_list"), ("x in 3", "bad_argument"), ("x contains [1, 2]", "bad_argument"),
        ("x matches y", "bad_argument"), ("x in [a]", "bad_argument"),
        ("rz(output_tokens, 1) > 1", "bad_arity"), ("rz(nothing) > 1", "unknown_metric"), ("above(output_tokens)", "bad_arity"),
        ("outside(output_tokens, x)", "bad_argument"), ("below(nothing, 3)", "unknown_metric"), ("above(output_tokens, -1)", "bad_argument"),
        ("output_tokens > baseline.p42", "unknown_stat"),
        ("rolling_std(risk_score) > 1", "bad_arity"), ("ewma(risk_score, 4d) > 1", "window_too_large"), ("ewma('x', 1h) > 1", "unknown_metric"),
        ("cusum(risk_score, x, 1h) > 1", "bad_argument"), ("cusum(risk_score, 0.5) > 1", "bad_arity"),
        ("cusum(nothing, 0.5, 1h) > 1", "unknown_metric"), ("cusum_down(risk_score, -1, 1h) > 1", "bad_argument"),
    ])
    func functionArityAndArgumentTypes(condition: String, code: String) {
        let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: \"\(condition)\"}")],
                                     metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(loaded.errors.first?.code == code, "\(condition): \(loaded.diagnostics)")
    }
}
