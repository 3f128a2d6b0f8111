import Foundation
import IWDetectCore
import IWDetectTestSupport
import Rules
import Testing

/// The rule loader's required keys and its unknown-field warnings.
@Suite struct RuleLoaderTests {
    func load(_ yaml: String, extraFields: [String] = [], metrics: [MetricDefinition] = MetricDefinition.defaults) -> RuleLoadResult {
        RuleLoader.load(sources: [("r.yaml", yaml)], metrics: metrics, fields: FieldTable(), extraFields: extraFields)
    }

    @Test func aRuleWithoutAConditionIsAnErrorNotSilentlyDropped() {
        let r = load("""
            - name: fine
              severity: low
              condition: risk_score > 0.9
            - name: no_condition
              severity: high
            """)
        #expect(r.ruleSet == nil, "a rule set with a rule that cannot run is refused")
        #expect(r.errors.map { "\($0.line):\($0.column) \($0.code) \($0.message)" } == ["4:3 missing_key a rule needs 'condition'"])
    }

    @Test func typosInFieldsAndBaselineStatsAreWarnedAboutWithTheNearestName() {
        let r = load("""
            - name: typo
              severity: low
              condition: output_tokns > baselin.p99 * 2 AND count(sesion_id, 5m) > 1
              dedup: {key: [usr_id]}
            """)
        #expect(r.ruleSet != nil, "warnings do not refuse the rule set")
        let got = r.diagnostics.map { "\($0.line):\($0.column) \($0.level.rawValue) \($0.code)" }
        #expect(got == ["3:14 warning unknown_field", "3:29 warning unknown_field", "3:55 warning unknown_field", "4:17 warning unknown_field"])
        let hints = r.diagnostics.map { $0.message.components(separatedBy: "did you mean ").last ?? "" }
        #expect(hints == ["'output_tokens'?", "'baseline.p99'?", "'session_id'?", "'user_id'?"])
    }

    @Test func fieldsOfTheSchemasTheConfigAndTheTestEventsAreKnown() {
        let r = load("""
            - name: known
              severity: low
              condition: >
                injection_score > 0.7 AND tool_name in ['x'] AND decision == 'block' AND anomaly_score > 3
                AND matches.signature_id == 'INJ-D-002' AND details.reason == 'x' AND tenant_id == 't'
                AND app.region == 'eu' AND output_bytes > 3 AND count_distinct(source_ip, user_id, 1h) > 2
              tests:
                - name: nested field of a test event
                  events: [{at: 0s, user_id: u, app: {region: eu}}]
                  expect: 0
            """, extraFields: ["tenant_id"], metrics: MetricDefinition.defaults + [MetricDefinition(name: "output_bytes", path: "model_output", kind: .bytes)])
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
    }

    /// Found by fuzzing: a test baseline's n of 1e30 trapped converting to Int64.
    @Test func aTestBaselineCountOutOfRangeIsADiagnostic() {
        let r = load("""
            - name: r
              severity: low
              condition: output_tokens > baseline.p99
              tests:
                - name: t
                  baseline: {output_tokens: {n: 1e30}}
                  events: [{at: 0s}]
                  expect: 0
            """)
        #expect(r.diagnostics.map { "\($0.line):\($0.column) \($0.code)" } == ["6:37 bad_test"], "\(r.diagnostics)")
    }

    @Test func theBundledRulesHaveNoWarnings() {
        let r = RuleLoader.load(paths: [BundledRuleFiles.path], metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
        #expect((r.ruleSet?.rules.count ?? 0) >= 6)
    }
}
