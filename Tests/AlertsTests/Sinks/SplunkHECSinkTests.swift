import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing
import YAMLSupport
import Yams

/// What the SIEM sink suites share: reading one sink's YAML, alerts in bulk, batched delivery,
/// catching a ``SinkError``, and config fixtures.
enum SIEMTestKit {
    /// The marker secret: it must never show up in an error or summary.
    static let secret = "SECRET-456"

    /// Reads one sink item (a YAML mapping) through the registry.
    static func read(_ yaml: String) -> (config: (any SinkConfig)?, diagnostics: [Diagnostic]) {
        var r = ConfigReader(file: "sinks.yaml")
        guard let node = try? Yams.compose(yaml: yaml) else { return (nil, [Diagnostic("yaml_error", .error, "unreadable", file: "sinks.yaml", line: 0, column: 0)]) }
        let config = SinkRegistry.read(node, reader: &r)
        return (config, r.diagnostics)
    }

    /// `n` alerts with distinct ids.
    static func alerts(_ n: Int) -> [AlertRecord] {
        (0..<n).map { SampleAlerts.alert(user: "user-\($0 % 17)", event: "log-\($0)") }
    }

    /// Delivers `alerts` in the sink's batch size, as its delivery worker does.
    static func deliverInBatches(_ sink: any AlertSink, _ alerts: [AlertRecord]) async throws(SinkError) {
        var i = 0
        while i < alerts.count {
            let end = min(i + sink.batchSize, alerts.count)
            try await sink.deliver(Array(alerts[i..<end]))
            i = end
        }
    }

    /// The error `f` throws, or nil when it succeeds.
    static func failure(_ f: () async throws -> Void) async -> SinkError? {
        do {
            try await f()
            return nil
        } catch let error as SinkError {
            return error
        } catch {
            Issue.record("not a SinkError: \(error)")
            return nil
        }
    }

    /// A JSON text parsed with Foundation (an independent reader of what the sink wrote).
    static func object(_ text: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }

    /// Every object key in a JSON value, recursively (with `skip` keys' values left out).
    static func keys(_ value: Any, skipping skip: Set<String> = []) -> [String] {
        if let o = value as? [String: Any] {
            return o.flatMap { k, v in [k] + (skip.contains(k) ? [] : keys(v, skipping: skip)) }
        }
        if let a = value as? [Any] { return a.flatMap { keys($0, skipping: skip) } }
        return []
    }

    static func expectNoSecret(_ text: String, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.contains(secret), "\(comment): \(text)", sourceLocation: sourceLocation)
    }
}

/// A config fixture expected to give exactly one diagnostic.
struct BadSinkConfig: Sendable, CustomTestStringConvertible {
    var yaml: String
    var code: String
    var line: Int
    var says: String
    var testDescription: String { "\(code)@\(line): \(says)" }
}

/// A receiver's answer and what the sink must make of it.
struct ReceiverAnswer: Sendable, CustomTestStringConvertible {
    var answer: String
    /// nil: success.
    var retryable: Bool?
    var says: String = ""
    var retryAfter: Double?
    var testDescription: String { "\(answer.prefix(60)) → \(retryable.map { $0 ? "retryable" : "final" } ?? "ok")" }
}

@Suite struct SplunkHECSinkTests {
    typealias Kit = SIEMTestKit

    func sink(_ url: String, index: String? = "main", batchSize: Int = 100) -> SplunkHECSink {
        SplunkHECSink(name: "hec", url: URL(string: url)!, token: Kit.secret, host: "detector-1", index: index, batchSize: batchSize)
    }

    @Test func anEventHasHECsFieldsWithTimeInSecondsAndMilliseconds() throws {
        let alert = SampleAlerts.alert()
        let text = sink("https://splunk.example.com:8088").event(alert).serialized()
        #expect(text.hasPrefix(#"{"time":1795257617.25,"host":"detector-1","source":"iw-detect","sourcetype":"iw-detect:alert","index":"main","event":{"#))
        let o = try #require(Kit.object(text))
        #expect(Array(o.keys).sorted() == ["event", "host", "index", "source", "sourcetype", "time"])
        #expect(o["time"] as? Double == 1_795_257_617.25)
        let event = try #require(o["event"] as? [String: Any])
        #expect(event["id"] as? String == alert.id && event["rule"] as? String == "rapid_fire_injection_attempts")
        #expect(text.hasSuffix(#","event":"# + alert.json.serialized() + "}"))
        #expect(SplunkHECSink.hecTime(EventTime(micros: 1_795_257_617_001_999)) == 1_795_257_617.001)

        let noIndex = try #require(Kit.object(sink("https://s:8088", index: nil).event(alert).serialized()))
        #expect(noIndex["index"] == nil && noIndex["sourcetype"] as? String == "iw-detect:alert")
    }

    @Test func theEventURLIsBuiltFromTheBase() {
        #expect(SplunkHECSink.eventURL(URL(string: "https://s.example.com:8088")!).absoluteString == "https://s.example.com:8088/services/collector/event")
        #expect(SplunkHECSink.eventURL(URL(string: "https://s.example.com:8088/")!).absoluteString == "https://s.example.com:8088/services/collector/event")
        #expect(SplunkHECSink.eventURL(URL(string: "https://s.example.com/services/collector")!).absoluteString == "https://s.example.com/services/collector/event")
    }

    @Test func aBatchIsOnePOSTOfConcatenatedEventsWithTheSplunkToken() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [#"body:200:{"text":"Success","code":0}"#])
        let alerts = Kit.alerts(3)
        try await sink(recorder.url).deliver(alerts)
        let requests = await recorder.wait(for: 1)
        #expect(requests.count == 1)
        let r = try #require(requests.first)
        #expect(r.method == "POST" && r.path == "/services/collector/event")
        #expect(r.headers["authorization"] == "Splunk SECRET-456")
        #expect(r.headers["x-splunk-request-channel"].flatMap(UUID.init(uuidString:)) != nil)
        let events = r.body.split(separator: "\n").compactMap { Kit.object(String($0)) }
        #expect(events.count == 3)
        #expect(events.compactMap { ($0["event"] as? [String: Any])?["id"] as? String } == alerts.map(\.id))
    }

    @Test(arguments: [100, 7])
    func twoHundredFiftyAlertsGoInBatchesOfTheConfiguredSize(size: Int) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [#"body:200:{"text":"Success","code":0}"#])
        let (config, d) = Kit.read("name: hec\ntype: splunk_hec\nurl: \(recorder.url)\ntoken_env: HEC_TOKEN\nbatch_size: \(size)\n")
        #expect(d.isEmpty, "\(d)")
        let hec = try #require(config).makeSink(environment: ["HEC_TOKEN": Kit.secret])
        #expect(hec.batchSize == size && hec.kind == "splunk_hec")
        let alerts = Kit.alerts(250)
        try await Kit.deliverInBatches(hec, alerts)
        let requests = await recorder.wait(for: (250 + size - 1) / size)
        #expect(requests.count == (250 + size - 1) / size)
        let ids = requests.flatMap { $0.body.split(separator: "\n") }.compactMap { (Kit.object(String($0))?["event"] as? [String: Any])?["id"] as? String }
        #expect(ids.count == 250 && Set(ids) == Set(alerts.map(\.id)))
    }

    static let answers: [ReceiverAnswer] = [
        ReceiverAnswer(answer: #"body:200:{"text":"Success","code":0}"#, retryable: nil),
        ReceiverAnswer(answer: #"body:400:{"text":"Invalid data format","code":6,"invalid-event-number":0}"#, retryable: false,
                       says: "HTTP 400: HEC code 6: Invalid data format (event 0 of the batch)"),
        ReceiverAnswer(answer: #"body:400:{"text":"Server is busy","code":9}"#, retryable: true, says: "HEC code 9: Server is busy"),
        ReceiverAnswer(answer: #"body:503:{"text":"Server is busy","code":9}"#, retryable: true, says: "HTTP 503: HEC code 9"),
        ReceiverAnswer(answer: #"body:401:{"text":"Invalid authorization","code":3}"#, retryable: false, says: "token was refused"),
        ReceiverAnswer(answer: #"body:403:{"text":"Invalid token","code":4}"#, retryable: false, says: "HEC code 4: Invalid token"),
        ReceiverAnswer(answer: "503", retryable: true, says: "HTTP 503"),
        ReceiverAnswer(answer: "429:7", retryable: true, says: "HTTP 429", retryAfter: 7),
        // A receiver echoing the token back: scrubbed.
        ReceiverAnswer(answer: #"body:403:{"text":"Invalid token SECRET-456","code":4}"#, retryable: false, says: "Invalid token (redacted)"),
    ]

    @Test(arguments: answers)
    func answersAreSuccessOrRetryableOrFinal(_ a: ReceiverAnswer) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [a.answer])
        let hec = sink(recorder.url)
        let error = await Kit.failure { try await hec.deliver([SampleAlerts.alert()]) }
        #expect(recorder.requests.count == 1)
        guard let retryable = a.retryable else {
            #expect(error == nil, "\(error?.message ?? "")")
            return
        }
        let e = try #require(error)
        #expect(e.isRetryable == retryable, "\(e.message)")
        #expect(e.message.contains(a.says), "\(e.message)")
        #expect(e.message.hasPrefix("sink 'hec': "))
        if let after = a.retryAfter { #expect(e.retryAfter == after) }
        Kit.expectNoSecret(e.message, "failure message")
    }

    @Test func anUnreachableCollectorIsRetryable() async {
        let hec = sink("http://127.0.0.1:\(HTTPRecorder.freePort())")
        let e = await Kit.failure { try await hec.deliver([SampleAlerts.alert()]) }
        #expect(e?.isRetryable == true)
        Kit.expectNoSecret(e?.message ?? "", "refused")
    }

    @Test func theHealthcheckPostsNoDataAndAcceptsCodeFive() async throws {
        let dir = TempDir()
        let ok = try HTTPRecorder(dir, answers: [#"body:400:{"text":"No data","code":5}"#], name: "ok")
        #expect(await Kit.failure { try await sink(ok.url).healthcheck() } == nil)
        #expect(ok.requests.first?.body == "" && ok.requests.first?.headers["authorization"] == "Splunk SECRET-456")
        let refused = try HTTPRecorder(dir, answers: [#"body:403:{"text":"Invalid token","code":4}"#], name: "refused")
        let e = await Kit.failure { try await sink(refused.url).healthcheck() }
        #expect(e?.isRetryable == false && e?.message.contains("token was refused") == true)
    }

    @Test func theGoodConfigSetsEveryKey() throws {
        let (config, d) = Kit.read("""
            name: hec
            type: splunk_hec
            url: https://splunk.example.com:8088
            token_file: /run/secrets/hec
            source: inferwall
            sourcetype: "iw:alert"
            index: security
            host: gw-1
            batch_size: 500
            timeout: 10
            """)
        #expect(d.isEmpty, "\(d)")
        let c = try #require(config as? SplunkHECSinkConfig)
        #expect(c.url.absoluteString == "https://splunk.example.com:8088" && c.token == .file("/run/secrets/hec"))
        #expect(c.source == "inferwall" && c.sourcetype == "iw:alert" && c.index == "security" && c.host == "gw-1")
        #expect(c.batchSize == 500 && c.timeout == 10)
        #expect(c.summary == "Splunk HEC at splunk.example.com:8088, index security, sourcetype iw:alert, token from file /run/secrets/hec, batches of 500")

        let (minimal, d2) = Kit.read("name: hec\ntype: splunk_hec\nurl: https://s:8088\ntoken_env: HEC_TOKEN\n")
        #expect(d2.isEmpty)
        let m = try #require(minimal as? SplunkHECSinkConfig)
        #expect(m.source == "iw-detect" && m.sourcetype == "iw-detect:alert" && m.index == nil && m.batchSize == 100 && m.timeout == 5)
    }

    static let head = "name: hec\ntype: splunk_hec\n"
    static let bad: [BadSinkConfig] = [
        BadSinkConfig(yaml: head + "token_env: T\n", code: "missing_key", line: 1, says: "needs 'url'"),
        BadSinkConfig(yaml: head + "url: https://s:8088\n", code: "missing_key", line: 1, says: "needs 'token_env'"),
        BadSinkConfig(yaml: head + "url: ftp://s\ntoken_env: T\n", code: "bad_value", line: 3, says: "http(s) URL"),
        BadSinkConfig(yaml: head + "url: https://admin:pw@s:8088\ntoken_env: T\n", code: "bad_value", line: 3, says: "must not carry credentials"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\ntoken: SECRET-456\n", code: "conflicting_keys", line: 4, says: "give one of"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\nbatch_size: 0\n", code: "out_of_range", line: 5, says: "between 1 and 1000"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\nbatch_size: 1001\n", code: "out_of_range", line: 5, says: "batch_size"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\nsourcetyp: x\n", code: "unknown_key", line: 5, says: "did you mean 'sourcetype'"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\nindex: ''\n", code: "bad_value", line: 5, says: "must not be empty"),
        BadSinkConfig(yaml: head + "url: https://s:8088\ntoken_env: T\ntimeout: 0\n", code: "out_of_range", line: 5, says: "timeout"),
    ]

    @Test(arguments: bad)
    func aBadConfigGivesOneDiagnostic(_ b: BadSinkConfig) {
        let (_, d) = Kit.read(b.yaml)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.code == b.code, "\(d)")
        #expect(d.first?.line == b.line, "\(d)")
        #expect(d.first?.message.contains(b.says) == true, "\(d.first?.message ?? "")")
        Kit.expectNoSecret(d.first?.message ?? "", "diagnostic")
    }

    @Test func secretsStayOutOfSummariesAndSetupErrors() throws {
        let literal = try #require(Kit.read(Self.head + "url: https://s:8088\ntoken: SECRET-456\n").config)
        Kit.expectNoSecret(literal.summary, "summary")
        #expect(literal.summary.contains("token from (in the config)"))
        let fromEnv = try #require(Kit.read(Self.head + "url: https://s:8088\ntoken_env: HEC_TOKEN\n").config)
        Kit.expectNoSecret(fromEnv.summary, "summary")
        let e = try #require(Self.setupError(fromEnv, ["OTHER": Kit.secret]))
        #expect(e.message.contains("HEC_TOKEN") && !e.isRetryable)
        Kit.expectNoSecret(e.message, "missing env")
        let fromFile = try #require(Kit.read(Self.head + "url: https://s:8088\ntoken_file: /nonexistent/hec-token\n").config)
        #expect(Self.setupError(fromFile, [:])?.message.contains("cannot be read") == true)
    }

    static func setupError(_ c: any SinkConfig, _ env: [String: String]) -> SinkError? {
        do throws(SinkError) {
            _ = try c.makeSink(environment: env)
            return nil
        } catch {
            return error
        }
    }
}
