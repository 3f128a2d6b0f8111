import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// Delivery through the built binary to real loopback receivers: a receiver that is down, then up;
/// a hanging receiver beside a healthy one.
@Suite struct DeliveryTests {
    let rules = packageRoot + "/rules"

    /// `count` alerts: each line a new user calling an unapproved tool (`unusual_tool_usage`, high).
    func storm(_ dir: TempDir, _ count: Int, name: String = "in.jsonl", offset: Int = 0) -> String {
        let lines = (0..<count).map { i in logLine(time: at(offset + i), user: "u\(offset + i)", id: "t\(offset + i)", tools: ["shell_exec"]) }
        return dir.write(name, lines.joined(separator: "\n") + "\n")
    }

    func alertIDs(_ db: String) throws -> [String] {
        try Database(path: db).query("SELECT id FROM alerts ORDER BY seq") { $0.text(0) }
    }

    @Test func aReceiverDownForTheWholeIngestGetsEveryAlertOnceItIsUp() throws {
        let dir = TempDir()
        let port = HTTPRecorder.freePort()
        let config = dir.write("config.yaml", """
            sinks:
              - {name: siem, type: webhook, url_env: TEST_SIEM_URL, timeout: 1}
            delivery: {base_backoff_seconds: 0.05, max_backoff_seconds: 0.2, circuit_breaker_cooldown_seconds: 0.2}
            """)
        let db = dir.file("state.db")
        let env = ["TEST_SIEM_URL": "http://127.0.0.1:\(port)/hook"]
        let args = ["--db", db, "--rules", rules, "--config", config, "--drain-timeout", "1"]
        // Down for the whole ingest, and for a restart after it.
        let first = try run(iwDetectBinary, ["ingest", storm(dir, 30)] + args, environment: env)
        #expect(first.status == 0)
        #expect(first.stderr.contains("still pending"), "\(first.stderr)")
        let second = try run(iwDetectBinary, ["ingest", storm(dir, 10, name: "more.jsonl", offset: 100)] + args, environment: env)
        #expect(second.status == 0)
        let ids = try alertIDs(db)
        #expect(ids.count == 40)
        // Up: the next run delivers what waited.
        let receiver = try HTTPRecorder(dir, port: port)
        let third = try run(iwDetectBinary, ["ingest", dir.write("empty.jsonl", "")] + args.dropLast() + ["10"], environment: env)
        #expect(third.status == 0, "\(third.stderr)")
        let got = receiver.wait(for: 40).compactMap { ($0.json as? [String: Any])?["id"] as? String }
        #expect(Set(got) == Set(ids), "every alert, none lost")
        #expect(got.count == Set(got).count, "none twice: \(got.count) requests for \(Set(got).count) alerts")
        let pending = try Database(path: db).query("SELECT count(*) FROM outbox WHERE status != 'delivered'") { $0.int(0) }.first
        #expect(pending == 0)
    }

    /// Local sinks are written from memory after each commit (the first commit of a run reads
    /// what is due from the outbox instead); one that cannot write keeps its alerts pending, and a
    /// later run writes them, each once, in order.
    @Test func aLocalSinkThatCannotWriteLosesNothing() throws {
        let dir = TempDir()
        func config(_ path: String) -> String {
            dir.write("config.yaml", """
                sinks:
                  - {name: archive, type: jsonl, path: \(path)}
                routes: {critical: [archive], high: [archive], medium: [archive], low: [archive]}
                delivery: {base_backoff_seconds: 0.001, max_backoff_seconds: 0.001}
                """)
        }
        // Over 1 MB of quiet traffic first, so that the alerts come in a later commit than the first.
        func input(_ name: String, alerts: Int, offset: Int) -> String {
            let quiet = (0..<3000).map { logLine(time: at(offset + $0), user: "q\($0 % 40)", id: "q\(offset + $0)") }
            let loud = (0..<alerts).map { i in logLine(time: at(offset + 3000 + i), user: "u\(offset + i)", id: "t\(offset + i)", tools: ["shell_exec"]) }
            return dir.write(name, (quiet + loud).joined(separator: "\n") + "\n")
        }
        let db = dir.file("state.db")
        // Every write to /dev/full fails (ENOSPC).
        let first = try run(iwDetectBinary, ["ingest", input("a.jsonl", alerts: 5, offset: 0), "--db", db, "--rules", rules, "--config", config("/dev/full")])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("local sink delivery errors"), "\(first.stderr)")
        let pending = try Database(path: db).query("SELECT count(*) FROM outbox WHERE sink = 'archive' AND status = 'pending'") { $0.int(0) }.first
        #expect(pending == 5)
        // A file it can write: the next run writes what waited (at its first commit), then its own
        // alerts (from memory, at its second).
        let archive = dir.file("alerts.jsonl")
        let second = try run(iwDetectBinary, ["ingest", input("b.jsonl", alerts: 3, offset: 10_000), "--db", db, "--rules", rules, "--config", config(archive)])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stderr.contains("local sink delivery errors"), "\(second.stderr)")
        let written = jsonLines((try? String(contentsOfFile: archive, encoding: .utf8)) ?? "").compactMap { $0["id"] as? String }
        #expect(written == (try alertIDs(db)), "every alert once, in the order raised")
        let stored = try Database(path: db).query("SELECT json FROM alerts ORDER BY seq") { $0.text(0) }
        #expect(["t0", "t1", "t2", "t3", "t4", "t10000", "t10001", "t10002"].allSatisfy { id in stored.contains { $0.contains("\"\(id)\"") } })
        #expect(written.count == stored.count)
        let left = try Database(path: db).query("SELECT count(*) FROM outbox WHERE status != 'delivered'") { $0.int(0) }.first
        #expect(left == 0)
    }

    @Test func aHangingSinkNeitherDelaysAHealthyOneNorIngestion() throws {
        let dir = TempDir()
        let hanging = try HTTPRecorder(dir, answers: ["hang"], name: "hanging")
        let healthy = try HTTPRecorder(dir, name: "healthy")
        let config = dir.write("config.yaml", """
            sinks:
              - {name: slow, type: webhook, url_env: SLOW_URL, timeout: 2}
              - {name: fast, type: webhook, url_env: FAST_URL}
            routes: {low: [slow, fast], medium: [slow, fast], high: [slow, fast], critical: [slow, fast]}
            batch_lines: 10
            """)
        let db = dir.file("state.db")
        let began = Date()
        let r = try run(iwDetectBinary, ["ingest", storm(dir, 100), "--db", db, "--rules", rules, "--config", config, "--drain-timeout", "3"],
                        environment: ["SLOW_URL": hanging.url + "/slow", "FAST_URL": healthy.url + "/fast"])
        let elapsed = Date().timeIntervalSince(began)
        #expect(r.status == 0, "\(r.stderr)")
        // 100 alerts at 2 s per hanging request would take 200 s in one delivery loop.
        #expect(elapsed < 12, "ingest and drain took \(elapsed) s")
        let fast = healthy.wait(for: 100, timeout: 5)
        #expect(Set(fast.compactMap { ($0.json as? [String: Any])?["id"] as? String }) == Set(try alertIDs(db)))
        // Each alert reached the healthy sink within a second of its commit.
        let committed = Dictionary(uniqueKeysWithValues: try Database(path: db).query("SELECT id, created_at FROM alerts") {
            ($0.text(0), Timestamp.parse($0.text(1))!.micros)
        })
        let lags = fast.compactMap { req -> Double? in
            guard let id = (req.json as? [String: Any])?["id"] as? String, let c = committed[id] else { return nil }
            return req.at - Double(c) / 1e6
        }
        #expect(lags.count == 100 && lags.allSatisfy { $0 < 1 }, "max lag \(lags.max() ?? -1) s")
        let slowDelivered = try Database(path: db).query("SELECT count(*) FROM outbox WHERE sink = 'slow' AND status = 'delivered'") { $0.int(0) }.first
        #expect(slowDelivered == 0)
        #expect(hanging.requests.count <= 5, "the hanging sink got one request at a time, not a flood")
    }

    /// The request timeout holds (FoundationNetworking's shared session would wait 60 s), measured
    /// in a process of its own.
    @Test func aHangingReceiverTimesOutOnTime() throws {
        let dir = TempDir()
        let hanging = try HTTPRecorder(dir, answers: ["hang"])
        let config = dir.write("config.yaml", "sinks:\n  - {name: slow, type: webhook, url_env: SLOW_URL, timeout: 1}\n")
        let began = Date()
        let r = try run(iwDetectBinary, ["sinks", "test", "slow", "--config", config], environment: ["SLOW_URL": hanging.url])
        let elapsed = Date().timeIntervalSince(began)
        #expect(r.status == 1 && r.stderr.contains("timed out") && r.stderr.contains("(a retry may help)"), "\(r.stderr)")
        #expect(elapsed >= 1 && elapsed < 3, "took \(elapsed) s for a 1 s timeout")
    }

    @Test func sinksListAndTest() throws {
        let dir = TempDir()
        let receiver = try HTTPRecorder(dir)
        let refusing = try HTTPRecorder(dir, answers: ["body:400:{\"error\":\"nope\"}"], name: "refusing")
        let config = dir.write("config.yaml", """
            sinks:
              - {name: siem, type: webhook, url_env: GOOD_URL}
              - {name: broken, type: webhook, url_env: BAD_URL}
              - {name: archive, type: jsonl, path: \(dir.file("a.jsonl"))}
            routes: {critical: [siem, archive], high: [siem], medium: [archive], low: []}
            """)
        let env = ["GOOD_URL": receiver.url + "/secret-token-1", "BAD_URL": refusing.url + "/secret-token-2"]
        let list = try run(iwDetectBinary, ["sinks", "list", "--config", config, "--json"], environment: env)
        #expect(list.status == 0)
        let rows = jsonLines(list.stdout)
        #expect(rows.map { $0["name"] as? String } == ["siem", "broken", "archive"])
        #expect(rows.first?["severities"] as? [String] == ["high", "critical"])
        #expect(!list.stdout.contains("secret-token"), "no URL is printed")
        let ok = try run(iwDetectBinary, ["sinks", "test", "siem", "--config", config], environment: env)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("siem: delivered test alert"))
        let sent = try #require(receiver.wait(for: 1).first?.json as? [String: Any])
        #expect(sent["rule"] as? String == "iw_detect_sink_test")
        #expect((sent["description"] as? String)?.hasPrefix("TEST ALERT") == true)
        let bad = try run(iwDetectBinary, ["sinks", "test", "broken", "--config", config], environment: env)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("broken: FAILED") && bad.stderr.contains("HTTP 400") && !bad.stderr.contains("secret-token"), "\(bad.stderr)")
        let missing = try run(iwDetectBinary, ["sinks", "test", "nope", "--config", config], environment: env)
        #expect(missing.status == 1 && missing.stderr.contains("no sink named nope"))
    }
}
