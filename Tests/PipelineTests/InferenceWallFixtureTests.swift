import Foundation
import IWDetectCore
import IWDetectTestSupport
import Ingest
import Pipeline
import Rules
import Testing

/// Real scan and audit events captured from InferenceWall's observability plugin.
@Suite struct InferenceWallFixtureTests {
    static let capture = packageRoot + "/Tests/Fixtures/inferwall_scan_and_audit_events.jsonl"

    /// Reads no baseline: the rules below do not use one.
    struct NoBaseline: BaselineLookup {
        func stats(metric: Int, for event: Event) -> MetricStats? { nil }
    }

    @Test func theBundledRulesRaiseTheInferenceWallAlertsOnTheCapture() async throws {
        let dir = TempDir()
        let summary = try await Engine(config: testConfig(dir)).ingest(.file(Self.capture))
        #expect(summary.accepted == 33)
        let alerts = try storedAlerts(dir.file("state.db"))
        #expect(alerts.compactMap { $0["rule"] as? String }.sorted()
                == ["inferencewall_block_surge", "inferencewall_config_change", "inferencewall_repeated_signature"],
                "no auth-failure alert for the one captured failure, and no inference-log rule fires: \(alerts.map { $0["rule"] ?? "" })")
        func alert(_ rule: String) throws -> [String: Any] { try #require(alerts.first { $0["rule"] as? String == rule }) }

        // The eleven blocks of the run: the surge alert, at the eleventh, for the whole stream.
        let surge = try alert("inferencewall_block_surge")
        #expect(surge["severity"] as? String == "high" && surge["group_value"] as? String == "")
        #expect(surge["event_time"] as? String == "2026-11-21T10:40:36.000Z")
        let surgeValues = try #require(surge["values"] as? [String: Any])
        #expect(surgeValues["count(log_type, 5m)"] as? Double == 11 && surgeValues["blocked"] as? Bool == true)
        let surgeIDs = try #require(surge["event_ids"] as? [String])
        #expect(surgeIDs.count == 11 && surgeIDs.filter { $0.hasPrefix("req-") }.count == 9, "\(surgeIDs)")
        #expect(surgeIDs.suffix(2).allSatisfy { $0.hasPrefix(Self.capture + ":") }, "scans with an empty request_id are named by line: \(surgeIDs)")

        // INJ-D-002 decided five of the blocks: one alert at the fourth, the fifth folded into it.
        let repeated = try alert("inferencewall_repeated_signature")
        #expect(repeated["severity"] as? String == "medium")
        #expect(repeated["group_key"] as? [String] == ["top_signature"] && repeated["group_value"] as? String == "INJ-D-002")
        #expect(repeated["event_ids"] as? [String] == ["req-1795257617593", "req-1795257617628", "req-1795257617683", "req-1795257617737"])
        #expect((repeated["values"] as? [String: Any])?["count(top_signature, 10m)"] as? Double == 4)
        #expect(repeated["suppressed_total"] as? Int64 == 1)

        // The policy reload is recorded; the server start, the auth failure and the rate limit are not changes.
        let change = try alert("inferencewall_config_change")
        #expect(change["severity"] as? String == "low" && change["group_value"] as? String == "policy|policy_reload|10.0.0.5")
        #expect(change["event_id"] as? String == Self.capture + ":32")
    }

    @Test func derivedFieldsInConditionsOnTheCapturedLines() throws {
        let loaded = RuleLoader.load(sources: [("r.yaml", """
            - {name: injection, severity: low, condition: 'injection_match == true'}
            - {name: leak, severity: low, condition: 'data_leak_match == true'}
            - {name: clean_scan, severity: low, condition: "log_type == 'scan' AND injection_match == false AND data_leak_match == false"}
            - {name: blocked, severity: low, condition: 'blocked == true'}
            - {name: let_through, severity: low, condition: 'blocked == false'}
            - {name: top_inj_d_002, severity: low, condition: "top_signature == 'INJ-D-002'"}
            - {name: any_inj_o_010, severity: low, condition: "signature_ids == 'INJ-O-010'"}
            """)], metrics: MetricDefinition.defaults, fields: FieldTable())
        var engine = RuleEngine(ruleSet: try #require(loaded.ruleSet, "\(loaded.diagnostics)"))
        let decoder = JSONLineDecoder(fields: loaded.fields, maxLineBytes: 1 << 16)
        let lines = try String(contentsOfFile: Self.capture, encoding: .utf8).split(separator: "\n").map(String.init)
        var fired: [[String]] = []
        for (i, line) in lines.enumerated() {
            var text = line
            guard case .event(let e) = text.withUTF8({ decoder.decode(UnsafeRawBufferPointer($0), origin: .init(source: "capture", line: Int64(i + 1))) }) else {
                Issue.record("line \(i + 1) rejected")
                return
            }
            var out: [Detection] = []
            engine.evaluate(e, baseline: NoBaseline(), into: &out)
            fired.append(out.map(\.rule.name))
        }
        #expect(fired[0] == ["clean_scan", "let_through"], "an allowed scan without matches")
        #expect(fired[3] == ["injection", "blocked", "top_inj_d_002", "any_inj_o_010"], "INJ-O-010 matched, INJ-D-002 decided")
        #expect(fired[4] == ["injection", "blocked", "top_inj_d_002"], "INJ-D-002 ties with INJ-D-018, listed first")
        #expect(fired[13] == ["leak", "let_through"], "a flagged output")
        #expect(fired[19] == ["leak", "blocked"])
        for audit in 29..<33 { #expect(fired[audit].isEmpty, "audit line \(audit + 1): no decision, no matches, all missing") }
        func firing(_ rule: String) -> [Int] { fired.indices.filter { fired[$0].contains(rule) }.map { $0 + 1 } }
        #expect(firing("blocked") == [4, 5, 7, 8, 9, 15, 16, 18, 20, 26, 27])
        #expect(firing("injection") == [4, 5, 6, 7, 8, 9, 12, 27])
        #expect(firing("leak") == [14, 15, 16, 18, 20, 21, 26, 29])
        #expect(firing("top_inj_d_002") == [4, 5, 7, 9, 27])
        #expect(firing("clean_scan").count == 13 && firing("let_through").count == 18)
    }

    @Test func capturedScanAndAuditEventsAreIngestedAndDetectable() async throws {
        let dir = TempDir()
        dir.write("rules/inferwall.yaml", """
            - name: inferwall_block_burst
              description: Detects more than three blocked injection scans within five minutes.
              condition: log_type == 'scan' AND decision == 'block' AND matches.signature_id contains 'INJ-D-002' AND count(policy, 5m) > 3
              severity: high
              dedup: { key: [], window: 15m }
            """)
        var config = testConfig(dir)
        config.rulePaths = [dir.file("rules")]
        let engine = try Engine(config: config)
        let summary = try await engine.ingest(.file(packageRoot + "/Tests/Fixtures/inferwall_scan_and_audit_events.jsonl"))
        #expect(summary.linesRead == 33)
        #expect(summary.accepted == 33, "scan and audit events all carry a timestamp: \(summary.rejected)")
        let alerts = try storedAlerts(dir.file("state.db"))
        #expect(alerts.count == 1, "one alert for the whole burst: the rule dedups on itself")
        let alert = try #require(alerts.first)
        let ids = try #require(alert["event_ids"] as? [String])
        #expect(ids.count == 4 && ids.allSatisfy { $0.hasPrefix("req-") }, "InferenceWall's request_id is the event id")
        #expect(summary.baselineExcluded >= 11, "blocked scans never train the baseline")
    }
}
