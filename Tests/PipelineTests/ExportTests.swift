import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// `exports:` through the binary, against loopback recorders standing in for Splunk HEC,
/// Elasticsearch and the Logs Ingestion API.
@Suite struct ExportTests {
    let rules = packageRoot + "/rules"

    /// Events of two users; the second line lacks `risk_score`, the third carries tool calls.
    func sample(_ dir: TempDir) -> String {
        let lines = [
            logLine(time: at(0), user: "alice", session: "s-a", id: "log-1", injection: 0.2, risk: 0.7),
            logLine(time: at(10), user: "bob", session: "s-b", id: "log-2", extra: ["risk_score": "null", "guardrail_triggered": "true"]),
            logLine(time: at(20), user: "alice", session: "s-a", id: "log-3", pii: true, tools: ["search", "calc"], risk: 0.3),
        ]
        return dir.write("sample.jsonl", lines.joined(separator: "\n") + "\n")
    }

    func ingest(_ dir: TempDir, _ input: String, config: String, env: [String: String], extra: [String] = []) throws -> ProcessResult {
        try run(iwDetectBinary, ["ingest", input, "--db", dir.file("state.db"), "--rules", rules, "--config", config, "--drain-timeout", "5"] + extra,
                environment: env)
    }

    /// Every item of every recorded HEC request.
    func hecItems(_ r: HTTPRecorder) -> [[String: Any]] {
        r.requests.flatMap { $0.body.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } }
    }

    @Test func hecEventsHaveTheGuidesShapeFieldByField() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir)
        let config = dir.write("config.yaml", """
            exports:
              - name: splunk
                type: splunk_hec
                url: \(hec.url)
                token_env: TEST_HEC_TOKEN
                host: web-1
            """)
        let r = try ingest(dir, sample(dir), config: config, env: ["TEST_HEC_TOKEN": "hec-secret-7"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("export splunk: 3 events sent in 1 request(s)"), "\(r.stderr)")
        let reqs = hec.requests
        try #require(reqs.count == 1)
        #expect(reqs[0].path == "/services/collector/event")
        #expect(reqs[0].headers["authorization"] == "Splunk hec-secret-7")
        let items = hecItems(hec)
        try #require(items.count == 3)
        // HEC's metadata: the event time in epoch seconds, and the guide's source and sourcetype.
        #expect(items[0]["time"] as? Double == 1_793_491_200)
        #expect(items[1]["time"] as? Double == 1_793_491_210)
        #expect(items[0]["host"] as? String == "web-1")
        #expect(items[0]["source"] as? String == "ai_security_monitor")
        #expect(items[0]["sourcetype"] as? String == "ai:inference")
        #expect(items[0]["index"] == nil)
        let e = try #require(items[0]["event"] as? [String: Any])
        #expect(Set(e.keys) == ["source", "sourcetype", "event_type", "log_id", "user_id", "session_id", "risk_score", "guardrail_triggered",
                                "injection_score", "tool_calls", "pii_detected", "model_id", "latency_ms"])
        #expect(e["source"] as? String == "ai_security_monitor")
        #expect(e["sourcetype"] as? String == "ai:inference")
        #expect(e["event_type"] as? String == "ai_interaction")
        #expect(e["log_id"] as? String == "log-1")
        #expect(e["user_id"] as? String == "alice")
        #expect(e["session_id"] as? String == "s-a")
        #expect(e["risk_score"] as? Double == 0.7)
        #expect(e["guardrail_triggered"] as? Bool == false)
        #expect(e["injection_score"] as? Double == 0.2)
        #expect(e["tool_calls"] as? Int == 0)
        #expect(e["pii_detected"] as? Bool == false)
        #expect(e["model_id"] as? String == "m-1")
        #expect(e["latency_ms"] as? Int == 320, "the guide's latency_ms is total_latency_ms")
        // A null is sent as null; tool_calls is a count.
        let e2 = try #require(items[1]["event"] as? [String: Any])
        #expect(e2["risk_score"] is NSNull)
        #expect(e2["guardrail_triggered"] as? Bool == true)
        let e3 = try #require(items[2]["event"] as? [String: Any])
        #expect(e3["tool_calls"] as? Int == 2)
        #expect(e3["pii_detected"] as? Bool == true)
        // Prompts and outputs are never sent unless listed; the token is nowhere but its header.
        #expect(!reqs[0].body.contains("hello there") && !reqs[0].body.contains("a reply"))
        #expect(!reqs[0].body.contains("hec-secret-7") && !r.stderr.contains("hec-secret-7"))
        let dump = try run("/usr/bin/env", ["sqlite3", dir.file("state.db"), ".dump"])
        #expect(dump.status != 0 || !dump.stdout.contains("hec-secret-7"))
    }

    @Test func elasticLogstashAndSentinelPayloads() throws {
        let dir = TempDir()
        let es = try HTTPRecorder(dir, answers: [#"body:200:{"took":3,"errors":false,"items":[]}"#], name: "es")
        let sentinel = try HTTPRecorder(dir, answers: ["204"], name: "sentinel")
        let logstash = try HTTPRecorder(dir, name: "logstash")
        let config = dir.write("config.yaml", """
            exports:
              - name: es
                type: elastic
                url: \(es.url)
                api_key_env: TEST_ES_KEY
              - name: azure
                type: sentinel
                endpoint: \(sentinel.url)
                dcr_immutable_id: dcr-0123456789abcdef0123456789abcdef
                stream: Custom-AIInference_CL
                token_env: TEST_AZ_TOKEN
                enrich: false
              - name: ls
                type: logstash
                url: \(logstash.url)/ai
                username: iw
                password_env: TEST_LS_PASSWORD
            """)
        let r = try ingest(dir, sample(dir), config: config, env: ["TEST_ES_KEY": "es-key-1", "TEST_AZ_TOKEN": "az-token-2", "TEST_LS_PASSWORD": "ls-pass-3"])
        #expect(r.status == 0, "\(r.stderr)")
        // Elastic: _bulk NDJSON, a create action with the log_id as document id, then the ECS document.
        let bulk = try #require(es.requests.first)
        #expect(es.requests.count == 1)
        #expect(bulk.path == "/_bulk")
        #expect(bulk.headers["authorization"] == "ApiKey es-key-1")
        #expect(bulk.headers["content-type"] == "application/x-ndjson")
        #expect(bulk.body.hasSuffix("\n"))
        let lines = bulk.body.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        try #require(lines.count == 6)
        let action = try #require(lines[0]?["create"] as? [String: Any])
        #expect(action["_index"] as? String == "iw-detect-events")
        #expect(action["_id"] as? String == "log-1")
        let doc = try #require(lines[1])
        #expect(doc["@timestamp"] as? String == "2026-11-01T00:00:00.000Z")
        let event = try #require(doc["event"] as? [String: Any])
        #expect(event["kind"] as? String == "event")
        #expect(event["dataset"] as? String == "ai.inference")
        #expect(event["id"] as? String == "log-1")
        #expect((doc["user"] as? [String: Any])?["id"] as? String == "alice")
        let inference = try #require(doc["inference"] as? [String: Any])
        #expect(inference["risk_score"] as? Double == 0.7)
        #expect(inference["latency_ms"] as? Int == 320)
        #expect(inference["event_type"] as? String == "ai_interaction")
        #expect((lines[2]?["create"] as? [String: Any])?["_id"] as? String == "log-2")
        // Sentinel: one JSON array of records, TimeGenerated and the fields as columns.
        let call = try #require(sentinel.requests.first)
        #expect(call.path == "/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/Custom-AIInference_CL?api-version=2023-01-01")
        #expect(call.headers["authorization"] == "Bearer az-token-2")
        let records = try #require(call.json as? [[String: Any]])
        try #require(records.count == 3)
        #expect(records[0]["TimeGenerated"] as? String == "2026-11-01T00:00:00.000Z")
        #expect(records[0]["log_id"] as? String == "log-1")
        #expect(records[2]["tool_calls"] as? Int == 2)
        #expect(records.allSatisfy { $0["iw_detect"] == nil }, "enrich: false")
        // Logstash: one JSON array per request, @timestamp first, then the fields.
        let post = try #require(logstash.requests.first)
        #expect(post.path == "/ai")
        #expect(post.headers["authorization"] == "Basic " + Data("iw:ls-pass-3".utf8).base64EncodedString())
        let elements = try #require(post.json as? [[String: Any]])
        #expect(elements.map { $0["log_id"] as? String } == ["log-1", "log-2", "log-3"])
        #expect(elements[0]["@timestamp"] as? String == "2026-11-01T00:00:00.000Z")
        #expect(post.body.hasPrefix(#"[{"@timestamp":"2026-11-01T00:00:00.000Z","event_type":"ai_interaction","log_id":"log-1""#), "\(post.body.prefix(120))")
        #expect(!r.stderr.contains("es-key-1") && !r.stderr.contains("az-token-2") && !r.stderr.contains("ls-pass-3"))
    }

    @Test func filterAndFieldsChooseEventsAndColumns() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir)
        let config = dir.write("config.yaml", """
            exports:
              - name: risky
                type: splunk_hec
                url: \(hec.url)
                token: test-hec-token
                index: ai
                filter: risk_score > 0.5 OR guardrail_triggered
                fields:
                  add: [source_ip, {prompt: user_input}, tool_name]
                  drop: [session_id, pii_detected]
            """)
        let r = try ingest(dir, sample(dir), config: config, env: [:])
        #expect(r.status == 0, "\(r.stderr)")
        let items = hecItems(hec)
        #expect(items.map { ($0["event"] as? [String: Any])?["log_id"] as? String } == ["log-1", "log-2"], "log-3 has risk 0.3 and no guardrail")
        #expect(items.first?["index"] as? String == "ai")
        let e = try #require(items.first?["event"] as? [String: Any])
        #expect(e["session_id"] == nil && e["pii_detected"] == nil)
        #expect(e["source_ip"] as? String == "10.0.0.1")
        #expect(e["prompt"] as? String == "hello there", "a prompt is sent when listed")
        #expect(e["tool_name"] as? [Any] != nil, "the rules' alias tool_name reads tool_calls.name")
    }

    @Test func eventsCarryTheRulesTheyFired() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir)
        let config = dir.write("config.yaml", """
            exports:
              - name: splunk
                type: splunk_hec
                url: \(hec.url)
                token: test-hec-token
            """)
        // Five high-score injections in one session within two minutes: rapid_fire_injection_attempts.
        let lines = (0..<5).map { logLine(time: at($0 * 20), user: "mallory", session: "s-m", id: "inj-\($0)", injection: 0.9) }
        let r = try ingest(dir, dir.write("attack.jsonl", lines.joined(separator: "\n") + "\n"), config: config, env: [:])
        #expect(r.status == 0, "\(r.stderr)")
        let fired = hecItems(hec).map { (($0["event"] as? [String: Any])?["iw_detect"] as? [String: Any])?["alerts"] as? [String] ?? [] }
        // The rule wants more than 3 in 5 minutes: the fourth and fifth fire it.
        #expect(fired.count == 5)
        #expect(fired.prefix(3).allSatisfy { $0.isEmpty }, "\(fired)")
        #expect(fired.suffix(2).allSatisfy { $0.contains("rapid_fire_injection_attempts") }, "\(fired)")
    }

    /// `iw_detect.z.<metric>` is the event's z-score against the snapshot its rules saw.
    @Test func eventsCarryTheirZScores() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir)
        let config = dir.write("config.yaml", """
            baseline: {min_samples: 50, min_days: 0, recompute_every: 1m}
            exports:
              - name: splunk
                type: splunk_hec
                url: \(hec.url)
                token: test-hec-token
            """)
        var lines = (0..<120).map { logLine(time: at($0 * 60), user: "u\($0 % 9)", id: "z-\($0)", outputTokens: 100 + ($0 % 7) * 10) }
        lines.append(logLine(time: at(120 * 60), user: "u1", id: "z-last", outputTokens: 400))
        let db = dir.file("state.db")
        let r = try run(iwDetectBinary, ["ingest", dir.write("z.jsonl", lines.joined(separator: "\n") + "\n"), "--db", db, "--rules", rules,
                                         "--config", config, "--drain-timeout", "5"])
        #expect(r.status == 0, "\(r.stderr)")
        let shown = jsonLines(try run(iwDetectBinary, ["baseline", "show", "--json", "--db", db]).stdout)
        let stats = try #require(shown.first { $0["metric"] as? String == "output_tokens" && $0["segment"] as? String == "" })
        let mean = try #require(stats["mean"] as? Double), std = try #require(stats["std"] as? Double)
        let items = hecItems(hec)
        let last = try #require(items.last?["event"] as? [String: Any])
        #expect(last["log_id"] as? String == "z-last")
        let z = try #require((last["iw_detect"] as? [String: Any])?["z"] as? [String: Any])
        #expect(z["output_tokens"] as? Double == ((400 - mean) / std * 1000).rounded() / 1000, "\(z) vs mean \(mean) std \(std)")
        #expect(z["tool_call_count"] == nil, "no z for a metric whose std is 0 (every event has no tool call)")
        let early = try #require(items.first?["event"] as? [String: Any])
        #expect(early["iw_detect"] == nil, "no baseline is ready for the first event: nothing to add")
    }

    /// The receiver is down for a whole ingest and for a second one after a restart, then comes
    /// up: every event is exported at least once, none is missing.
    @Test func aTargetDownThenUpLosesNothing() throws {
        let dir = TempDir()
        var probe: HTTPRecorder? = try HTTPRecorder(dir, name: "probe")
        let port = probe!.port
        probe!.stop()
        probe = nil
        let config = dir.write("config.yaml", """
            batch_lines: 500
            exports:
              - name: splunk
                type: splunk_hec
                url: http://127.0.0.1:\(port)
                token: test-hec-token
            delivery:
              base_backoff_seconds: 0.05
              max_backoff_seconds: 0.2
            """)
        func lines(_ range: Range<Int>) -> String {
            range.map { logLine(time: at($0), user: "u-\($0 % 50)", session: "s-\($0 % 80)", id: "ev-\($0)") }.joined(separator: "\n") + "\n"
        }
        let first = try run(iwDetectBinary, ["ingest", dir.write("a.jsonl", lines(0..<3000)), "--db", dir.file("state.db"), "--rules", rules,
                                             "--config", config, "--drain-timeout", "1"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("3000 events still queued"), "\(first.stderr)")
        let second = try run(iwDetectBinary, ["ingest", dir.write("b.jsonl", lines(3000..<4000)), "--db", dir.file("state.db"), "--rules", rules,
                                              "--config", config, "--drain-timeout", "0.5"])
        #expect(second.status == 0, "\(second.stderr)")
        let listed = try run(iwDetectBinary, ["exports", "list", "--json", "--db", dir.file("state.db"), "--config", config])
        let row = try #require(jsonLines(listed.stdout).first)
        #expect(row["queued"] as? Int == 4000)
        #expect(row["sent"] as? Int == 0)
        #expect(row["state"] as? String == "failing")
        #expect((row["last_error"] as? String)?.contains("connection refused") == true, "\(row)")
        let hec = try HTTPRecorder(dir, port: port, name: "hec")
        let third = try run(iwDetectBinary, ["ingest", dir.write("c.jsonl", lines(4000..<4010)), "--db", dir.file("state.db"), "--rules", rules,
                                             "--config", config, "--drain-timeout", "20"])
        #expect(third.status == 0, "\(third.stderr)")
        let ids = hecItems(hec).compactMap { ($0["event"] as? [String: Any])?["log_id"] as? String }
        #expect(Set(ids) == Set((0..<4010).map { "ev-\($0)" }), "missing: \(Set((0..<4010).map { "ev-\($0)" }).subtracting(ids).sorted().prefix(5))")
        #expect(hec.requests.allSatisfy { $0.body.split(separator: "\n").count <= 1000 }, "batches of at most 1000 events")
        let after = try run(iwDetectBinary, ["exports", "list", "--json", "--db", dir.file("state.db"), "--config", config])
        let done = try #require(jsonLines(after.stdout).first)
        #expect(done["queued"] as? Int == 0)
        #expect(done["state"] as? String == "ok")
        #expect(done["sent"] as? Int == ids.count)
    }

    /// Past max_lag a target stops queueing: new events are skipped and counted, not buffered.
    @Test func aTargetPastMaxLagStallsAndCountsWhatItSkips() throws {
        let dir = TempDir()
        var probe: HTTPRecorder? = try HTTPRecorder(dir, name: "probe")
        let port = probe!.port
        probe!.stop()
        probe = nil
        let config = dir.write("config.yaml", """
            exports:
              - name: splunk
                type: splunk_hec
                url: http://127.0.0.1:\(port)
                token: test-hec-token
                max_lag: 1s
            """)
        func ingest(_ name: String, _ range: Range<Int>, drain: String) throws -> ProcessResult {
            let input = dir.write(name, range.map { logLine(time: at($0 * 2), id: "ev-\($0)") }.joined(separator: "\n") + "\n")
            return try run(iwDetectBinary, ["ingest", input, "--db", dir.file("state.db"), "--rules", rules, "--config", config, "--drain-timeout", drain])
        }
        func status() throws -> [String: Any] {
            try #require(jsonLines(try run(iwDetectBinary, ["exports", "list", "--json", "--db", dir.file("state.db"), "--config", config]).stdout).first)
        }
        // The receiver is down: the first run queues its events.
        #expect(try ingest("a.jsonl", 0..<300, drain: "0").status == 0)
        #expect(try status()["queued"] as? Int == 300)
        // A second later they have waited past max_lag: the next run skips its events, and counts them.
        usleep(1_200_000)
        let second = try ingest("b.jsonl", 300..<500, drain: "0")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("export splunk: stalled"), "\(second.stderr)")
        #expect(second.stderr.contains("export splunk: 0 events queued, 200 skipped"), "\(second.stderr)")
        let row = try status()
        #expect(row["state"] as? String == "stalled", "\(row)")
        #expect(row["queued"] as? Int == 300)
        #expect(row["skipped"] as? Int == 200)
        #expect(row["skipped_between"] as? [String] == [at(600), at(998)])
        #expect((row["lag_seconds"] as? Double ?? 0) >= 1.2, "\(row)")
        // The receiver comes back: what was queued is sent, and the target is no longer stalled.
        let hec = try HTTPRecorder(dir, port: port, name: "hec")
        let third = try ingest("c.jsonl", 500..<510, drain: "20")
        #expect(third.status == 0, "\(third.stderr)")
        let after = try status()
        #expect(after["state"] as? String == "ok", "\(after)")
        #expect(after["queued"] as? Int == 0)
        #expect(after["sent"] as? Int == 300, "the 10 events of the third run came while it was still stalled: \(after)")
        #expect(after["skipped"] as? Int == 210, "what was skipped stays counted")
        #expect(hec.requests.flatMap { $0.body.split(separator: "\n") }.count == 300)
        // The next run queues again.
        let fourth = try ingest("d.jsonl", 510..<520, drain: "20")
        #expect(fourth.stderr.contains("export splunk: 10 events sent"), "\(fourth.stderr)")
    }

    /// A batch the receiver refuses for good (HEC code 6, invalid data format) is dead-lettered
    /// after max_attempts, kept and counted, and the events behind it still go out.
    @Test func aBatchRefusedForGoodIsDeadLetteredAndTheRestGoesOut() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir, answers: [#"body:400:{"text":"Invalid data format","code":6,"invalid-event-number":0}"#,
                                                  #"body:400:{"text":"Invalid data format","code":6,"invalid-event-number":0}"#, "200"])
        let config = dir.write("config.yaml", """
            exports:
              - name: splunk
                type: splunk_hec
                url: \(hec.url)
                token: test-hec-token
                batch_size: 2
            delivery: {max_attempts: 2, base_backoff_seconds: 0.01, max_backoff_seconds: 0.02}
            """)
        let r = try ingest(dir, sample(dir), config: config, env: [:])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("2 events dead-lettered"), "\(r.stderr)")
        let row = try #require(jsonLines(try run(iwDetectBinary, ["exports", "list", "--json", "--db", dir.file("state.db"), "--config", config]).stdout).first)
        #expect(row["dead"] as? Int == 2)
        #expect(row["sent"] as? Int == 1)
        #expect(row["queued"] as? Int == 0)
        #expect((row["last_error"] as? String)?.contains("HEC code 6: Invalid data format") == true, "\(row)")
        let kept = try Database(path: dir.file("state.db")).query("SELECT events, error FROM export_dead") { ($0.int(0), $0.text(1)) }
        #expect(kept.count == 1 && kept.first?.0 == 2)
        // The refused batch was tried twice; then the last event went out.
        let ids = hec.requests.map { $0.body.split(separator: "\n").compactMap { ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]).flatMap { ($0["event"] as? [String: Any])?["log_id"] as? String } } }
        #expect(ids == [["log-1", "log-2"], ["log-1", "log-2"], ["log-3"]], "\(ids)")
        // The receiver takes them now (its last answer, 200, repeats): redeliver sends them.
        let again = try run(iwDetectBinary, ["exports", "redeliver", "splunk", "--db", dir.file("state.db"), "--config", config, "--timeout", "10"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("requeued 2 dead-lettered events; 2 events sent"), "\(again.stderr)")
        let after = try #require(jsonLines(try run(iwDetectBinary, ["exports", "list", "--json", "--db", dir.file("state.db"), "--config", config]).stdout).first)
        #expect(after["dead"] as? Int == 0)
        #expect(after["sent"] as? Int == 3)
        #expect(hec.requests.last.map { $0.body.split(separator: "\n").count } == 2)
    }

    @Test func badExportConfigIsReportedWithFileLineAndColumn() throws {
        var c = EngineConfig(databasePath: "/nonexistent/x.db", rulePaths: [])
        do {
            try c.apply(yaml: """
                exports:
                  - name: a
                    type: webhook
                    url: http://127.0.0.1:1
                  - name: b
                    type: splunk_hec
                    url: http://127.0.0.1:1
                    token: test-hec-token
                    filter: risk_score >
                  - name: c
                    type: sentinel
                    endpoint: http://127.0.0.1:1
                    dcr_immutable_id: dcr-0123456789abcdef0123456789abcdef
                    stream: Custom-X_CL
                    token: test-hec-token
                    fields: {add: [iw.score], drop: [nothing]}
                    max_lag: 2x
                """, file: "cfg.yaml")
            Issue.record("the config was accepted")
        } catch let error as ConfigError {
            let d = error.diagnostics.map { "\($0.code)@\($0.line)" }
            #expect(d.contains("unknown_export_type@3"), "\(d)")
            #expect(d.contains { $0.hasPrefix("syntax_error@") || $0.hasPrefix("unexpected_end@") } || error.description.contains("filter"), "\(error)")
            #expect(error.description.contains("'iw.score' is not a Log Analytics column name"), "\(error)")
            #expect(error.description.contains("fields.drop names 'nothing'"), "\(error)")
            #expect(error.description.contains("max_lag"), "\(error)")
        }
    }

    @Test func aFilterWithAWindowFunctionIsRefused() throws {
        let dir = TempDir()
        var c = EngineConfig(databasePath: dir.file("state.db"), rulePaths: [rules])
        try c.apply(yaml: """
            exports:
              - name: b
                type: splunk_hec
                url: http://127.0.0.1:1
                token: test-hec-token
                filter: count(session_id, 5m) > 3
            """, file: "cfg.yaml")
        #expect(throws: ConfigError.self) { try Engine(config: c) }
        do { _ = try Engine(config: c) } catch {
            #expect("\(error)".contains("cfg.yaml:6:"), "\(error)")
            #expect("\(error)".contains("window functions"), "\(error)")
        }
    }
}
