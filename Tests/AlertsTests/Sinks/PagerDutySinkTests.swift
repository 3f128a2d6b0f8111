import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing
import YAMLSupport
import Yams

@Suite struct PagerDutySinkTests {
    /// The routing key, with a marker that must never show in an error or a summary.
    static let marker = "SECRET-123"
    static let key = "R0UT1NG-\(marker)-0123456789abcdef"

    func sink(_ base: String = "https://events.pagerduty.com", timeout: Double = 5) -> PagerDutySink {
        PagerDutySink(name: "pager", baseURL: URL(string: base)!, routingKey: Self.key, source: "detector-1", timeout: timeout)
    }

    /// The event as Foundation objects, the way a receiver decodes it.
    func decoded(_ e: JSONValue) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(e.serialized().utf8)) as? [String: Any])
    }

    // MARK: - Golden payload

    @Test func goldenEventOfTheSampleAlert() throws {
        let a = SampleAlerts.alert()
        let e = sink().event(a)
        let expected = #"{"routing_key":"R0UT1NG-SECRET-123-0123456789abcdef","event_action":"trigger","#
            + #""dedup_key":"iw-detect/rapid_fire_injection_attempts/attacker-7/2026-11-21T10:30:00.000Z","client":"iw-detect","#
            + #""payload":{"summary":"[HIGH] rapid_fire_injection_attempts: user_id=attacker-7 session_id=sess-42","#
            + #""severity":"error","source":"detector-1","timestamp":"2026-11-21T10:40:17.250Z","component":"llm-application","#
            + #""group":"attacker-7","class":"rapid_fire_injection_attempts","custom_details":{"alert_id":"\#(a.id)","#
            + #""description":"Detects more than 3 high-score prompt injections in one session within 5 minutes.","#
            + #""user_id":"attacker-7","session_id":"sess-42","action":"alert_and_rate_limit","#
            + #""recommended_action":"Review session logs. Consider blocking the user if attacks persist.","#
            + #""condition":"injection_score > 0.7 AND count(session_id, 5m) > 3","#
            + #""values":{"injection_score":0.91,"user_input":{"redacted":true,"length":412},"count(session_id, 5m)":4,"#
            + #""baseline.output_tokens":{"snapshot_id":3,"n":5000,"mean":212.5,"p99":880,"ready":true,"segment":""}},"#
            + #""event_ids":["log-0039","log-0040","log-0041","log-0042"],"tags":["atlas:AML.T0051"],"#
            + #""suppressed_since_previous":2,"detected_at":"2026-11-21T10:40:18.000Z"}}}"#
        #expect(e.serialized() == expected)
        #expect(sink().event(a).serialized() == e.serialized(), "deterministic")
    }

    /// Each documented field of the Events API v2 trigger event, with its type and limit.
    @Test func everyDocumentedFieldHasItsTypeAndLimit() throws {
        let a = SampleAlerts.alert()
        let o = try decoded(sink().event(a))
        #expect(Set(o.keys) == ["routing_key", "event_action", "dedup_key", "client", "payload"])
        #expect(o["routing_key"] as? String == Self.key)
        #expect(o["event_action"] as? String == "trigger")
        #expect(o["client"] as? String == "iw-detect")
        let dedup = try #require(o["dedup_key"] as? String)
        #expect(dedup.count <= 255 && dedup.hasPrefix("iw-detect/rapid_fire_injection_attempts/attacker-7/"))
        let p = try #require(o["payload"] as? [String: Any])
        #expect(Set(p.keys) == ["summary", "severity", "source", "timestamp", "component", "group", "class", "custom_details"])
        let summary = try #require(p["summary"] as? String)
        #expect(!summary.isEmpty && summary.count <= 1024)
        #expect(summary.contains("rapid_fire_injection_attempts") && summary.contains("HIGH") && summary.contains("attacker-7"))
        #expect(["critical", "error", "warning", "info"].contains(p["severity"] as? String ?? ""))
        #expect(p["source"] as? String == "detector-1")
        let ts = try #require(p["timestamp"] as? String)
        #expect(Timestamp.parse(ts) == a.eventTime, "RFC 3339 event time")
        #expect(p["component"] as? String == "llm-application")
        #expect(p["group"] as? String == "attacker-7")
        #expect(p["class"] as? String == "rapid_fire_injection_attempts")
        let d = try #require(p["custom_details"] as? [String: Any])
        #expect(d["alert_id"] as? String == a.id)
        #expect(d["action"] as? String == "alert_and_rate_limit")
        #expect(d["recommended_action"] as? String == a.recommendedAction)
        #expect(d["condition"] as? String == a.condition)
        #expect((d["values"] as? [String: Any])?["injection_score"] as? Double == 0.91)
        #expect(d["event_ids"] as? [String] == ["log-0039", "log-0040", "log-0041", "log-0042"])
        #expect(d["tags"] as? [String] == ["atlas:AML.T0051"])
        #expect(d["suppressed_since_previous"] as? Int == 2)
        #expect(d["truncated"] == nil)
    }

    @Test(arguments: [(Severity.critical, "critical"), (.high, "error"), (.medium, "warning"), (.low, "info")])
    func severityMapping(severity: Severity, pagerDuty: String) throws {
        #expect(PagerDutySink.severity(severity) == pagerDuty)
        let p = try #require(try decoded(sink().event(SampleAlerts.alert(severity: severity)))["payload"] as? [String: Any])
        #expect(p["severity"] as? String == pagerDuty)
        #expect((p["summary"] as? String)?.hasPrefix("[\(severity.rawValue.uppercased())] ") == true)
    }

    @Test func dedupKeyIsStablePerRuleGroupAndWindow() {
        let a = SampleAlerts.alert()
        var sameWindow = SampleAlerts.alert(event: "log-0050")
        sameWindow.eventTime = a.eventTime + .minutes(4)  // 10:44, still in 10:30–10:45
        var nextWindow = a
        nextWindow.eventTime = a.eventTime + .minutes(5)  // 10:45
        #expect(PagerDutySink.dedupKey(a) == "iw-detect/rapid_fire_injection_attempts/attacker-7/2026-11-21T10:30:00.000Z")
        #expect(PagerDutySink.dedupKey(sameWindow) == PagerDutySink.dedupKey(a))
        #expect(PagerDutySink.dedupKey(nextWindow) == "iw-detect/rapid_fire_injection_attempts/attacker-7/2026-11-21T10:45:00.000Z")
        #expect(PagerDutySink.dedupKey(SampleAlerts.alert(user: "someone-else")) != PagerDutySink.dedupKey(a))
        #expect(PagerDutySink.dedupKey(SampleAlerts.alert(rule: "other_rule")) != PagerDutySink.dedupKey(a))
    }

    // MARK: - Limits

    @Test func aLongGroupValueKeepsTheSummaryAndDedupKeyWithinLimits() throws {
        var a = SampleAlerts.alert()
        a.groupValue = String(repeating: "g", count: 5000)
        var b = a
        b.groupValue = String(repeating: "g", count: 4999) + "h"
        let summary = PagerDutySink.summary(a)
        #expect(summary.count <= 1024 && summary.utf16.count <= 1024)
        #expect(summary.hasSuffix("…") && summary.hasPrefix("[HIGH] rapid_fire_injection_attempts: user_id=ggg"))
        let key = PagerDutySink.dedupKey(a)
        #expect(key.count <= 255 && key.utf8.count <= 255)
        #expect(key.hasPrefix("iw-detect/rapid_fire_injection_attempts/sha256:") && key.hasSuffix("/2026-11-21T10:30:00.000Z"))
        #expect(PagerDutySink.dedupKey(b) != key, "the hash tells long values apart")
        #expect(PagerDutySink.dedupKey(a) == key)
        let p = try #require(try decoded(sink().event(a))["payload"] as? [String: Any])
        #expect((p["summary"] as? String)?.count ?? 0 <= 1024)
        #expect(p["group"] as? String == a.groupValue, "the group itself fits in the body")
    }

    @Test func multiByteTextIsCutOnCharacterBoundaries() {
        var a = SampleAlerts.alert()
        a.groupValue = String(repeating: "👩‍💻é", count: 2000)
        let summary = PagerDutySink.summary(a)
        #expect(summary.utf16.count <= 1024 && summary.hasSuffix("…"))
        #expect(PagerDutySink.dedupKey(a).utf8.count <= 255)
    }

    @Test func aHugeValuesBlobIsDroppedToFit512KBWithTheNote() throws {
        var a = SampleAlerts.alert()
        a.values = .object([("blob", .string(String(repeating: "x", count: 600_000))), ("injection_score", .number(0.91))])
        let e = sink().event(a)
        let bytes = e.serialized().utf8.count
        #expect(bytes <= 512_000)
        let d = try #require((try decoded(e)["payload"] as? [String: Any])?["custom_details"] as? [String: Any])
        #expect(d["truncated"] as? String == "custom_details were cut to fit PagerDuty's 512 KB limit")
        #expect(d["values"] == nil, "values go first")
        #expect(d["alert_id"] as? String == a.id && d["event_ids"] != nil, "the rest stays when it fits")
        // A blob just under the limit is sent whole.
        a.values = .object([("blob", .string(String(repeating: "x", count: 5000)))])
        let small = try #require((try decoded(sink().event(a))["payload"] as? [String: Any])?["custom_details"] as? [String: Any])
        #expect(small["truncated"] == nil && small["values"] != nil)
    }

    @Test func manyEventIDsAreDroppedAfterValues() throws {
        var a = SampleAlerts.alert()
        a.eventIDs = (0..<40_000).map { "event-\($0)-" + String(repeating: "i", count: 8) }
        let e = sink().event(a)
        #expect(e.serialized().utf8.count <= 512_000)
        let d = try #require((try decoded(e)["payload"] as? [String: Any])?["custom_details"] as? [String: Any])
        #expect(d["values"] == nil && d["event_ids"] == nil && d["truncated"] != nil && d["tags"] != nil)
    }

    // MARK: - Delivery to a loopback receiver

    @Test func deliversToV2EnqueueAsJSON() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["202"])
        let a = SampleAlerts.alert()
        try await sink(recorder.url).deliver([a])
        try await sink(recorder.url + "/proxy/").deliver([a])
        let reqs = await recorder.wait(for: 2)
        try #require(reqs.count == 2)
        #expect(reqs[0].method == "POST" && reqs[0].path == "/v2/enqueue")
        #expect(reqs[1].path == "/proxy/v2/enqueue", "base_url may carry a path; a trailing slash is not doubled")
        #expect(reqs[0].headers["content-type"] == "application/json")
        #expect(reqs[0].headers["user-agent"] == "iw-detect")
        #expect(reqs[0].body == sink(recorder.url).event(a).serialized())
        let body = try #require(reqs[0].json as? [String: Any])
        #expect(body["routing_key"] as? String == Self.key && body["event_action"] as? String == "trigger")
        #expect(sink().batchSize == 1 && sink().kind == "pagerduty" && !sink().isLocal)
    }

    static let pagerDutyError = #"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#

    @Test(arguments: [
        ("202", 202, nil as Bool?, nil as Double?, nil as String?),
        ("body:400:" + pagerDutyError, 400, false, nil, "HTTP 400: Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"),
        ("429:7", 429, true, 7, "HTTP 429"),
        ("500", 500, true, nil, "HTTP 500"),
        ("503", 503, true, nil, "HTTP 503"),
    ])
    func statusToRetryability(answer: String, status: Int, retryable: Bool?, retryAfter: Double?, message: String?) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [answer])
        do throws(SinkError) {
            try await sink(recorder.url).deliver([SampleAlerts.alert()])
            #expect(retryable == nil, "\(answer) is a success")
        } catch {
            #expect(error.isRetryable == retryable)
            #expect(error.retryAfter == retryAfter)
            #expect(error.status == status)
            if let message { #expect(error.message == "sink 'pager': " + message, "\(error.message)") }
        }
        let reqs = await recorder.wait(for: 1)
        #expect(reqs.count == 1 && reqs.first?.status == status, "one request, no retry inside the sink")
    }

    @Test func aHangingReceiverFailsRetryablyAfterTheTimeout() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["hang"])
        let started = Date()
        do throws(SinkError) {
            try await sink(recorder.url, timeout: 0.5).deliver([SampleAlerts.alert()])
            Issue.record("a hanging receiver cannot succeed")
        } catch {
            #expect(error.isRetryable)
            #expect(error.message.contains("timed out"), "\(error.message)")
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.4)
        // About the timeout (rounded up to a second), not FoundationNetworking's 60 s default.
        // Timing tests run alone (scripts/test), so no other test holds the cooperative pool.
        #expect(elapsed < 2.5, "took \(elapsed) s")
    }

    // MARK: - Config

    func read(_ yaml: String) throws -> (config: (any SinkConfig)?, diagnostics: [Diagnostic]) {
        try SampleAlerts.readSink(yaml)
    }

    @Test func goodConfigDecodesThroughTheRegistry() throws {
        #expect(SinkRegistry.kindNames.contains("pagerduty"))
        let (config, diagnostics) = try read("""
            sinks:
              - name: pager
                type: pagerduty
                routing_key_env: PD_ROUTING_KEY
                base_url: http://127.0.0.1:9/
                source: detector-1
                component: llm-gateway
                timeout: 2.5
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let c = try #require(config as? PagerDutySinkConfig)
        #expect(c.name == "pager" && c.routingKey == .environment("PD_ROUTING_KEY"))
        #expect(c.baseURL.absoluteString == "http://127.0.0.1:9/" && c.source == "detector-1" && c.component == "llm-gateway")
        #expect(c.timeout == 2.5)
        #expect(c.summary == "PagerDuty Events API v2 at 127.0.0.1, routing key from $PD_ROUTING_KEY")
        let s = try #require(try c.makeSink(environment: ["PD_ROUTING_KEY": Self.key]) as? PagerDutySink)
        #expect(s.name == "pager" && s.kind == "pagerduty")
        let p = try #require(try decoded(s.event(SampleAlerts.alert()))["payload"] as? [String: Any])
        #expect(p["source"] as? String == "detector-1" && p["component"] as? String == "llm-gateway")

        let (minimal, d2) = try read("sinks:\n  - {name: pager, type: pagerduty, routing_key_file: /run/secrets/pd}\n")
        #expect(d2.isEmpty)
        let m = try #require(minimal as? PagerDutySinkConfig)
        #expect(m.baseURL.absoluteString == "https://events.pagerduty.com" && m.component == "llm-application")
        #expect(m.source == nil && m.timeout == 5 && m.routingKey == .file("/run/secrets/pd"))
    }

    @Test(arguments: [
        ("", "missing_key", 2),
        ("    routing_key_env: PD\n    routing_kye: x\n", "unknown_key", 5),
        ("    routing_key_env: PD\n    base_url: ftp://events.pagerduty.com\n", "bad_value", 5),
        ("    routing_key: abc\n    routing_key_env: PD\n", "conflicting_keys", 5),
        ("    routing_key_env: PD\n    timeout: 0\n", "out_of_range", 5),
    ])
    func badConfigGivesOneDiagnostic(extra: String, code: String, line: Int) throws {
        let (_, diagnostics) = try read("sinks:\n  - name: pager\n    type: pagerduty\n" + extra)
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.code == code)
        #expect(diagnostics.first?.line == line)
        #expect(diagnostics.first?.file == "config.yaml")
    }

    // MARK: - No secret leaks

    @Test func theRoutingKeyIsInNoErrorOrSummary() async throws {
        let dir = TempDir()
        // The receiver echoes the key back in its error, as a careless proxy might.
        let echo = #"{"status":"invalid event","message":"Event object is invalid","errors":["bad routing_key \#(Self.key)"]}"#
        let r400 = try HTTPRecorder(dir, answers: ["body:400:" + echo], name: "r400")
        let r500 = try HTTPRecorder(dir, answers: ["body:500:upstream said " + Self.key], name: "r500")
        let hang = try HTTPRecorder(dir, answers: ["hang"], name: "hang")
        let refused = "http://127.0.0.1:\(HTTPRecorder.freePort())"
        var messages: [String] = []
        for base in [refused, r400.url, r500.url, hang.url] {
            do throws(SinkError) {
                try await sink(base, timeout: 0.5).deliver([SampleAlerts.alert()])
                Issue.record("\(base) should fail")
            } catch {
                messages.append(error.message)
                messages.append("\(error)")
            }
        }
        #expect(messages.count == 8)
        #expect(messages.contains { $0.contains("connection refused") }, "\(messages)")
        #expect(messages.contains { $0.contains("Event object is invalid: bad routing_key (routing key)") }, "\(messages)")
        for m in messages { #expect(!m.contains(Self.marker), "\(m)") }

        // Summaries and makeSink's errors name where the key comes from, never the key.
        let (literal, _) = try read("sinks:\n  - {name: pager, type: pagerduty, routing_key: \(Self.key)}\n")
        let c = try #require(literal)
        #expect(!c.summary.contains(Self.marker) && c.summary.contains("(in the config)"))
        let (fromEnv, _) = try read("sinks:\n  - {name: pager, type: pagerduty, routing_key_env: PD_ROUTING_KEY}\n")
        let e = try #require(fromEnv)
        do throws(SinkError) {
            _ = try e.makeSink(environment: ["OTHER": Self.key])
            Issue.record("the variable is not set")
        } catch {
            #expect(error.message.contains("PD_ROUTING_KEY") && !error.message.contains(Self.marker) && !error.isRetryable)
        }
        let (fromFile, _) = try read("sinks:\n  - {name: pager, type: pagerduty, routing_key_file: \(dir.file("missing"))}\n")
        let f = try #require(fromFile)
        do throws(SinkError) {
            _ = try f.makeSink(environment: [:])
            Issue.record("the file does not exist")
        } catch {
            #expect(error.message.contains("cannot be read") && !error.message.contains(Self.marker))
        }
    }
}
