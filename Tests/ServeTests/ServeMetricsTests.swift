import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// `/metrics`, `/healthz`, `/readyz`: the exposition passes promtool's checks and a real
/// Prometheus (Debian's) scrapes it.
@Suite(.serialized) struct ServeMetricsTests {
    static let promtool = "/usr/bin/promtool"
    static let prometheus = "/usr/bin/prometheus"

    func started(_ dir: TempDir) throws -> (ServeProcess, String) {
        dir.write("rules/r.yaml", ServeInputTests.everyEvent)
        dir.write("config.yaml", "stdout: false\n")
        let db = dir.file("state.db")
        let serve = try ServeProcess(dir, db: db, arguments: ["--rules", dir.file("rules"), "--config", dir.file("config.yaml")])
        // Something to count: events, a reject, a 400 and a 401-free 200.
        #expect(http("POST", serve.url, text: event("m-1", seconds: 0) + "\n" + event("m-2", seconds: 60)).status == 200)
        #expect(http("POST", serve.url, text: "nope").status == 400)
        return (serve, db)
    }

    /// Waits until the counter line `series value` appears (the pipeline commits asynchronously).
    func metrics(_ serve: ServeProcess, until series: String) -> String {
        let deadline = Date().addingTimeInterval(20)
        var text = http("GET", serve.url + "/metrics").body
        while !text.contains(series) && Date() < deadline {
            usleep(50_000)
            text = http("GET", serve.url + "/metrics").body
        }
        return text
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: promtool), "needs Debian's prometheus package (promtool)"))
    func theExpositionPassesPromtoolAndCountsWhatHappened() throws {
        let dir = TempDir()
        let (serve, _) = try started(dir)
        let text = metrics(serve, until: "iw_detect_lines_rejected_total{input=\"http\",reason=\"invalid_json\"} 1")
        #expect(text.contains("iw_detect_lines_read_total{input=\"http\"} 3"), "\(text)")
        #expect(text.contains("iw_detect_lines_accepted_total{input=\"http\"} 2"))
        #expect(text.contains("iw_detect_alerts_raised_total{rule=\"every_event\",severity=\"low\"} 2"))
        #expect(text.contains("iw_detect_http_requests_total{code=\"200\"} 1"))
        #expect(text.contains("iw_detect_http_requests_total{code=\"400\"} 1"))
        #expect(text.contains("iw_detect_journal_depth 0"))
        #expect(text.contains("iw_detect_baseline_ready{metric=\"output_tokens\"} 0"))
        #expect(text.contains("iw_detect_baseline_quarantined_events_total 0") && text.contains("iw_detect_baseline_quarantines_open 0"), "\(text)")
        #expect(text.contains("iw_detect_baseline_quarantine_outcomes_total{outcome=\"admitted\"} 0"))
        #expect(text.contains("iw_detect_batch_commit_duration_seconds_count"))
        #expect(text.contains("# HELP iw_detect_lines_read_total "))
        // Bounded labels: no user, session, address or event id anywhere.
        for value in ["u-1", "s-1", "127.0.0.1", "m-1"] { #expect(!text.contains("\"\(value)\""), "label value \(value)") }
        let path = dir.write("metrics.txt", text)
        let check = try run("/bin/sh", ["-c", "\(Self.promtool) check metrics < \(path)"])
        #expect(check.status == 0, "promtool: \(check.stdout)\(check.stderr)")
        #expect(check.stdout.isEmpty && check.stderr.isEmpty, "promtool: \(check.stdout)\(check.stderr)")
        #expect(http("GET", serve.url + "/healthz").body == "ok\n")
        let ready = http("GET", serve.url + "/readyz")
        #expect(ready.status == 200)
        #expect(ready.json?["ready"] as? Bool == true)
        #expect(serve.terminate() == 0)
    }

    @Test func aSinkThatIsDownShowsAsPendingDeliveriesAndFailures() throws {
        let dir = TempDir()
        dir.write("rules/r.yaml", ServeInputTests.everyEvent)
        // Nothing listens on the port: every delivery fails and stays pending.
        dir.write("config.yaml", """
            stdout: false
            sinks:
              - name: hook
                type: webhook
                url: http://127.0.0.1:\(HTTPRecorder.freePort())/alerts
            routes: {low: [hook]}
            serve: {shutdown_timeout: 1}
            """)
        let serve = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--rules", dir.file("rules"), "--config", dir.file("config.yaml")])
        #expect(http("POST", serve.url, text: event("d-1", seconds: 0) + "\n" + event("d-2", seconds: 1)).status == 200)
        let text = metrics(serve, until: "iw_detect_outbox_pending{sink=\"hook\"} 2")
        #expect(text.contains("iw_detect_outbox_pending{sink=\"hook\"} 2"), "\(text)")
        #expect(text.contains("iw_detect_outbox_dead{sink=\"hook\"} 0"))
        // Refused deliveries are counted as they happen (at least one per alert by now, soon).
        let pattern = #"iw_detect_deliveries_total\{sink="hook",outcome="failed"\} [1-9]"#
        var failed = http("GET", serve.url + "/metrics").body
        let deadline = Date().addingTimeInterval(20)
        while failed.range(of: pattern, options: .regularExpression) == nil && Date() < deadline {
            usleep(50_000)
            failed = http("GET", serve.url + "/metrics").body
        }
        #expect(failed.range(of: pattern, options: .regularExpression) != nil, "\(failed)")
        #expect(failed.contains("iw_detect_deliveries_total{sink=\"hook\",outcome=\"delivered\"} 0"))
        // The shutdown gives delivery its second, then leaves the rest in the outbox.
        #expect(serve.terminate() == 0)
        #expect(serve.stderr.contains("2 alert deliveries still pending"), "\(serve.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prometheus), "needs Debian's prometheus package"))
    func aRealPrometheusScrapesIt() throws {
        let dir = TempDir()
        let (serve, _) = try started(dir)
        let port = HTTPRecorder.freePort()
        let config = dir.write("prometheus.yml", """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
              - job_name: iw-detect
                static_configs: [{targets: ['127.0.0.1:\(serve.port)']}]
            """)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.prometheus)
        p.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(dir.file("tsdb"))", "--web.listen-address=127.0.0.1:\(port)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: dir.write("prometheus.log", ""))
        try p.run()
        defer {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        func query(_ q: String) -> [[String: Any]] {
            let a = http("GET", "http://127.0.0.1:\(port)/api/v1/query?query=" + q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
            return ((a.json?["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
        }
        func value(_ r: [[String: Any]]) -> String? { (r.first?["value"] as? [Any])?.last as? String }
        let deadline = Date().addingTimeInterval(40)
        var up: String?
        var read: String?
        while Date() < deadline {
            up = value(query("up{job=\"iw-detect\"}"))
            read = value(query("iw_detect_lines_read_total{input=\"http\"}"))
            if up == "1" && read == "3" { break }
            usleep(250_000)
        }
        #expect(up == "1", "Prometheus never saw the target up: \((try? String(contentsOfFile: dir.file("prometheus.log"), encoding: .utf8)) ?? "")")
        #expect(read == "3")
        #expect(serve.terminate() == 0)
    }
}
