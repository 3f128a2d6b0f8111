import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The Elastic `_bulk` sink (ECS documents) and the Logstash HTTP sink.
@Suite struct ElasticSinkTests {
    typealias Kit = SIEMTestKit

    func sink(_ url: String, batchSize: Int = 100) -> ElasticSink {
        ElasticSink(name: "es", url: URL(string: url)!, authorization: "ApiKey " + Kit.secret, secrets: [Kit.secret], batchSize: batchSize)
    }

    static let bulkOK = #"body:200:{"took":3,"errors":false,"items":[]}"#

    @Test func theDocumentUsesNestedECSFields() throws {
        let alert = SampleAlerts.alert()
        let doc = try #require(Kit.object(ECSDocument.document(alert).serialized()))
        #expect(doc["@timestamp"] as? String == "2026-11-21T10:40:17.250Z")
        #expect(doc["message"] as? String == alert.summaryLine)
        #expect(doc["tags"] as? [String] == ["atlas:AML.T0051"])
        #expect((doc["ecs"] as? [String: Any])?["version"] as? String == "8.11.0")
        let event = try #require(doc["event"] as? [String: Any])
        #expect(event["kind"] as? String == "alert")
        #expect(event["category"] as? [String] == ["intrusion_detection"])
        #expect(event["severity"] as? Int == 73)
        #expect(event["id"] as? String == alert.id)
        #expect(event["created"] as? String == "2026-11-21T10:40:18.000Z")
        #expect(event["action"] as? String == "alert_and_rate_limit")
        let rule = try #require(doc["rule"] as? [String: Any])
        #expect(rule["name"] as? String == "rapid_fire_injection_attempts" && rule["description"] as? String == alert.description)
        #expect((doc["user"] as? [String: Any])?["id"] as? String == "attacker-7")
        #expect((doc["labels"] as? [String: Any])?["session_id"] as? String == "sess-42")
        let iw = try #require(doc["iw_detect"] as? [String: Any])
        #expect(iw["recommended_action"] as? String == alert.recommendedAction)
        #expect(iw["event_ids"] as? [String] == ["log-0039", "log-0040", "log-0041", "log-0042"])
        #expect(iw["group_value"] as? String == "attacker-7")
        let values = try #require(iw["values"] as? [String: Any])
        #expect(values["injection_score"] as? Double == 0.91)
        #expect(ECSDocument.document(alert)["iw_detect"]?["values"] == alert.values)
        // Nested objects: no dotted key outside the evidence (which keeps the rule's own names).
        let dotted = Kit.keys(doc, skipping: ["values"]).filter { $0.contains(".") }
        #expect(dotted.isEmpty, "\(dotted)")
        // An unknown session: left out, not null.
        let anonymous = try #require(Kit.object(ECSDocument.document(SampleAlerts.alert(session: nil)).serialized()))
        #expect(anonymous["labels"] == nil)
    }

    @Test(arguments: [(Severity.low, 21), (.medium, 47), (.high, 73), (.critical, 99)])
    func severityUsesElasticSecuritysScale(severity: Severity, number: Int) throws {
        let doc = try #require(Kit.object(ECSDocument.document(SampleAlerts.alert(severity: severity)).serialized()))
        #expect((doc["event"] as? [String: Any])?["severity"] as? Int == number)
        #expect(ECSDocument.severity(severity) == Int64(number))
    }

    @Test func aBatchIsOneBulkRequestOfCreateActionsKeyedByAlertID() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [Self.bulkOK])
        let alerts = Kit.alerts(3)
        try await sink(recorder.url).deliver(alerts)
        let r = try #require(await recorder.wait(for: 1).first)
        #expect(r.method == "POST" && r.path == "/_bulk")
        #expect(r.headers["content-type"] == "application/x-ndjson")
        #expect(r.headers["authorization"] == "ApiKey SECRET-456")
        #expect(r.body.hasSuffix("\n"))
        let lines = r.body.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(lines.count == 6)
        for (k, alert) in alerts.enumerated() {
            #expect(lines[2 * k] == #"{"create":{"_index":"iw-detect-alerts","_id":""# + alert.id + #""}}"#)
            #expect(lines[2 * k + 1] == ECSDocument.document(alert).serialized())
        }
    }

    @Test(arguments: [100, 7])
    func twoHundredFiftyAlertsGoInBulkRequestsOfTheConfiguredSize(size: Int) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [Self.bulkOK])
        let (config, d) = Kit.read("name: es\ntype: elastic\nurl: \(recorder.url)\nindex: ai-alerts\nbatch_size: \(size)\n")
        #expect(d.isEmpty, "\(d)")
        let es = try #require(config).makeSink(environment: [:])
        #expect(es.batchSize == size && es.kind == "elastic")
        let alerts = Kit.alerts(250)
        try await Kit.deliverInBatches(es, alerts)
        let requests = await recorder.wait(for: (250 + size - 1) / size)
        #expect(requests.count == (250 + size - 1) / size)
        #expect(requests.allSatisfy { $0.headers["authorization"] == nil })
        let actions = requests.flatMap { $0.body.split(separator: "\n") }.compactMap { Kit.object(String($0))?["create"] as? [String: Any] }
        #expect(actions.allSatisfy { $0["_index"] as? String == "ai-alerts" })
        let ids = actions.compactMap { $0["_id"] as? String }
        #expect(ids.count == 250 && Set(ids) == Set(alerts.map(\.id)))
    }

    static let answers: [ReceiverAnswer] = [
        ReceiverAnswer(answer: #"body:200:{"took":5,"errors":false,"items":[{"create":{"_index":"iw-detect-alerts","_id":"a","status":201}}]}"#, retryable: nil),
        ReceiverAnswer(answer: #"body:200:{"took":5,"errors":true,"items":[{"create":{"_id":"a","status":201}},{"create":{"_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}}]}"#,
                       retryable: true, says: "1 of 2 bulk items failed (1 retryable); first: 429 es_rejected_execution_exception: rejected execution"),
        ReceiverAnswer(answer: #"body:200:{"took":5,"errors":true,"items":[{"create":{"_id":"a","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [iw_detect.values.count] of type [long]"}}},{"create":{"_id":"b","status":201}}]}"#,
                       retryable: false, says: "first: 400 mapper_parsing_exception: failed to parse field [iw_detect.values.count]"),
        ReceiverAnswer(answer: #"body:200:{"took":5,"errors":true,"items":[{"create":{"_id":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict, document already exists"}}}]}"#,
                       retryable: nil),
        ReceiverAnswer(answer: #"body:200:{"took":5,"errors":true,"items":[{"create":{"_id":"a","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}]}"#,
                       retryable: true, says: "503 unavailable_shards_exception"),
        ReceiverAnswer(answer: #"body:401:{"error":{"type":"security_exception","reason":"unable to authenticate with provided credentials"},"status":401}"#,
                       retryable: false, says: "HTTP 401: the credentials were refused; security_exception"),
        ReceiverAnswer(answer: "429:3", retryable: true, says: "HTTP 429", retryAfter: 3),
        ReceiverAnswer(answer: "503", retryable: true, says: "HTTP 503"),
        ReceiverAnswer(answer: "413", retryable: false, says: "HTTP 413"),
        ReceiverAnswer(answer: "200", retryable: true, says: "unreadable bulk response"),
        // A receiver echoing the key back: scrubbed.
        ReceiverAnswer(answer: #"body:403:{"error":{"type":"security_exception","reason":"key SECRET-456 is not allowed"}}"#,
                       retryable: false, says: "key (redacted) is not allowed"),
    ]

    @Test(arguments: answers)
    func bulkAnswersAreReadItemByItem(_ a: ReceiverAnswer) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [a.answer])
        let es = sink(recorder.url)
        let error = await Kit.failure { try await es.deliver(Kit.alerts(2)) }
        #expect(recorder.requests.count == 1)
        guard let retryable = a.retryable else {
            #expect(error == nil, "\(error?.message ?? "")")
            return
        }
        let e = try #require(error)
        #expect(e.isRetryable == retryable, "\(e.message)")
        #expect(e.message.contains(a.says), "\(e.message)")
        if let after = a.retryAfter { #expect(e.retryAfter == after) }
        Kit.expectNoSecret(e.message, "failure message")
    }

    @Test func basicAuthAndTheHealthcheck() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [#"body:200:{"username":"shipper"}"#])
        let (config, d) = Kit.read("name: es\ntype: elastic\nurl: \(recorder.url)\nusername: shipper\npassword_env: ES_PASSWORD\n")
        #expect(d.isEmpty, "\(d)")
        let es = try #require(config).makeSink(environment: ["ES_PASSWORD": Kit.secret])
        #expect(await Kit.failure { try await es.healthcheck() } == nil)
        let r = try #require(recorder.requests.first)
        #expect(r.method == "GET" && r.path == "/_security/_authenticate")
        #expect(r.headers["authorization"] == "Basic " + Data("shipper:SECRET-456".utf8).base64EncodedString())
        Kit.expectNoSecret(try #require(config).summary, "summary")
        #expect(try #require(config).summary.contains("basic auth as shipper (password from $ES_PASSWORD)"))
    }

    @Test func theGoodConfigSetsEveryKey() throws {
        let (config, d) = Kit.read("""
            name: es
            type: elastic
            url: https://es.example.com:9200
            index: ai-security-alerts
            api_key_file: /run/secrets/es_key
            batch_size: 250
            timeout: 15
            """)
        #expect(d.isEmpty, "\(d)")
        let c = try #require(config as? ElasticSinkConfig)
        #expect(c.url.absoluteString == "https://es.example.com:9200" && c.index == "ai-security-alerts")
        #expect(c.credentials == .apiKey(.file("/run/secrets/es_key")) && c.batchSize == 250 && c.timeout == 15)
        #expect(c.summary == "Elasticsearch bulk at es.example.com:9200, index ai-security-alerts, API key from file /run/secrets/es_key, batches of 250")
        let m = try #require(Kit.read("name: es\ntype: elastic\nurl: http://localhost:9200\n").config as? ElasticSinkConfig)
        #expect(m.index == "iw-detect-alerts" && m.credentials == nil && m.batchSize == 100 && m.summary.contains("no authentication"))
    }

    static let head = "name: es\ntype: elastic\n"
    static let lsHead = "name: ls\ntype: logstash\n"
    static let bad: [BadSinkConfig] = [
        BadSinkConfig(yaml: head + "index: x\n", code: "missing_key", line: 1, says: "needs 'url'"),
        BadSinkConfig(yaml: head + "url: es.example.com\n", code: "bad_value", line: 3, says: "http(s) URL"),
        BadSinkConfig(yaml: head + "url: https://elastic:pw@es:9200\n", code: "bad_value", line: 3, says: "must not carry credentials"),
        BadSinkConfig(yaml: head + "url: https://es:9200\nindex: Alerts\n", code: "bad_value", line: 4, says: "not a valid index name"),
        BadSinkConfig(yaml: head + "url: https://es:9200\nindex: _alerts\n", code: "bad_value", line: 4, says: "not starting with"),
        BadSinkConfig(yaml: head + "url: https://es:9200\napi_key_env: K\nusername: u\npassword_env: P\n", code: "conflicting_keys", line: 5, says: "not both"),
        BadSinkConfig(yaml: head + "url: https://es:9200\napi_key_env: K\napi_key: SECRET-456\n", code: "conflicting_keys", line: 4, says: "give one of"),
        BadSinkConfig(yaml: head + "url: https://es:9200\nusername: u\n", code: "missing_key", line: 4, says: "username needs 'password_env'"),
        BadSinkConfig(yaml: head + "url: https://es:9200\npassword_env: P\n", code: "missing_key", line: 4, says: "needs a 'username'"),
        BadSinkConfig(yaml: head + "url: https://es:9200\nbatch_size: many\n", code: "bad_type", line: 4, says: "whole number"),
        BadSinkConfig(yaml: head + "url: https://es:9200\napikey_env: K\n", code: "unknown_key", line: 4, says: "did you mean 'api_key_env'"),
        BadSinkConfig(yaml: lsHead + "format: ecs\n", code: "missing_key", line: 1, says: "needs 'url'"),
        BadSinkConfig(yaml: lsHead + "url: http://ls:8080\nformat: xml\n", code: "bad_value", line: 4, says: "alert or ecs"),
        BadSinkConfig(yaml: lsHead + "url: http://ls:8080\napi_key_env: K\n", code: "unknown_key", line: 4, says: "unknown key 'api_key_env'"),
        BadSinkConfig(yaml: lsHead + "url: http://ls:8080\nusername: u\n", code: "missing_key", line: 4, says: "password"),
        BadSinkConfig(yaml: lsHead + "url: http://ls:8080\nbatch_size: 5000\n", code: "out_of_range", line: 4, says: "between 1 and 1000"),
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
        for yaml in [Self.head + "url: https://es:9200\napi_key: SECRET-456\n", Self.head + "url: https://es:9200\nusername: u\npassword: SECRET-456\n",
                     Self.lsHead + "url: http://ls:8080\nusername: u\npassword: SECRET-456\n"] {
            let c = try #require(Kit.read(yaml).config)
            Kit.expectNoSecret(c.summary, "summary")
            #expect(c.summary.contains("(in the config)"))
        }
        for yaml in [Self.head + "url: https://es:9200\napi_key_env: ES_KEY\n", Self.lsHead + "url: http://ls:8080\nusername: u\npassword_env: ES_KEY\n"] {
            let c = try #require(Kit.read(yaml).config)
            let e = try #require(SplunkHECSinkTests.setupError(c, ["OTHER": Kit.secret]))
            #expect(e.message.contains("ES_KEY") && !e.isRetryable)
            Kit.expectNoSecret(e.message, "missing env")
        }
    }

    // MARK: Logstash

    @Test func logstashGetsOneJSONArrayPerBatch() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["200"])
        let (config, d) = Kit.read("name: ls\ntype: logstash\nurl: \(recorder.url)/alerts\nusername: iw\npassword_env: LS_PASSWORD\n")
        #expect(d.isEmpty, "\(d)")
        let ls = try #require(config).makeSink(environment: ["LS_PASSWORD": Kit.secret])
        #expect(ls.batchSize == 100 && ls.kind == "logstash")
        let alerts = Kit.alerts(250)
        try await Kit.deliverInBatches(ls, alerts)
        let requests = await recorder.wait(for: 3)
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.path == "/alerts" && $0.headers["content-type"] == "application/json" })
        #expect(requests.allSatisfy { $0.headers["authorization"] == "Basic " + Data("iw:SECRET-456".utf8).base64EncodedString() })
        let items = requests.compactMap { $0.json as? [[String: Any]] }
        #expect(items.map(\.count) == [100, 100, 50])
        let ids = items.flatMap { $0 }.compactMap { $0["id"] as? String }
        #expect(ids == alerts.map(\.id))
        #expect(requests.first?.body == "[" + alerts.prefix(100).map { $0.json.serialized() }.joined(separator: ",") + "]")
    }

    @Test func logstashCanSendECSDocuments() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: ["200"])
        let ls = LogstashSink(name: "ls", url: URL(string: recorder.url)!, format: .ecs)
        let alerts = Kit.alerts(2)
        try await ls.deliver(alerts)
        let body = try #require(await recorder.wait(for: 1).first?.body)
        #expect(body == JSONValue.array(alerts.map(ECSDocument.document)).serialized())
    }

    @Test(arguments: [
        ReceiverAnswer(answer: "200", retryable: nil),
        ReceiverAnswer(answer: "429:2", retryable: true, says: "HTTP 429", retryAfter: 2),
        ReceiverAnswer(answer: "503", retryable: true, says: "HTTP 503"),
        ReceiverAnswer(answer: "401", retryable: false, says: "credentials were refused"),
        ReceiverAnswer(answer: "400", retryable: false, says: "HTTP 400"),
    ])
    func logstashAnswers(_ a: ReceiverAnswer) async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir, answers: [a.answer])
        let ls = LogstashSink(name: "ls", url: URL(string: recorder.url)!, authorization: "Basic " + Kit.secret, secrets: [Kit.secret])
        let error = await Kit.failure { try await ls.deliver([SampleAlerts.alert()]) }
        guard let retryable = a.retryable else {
            #expect(error == nil)
            return
        }
        let e = try #require(error)
        #expect(e.isRetryable == retryable && e.message.contains(a.says), "\(e.message)")
        if let after = a.retryAfter { #expect(e.retryAfter == after) }
        Kit.expectNoSecret(e.message, "failure message")
    }
}
