import IWDetectCore
@testable import Rules
import Testing

/// A baseline lookup with fixed numbers.
struct FixedBaseline: BaselineLookup {
    var stats: [Int: MetricStats] = [:]
    func stats(metric: Int, for event: Event) -> MetricStats? { stats[metric] }
}

@Suite struct RuleEngineTests {
    struct Harness {
        var fields = FieldTable()
        var engine: RuleEngine
        var baseline = FixedBaseline()

        /// Fails the calling test (not the whole run) when the rules do not load.
        init(_ yaml: String, lists: String = "") throws {
            let result = RuleLoader.load(sources: [("r.yaml", yaml), ("l.yaml", lists)], metrics: MetricDefinition.defaults, fields: FieldTable())
            let ruleSet = try #require(result.ruleSet, "\(result.diagnostics)")
            fields = result.fields
            engine = RuleEngine(ruleSet: ruleSet)
        }

        mutating func event(_ seconds: Int64, _ values: [String: FieldValue]) -> [Detection] {
            var v = Array(repeating: FieldValue.missing, count: fields.count)
            for (k, x) in values { v[fields.existingSlot(for: k)!] = x }
            fields.derive(&v)  // as the decoder does
            let e = Event(time: EventTime(micros: seconds * 1_000_000), values: v, origin: .init(source: "t", line: seconds))
            var out: [Detection] = []
            engine.evaluate(e, baseline: baseline, into: &out)
            return out
        }
    }

    @Test func countCountsOnlyEventsWhereTheEventLevelPartHolds() throws {
        var h = try Harness("- {name: r, severity: high, condition: 'injection_score > 0.7 AND count(session_id, 5m) > 3'}")
        let hit: [String: FieldValue] = ["session_id": .string("s"), "input_injection_score": .number(0.9)]
        let miss: [String: FieldValue] = ["session_id": .string("s"), "input_injection_score": .number(0.1)]
        #expect(h.event(0, hit).isEmpty)
        #expect(h.event(10, miss).isEmpty)
        #expect(h.event(20, hit).isEmpty)
        #expect(h.event(30, miss).isEmpty)
        #expect(h.event(40, hit).isEmpty, "three qualifying events")
        #expect(h.event(50, hit).count == 1, "the fourth qualifying event")
        #expect(h.event(330, hit).isEmpty, "the events at 0 and 20 have left the window")
        #expect(h.event(331, ["session_id": .string("other"), "input_injection_score": .number(0.9)]).isEmpty, "per key")
    }

    @Test func lateEventsArePlacedByTheirOwnTime() throws {
        var h = try Harness("- {name: r, severity: high, condition: 'count(user_id, 1m) >= 3'}")
        let u: [String: FieldValue] = ["user_id": .string("u")]
        #expect(h.event(100, u).isEmpty)
        #expect(h.event(200, u).isEmpty)
        #expect(h.event(190, u).isEmpty, "late, but within the allowed lateness: counted at 190 with 200 not yet in its window")
        #expect(h.event(205, u).count == 1, "190, 200, 205")
        #expect(h.event(-400, u).isEmpty, "far too late: windows do not count it")
        #expect(h.engine.lateEvents == 1)
    }

    @Test func missingFieldsAndUnreadyBaselinesMakeComparisonsFalse() throws {
        var h = try Harness("""
            - {name: a, severity: low, condition: 'output_tokens > baseline.p99 * 2'}
            - {name: b, severity: low, condition: 'NOT (risk_score > 0.5)'}
            """)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        #expect(h.event(0, ["output_tokens": .number(1e9)]).map(\.rule.name) == ["b"], "no baseline: a is false")
        h.baseline.stats[m] = MetricStats(n: 5, mean: 10, std: 1, p95: 12, p99: 13, min: 8, max: 14, snapshotID: 1, ready: false)
        #expect(h.event(1, ["output_tokens": .number(1e9)]).map(\.rule.name) == ["b"], "not ready: a is false; b holds since risk_score is missing")
        h.baseline.stats[m]?.ready = true
        #expect(h.event(2, ["output_tokens": .number(27), "risk_score": .number(0.9)]).map(\.rule.name) == ["a"])
        #expect(h.event(3, ["output_tokens": .number(26), "risk_score": .number(0.9)]).isEmpty)
        #expect(h.event(4, ["output_tokens": .string("many"), "risk_score": .number(0.9)]).isEmpty, "not a number")
    }

    @Test func membershipOnListValuedFields() throws {
        var h = try Harness("- {name: r, severity: high, condition: 'tool_name not in approved_tools'}",
                        lists: "- list: approved_tools\n  items: [search, weather]\n")
        func tools(_ names: [String]) -> [String: FieldValue] { ["tool_calls.name": .list(names.map { .string($0) })] }
        #expect(h.event(0, tools([])).isEmpty)
        #expect(h.event(1, tools(["search", "weather"])).isEmpty)
        #expect(h.event(2, tools(["search", "shell"])).count == 1, "any element outside the list")
    }

    /// An InferenceWall scan: its decision and its matches as (signature id, score).
    func scan(_ decision: String, _ matches: [(String, Double)]) -> [String: FieldValue] {
        ["decision": .string(decision), "matches.signature_id": .list(matches.map { .string($0.0) }),
         "matches.score": .list(matches.map { .number($0.1) })]
    }

    @Test func aWindowKeyedByAListCountsNothingTopSignatureIsItsScalarKey() throws {
        var h = try Harness("""
            - {name: by_top, severity: low, condition: 'blocked == true AND count(top_signature, 5m) > 1'}
            - {name: by_list, severity: low, condition: 'blocked == true AND count(signature_ids, 5m) > 1'}
            """)
        let inj = scan("block", [("INJ-O-010", 2.8), ("INJ-D-002", 10.8)])
        #expect(h.event(0, inj).isEmpty)
        #expect(h.event(10, scan("block", [("INJ-D-016", 10.8)])).isEmpty, "another top signature: its own key")
        #expect(h.event(20, scan("allow", [("INJ-D-002", 6.3)])).isEmpty, "not blocked: not counted")
        let d = h.event(30, inj)
        #expect(d.map(\.rule.name) == ["by_top"], "a list is no key: the event is not counted and the count is missing")
        #expect(d.first?.groupValues == ["INJ-D-002"])
        #expect(h.event(40, inj).map(\.rule.name) == ["by_top"])
    }

    @Test func derivedFieldsInConditionsDedupKeysAndEvidence() throws {
        var h = try Harness("""
            - {name: listed, severity: low, condition: "injection_match == true AND signature_ids == 'INJ-D-002'", dedup: {key: [signature_ids]}}
            - {name: top, severity: low, condition: "data_leak_match == true OR top_signature == 'INJ-D-002'", dedup: {key: [top_signature]}}
            """)
        let d = h.event(0, scan("block", [("INJ-D-001", 3.6), ("INJ-D-002", 10.8)]))
        #expect(d.map(\.rule.name) == ["listed", "top"])
        #expect(d.map(\.groupValues) == [["-"], ["INJ-D-002"]], "a list-valued dedup key groups every event as '-'")
        let evidence = d.map { JSONValue.object($0.evidence).serialized() }
        #expect(evidence == [#"{"injection_match":true,"signature_ids":["INJ-D-001","INJ-D-002"]}"#,
                             #"{"data_leak_match":false,"top_signature":"INJ-D-002"}"#])
        #expect(h.event(1, ["user_id": .string("u")]).isEmpty, "an event without matches: every derived field is missing")
    }

    @Test func evidenceRedactsPromptsAndOutputs() throws {
        var h = try Harness("- {name: r, severity: high, condition: \"output contains 'SECRET' AND user_id == 'u'\"}")
        let d = h.event(0, ["model_output": .string("here is the SECRET prompt, in full"), "user_id": .string("u")])
        #expect(d.count == 1)
        let evidence = d.first.map { JSONValue.object($0.evidence).serialized() } ?? ""
        #expect(!evidence.contains("SECRET"))
        #expect(evidence.contains("\"redacted\":true"))
    }

    @Test func windowStateSurvivesSerialization() throws {
        var s = WindowSeries()
        for (t, v) in [(1, 0.5), (3, 0.25), (2, 1.0)] { s.insert(time: Int64(t), value: v, id: "e\(t)") }
        let back = try #require(WindowSeries(serialized: s.serialized()))
        #expect(back == s)
        #expect(s.times == [1, 2, 3])
        #expect(s.range(at: 3, window: 10).count == 3)
        #expect(s.range(at: 3, window: 10).mean == (0.5 + 1.0 + 0.25) / 3)

        // After eviction and compaction the sum before the first live entry (`base`) decides every
        // window that starts there: the restored series must carry it, and equality must see it.
        var long = WindowSeries()
        for t in 0..<100 { long.insert(time: Int64(t), value: Double(t % 7), id: "e\(t)") }
        long.evict(before: 59)
        #expect(long.base != 0, "compacted: the dropped entries' sum is in base")
        let restored = try #require(WindowSeries(serialized: long.serialized()))
        #expect(restored == long)
        for w in [5, 40, 100] as [Int64] {
            #expect(restored.range(at: 99, window: w) == long.range(at: 99, window: w))
        }
        var shifted = long
        shifted.base += 1
        #expect(shifted != long, "a different starting sum gives different window sums, so the series differ")
        #expect(shifted.range(at: 99, window: 100).sum != long.range(at: 99, window: 100).sum)
    }
}

@Suite struct DedupKeyTests {
    @Test(arguments: [
        ("output_tokens > 10", ["user_id"]),
        ("injection_score > 0.7 AND count(session_id, 5m) > 3", ["session_id"]),
        ("rolling_mean(risk_score, 1h) > 0.5", [String]()),
        ("rolling_mean(risk_score, 1h) > 0.5 AND count(source_ip, 1m) > 3", ["source_ip"]),
    ])
    func theDedupKeyFollowsFromTheConditionWhenNotSet(condition: String, key: [String]) throws {
        let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: '\(condition)'}")],
                                     metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(try #require(loaded.ruleSet).rules.first?.info.dedupKey == key)
    }

    @Test func anExplicitKeyWins() throws {
        let loaded = RuleLoader.load(sources: [("r.yaml", "- {name: r, severity: low, condition: 'count(session_id, 5m) > 3', dedup: {key: [user_id]}}")],
                                     metrics: MetricDefinition.defaults, fields: FieldTable())
        #expect(try #require(loaded.ruleSet).rules.first?.info.dedupKey == ["user_id"])
    }
}

/// A reloaded rule set continues the windows of unchanged rules only.
@Suite struct RuleReloadTests {
    func load(_ yaml: String) throws -> RuleLoadResult {
        let r = RuleLoader.load(sources: [("r.yaml", yaml)], metrics: MetricDefinition.defaults, fields: FieldTable())
        _ = try #require(r.ruleSet, "\(r.diagnostics)")
        return r
    }

    func event(_ fields: FieldTable, _ seconds: Int64, session: String) -> Event {
        var v = Array(repeating: FieldValue.missing, count: fields.count)
        v[fields.existingSlot(for: "session_id")!] = .string(session)
        return Event(time: EventTime(micros: seconds * 1_000_000), values: v, origin: .init(source: "t", line: seconds))
    }

    @Test func unchangedRulesKeepTheirWindowsChangedOnesStartFresh() throws {
        let before = try load("""
            - {name: kept, severity: low, condition: 'count(session_id, 5m) > 2'}
            - {name: changed, severity: low, condition: 'count(session_id, 5m) > 2'}
            - {name: removed, severity: low, condition: 'count(session_id, 5m) > 9'}
            """)
        var engine = RuleEngine(ruleSet: before.ruleSet!)
        var out: [Detection] = []
        for t in [0, 10] as [Int64] { engine.evaluate(event(before.fields, t, session: "s"), baseline: FixedBaseline(), into: &out) }
        #expect(out.isEmpty)
        let after = try load("""
            - {name: added, severity: low, condition: 'count(session_id, 5m) > 2'}
            - {name: changed, severity: low, condition: 'count(session_id, 5m) > 2 AND session_id == "s"'}
            - {name: kept, severity: low, condition: 'count(session_id, 5m) > 2'}
            """)
        let (next, outcome) = engine.reloaded(with: after.ruleSet!)
        #expect(outcome == {
            var o = RuleEngine.Reload()
            o.kept = ["kept"]; o.changed = ["changed"]; o.added = ["added"]; o.removed = ["removed"]
            return o
        }())
        #expect(next.clock == engine.clock)
        var continued = next
        continued.evaluate(event(after.fields, 20, session: "s"), baseline: FixedBaseline(), into: &out)
        // The third event: only the kept rule has seen the first two.
        #expect(out.map(\.rule.name) == ["kept"])
    }
}
