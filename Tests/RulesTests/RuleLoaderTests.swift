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

    @Test(arguments: [
        ("{mode: episode, quiet: 1h}", nil), ("{mode: episode}", nil), ("{key: [user_id], window: 1h}", nil),
        ("{mode: episode, window: 1h}", "bad_value"), ("{quiet: 1h}", "bad_value"), ("{mode: sometimes}", "bad_value"),
        ("{mode: episode, quiet: soon}", "bad_duration"),
    ] as [(String, String?)])
    func dedupModes(dedup: String, error: String?) throws {
        let r = load("- {name: r, severity: low, condition: risk_score > 0.9, dedup: \(dedup)}")
        #expect(r.errors.first?.code == error, "\(dedup): \(r.diagnostics)")
        guard error == nil else { return }
        let info = try #require(r.ruleSet?.rules.first?.info)
        #expect(info.episode == dedup.contains("episode"))
        #expect(info.dedupWindow == (dedup.contains("1h") ? .hours(1) : dedup.contains("episode") ? .minutes(30) : .minutes(15)))
        #expect(!info.readsBaseline)
    }

    @Test func aRuleThatReadsABaselineIsStatistical() throws {
        for (condition, reads) in [("z(output_tokens) > 3", true), ("outside(risk_score, 4)", true), ("output_tokens > baseline.p99", true),
                                   ("sum(output_tokens, 1h) > 10", false), ("injection_score > 0.7", false),
                                   ("cusum(risk_score, 0.5, 6h) > 5", true), ("ewma(risk_score, 1h) > 0.5", false)] {
            let r = load("- {name: r, severity: low, condition: '\(condition)'}")
            #expect(r.ruleSet?.rules.first?.info.readsBaseline == reads, "\(condition)")
        }
    }

    @Test func theBundledRulesHaveNoWarnings() {
        let r = RuleLoader.load(paths: [BundledRuleFiles.path], metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
        #expect((r.ruleSet?.rules.count ?? 0) >= 6)
        let names = Set(r.ruleSet?.rules.map(\.info.name) ?? [])
        for name in ["inferencewall_block_surge", "inferencewall_repeated_signature", "inferencewall_auth_failures", "inferencewall_config_change"] {
            #expect(names.contains(name), "\(name) is bundled")
            #expect(r.tests.contains { $0.rule == name && $0.expectedAlerts == 0 }, "\(name) has a near miss")
        }
    }

    @Test func derivedFieldsAreKnownAndExtractedOnlyWhenNamed() {
        let plain = load("- {name: r, severity: low, condition: \"log_type == 'scan' AND decision == 'block'\"}")
        #expect(plain.diagnostics.isEmpty)
        #expect(plain.fields.derived.isEmpty && !plain.fields.paths.contains { $0.hasPrefix("matches") },
                "no rule names a derived field: matches is not even extracted")
        let r = load("""
            - name: derived
              severity: low
              condition: >
                blocked == true AND injection_match == true AND NOT data_leak_match == true
                AND signature_ids == 'INJ-D-002' AND count(top_signature, 5m) > 3
              dedup: {key: [top_signature]}
            """)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
        #expect(r.fields.derived.map(\.field) == [.blocked, .injectionMatch, .dataLeakMatch, .topSignature])
        #expect(r.fields.paths.contains("matches.signature_id") && r.fields.paths.contains("matches.score"))
    }

    @Test func aListAsAWindowOrDedupKeyIsWarnedAbout() {
        let r = load("""
            - name: lists
              severity: low
              condition: count(signature_ids, 5m) > 3 OR count_distinct(tool_name, user_id, 1h) > 2
              dedup: {key: [matches.signature_id, top_signature]}
            """)
        #expect(r.ruleSet != nil, "warnings do not refuse the rule set")
        #expect(r.diagnostics.map { "\($0.line):\($0.column) \($0.level.rawValue) \($0.code)" }
                == ["4:17 warning list_key", "3:20 warning list_key", "3:61 warning list_key"], "\(r.diagnostics)")
        #expect(r.diagnostics[1].message.contains("top_signature"), "the scalar to use instead: \(r.diagnostics[1].message)")
        #expect(!r.diagnostics[2].message.contains("top_signature"), "tool calls have no top signature")
    }

    @Test func aDerivedFieldSetInATestEventIsAWarning() {
        let r = load("""
            - name: r
              severity: low
              condition: blocked == true
              tests:
                - name: t
                  events: [{at: 0s, blocked: true}]
                  expect: 1
            """)
        #expect(r.diagnostics.map { "\($0.line):\($0.column) \($0.code)" } == ["6:25 derived_field"], "\(r.diagnostics)")
        #expect(r.diagnostics.first?.message.contains("decision and guardrail_action") == true)
    }
}
