import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// A loopback HTTP receiver (a real python3 http.server process) for the webhook sink.
final class Receiver {
    let process = Process()
    let bodies: String
    let port: Int

    init(_ dir: TempDir, statuses: [Int] = [200]) throws {
        let portFile = dir.file("port")
        bodies = dir.file("bodies")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot + "/Tests/Fixtures/http_receiver.py", portFile, bodies] + statuses.map(String.init)
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline { usleep(20_000) }
        port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
    }

    // SIGKILL: a child of the test runner inherits its signal mask, in which SIGTERM may be blocked.
    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

    var requests: [(status: Int, path: String, body: String)] {
        ((try? String(contentsOfFile: bodies, encoding: .utf8)) ?? "").split(separator: "\n").map {
            let parts = $0.split(separator: " ", maxSplits: 2)
            return (Int(parts[0]) ?? 0, String(parts[1]), parts.count > 2 ? String(parts[2]) : "")
        }
    }
}

@Suite struct WebhookDeliveryTests {
    func attack(_ dir: TempDir) -> String {
        let lines = (0..<5).map { logLine(time: at($0 * 30), user: "attacker", session: "s", injection: 0.9) }
        return dir.write("attack.jsonl", lines.joined(separator: "\n") + "\n")
    }

    func config(_ dir: TempDir) -> String {
        dir.write("config.yaml", """
            sinks:
              - name: siem
                type: webhook
                url_env: TEST_SIEM_URL
            delivery:
              base_backoff_seconds: 0.05
            """)
    }

    @Test func highAlertsArePostedToTheSIEMWebhook() throws {
        let dir = TempDir()
        let receiver = try Receiver(dir)
        #expect(receiver.port > 0)
        let url = "http://127.0.0.1:\(receiver.port)/hook/secret-token-123"
        let r = try run(iwDetectBinary, ["ingest", attack(dir), "--db", dir.file("state.db"), "--rules", packageRoot + "/rules",
                                         "--config", config(dir)], environment: ["TEST_SIEM_URL": url])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty, "with a sink configured, stdout is not a sink unless asked")
        let reqs = receiver.requests
        #expect(reqs.count == 1)
        #expect(reqs.first?.path == "/hook/secret-token-123")
        let bodies = jsonLines(reqs.first?.body ?? "")
        let body = try #require(bodies.first)
        #expect(body["rule"] as? String == "rapid_fire_injection_attempts")
        // The URL carries a token. The delivery report names the sink, but not the URL, and the
        // URL is nowhere in the database (alerts, outbox, errors).
        let id = try #require(body["id"] as? String)
        let detail = try run(iwDetectBinary, ["alerts", "show", id, "--db", dir.file("state.db")])
        #expect(detail.stderr.contains("delivery to siem: delivered after 1 attempt(s)"), "\(detail.stderr)")
        #expect(!(r.stderr + detail.stdout + detail.stderr).contains("secret-token-123"))
        let stored = ["state.db", "state.db-wal"].compactMap { FileManager.default.contents(atPath: dir.file($0)) }
        #expect(!stored.isEmpty)
        #expect(stored.allSatisfy { $0.range(of: Data("secret-token-123".utf8)) == nil })
    }

    @Test func failedDeliveriesAreRetriedThenSucceed() throws {
        let dir = TempDir()
        let receiver = try Receiver(dir, statuses: [500, 503, 200])
        let url = "http://127.0.0.1:\(receiver.port)/hook"
        let r = try run(iwDetectBinary, ["ingest", attack(dir), "--db", dir.file("state.db"), "--rules", packageRoot + "/rules",
                                         "--config", config(dir)], environment: ["TEST_SIEM_URL": url])
        #expect(r.status == 0)
        #expect(receiver.requests.map(\.status) == [500, 503, 200])
        let show = try run(iwDetectBinary, ["alerts", "list", "--db", dir.file("state.db"), "--json"])
        let id = try #require(jsonLines(show.stdout).first?["id"] as? String)
        let detail = try run(iwDetectBinary, ["alerts", "show", id, "--db", dir.file("state.db")])
        #expect(detail.stderr.contains("delivery to siem: delivered after 3 attempt(s)"), "\(detail.stderr)")
    }

    @Test func aRejectingReceiverDeadLettersWithoutLeakingTheURL() throws {
        let dir = TempDir()
        let receiver = try Receiver(dir, statuses: [400])
        let url = "http://127.0.0.1:\(receiver.port)/hook/secret-token-456"
        let r = try run(iwDetectBinary, ["ingest", attack(dir), "--db", dir.file("state.db"), "--rules", packageRoot + "/rules",
                                         "--config", config(dir)], environment: ["TEST_SIEM_URL": url])
        #expect(r.status == 0)
        let show = try run(iwDetectBinary, ["alerts", "list", "--db", dir.file("state.db"), "--json"])
        let id = try #require(jsonLines(show.stdout).first?["id"] as? String)
        let detail = try run(iwDetectBinary, ["alerts", "show", id, "--db", dir.file("state.db")])
        #expect(detail.stderr.contains("delivery to siem: dead after 1 attempt(s); last error: sink 'siem': HTTP 400"), "\(detail.stderr)")
        #expect(!(detail.stdout + detail.stderr + r.stderr).contains("secret-token-456"))
        // A dead receiver with nobody listening: connection refused, retried, never the URL in errors.
        let closed = try run(iwDetectBinary, ["ingest", attack(dir), "--db", dir.file("closed.db"), "--rules", packageRoot + "/rules",
                                              "--config", config(dir), "--drain-timeout", "1"],
                             environment: ["TEST_SIEM_URL": "http://127.0.0.1:9/hook/secret-token-789"])
        #expect(closed.status == 0)
        #expect(closed.stderr.contains("still pending"))
        let closedID = try #require(jsonLines(try run(iwDetectBinary, ["alerts", "list", "--db", dir.file("closed.db"), "--json"]).stdout).first?["id"] as? String)
        let closedDetail = try run(iwDetectBinary, ["alerts", "show", closedID, "--db", dir.file("closed.db")])
        #expect(closedDetail.stderr.contains("last error: sink 'siem': request failed (connection refused)"), "\(closedDetail.stderr)")
        #expect(!(closed.stderr + closedDetail.stderr).contains("secret-token-789"))
    }
}
