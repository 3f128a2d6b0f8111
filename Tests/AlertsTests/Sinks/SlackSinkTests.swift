import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing
import YAMLSupport
import Yams

@Suite struct SlackSinkTests {
    /// Part of the webhook URL, which must never show in an error or a summary.
    static let marker = "SECRET-123"
    static let path = "/services/T0001/B0002/\(marker)xyz"

    func sink(_ base: String = "https://hooks.slack.com", timeout: Double = 5, channel: String? = nil, username: String? = nil,
              iconEmoji: String? = nil, link: String? = nil) -> SlackSink {
        SlackSink(name: "slack", url: URL(string: base + Self.path)!, channel: channel, username: username, iconEmoji: iconEmoji,
                  linkTemplate: link, timeout: timeout)
    }

    func decoded(_ m: JSONValue) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(m.serialized().utf8)) as? [String: Any])
    }

    func blocks(_ m: JSONValue) throws -> [[String: Any]] { try #require(try decoded(m)["blocks"] as? [[String: Any]]) }

    /// Every mrkdwn text of a message, and every plain_text (the header, the button).
    func texts(_ any: Any, mrkdwn: inout [String], plain: inout [String]) {
        if let o = any as? [String: Any] {
            if let t = o["text"] as? String, let type = o["type"] as? String {
                if type == "mrkdwn" { mrkdwn.append(t) } else if type == "plain_text" { plain.append(t) }
            }
            for v in o.values { texts(v, mrkdwn: &mrkdwn, plain: &plain) }
        } else if let a = any as? [Any] {
            for v in a { texts(v, mrkdwn: &mrkdwn, plain: &plain) }
        }
    }

    /// Slack's limits and escaping, checked on any message.
    func checkLimits(_ m: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let o = try decoded(m)
        let text = try #require(o["text"] as? String)
        #expect(text.utf16.count <= 3000, sourceLocation: sourceLocation)
        for b in try blocks(m) {
            let type = b["type"] as? String ?? ""
            #expect(["header", "section", "context", "actions"].contains(type), sourceLocation: sourceLocation)
            if type == "header" {
                let t = try #require(b["text"] as? [String: Any])
                #expect(t["type"] as? String == "plain_text", sourceLocation: sourceLocation)
                #expect((t["text"] as? String ?? "").utf16.count <= 150, sourceLocation: sourceLocation)
            }
            if type == "section" {
                if let t = b["text"] as? [String: Any] { #expect((t["text"] as? String ?? "").utf16.count <= 3000, sourceLocation: sourceLocation) }
                let fields = b["fields"] as? [[String: Any]] ?? []
                #expect(fields.count <= 10, sourceLocation: sourceLocation)
                for f in fields {
                    #expect(f["type"] as? String == "mrkdwn", sourceLocation: sourceLocation)
                    #expect((f["text"] as? String ?? "").utf16.count <= 2000, sourceLocation: sourceLocation)
                }
                #expect(b["text"] != nil || !fields.isEmpty, sourceLocation: sourceLocation)
            }
            if type == "context" {
                let elements = b["elements"] as? [[String: Any]] ?? []
                #expect(!elements.isEmpty && elements.count <= 10, sourceLocation: sourceLocation)
                for e in elements { #expect((e["text"] as? String ?? "").utf16.count <= 3000, sourceLocation: sourceLocation) }
            }
        }
        var mrkdwn: [String] = [text], plain: [String] = []
        texts(o["blocks"] ?? [], mrkdwn: &mrkdwn, plain: &plain)
        for t in mrkdwn {
            #expect(!t.contains("<") && !t.contains(">"), "unescaped in \(t.prefix(80))", sourceLocation: sourceLocation)
            var rest = Substring(t)
            while let amp = rest.firstIndex(of: "&") {
                let after = rest[amp...]
                #expect(after.hasPrefix("&amp;") || after.hasPrefix("&lt;") || after.hasPrefix("&gt;"),
                        "a bare & in \(t.prefix(80))", sourceLocation: sourceLocation)
                rest = rest[rest.index(after: amp)...]
            }
        }
    }

    // MARK: - Golden payload

    @Test func goldenMessageOfTheSampleAlert() throws {
        let a = SampleAlerts.alert()
        let m = sink(channel: "#sec-alerts", username: "iw-detect", iconEmoji: ":rotating_light:",
                     link: "https://siem.example/alerts/{id}?rule={rule}&user={user_id}&s={session_id}").message(a)
        let expected = #"{"text":"[HIGH] rapid_fire_injection_attempts: user_id=attacker-7 session_id=sess-42 — "#
            + #"Review session logs. Consider blocking the user if attacks persist.","#
            + ##""channel":"#sec-alerts","username":"iw-detect","icon_emoji":":rotating_light:","blocks":["##
            + #"{"type":"header","text":{"type":"plain_text","text":"HIGH: rapid_fire_injection_attempts"}},"#
            + #"{"type":"section","fields":[{"type":"mrkdwn","text":"*User*\nattacker-7"},{"type":"mrkdwn","text":"*Session*\nsess-42"},"#
            + #"{"type":"mrkdwn","text":"*Group*\nuser_id=attacker-7"},{"type":"mrkdwn","text":"*Event time*\n2026-11-21T10:40:17.250Z"},"#
            + #"{"type":"mrkdwn","text":"*Alert id*\n`\#(a.id)`"}]},"#
            + #"{"type":"section","text":{"type":"mrkdwn","text":"*What fired*\nDetects more than 3 high-score prompt injections in one session within 5 minutes."},"#
            + #""fields":[{"type":"mrkdwn","text":"*injection_score*\n0.91"},{"type":"mrkdwn","text":"*user_input*\nredacted (412 characters)"},"#
            + #"{"type":"mrkdwn","text":"*count(session_id, 5m)*\n4"},{"type":"mrkdwn","text":"*baseline.output_tokens*\np99 880 (n 5000)"}]},"#
            + #"{"type":"section","text":{"type":"mrkdwn","text":"*Recommended action*\nReview session logs. Consider blocking the user if attacks persist."}},"#
            + #"{"type":"context","elements":[{"type":"mrkdwn","text":"*Tags:* `atlas:AML.T0051`"},"#
            + #"{"type":"mrkdwn","text":"*Condition:* `injection_score &gt; 0.7 AND count(session_id, 5m) &gt; 3`"},"#
            + #"{"type":"mrkdwn","text":"2 repeats suppressed before"}]},"#
            + #"{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open"},"#
            + #""url":"https://siem.example/alerts/\#(a.id)?rule=rapid_fire_injection_attempts&user=attacker-7&s=sess-42"}]}]}"#
        #expect(m.serialized() == expected)
        try checkLimits(m)
    }

    @Test func withoutOptionsThereAreNoLegacyFieldsAndNoButton() throws {
        let o = try decoded(sink().message(SampleAlerts.alert()))
        #expect(Set(o.keys) == ["text", "blocks"])
        let types = try blocks(sink().message(SampleAlerts.alert())).map { $0["type"] as? String ?? "" }
        #expect(types == ["header", "section", "section", "section", "context"])
    }

    /// Each documented block, with its type and content.
    @Test func everyBlockCarriesItsDocumentedContent() throws {
        let a = SampleAlerts.alert()
        let b = try blocks(sink(link: "https://siem.example/alerts/{id}").message(a))
        try #require(b.count == 6)
        let header = try #require(b[0]["text"] as? [String: Any])
        #expect(header["type"] as? String == "plain_text")
        #expect((header["text"] as? String)?.contains("HIGH") == true && (header["text"] as? String)?.contains(a.rule) == true)
        let who = (b[1]["fields"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        #expect(who.count == 5)
        #expect(who.contains("*User*\nattacker-7") && who.contains("*Session*\nsess-42") && who.contains("*Group*\nuser_id=attacker-7"))
        #expect(who.contains("*Event time*\n2026-11-21T10:40:17.250Z") && who.contains("*Alert id*\n`\(a.id)`"))
        let fired = (b[2]["fields"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        #expect(fired == ["*injection_score*\n0.91", "*user_input*\nredacted (412 characters)", "*count(session_id, 5m)*\n4",
                          "*baseline.output_tokens*\np99 880 (n 5000)"])
        #expect(((b[3]["text"] as? [String: Any])?["text"] as? String)?.hasSuffix(a.recommendedAction) == true)
        let context = (b[4]["elements"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        #expect(context.contains { $0.contains("atlas:AML.T0051") } && context.contains { $0.hasPrefix("*Condition:*") })
        let button = try #require((b[5]["elements"] as? [[String: Any]])?.first)
        #expect(button["type"] as? String == "button" && (button["text"] as? [String: Any])?["text"] as? String == "Open")
        #expect(button["url"] as? String == "https://siem.example/alerts/\(a.id)")
    }

    @Test(arguments: Severity.allCases)
    func headerAndTextNameTheSeverity(severity: Severity) throws {
        let m = sink().message(SampleAlerts.alert(severity: severity))
        let o = try decoded(m)
        #expect((o["text"] as? String)?.hasPrefix("[\(severity.rawValue.uppercased())] rapid_fire_injection_attempts") == true)
        let header = try #require(try blocks(m).first?["text"] as? [String: Any])
        #expect(header["text"] as? String == "\(severity.rawValue.uppercased()): rapid_fire_injection_attempts")
    }

    @Test func linkValuesAreURLEncoded() {
        let a = SampleAlerts.alert(user: "a b/c?&é", session: nil)
        let link = sink(link: "https://siem.example/u/{user_id}?s={session_id}&r={rule}").link(a)
        #expect(link == "https://siem.example/u/a%20b%2Fc%3F%26%C3%A9?s=&r=rapid_fire_injection_attempts")
    }

    // MARK: - Limits and escaping

    @Test func alertContentIsEscapedForMrkdwn() throws {
        var a = SampleAlerts.alert(user: "<!channel> & <https://evil.example|click>", session: "s<1>")
        a.recommendedAction = "Block <@U123> & rotate keys"
        a.values = .object([("field<x>", .string("a > b & c < d")), ("code", .string("`rm -rf`"))])
        let m = sink().message(a)
        try checkLimits(m)
        let text = m.serialized()
        #expect(text.contains("&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"))
        #expect(text.contains("Block &lt;@U123&gt; &amp; rotate keys"))
        #expect(!text.contains("<!channel>"))
    }

    @Test func longContentStaysWithinSlackLimits() throws {
        var a = SampleAlerts.alert(rule: String(repeating: "r", count: 5000), user: String(repeating: "u", count: 5000))
        a.values = .object([("blob", .string(String(repeating: "v&", count: 2500)))])
        a.description = String(repeating: "d<", count: 2500)
        a.recommendedAction = String(repeating: "a", count: 5000)
        a.condition = String(repeating: ">", count: 5000)
        a.tags = (0..<500).map { "tag-\($0)" }
        let m = sink(link: "https://siem.example/{rule}").message(a)
        try checkLimits(m)
        let header = try #require(try blocks(m).first?["text"] as? [String: Any])
        let h = try #require(header["text"] as? String)
        #expect(h.count <= 150 && h.hasSuffix("…"))
        #expect(try blocks(m).allSatisfy { $0["type"] as? String != "actions" }, "a link over 3,000 characters is left out")
        #expect(m.serialized().utf8.count < 40_000)
    }

    @Test func moreThanTenValuesAreSummedUpInTheTenthField() throws {
        var a = SampleAlerts.alert()
        a.values = .object((0..<15).map { ("v\($0)", .int(Int64($0))) })
        let m = sink().message(a)
        try checkLimits(m)
        let fired = try #require(try blocks(m)[2]["fields"] as? [[String: Any]]).compactMap { $0["text"] as? String }
        #expect(fired.count == 10)
        #expect(fired[8] == "*v8*\n8" && fired[9] == "*…*\n6 more values")
    }

    // MARK: - Delivery to a loopback receiver

    @Test func postsTheMessageToTheWebhookURL() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["200"])
        let a = SampleAlerts.alert()
        let s = sink(recorder.url)
        try await s.deliver([a])
        let reqs = await recorder.wait(for: 1)
        try #require(reqs.count == 1)
        #expect(reqs[0].method == "POST" && reqs[0].path == Self.path)
        #expect(reqs[0].headers["content-type"] == "application/json")
        #expect(reqs[0].body == s.message(a).serialized())
        #expect((reqs[0].json as? [String: Any])?["blocks"] is [Any])
        #expect(s.batchSize == 1 && s.kind == "slack" && !s.isLocal)
    }

    @Test(arguments: [
        ("200", 200, nil as Bool?, nil as Double?, nil as String?),
        ("body:400:invalid_payload", 400, false, nil, "HTTP 400: invalid_payload"),
        ("body:403:action_prohibited", 403, false, nil, "HTTP 403: action_prohibited"),
        ("body:404:no_service", 404, false, nil, "HTTP 404: no_service"),
        ("body:410:channel_is_archived", 410, false, nil, "HTTP 410: channel_is_archived"),
        ("429:3", 429, true, 3, "HTTP 429"),
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
            if let message { #expect(error.message == "sink 'slack': " + message, "\(error.message)") }
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
        #expect(SinkRegistry.kindNames.contains("slack"))
        let (config, diagnostics) = try read("""
            sinks:
              - name: slack
                type: slack
                webhook_url_env: SLACK_WEBHOOK_URL
                channel: "#sec-alerts"
                username: iw-detect
                icon_emoji: ":rotating_light:"
                link_template: https://siem.example/alerts/{id}?u={user_id}
                timeout: 3
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let c = try #require(config as? SlackSinkConfig)
        #expect(c.name == "slack" && c.webhookURL == .environment("SLACK_WEBHOOK_URL"))
        #expect(c.channel == "#sec-alerts" && c.username == "iw-detect" && c.iconEmoji == ":rotating_light:")
        #expect(c.linkTemplate == "https://siem.example/alerts/{id}?u={user_id}" && c.timeout == 3)
        #expect(c.summary == "Slack incoming webhook, URL from $SLACK_WEBHOOK_URL, channel #sec-alerts, Open links to siem.example")
        let s = try #require(try c.makeSink(environment: ["SLACK_WEBHOOK_URL": "https://hooks.slack.com" + Self.path]) as? SlackSink)
        let o = try decoded(s.message(SampleAlerts.alert()))
        #expect(o["channel"] as? String == "#sec-alerts" && o["username"] as? String == "iw-detect")

        let (minimal, d2) = try read("sinks:\n  - {name: slack, type: slack, webhook_url_file: /run/secrets/slack}\n")
        #expect(d2.isEmpty)
        let m = try #require(minimal as? SlackSinkConfig)
        #expect(m.webhookURL == .file("/run/secrets/slack") && m.channel == nil && m.linkTemplate == nil && m.timeout == 5)
    }

    @Test(arguments: [
        ("", "missing_key", 2),
        ("    webhook_url_env: SLACK\n    chanel: x\n", "unknown_key", 5),
        ("    webhook_url: https://hooks.slack.com/x\n    webhook_url_env: SLACK\n", "conflicting_keys", 5),
        ("    webhook_url_env: SLACK\n    link_template: https://siem.example/{alert}\n", "bad_value", 5),
        ("    webhook_url_env: SLACK\n    link_template: siem.example/{id}\n", "bad_value", 5),
        ("    webhook_url_env: SLACK\n    channel: [a]\n", "bad_type", 5),
    ])
    func badConfigGivesOneDiagnostic(extra: String, code: String, line: Int) throws {
        let (_, diagnostics) = try read("sinks:\n  - name: slack\n    type: slack\n" + extra)
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.code == code)
        #expect(diagnostics.first?.line == line)
        #expect(diagnostics.first?.file == "config.yaml")
    }

    // MARK: - No secret leaks

    @Test func theWebhookURLIsInNoErrorOrSummary() async throws {
        let dir = TempDir()
        // Receivers that echo the URL back, as a careless proxy might.
        let r400 = try HTTPRecorder(dir, answers: ["body:400:invalid_payload for \(Self.path)"], name: "r400")
        let r500 = try HTTPRecorder(dir, answers: ["body:500:token \(Self.marker)xyz rejected"], name: "r500")
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
        #expect(messages.contains { $0.contains("HTTP 400: invalid_payload for (webhook URL)") }, "\(messages)")
        for m in messages { #expect(!m.contains(Self.marker), "\(m)") }

        let (literal, _) = try read("sinks:\n  - {name: slack, type: slack, webhook_url: \"https://hooks.slack.com\(Self.path)\"}\n")
        let c = try #require(literal)
        #expect(!c.summary.contains(Self.marker) && c.summary.contains("(in the config)"))
        let (fromEnv, _) = try read("sinks:\n  - {name: slack, type: slack, webhook_url_env: SLACK_WEBHOOK_URL}\n")
        let e = try #require(fromEnv)
        do throws(SinkError) {
            _ = try e.makeSink(environment: ["OTHER": "https://hooks.slack.com" + Self.path])
            Issue.record("the variable is not set")
        } catch {
            #expect(error.message.contains("SLACK_WEBHOOK_URL") && !error.message.contains(Self.marker) && !error.isRetryable)
        }
        do throws(SinkError) {
            _ = try e.makeSink(environment: ["SLACK_WEBHOOK_URL": "not a url \(Self.marker)"])
            Issue.record("not an URL")
        } catch {
            #expect(error.message.contains("value not shown") && !error.message.contains(Self.marker))
        }
    }
}
