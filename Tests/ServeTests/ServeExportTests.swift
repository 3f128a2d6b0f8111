import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// `exports:` in `serve`: what InferenceWall posts is forwarded to the SIEM, counted in
/// `/metrics`, and survives `kill -9` while the receiver is down.
@Suite(.serialized) struct ServeExportTests {
    func config(_ dir: TempDir, port: Int) -> String {
        dir.write("config.yaml", """
            stdout: false
            exports:
              - name: splunk
                type: splunk_hec
                url: http://127.0.0.1:\(port)
                token_env: TEST_HEC_TOKEN
                flush_interval: 0.2
            delivery:
              base_backoff_seconds: 0.05
              max_backoff_seconds: 0.2
              circuit_breaker_cooldown_seconds: 0.1
            """)
    }

    func exportedIDs(_ r: HTTPRecorder) -> [String] {
        r.requests.flatMap { $0.body.split(separator: "\n") }.compactMap {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]).flatMap { ($0["event"] as? [String: Any])?["log_id"] as? String }
        }
    }

    func waitFor(_ what: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while !what() && Date() < deadline { usleep(50_000) }
        return what()
    }

    @Test func postedEventsAreForwardedAndCounted() throws {
        let dir = TempDir()
        let hec = try HTTPRecorder(dir)
        let serve = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--config", config(dir, port: hec.port)],
                                     environment: ["TEST_HEC_TOKEN": "serve-hec-token"])
        let body = (0..<3).map { event("e-\($0)", seconds: $0) }.joined(separator: "\n")
        #expect(http("POST", serve.url, text: body).status == 200)
        #expect(waitFor { exportedIDs(hec).count == 3 }, "\(serve.stderr)")
        #expect(exportedIDs(hec) == ["e-0", "e-1", "e-2"])
        var text = ""
        #expect(waitFor {
            text = http("GET", serve.url + "/metrics").body
            return text.contains("iw_detect_export_events_total{target=\"splunk\",outcome=\"sent\"} 3")
        }, "\(text)")
        #expect(text.contains("iw_detect_export_queued_events{target=\"splunk\"} 0"), "\(text)")
        #expect(text.contains("iw_detect_export_stalled{target=\"splunk\"} 0"), "\(text)")
        #expect(text.contains("iw_detect_export_requests_failed_total{target=\"splunk\"} 0"), "\(text)")
        #expect(text.contains("# HELP iw_detect_export_lag_seconds"))
        #expect(serve.terminate() == 0)
        #expect(!serve.stderr.contains("serve-hec-token"))
    }

    /// The receiver is down; serve is killed with SIGKILL holding queued events; both come back:
    /// every event answered 200 reaches the receiver.
    @Test func queuedEventsSurviveKillNineWhileTheReceiverIsDown() throws {
        let dir = TempDir()
        var probe: HTTPRecorder? = try HTTPRecorder(dir, name: "probe")
        let port = probe!.port
        probe!.stop()
        probe = nil
        let cfg = config(dir, port: port)
        let env = ["TEST_HEC_TOKEN": "serve-hec-token"]
        let first = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--config", cfg], environment: env)
        for i in 0..<50 { #expect(http("POST", first.url, text: event("k-\(i)", seconds: i)).status == 200) }
        var text = ""
        #expect(waitFor {
            text = http("GET", first.url + "/metrics").body
            // The receiver is down: requests fail, and the events stay queued.
            return text.contains("iw_detect_export_queued_events{target=\"splunk\"} 50")
                && !text.contains("iw_detect_export_requests_failed_total{target=\"splunk\"} 0")
        }, "\(text)")
        first.killNine()
        let hec = try HTTPRecorder(dir, port: port, name: "hec")
        let second = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--config", cfg], environment: env)
        #expect(waitFor { Set(exportedIDs(hec)).count == 50 }, "\(second.stderr)")
        #expect(Set(exportedIDs(hec)) == Set((0..<50).map { "k-\($0)" }))
        #expect(second.terminate() == 0)
    }
}
