import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

@Suite struct SentinelSinkTests {
    typealias Kit = SIEMTestKit

    static let dcr = "dcr-0123456789abcdef0123456789abcdef"
    static let stream = "Custom-IWDetectAlerts_CL"

    func sink(_ url: String, token: SentinelSink.Token = .fixed(Kit.secret), batchSize: Int = 100,
              maxRequestBytes: Int = SentinelSink.apiLimitBytes) -> SentinelSink {
        SentinelSink(name: "sentinel", endpoint: URL(string: url)!, dcrImmutableID: Self.dcr, stream: Self.stream, token: token,
                     batchSize: batchSize, maxRequestBytes: maxRequestBytes)
    }

    @Test func aRecordHasValidColumnNamesAndTypes() throws {
        let alert = SampleAlerts.alert()
        let record = try #require(Kit.object(SentinelSink.record(alert).serialized()))
        let valid = try Regex("^[A-Za-z][A-Za-z0-9_]*$")
        for column in record.keys { #expect(column.wholeMatch(of: valid) != nil, "\(column)") }
        #expect(Set(record.keys) == ["TimeGenerated", "AlertId", "Rule", "Severity", "Action", "Description", "UserId", "SessionId", "GroupKey",
                                     "GroupValue", "EventId", "EventIds", "Values", "RecommendedAction", "Condition", "Tags",
                                     "SuppressedSincePrevious", "DetectedAt"])
        let generated = try #require(record["TimeGenerated"] as? String)
        #expect(generated == "2026-11-21T10:40:17.250Z" && Timestamp.parse(generated) == alert.eventTime)
        #expect(record["DetectedAt"] as? String == "2026-11-21T10:40:18.000Z")
        #expect(record["AlertId"] as? String == alert.id && record["Rule"] as? String == alert.rule)
        #expect(record["Severity"] as? String == "high" && record["Action"] as? String == "alert_and_rate_limit")
        #expect(record["UserId"] as? String == "attacker-7" && record["SessionId"] as? String == "sess-42")
        #expect(record["GroupKey"] as? String == "user_id" && record["GroupValue"] as? String == "attacker-7")
        #expect(record["EventId"] as? String == "log-0042" && (record["EventIds"] as? [String])?.count == 4)
        #expect((record["Values"] as? [String: Any])?["injection_score"] as? Double == 0.91)
        #expect(SentinelSink.record(alert)["Values"] == alert.values)
        #expect(record["Tags"] as? [String] == ["atlas:AML.T0051"] && record["SuppressedSincePrevious"] as? Int == 2)
        #expect(record["RecommendedAction"] as? String == alert.recommendedAction && record["Condition"] as? String == alert.condition)
        let noSession = try #require(Kit.object(SentinelSink.record(SampleAlerts.alert(session: nil)).serialized()))
        #expect(noSession["SessionId"] == nil)
    }

    @Test func aBatchIsOneLogsIngestionCallWithABearerToken() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204"])
        let alerts = Kit.alerts(3)
        try await sink(recorder.url).deliver(alerts)
        let r = try #require(await recorder.wait(for: 1).first)
        #expect(r.method == "POST")
        #expect(r.path == "/dataCollectionRules/\(Self.dcr)/streams/\(Self.stream)?api-version=2023-01-01")
        #expect(r.headers["authorization"] == "Bearer SECRET-456" && r.headers["content-type"] == "application/json")
        #expect(r.body == "[" + alerts.map { SentinelSink.record($0).serialized() }.joined(separator: ",") + "]")
    }

    @Test(arguments: [100, 7])
    func twoHundredFiftyAlertsGoInBatchesOfTheConfiguredSize(size: Int) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204"])
        let (config, d) = Kit.read("""
            name: sentinel
            type: sentinel
            endpoint: \(recorder.url)
            dcr_immutable_id: \(Self.dcr)
            stream: \(Self.stream)
            token_env: SENTINEL_TOKEN
            batch_size: \(size)
            """)
        #expect(d.isEmpty, "\(d)")
        let s = try #require(config).makeSink(environment: ["SENTINEL_TOKEN": Kit.secret])
        #expect(s.batchSize == size && s.kind == "sentinel")
        let alerts = Kit.alerts(250)
        try await Kit.deliverInBatches(s, alerts)
        let requests = await recorder.wait(for: (250 + size - 1) / size)
        #expect(requests.count == (250 + size - 1) / size)
        let ids = requests.compactMap { $0.json as? [[String: Any]] }.flatMap { $0 }.compactMap { $0["AlertId"] as? String }
        #expect(ids.count == 250 && Set(ids) == Set(alerts.map(\.id)))
    }

    /// Alerts whose evidence makes each record about `bytes` long.
    func bigAlerts(_ n: Int, bytes: Int) -> [AlertRecord] {
        Kit.alerts(n).map {
            var a = $0
            a.values = .object([("excerpt", .string(String(repeating: "x", count: bytes)))])
            return a
        }
    }

    @Test func aBatchOverOneMegabyteIsSplitIntoRequestsUnderIt() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204"])
        let alerts = bigAlerts(100, bytes: 24_000)
        try await sink(recorder.url).deliver(alerts)
        let requests = await recorder.wait(for: 3)
        #expect(requests.count == 3, "about 2.5 MB in three calls")
        #expect(requests.allSatisfy { $0.body.utf8.count <= SentinelSink.apiLimitBytes })
        let ids = requests.compactMap { $0.json as? [[String: Any]] }.flatMap { $0 }.compactMap { $0["AlertId"] as? String }
        #expect(ids == alerts.map(\.id))
        // The split is greedy: each body but the last is full up to a record.
        let bodies = try sink(recorder.url).bodies(alerts)
        #expect(bodies.count == 3 && bodies.dropLast().allSatisfy { $0.utf8.count > SentinelSink.apiLimitBytes - 26_000 })
    }

    @Test func aRecordOverTheLimitIsRefusedWithoutARequest() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204"])
        let e = try #require(await Kit.failure { try await sink(recorder.url, maxRequestBytes: 10_000).deliver(bigAlerts(2, bytes: 20_000)) })
        #expect(!e.isRetryable && e.message.contains("more than the 10000 bytes"))
        #expect(recorder.requests.isEmpty)
    }

    static let answers: [ReceiverAnswer] = [
        ReceiverAnswer(answer: "204", retryable: nil),
        ReceiverAnswer(answer: #"body:401:{"error":{"code":"InvalidToken","message":"The provided access token has expired."}}"#, retryable: false,
                       says: "bearer token was refused (expired, for another audience, or lacking the Monitoring Metrics Publisher role on the DCR); InvalidToken: The provided access token has expired."),
        ReceiverAnswer(answer: "403", retryable: false, says: "HTTP 403: the bearer token was refused"),
        ReceiverAnswer(answer: #"body:413:{"error":{"code":"ContentLengthLimitExceeded","message":"Maximum request body size is 1 MB."}}"#, retryable: false,
                       says: "payload too large: the Logs Ingestion API takes at most 1 MB per call; lower batch_size; ContentLengthLimitExceeded"),
        ReceiverAnswer(answer: "429:12", retryable: true, says: "HTTP 429", retryAfter: 12),
        ReceiverAnswer(answer: "503", retryable: true, says: "HTTP 503"),
        ReceiverAnswer(answer: #"body:404:{"error":{"code":"NotFound","message":"Data collection rule with immutable Id 'x' not found."}}"#, retryable: false,
                       says: "NotFound"),
        // A receiver echoing the token back: scrubbed.
        ReceiverAnswer(answer: #"body:401:{"error":{"code":"InvalidToken","message":"token SECRET-456 expired"}}"#, retryable: false,
                       says: "token (redacted) expired"),
    ]

    @Test(arguments: answers)
    func answersAreSuccessOrRetryableOrFinal(_ a: ReceiverAnswer) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [a.answer])
        let s = sink(recorder.url)
        let error = await Kit.failure { try await s.deliver(Kit.alerts(2)) }
        #expect(recorder.requests.count == 1)
        guard let retryable = a.retryable else {
            #expect(error == nil, "\(error?.message ?? "")")
            return
        }
        let e = try #require(error)
        #expect(e.isRetryable == retryable, "\(e.message)")
        #expect(e.message.contains(a.says), "\(e.message)")
        #expect(e.status == Int(a.answer.split(separator: ":").dropFirst(a.answer.hasPrefix("body:") ? 1 : 0).first ?? ""))
        if let after = a.retryAfter { #expect(e.retryAfter == after) }
        Kit.expectNoSecret(e.message, "failure message")
    }

    @Test func aTokenFileIsReadAgainForEveryRequest() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204"])
        let path = dir.write("token", "token-one\n")
        let (config, d) = Kit.read("""
            name: sentinel
            type: sentinel
            endpoint: \(recorder.url)
            dcr_immutable_id: \(Self.dcr)
            stream: \(Self.stream)
            token_file: \(path)
            """)
        #expect(d.isEmpty, "\(d)")
        let s = try #require(config).makeSink(environment: [:])
        try await s.deliver(Kit.alerts(1))
        dir.write("token", "token-two")
        try await s.deliver(Kit.alerts(1))
        #expect(await recorder.wait(for: 2).map { $0.headers["authorization"] ?? "" } == ["Bearer token-one", "Bearer token-two"])
        try FileManager.default.removeItem(atPath: path)
        let e = try #require(await Kit.failure { try await s.deliver(Kit.alerts(1)) })
        #expect(e.isRetryable && e.message.contains("cannot be read"), "a sidecar may be replacing it")
        #expect(recorder.requests.count == 2)
    }

    @Test func theHealthcheckPostsAnEmptyArray() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["204", "401"])
        #expect(await Kit.failure { try await sink(recorder.url).healthcheck() } == nil)
        #expect(recorder.requests.first?.body == "[]")
        let e = await Kit.failure { try await sink(recorder.url).healthcheck() }
        #expect(e?.isRetryable == false && e?.message.contains("bearer token was refused") == true)
    }

    @Test func theGoodConfigSetsEveryKey() throws {
        let (config, d) = Kit.read("""
            name: sentinel
            type: sentinel
            endpoint: https://iw-dce-a1b2.westeurope-1.ingest.monitor.azure.com
            dcr_immutable_id: \(Self.dcr)
            stream: \(Self.stream)
            token_file: /run/secrets/monitor-token
            batch_size: 200
            timeout: 20
            """)
        #expect(d.isEmpty, "\(d)")
        let c = try #require(config as? SentinelSinkConfig)
        #expect(c.endpoint.host == "iw-dce-a1b2.westeurope-1.ingest.monitor.azure.com" && c.dcrImmutableID == Self.dcr && c.stream == Self.stream)
        #expect(c.token == .file("/run/secrets/monitor-token") && c.batchSize == 200 && c.timeout == 20)
        #expect(c.summary == "Sentinel (Logs Ingestion) at iw-dce-a1b2.westeurope-1.ingest.monitor.azure.com, DCR \(Self.dcr), stream \(Self.stream), token from file /run/secrets/monitor-token (read at every request), batches of 200 (at most 1 MB per request)")
    }

    static let head = "name: sentinel\ntype: sentinel\n"
    static let endpoint = "endpoint: https://dce.westeurope-1.ingest.monitor.azure.com\n"
    static let ids = "dcr_immutable_id: \(dcr)\nstream: \(stream)\n"
    static let bad: [BadSinkConfig] = [
        BadSinkConfig(yaml: head + ids + "token_env: T\n", code: "missing_key", line: 1, says: "needs 'endpoint'"),
        BadSinkConfig(yaml: head + endpoint + "stream: \(stream)\ntoken_env: T\n", code: "missing_key", line: 1, says: "needs 'dcr_immutable_id'"),
        BadSinkConfig(yaml: head + endpoint + "dcr_immutable_id: \(dcr)\ntoken_env: T\n", code: "missing_key", line: 1, says: "needs 'stream'"),
        BadSinkConfig(yaml: head + endpoint + ids, code: "missing_key", line: 1, says: "needs 'token_env'"),
        BadSinkConfig(yaml: head + "endpoint: dce.example.com\n" + ids + "token_env: T\n", code: "bad_value", line: 3, says: "http(s) URL"),
        BadSinkConfig(yaml: head + endpoint + "dcr_immutable_id: my-rule\nstream: \(stream)\ntoken_env: T\n", code: "bad_value", line: 4, says: "dcr- and 32 hex digits"),
        BadSinkConfig(yaml: head + endpoint + "dcr_immutable_id: \(dcr)\nstream: IWDetectAlerts_CL\ntoken_env: T\n", code: "bad_value", line: 5, says: "Custom-IWDetectAlerts_CL"),
        BadSinkConfig(yaml: head + endpoint + "dcr_immutable_id: \(dcr)\nstream: Custom-IW Alerts\ntoken_env: T\n", code: "bad_value", line: 5, says: "stream must be"),
        BadSinkConfig(yaml: head + endpoint + ids + "token_env: T\ntoken_file: /t\n", code: "conflicting_keys", line: 7, says: "give one of"),
        BadSinkConfig(yaml: head + endpoint + ids + "token_env: T\nbatch_size: 0\n", code: "out_of_range", line: 7, says: "batch_size"),
        BadSinkConfig(yaml: head + endpoint + ids + "token_env: T\nworkspace_id: w\n", code: "unknown_key", line: 7, says: "unknown key 'workspace_id'"),
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
        let literal = try #require(Kit.read(Self.head + Self.endpoint + Self.ids + "token: SECRET-456\n").config)
        Kit.expectNoSecret(literal.summary, "summary")
        let fromEnv = try #require(Kit.read(Self.head + Self.endpoint + Self.ids + "token_env: SENTINEL_TOKEN\n").config)
        Kit.expectNoSecret(fromEnv.summary, "summary")
        #expect(fromEnv.summary.contains("token from $SENTINEL_TOKEN"))
        let e = try #require(SplunkHECSinkTests.setupError(fromEnv, ["OTHER": Kit.secret]))
        #expect(e.message.contains("SENTINEL_TOKEN") && !e.isRetryable)
        Kit.expectNoSecret(e.message, "missing env")
    }
}
