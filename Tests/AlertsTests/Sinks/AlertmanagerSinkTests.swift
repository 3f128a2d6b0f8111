import Foundation
import Alerts
import IWDetectCore
import IWDetectTestSupport
import Testing
import YAMLSupport
import Yams

/// The Alertmanager sink: golden payloads, label sanitising, statuses, credentials that never
/// leak, config diagnostics, and delivery to a real Alertmanager that notifies a webhook.
@Suite struct AlertmanagerSinkTests {
    static let secret = "SECRET-789"

    func sink(_ url: String, auth: AlertmanagerSink.Auth = .none, template: String? = nil) -> AlertmanagerSink {
        AlertmanagerSink(name: "am", url: URL(string: url)!, auth: auth, generatorURLTemplate: template)
    }

    /// An alert that is active now: Alertmanager resolves alerts whose endsAt has passed.
    static func current(_ severity: Severity = .high, rule: String = SampleAlerts.rule.name, user: String = "attacker-7",
                        event: String = "log-0042") -> AlertRecord {
        var a = SampleAlerts.alert(severity: severity, rule: rule, user: user, event: event)
        a.eventTime = EventTime(micros: (Int64(Date().timeIntervalSince1970) - 60) * 1_000_000)
        return a
    }

    func object(_ v: JSONValue) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(v.serialized().utf8)) as? [String: Any])
    }

    // MARK: Payload

    @Test func goldenPayloadOfTheSampleAlert() throws {
        let a = SampleAlerts.alert()
        let values = #"{"injection_score":0.91,"user_input":{"redacted":true,"length":412},"count(session_id, 5m)":4,"#
            + #""baseline.output_tokens":{"snapshot_id":3,"n":5000,"mean":212.5,"p99":880,"ready":true,"segment":""}}"#
        let s = sink("http://am:9093", template: "https://iw.example/alerts/{id}?rule={rule}")
        let body = s.payload([a]).serialized()
        let expected = "[{\"labels\":{\"alertname\":\"rapid_fire_injection_attempts\",\"severity\":\"high\",\"source\":\"iw-detect\",\"user_id\":\"attacker-7\"},"
            + "\"annotations\":{\"summary\":" + JSONValue.string(a.summaryLine).serialized()
            + ",\"description\":\"Detects more than 3 high-score prompt injections in one session within 5 minutes.\""
            + ",\"recommended_action\":\"Review session logs. Consider blocking the user if attacks persist.\""
            + ",\"alert_id\":\"\(a.id)\",\"event_id\":\"log-0042\",\"session_id\":\"sess-42\",\"values\":" + JSONValue.string(values).serialized() + "},"
            + "\"startsAt\":\"2026-11-21T10:40:17.250Z\",\"endsAt\":\"2026-11-21T10:55:17.250Z\","
            + "\"generatorURL\":\"https://iw.example/alerts/\(a.id)?rule=rapid_fire_injection_attempts\"}]"
        #expect(body == expected)

        // Field by field.
        let array = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]])
        try #require(array.count == 1)
        let o = array[0]
        #expect(o["labels"] as? [String: String] == ["alertname": a.rule, "severity": "high", "source": "iw-detect", "user_id": "attacker-7"])
        let ann = try #require(o["annotations"] as? [String: String])
        #expect(ann["summary"] == a.summaryLine && ann["description"] == a.description && ann["recommended_action"] == a.recommendedAction)
        #expect(ann["alert_id"] == a.id && ann["event_id"] == a.eventID && ann["values"] == values)
        #expect(o["startsAt"] as? String == a.eventTime.description)
        #expect(o["endsAt"] as? String == (a.eventTime + .minutes(15)).description, "event time + the dedup window")
        #expect(sink("http://am:9093").payload([a]).serialized().contains("generatorURL") == false, "none without a template")
    }

    @Test func labelsCarryIdentityNeverIds() throws {
        var a = SampleAlerts.alert()
        a.groupKey = ["user_id", "session_id"]
        a.groupValue = "attacker-7|sess-42"
        let labels = AlertmanagerSink.labels(a)
        #expect(labels.map(\.0) == ["alertname", "severity", "source", "user_id", "session_id"])
        #expect(labels.map(\.1) == [a.rule, "high", "iw-detect", "attacker-7", "sess-42"])
        #expect(!labels.contains { $0.1 == a.id || $0.1 == a.eventID }, "ids are unbounded: annotations only")

        // A group key that collides with a fixed label keeps both.
        a.groupKey = ["severity"]
        a.groupValue = "x"
        #expect(AlertmanagerSink.labels(a).map(\.0) == ["alertname", "severity", "source", "group_severity"])
        // No group: no group label.
        a.groupKey = []
        a.groupValue = ""
        #expect(AlertmanagerSink.labels(a).count == 3)
    }

    @Test(arguments: [
        ("user_id", "user_id"), ("user.id", "user_id"), ("user-id", "user_id"), ("tool_calls[0].name", "tool_calls_0__name"),
        ("9lives", "_9lives"), ("", "_"), ("naïve", "na_ve"), ("a b", "a_b"), ("_ok_9", "_ok_9"), ("ÄÖ", "__"),
    ])
    func labelNamesAreSanitised(raw: String, label: String) throws {
        #expect(AlertmanagerSink.labelName(raw) == label)
        #expect(label.range(of: "^[a-zA-Z_][a-zA-Z0-9_]*$", options: .regularExpression) != nil)
        var a = SampleAlerts.alert()
        a.groupKey = [raw]
        #expect(AlertmanagerSink.labels(a).last! == (label, "attacker-7"))
    }

    @Test func generatorURLPlaceholdersArePercentEncoded() {
        let a = SampleAlerts.alert(rule: "rule with/space")
        #expect(AlertmanagerSink.generatorURL("https://x/{rule}/{id}", a) == "https://x/rule%20with%2Fspace/\(a.id)")
    }

    // MARK: Statuses (a loopback recorder standing in)

    @Test func postsTheBatchToTheV2APIWithABearerToken() async throws {
        let dir = TempDir()
        let rec = try HTTPRecorder(dir)
        let s = sink(rec.url + "/prefix/", auth: .bearer(Self.secret))
        try await s.deliver([SampleAlerts.alert(), SampleAlerts.alert(user: "u-2")])
        let r = try #require(await rec.wait(for: 1).first)
        #expect(r.method == "POST" && r.path == "/prefix/api/v2/alerts")
        #expect(r.headers["authorization"] == "Bearer \(Self.secret)" && r.headers["content-type"] == "application/json")
        #expect((r.json as? [Any])?.count == 2)
        #expect(s.batchSize == 64 && s.kind == "alertmanager" && !s.isLocal)
    }

    @Test func basicAuth() async throws {
        let dir = TempDir()
        let rec = try HTTPRecorder(dir)
        try await sink(rec.url, auth: .basic(username: "iw", password: Self.secret)).deliver([SampleAlerts.alert()])
        let r = try #require(await rec.wait(for: 1).first)
        #expect(r.headers["authorization"] == "Basic " + Data("iw:\(Self.secret)".utf8).base64EncodedString())
    }

    @Test(arguments: [
        ("body:400:\"start time must be before end time\"", false, "sink 'am': HTTP 400: start time must be before end time"),
        ("body:400:{\"code\":400,\"message\":\"parsing alerts body failed\"}", false, "sink 'am': HTTP 400: parsing alerts body failed"),
        ("body:400:\"echo Bearer SECRET-789\"", false, "sink 'am': HTTP 400: echo Bearer (redacted)"),
        ("401", false, "sink 'am': HTTP 401"),
        ("503", true, "sink 'am': HTTP 503"),
        ("body:500:\"internal\"", true, "sink 'am': HTTP 500: internal"),
        ("429:3", true, "sink 'am': HTTP 429"),
    ])
    func statusesAndAlertmanagersErrorText(answer: String, retryable: Bool, message: String) async throws {
        let dir = TempDir()
        let rec = try HTTPRecorder(dir, answers: [answer])
        do throws(SinkError) {
            try await sink(rec.url, auth: .bearer(Self.secret)).deliver([SampleAlerts.alert()])
            Issue.record("accepted")
        } catch {
            #expect(error.isRetryable == retryable)
            #expect(error.message == message)
            #expect(!error.message.contains(Self.secret) && !error.message.contains(rec.url))
        }
    }

    @Test func refusedIsRetryableAndLeaksNothing() async throws {
        let port = HTTPRecorder.freePort()
        do throws(SinkError) {
            try await sink("http://127.0.0.1:\(port)", auth: .bearer(Self.secret)).deliver([SampleAlerts.alert()])
            Issue.record("accepted")
        } catch {
            #expect(error.isRetryable)
            #expect(!error.message.contains(Self.secret) && !error.message.contains(String(port)), "\(error.message)")
        }
    }

    // MARK: Config

    func read(_ yaml: String) throws -> (AlertmanagerSinkConfig?, [Diagnostic]) {
        var r = ConfigReader(file: "iw-detect.yaml")
        let node = try #require(try Yams.compose(yaml: yaml))
        let config = SinkRegistry.read(node, reader: &r) as? AlertmanagerSinkConfig
        return (config, r.diagnostics)
    }

    @Test func registeredAndConfigured() throws {
        #expect(SinkRegistry.kindNames.contains("alertmanager"))
        let (c, d) = try read("""
            name: am
            type: alertmanager
            url: https://alertmanager.internal:9093/am
            bearer_token_env: AM_TOKEN
            generator_url_template: https://iw.example/alerts/{id}
            timeout: 3
            batch_size: 10
            """)
        #expect(d.isEmpty, "\(d)")
        let config = try #require(c)
        #expect(config.url.absoluteString == "https://alertmanager.internal:9093/am" && config.bearerToken == .environment("AM_TOKEN"))
        #expect(config.generatorURLTemplate == "https://iw.example/alerts/{id}" && config.timeout == 3 && config.batchSize == 10)
        #expect(config.summary == "Alertmanager API v2 at https://alertmanager.internal:9093, bearer token from $AM_TOKEN")
        let s = try #require(try config.makeSink(environment: ["AM_TOKEN": Self.secret]) as? AlertmanagerSink)
        #expect(s.batchSize == 10)

        let (b, d2) = try read("{name: am, type: alertmanager, url: 'http://am:9093', username: iw, password_file: /run/secrets/am}")
        #expect(d2.isEmpty && b?.username == "iw" && b?.password == .file("/run/secrets/am") && b?.batchSize == 64 && b?.timeout == 5)
        #expect(b?.summary == "Alertmanager API v2 at http://am:9093, basic auth as iw (password from file /run/secrets/am)")
    }

    @Test(arguments: [
        ("{name: am, type: alertmanager}", "missing_key", "needs 'url'"),
        ("{name: am, type: alertmanager, url: 'am:9093'}", "bad_value", "http(s) URL"),
        ("{name: am, type: alertmanager, url: 'http://iw:SECRET-789@am:9093'}", "bad_value", "must not hold credentials"),
        ("{name: am, type: alertmanager, url: 'http://am', username: iw}", "missing_key", "username needs 'password_env'"),
        ("{name: am, type: alertmanager, url: 'http://am', password_env: P}", "missing_key", "needs 'username'"),
        ("{name: am, type: alertmanager, url: 'http://am', bearer_token_env: T, username: u, password_env: P}", "conflicting_keys", "not both"),
        ("{name: am, type: alertmanager, url: 'http://am', bearer_token_env: T, bearer_token_file: /f}", "conflicting_keys", "not several"),
        ("{name: am, type: alertmanager, url: 'http://am', generator_url_template: 'x/{id}'}", "bad_value", "generator_url_template"),
        ("{name: am, type: alertmanager, url: 'http://am', batch_size: 5000}", "out_of_range", "between 1 and 1000"),
        ("{name: am, type: alertmanager, url: 'http://am', token_env: T}", "unknown_key", "unknown key 'token_env'"),
    ])
    func badConfigIsDiagnosed(yaml: String, code: String, fragment: String) throws {
        let (_, d) = try read(yaml)
        let hit = d.first { $0.code == code }
        #expect(hit?.message.contains(fragment) == true, "\(d)")
        #expect(hit?.line == 1)
        #expect(!d.contains { $0.message.contains(Self.secret) }, "the secret is never echoed")
    }

    @Test func credentialsNeverLeakIntoSummariesOrErrors() throws {
        let dir = TempDir()
        let file = dir.write("token", Self.secret + "\n")
        let configs = [
            "{name: am, type: alertmanager, url: 'http://am:9093', bearer_token: \(Self.secret)}",
            "{name: am, type: alertmanager, url: 'http://am:9093', bearer_token_env: AM_TOKEN}",
            "{name: am, type: alertmanager, url: 'http://am:9093', bearer_token_file: \(file)}",
            "{name: am, type: alertmanager, url: 'http://am:9093', username: iw, password: \(Self.secret)}",
            "{name: am, type: alertmanager, url: 'http://am:9093', username: iw, password_env: AM_PASSWORD}",
        ]
        for yaml in configs {
            let (c, d) = try read(yaml)
            let config = try #require(c, "\(d)")
            #expect(!config.summary.contains(Self.secret), "\(config.summary)")
            _ = try config.makeSink(environment: ["AM_TOKEN": Self.secret, "AM_PASSWORD": Self.secret])
            do throws(SinkError) {
                _ = try config.makeSink(environment: [:])
            } catch {
                #expect(!error.message.contains(Self.secret))
                #expect(error.message.contains("AM_TOKEN") || error.message.contains("AM_PASSWORD"), "names the variable: \(error.message)")
            }
        }
    }

    // MARK: Against a real Alertmanager

    @Test(.enabled(if: Alertmanager.binary != nil, "prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)"))
    func realAlertmanagerTakesTheAlertsAndNotifiesItsWebhook() async throws {
        let dir = TempDir()
        let hook = try HTTPRecorder(dir, name: "hook")
        let am = try await Alertmanager(dir, webhook: hook.url + "/hook")
        let s = sink(am.url, template: "http://iw.example/alerts/{id}")
        try await s.healthcheck()
        let alerts = [Self.current(), Self.current(.critical, rule: "tool_abuse", user: "user.with-dots@example", event: "log-7"),
                      Self.current(.low, rule: "pii_leak", user: "u-3", event: "log-9")]
        try await s.deliver(alerts)

        // (a) Alertmanager's API lists them, active, with our labels and annotations.
        let listed = try await am.alerts()
        for a in alerts {
            let hit = listed.first { ($0["labels"] as? [String: String])?["alertname"] == a.rule }
            let found = try #require(hit, "\(a.rule) not in \(listed)")
            #expect(found["labels"] as? [String: String] == ["alertname": a.rule, "severity": a.severity.rawValue, "source": "iw-detect", "user_id": a.userID!])
            #expect((found["status"] as? [String: Any])?["state"] as? String == "active")
            let ann = found["annotations"] as? [String: String]
            #expect(ann?["alert_id"] == a.id && ann?["summary"] == a.summaryLine && ann?["values"] == a.values.serialized())
            #expect(found["generatorURL"] as? String == "http://iw.example/alerts/\(a.id)")
            #expect(Timestamp.parse(found["startsAt"] as? String ?? "") == a.eventTime)
            #expect(Timestamp.parse(found["endsAt"] as? String ?? "") == a.eventTime + a.dedupWindow)
        }

        // (b) Alertmanager routed them to its webhook receiver.
        var notified: [String: [String: Any]] = [:]
        // A wait, not a measurement: generous, as a loaded test run slows Alertmanager down.
        let deadline = Date().addingTimeInterval(60)
        while notified.count < alerts.count && Date() < deadline {
            for r in hook.requests where r.path == "/hook" {
                for n in (r.json as? [String: Any])?["alerts"] as? [[String: Any]] ?? [] {
                    if let rule = (n["labels"] as? [String: String])?["alertname"] { notified[rule] = n }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        for a in alerts {
            let n = try #require(notified[a.rule], "no webhook notification for \(a.rule); got \(hook.requests.map(\.body))")
            #expect(n["status"] as? String == "firing")
            #expect((n["labels"] as? [String: String])?["user_id"] == a.userID)
            #expect((n["annotations"] as? [String: String])?["alert_id"] == a.id)
        }
    }

    @Test(.enabled(if: Alertmanager.binary != nil, "prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)"))
    func realAlertmanagerRefusalIsNotRetryableWithItsText() async throws {
        let dir = TempDir()
        let am = try await Alertmanager(dir, webhook: "http://127.0.0.1:9/hook")
        var a = Self.current()
        a.dedupWindow = EventTime.Duration(micros: -60_000_000)  // endsAt before startsAt
        do throws(SinkError) {
            try await sink(am.url, auth: .bearer(Self.secret)).deliver([a])
            Issue.record("accepted")
        } catch {
            #expect(!error.isRetryable && error.status == 400)
            #expect(error.message == "sink 'am': HTTP 400: start time must be before end time")
        }
        // Nothing listening: retryable.
        am.stop()
        do throws(SinkError) {
            try await sink(am.url).deliver([Self.current()])
            Issue.record("accepted")
        } catch {
            #expect(error.isRetryable)
        }
    }
}

// MARK: - A real Alertmanager

/// prometheus-alertmanager as a child process on a loopback port, no clustering, its storage in
/// the temp dir, one route to a webhook receiver (group_wait 1s, no resolved notifications).
fileprivate final class Alertmanager: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    static let binary: String? = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let process = Process()
    let port: Int
    let dir: TempDir

    init(_ dir: TempDir, webhook: String) async throws {
        self.dir = dir
        port = HTTPRecorder.freePort()
        let config = dir.write("alertmanager.yml", """
            route:
              receiver: recorder
              group_by: ['alertname']
              group_wait: 1s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: recorder
                webhook_configs:
                  - url: \(webhook)
                    send_resolved: false

            """)
        let log = dir.file("alertmanager.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: Alertmanager.binary!)
        process.arguments = ["--config.file=\(config)", "--storage.path=\(dir.file("am-data"))",
                             "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address="]
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        // Generous: under a loaded test run (two cores, the suite in parallel) it was seen taking
        // over 20 s to answer /-/ready; it is a wait, not a measurement.
        let deadline = Date().addingTimeInterval(60)
        while true {
            if let r = try? await HTTPExchange.send(URL(string: url + "/-/ready")!, method: "GET", headers: [:], body: Data(), timeout: 1, sink: "test"),
               r.status == 200 { break }
            guard process.isRunning, Date() < deadline else {
                throw AlertmanagerError(message: "alertmanager not ready: " + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    struct AlertmanagerError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    // SIGKILL: a child of the test runner inherits its signal mask, in which SIGTERM may be blocked.
    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// `GET /api/v2/alerts`.
    func alerts() async throws -> [[String: Any]] {
        let r = try await HTTPExchange.send(URL(string: url + "/api/v2/alerts")!, method: "GET", headers: [:], body: Data(), timeout: 5, sink: "test")
        return try #require(try JSONSerialization.jsonObject(with: r.body) as? [[String: Any]], "\(r.status)")
    }
}
