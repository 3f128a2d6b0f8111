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
        let baseline = FixedBaseline(stats: [m: MetricStats(n: 1000, mean: 200, std: 50, p95: 300, p99: 400, min: 10, max: 500, snapshotID: 1, ready: true)])
        var out: [Detection] = []
        engine.evaluate(Event(time: EventTime(micros: 0), values: values, origin: .init(source: "t", line: 1)), baseline: baseline, into: &out)
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
    ])
    func functionArityAndArgumentTypes(condition: String, code: String) {
        let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: \"\(condition)\"}")],
                                     metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(loaded.errors.first?.code == code, "\(condition): \(loaded.diagnostics)")
    }
}
