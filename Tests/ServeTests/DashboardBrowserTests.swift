import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The dashboard of a `serve` fed with generated traffic that includes attacks, loaded by a real
/// headless Chromium (Debian's): every panel has data, the attacks show, no console errors; and
/// the panels' JSON equals counts computed from the file itself.
@Suite(.serialized) struct DashboardBrowserTests {
    static let chromiumPath = "/usr/bin/chromium"

    /// A serve fed the generated file over HTTP, waited for until every event is in the rollups.
    func fed(_ dir: TempDir, environment: [String: String] = [:], headers: [String: String] = [:]) throws -> (ServeProcess, [String]) {
        let generated = try run(iwDetectBinary, ["generate", "--lines", "6000"])
        #expect(generated.status == 0)
        let lines = generated.stdout.split(separator: "\n").map(String.init)
        // By default processed records stay in the journal as long as the index (hot_days): a
        // session's page reads them back.
        dir.write("config.yaml", "stdout: false\n")
        let serve = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--config", dir.file("config.yaml")], environment: environment)
        for start in stride(from: 0, to: lines.count, by: 500) {
            let chunk = lines[start..<min(lines.count, start + 500)].joined(separator: "\n")
            #expect(http("POST", serve.url + "/ingest", text: chunk, headers: headers).status == 200)
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let ingest = http("GET", serve.url + "/api/panels/ingest?range=30d", headers: headers).json
            if ingest?["events"] as? Int == lines.count { break }
            usleep(100_000)
        }
        return (serve, lines)
    }

    /// Runs Chromium on `url`; the DOM after scripts ran, and every console message it logged.
    func chromium(_ url: String, dir: TempDir, screenshot: String? = nil) throws -> (dom: String, console: [String]) {
        var args = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--enable-logging=stderr", "--v=0",
                    "--user-data-dir=" + dir.file("chromium-profile"), "--window-size=1400,1900"]
        if let screenshot { args.append("--screenshot=" + screenshot) } else { args.append("--dump-dom") }
        let r = try run(Self.chromiumPath, args + [url])
        let console = r.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        return (r.stdout, console)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: chromiumPath), "needs Debian's chromium"))
    func chromiumLoadsTheDashboardWithEveryPanelFilledAndNoConsoleError() throws {
        let dir = TempDir()
        // The harness sees console errors: a page that throws is caught.
        let bad = dir.write("bad.html", "<html><body><script>console.error('planted'); missing();</script></body></html>")
        let probe = try chromium("file://" + bad, dir: dir)
        #expect(probe.console.contains { $0.contains("planted") } && probe.console.contains { $0.contains("Uncaught ReferenceError") }, "\(probe.console)")

        let (serve, lines) = try fed(dir)
        let page = try chromium(serve.url + "/?range=24h", dir: dir)
        #expect(page.console.isEmpty, "console: \(page.console)")
        for name in ["injection_attempts", "top_attackers", "pii_leakage", "guardrail_effectiveness", "latency_percentiles", "tool_calls",
                     "risk_scores", "behavioral_drift"] {
            let marker = "data-panel=\"\(name)\" data-points=\""
            let range = try #require(page.dom.range(of: marker), "panel \(name) is on the page")
            let points = Int(page.dom[range.upperBound...].prefix { $0.isNumber }) ?? 0
            #expect(points > 0, "panel \(name) has data")
        }
        // The attacks: the planted attackers rank first, the injection series has columns.
        let attackers = page.dom.range(of: "data-panel=\"top_attackers\"").map { String(page.dom[$0.upperBound...].prefix(3000)) } ?? ""
        #expect(attackers.contains(">attacker-0<") && attackers.contains(">attacker-4<"), "\(attackers)")
        let injection = page.dom.range(of: "data-panel=\"injection_attempts\"").map { String(page.dom[$0.upperBound...].prefix(20000)) } ?? ""
        #expect(injection.contains("class=\"bar attack\""))
        #expect(page.dom.contains("rapid_fire_injection_attempts"), "the latest alerts are listed")
        // An alert's page opens from its link.
        let link = try #require(page.dom.range(of: #"href="/alerts/[0-9a-f]+""#, options: .regularExpression))
        let path = page.dom[link].dropFirst(6).dropLast()
        let detail = try chromium(serve.url + path, dir: dir)
        #expect(detail.console.isEmpty && detail.dom.contains("Delivery"), "\(detail.console)")
        // And from an alert to its session's events, read back from the journal's records.
        let sessionPage = http("GET", serve.url + "/sessions/sess-attack-0").body
        let expected = lines.filter { $0.contains("\"session_id\":\"sess-attack-0\"") }.count
        #expect(expected > 0)
        #expect(sessionPage.components(separatedBy: "<tr class=\"event\">").count - 1 == expected, "\(sessionPage.suffix(2000))")
        #expect(!sessionPage.contains("are missing"))
        #expect(sessionPage.contains("rapid_fire_injection_attempts"), "the session's alert is marked")
        #expect(page.dom.contains("href=\"/sessions/sess-attack-"), "the alerts link to their sessions")

        let shot = dir.file("dashboard.png")
        _ = try chromium(serve.url + "/?range=24h", dir: dir, screenshot: shot)
        let png = try #require(FileManager.default.contents(atPath: shot))
        #expect(png.count > 20_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a screenshot was taken")
        #expect(serve.terminate() == 0)
    }

    @Test func thePanelEndpointsEqualCountsFromTheFile() throws {
        let dir = TempDir()
        let (serve, lines) = try fed(dir)
        var injection = 0, pii = 0, blocked = 0
        var attackers: [String: Int] = [:], tools: [String: Int] = [:]
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if (o["input_injection_score"] as? Double ?? 0) > 0.7 {
                injection += 1
                attackers[o["user_id"] as! String, default: 0] += 1
            }
            if o["output_pii_detected"] as? Bool == true { pii += 1 }
            if o["guardrail_action"] as? String == "block" { blocked += 1 }
            for call in o["tool_calls"] as? [[String: Any]] ?? [] { tools[call["name"] as! String, default: 0] += 1 }
        }
        func panel(_ name: String) -> [String: Any] { http("GET", serve.url + "/api/panels/\(name)?range=30d").json ?? [:] }
        #expect(panel("injection_attempts")["total"] as? Int == injection)
        #expect(panel("pii_leakage")["total"] as? Int == pii)
        #expect(panel("guardrail_effectiveness")["blocked"] as? Int == blocked)
        let users = (panel("top_attackers")["users"] as? [[String: Any]] ?? []).map { ($0["user_id"] as! String, $0["attempts"] as! Int) }
        #expect(Dictionary(uniqueKeysWithValues: users) == attackers)
        let calls = (panel("tool_calls")["tools"] as? [[String: Any]] ?? []).map { ($0["name"] as! String, $0["calls"] as! Int) }
        #expect(Dictionary(uniqueKeysWithValues: calls) == tools)
        let bins = (panel("risk_scores")["bins"] as? [[String: Any]] ?? []).map { $0["count"] as! Int }
        #expect(bins.reduce(0, +) == lines.count)
        let models = panel("latency_percentiles")["models"] as? [[String: Any]] ?? []
        #expect(models.count == 2 && models.allSatisfy { ($0["p50"] as? Double ?? 0) <= ($0["p99"] as? Double ?? 0) })
        #expect((panel("behavioral_drift")["metrics"] as? [Any])?.count == 7)
        #expect(http("GET", serve.url + "/api/panels/nope").status == 404)
        #expect(http("GET", serve.url + "/api/panels/tool_calls?range=soon").status == 400)
        #expect(serve.terminate() == 0)
    }

    @Test func theBearerTokenProtectsThePagesToo() throws {
        let dir = TempDir()
        dir.write("config.yaml", "stdout: false\n")
        let serve = try ServeProcess(dir, db: dir.file("state.db"), arguments: ["--config", dir.file("config.yaml")],
                                     environment: ["IW_DETECT_HTTP_TOKEN": "s3cret-token"])
        for path in ["/", "/api/panels/tool_calls", "/alerts/abc"] {
            #expect(http("GET", serve.url + path).status == 401, "\(path)")
            #expect(http("GET", serve.url + path, headers: ["Authorization": "Bearer wrong"]).status == 401, "\(path)")
        }
        #expect(http("GET", serve.url + "/", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
        #expect(http("GET", serve.url + "/api/panels/tool_calls", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
        #expect(http("GET", serve.url + "/alerts/abc", headers: ["Authorization": "Bearer s3cret-token"]).status == 404)
        #expect(serve.terminate() == 0)
    }
}
