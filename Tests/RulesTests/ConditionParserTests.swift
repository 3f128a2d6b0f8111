import IWDetectCore
import IWDetectTestSupport
@testable import Rules
import Testing

@Suite struct ConditionParserTests {
    @Test func precedenceOfLogicComparisonAndArithmetic() throws {
        // a OR b AND NOT c  ==  a OR (b AND (NOT c))
        let e = try Parser.parse("x > 1 OR y < 2 and not z == 3")
        guard case .binary("or", _, .binary("and", _, .unary("not", .binary("==", _, _, _), _), _), _) = e else {
            Issue.record("wrong tree: \(e)"); return
        }
        // Arithmetic binds tighter than comparison; * tighter than +.
        let a = try Parser.parse("output_tokens > baseline.p99 * 2 + 1")
        guard case .binary(">", .name("output_tokens", _), .binary("+", .binary("*", .baseline(nil, "p99", _), .number(2, _), _), .number(1, _), _), _) = a else {
            Issue.record("wrong tree: \(a)"); return
        }
    }

    @Test func literalsDurationsListsAndFunctions() throws {
        let e = try Parser.parse("count(session_id, 5m) >= 3 AND tool_name not in ['a', \"b\"] AND flag == True")
        guard case .binary("and", .binary("and", .binary(">=", .call("count", let args, _), _, _), .binary("not in", _, .list(let items, _), _), _), .binary("==", _, .bool(true, _), _), _) = e else {
            Issue.record("wrong tree: \(e)"); return
        }
        #expect(args == [.name("session_id", at: 6), .duration(300_000_000, at: 18)])
        #expect(items.count == 2)
        let b = try Parser.parse("x > baseline(output_tokens).p95")
        guard case .binary(">", _, .baseline(.name("output_tokens", _), "p95", _), _) = b else { Issue.record("\(b)"); return }
    }

    /// Bad conditions and the diagnostic each must produce, with the column of the problem.
    @Test(arguments: [
        ("injection_score >", "syntax_error", 18),
        ("injection_score > 0.7 AND", "syntax_error", 26),
        ("x = 3", "syntax_error", 3),
        ("(x > 3", "syntax_error", 7),
        ("x > 3 y", "syntax_error", 7),
        ("1 < x < 3", "syntax_error", 7),
        ("count(session_id) > 3", "bad_arity", 1),
        ("count(session_id, 5) > 3", "bad_argument", 19),
        ("count(session_id, 5q) > 3", "bad_duration", 19),
        ("frobnicate(x) > 1", "unknown_function", 1),
        ("tool_name not in unknown_list", "undefined_list", 18),
        ("x > baseline.p42", "unknown_stat", 5),
        ("baseline.p99 > 3", "baseline_without_metric", 1),
        ("rolling_mean(not_a_metric, 1h) > 1", "unknown_metric", 14),
        ("x matches '(['", "bad_regex", 11),
        ("x > 'unterminated", "syntax_error", 5),
        ("count(user_id, 60d) > 1", "window_too_large", 16),
    ])
    func badConditionsAreDiagnosedAtTheirColumn(condition: String, code: String, column: Int) {
        let yaml = "- name: r\n  severity: low\n  condition: \(condition)\n"
        let result = RuleLoader.load(sources: [("r.yaml", yaml)], metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(result.ruleSet == nil)
        let d = result.errors.first
        #expect(d?.code == code, "\(condition): \(String(describing: d))")
        #expect(d?.line == 3)
        #expect(d?.column == 13 + column, "\(condition): \(String(describing: d))")
    }

    @Test func everyProblemInARuleSetIsReportedAtOnce() {
        let yaml = """
            - name: a
              severity: urgent
              condition: x > 1
              colour: red
            - name: b
              severity: low
              condition: x >
            - severity: low
              condition: x > 1
            - name: a
              severity: low
              condition: y > 1
              action: explode
            """
        let result = RuleLoader.load(sources: [("set.yaml", yaml)], metrics: MetricDefinition.defaults, fields: FieldTable())
        let got = result.diagnostics.map { "\($0.line):\($0.code)" }
        #expect(got.contains("2:bad_severity"))
        #expect(got.contains("4:unknown_key"))
        #expect(got.contains("7:syntax_error"))
        #expect(got.contains("8:missing_key"))
        #expect(got.contains("13:bad_action"))
        #expect(result.diagnostics.first { $0.code == "unknown_key" }?.level == .warning)
    }

    @Test func theBundledRulesLoadWithoutDiagnostics() {
        let result = RuleLoader.load(paths: [IWDetectTestSupportPaths.rules], metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(Set(result.ruleSet?.names ?? []) == [
            "rapid_fire_injection_attempts", "system_prompt_extraction_pattern", "unusual_tool_usage",
            "output_length_anomaly", "pii_leakage_pattern", "model_behavior_drift", "behavioral_anomaly",
            "inferencewall_block_surge", "inferencewall_repeated_signature", "inferencewall_auth_failures", "inferencewall_config_change",
        ])
    }
}
