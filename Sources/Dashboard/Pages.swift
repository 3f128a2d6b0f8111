import Foundation
import IWDetectCore
import Mustache
import Pipeline

/// The dashboard's HTML: one page with the eight panels, the latest alerts and the ingest's
/// health, rendered on the server with inline SVG (no CDN, no script but an optional refresh),
/// the same page `report --html` writes to a file; and an alert's detail page.
public enum Pages {
    /// How a page is rendered.
    public struct Options: Sendable {
        /// Links to the other ranges and an auto-refresh (the live dashboard); off in a report file.
        public var live = true
        /// Where an alert's detail is (`serve`: `/alerts/<id>`); nil: no links.
        public var alertLink: (@Sendable (String) -> String)? = { "alerts/" + $0 }
        /// Where a session's events are; nil: no links.
        public var sessionLink: (@Sendable (String) -> String)?
        public init() {}
    }

    static let library: MustacheLibrary = {
        var l = MustacheLibrary()
        // The templates are constants of this file: a parse error is a bug caught by the tests.
        try! l.register(pageTemplate, named: "page")
        try! l.register(alertTemplate, named: "alert")
        try! l.register(sessionTemplate, named: "session")
        return l
    }()

    /// Escapes text for HTML.
    public static func escape(_ s: String) -> String { Chart.escape(s) }

    /// `2026-11-01T10:15:00Z` as `11-01 10:15`.
    static func short(_ t: EventTime) -> String {
        let s = t.description
        guard s.count >= 16 else { return s }
        let chars = Array(s)
        return String(chars[5..<10]) + " " + String(chars[11..<16])
    }

    /// The dashboard page for a panel set.
    public static func dashboard(_ p: PanelSet, options: Options = Options(), generatedAt: Date = Date()) -> String {
        let times = p.points.map { short($0.time) }
        var panels: [[String: Any]] = []
        func panel(_ id: String, _ title: String, _ subtitle: String, points: Int, _ svg: String) {
            panels.append(["id": id, "title": title, "subtitle": subtitle, "points": points, "empty": points == 0, "svg": svg])
        }
        let inj = p.points.map(\.injection)
        panel("injection_attempts", "Injection attempts over time", "inputs with injection score > 0.7 · \(p.total.injection) in range",
              points: inj.filter { $0 > 0 }.count,
              Chart.columns("injection attempts per step", times: times, series: [("attempts", "bar attack", inj)]))
        let attackers = PanelSet.top(p.total.attackers, 10)
        panel("top_attackers", "Top attacking users", "ranked by injection attempts", points: attackers.count,
              Chart.bars("top attacking users", attackers, cls: "bar attack"))
        let pii = p.points.map(\.pii)
        panel("pii_leakage", "PII leakage events", "outputs where PII was detected · \(p.total.pii) in range",
              points: pii.filter { $0 > 0 }.count, Chart.columns("PII leaks per step", times: times, series: [("PII leaks", "bar leak", pii)]))
        let g = p.total.guardrail
        let blocked = g[0] + g[2], allowed = g[1] + g[3]
        let ratio = blocked + allowed > 0 ? String(format: "%.2f %%", 100 * Double(blocked) / Double(blocked + allowed)) : "n/a"
        panel("guardrail_effectiveness", "Guardrail effectiveness",
              "blocked \(blocked) · allowed \(allowed) · block ratio \(ratio) (inference log \(g[0])/\(g[1]), InferenceWall \(g[2])/\(g[3]), flagged \(g[4]))",
              points: blocked + allowed > 0 ? 1 : 0,
              Chart.columns("blocked and allowed per step", times: times,
                            series: [("allowed", "bar ok", p.points.map(\.allowed)), ("blocked", "bar attack", p.points.map(\.blocked))]))
        let lat = p.latencyRows
        var latencyItems: [(String, Int64)] = []
        for r in lat.prefix(6) {
            for (q, v) in [("p50", r.p50), ("p95", r.p95), ("p99", r.p99)] { latencyItems.append(("\(r.model) \(q)", Int64(min(max((v ?? 0).rounded(), 0), 9e15)))) }
        }
        panel("latency_percentiles", "Model latency percentiles", "inference_latency_ms per model, ms", points: lat.count,
              Chart.bars("latency percentiles per model", latencyItems, cls: "bar lat"))
        let tools = PanelSet.top(p.total.tools, 12)
        panel("tool_calls", "Tool call distribution", "calls by tool name", points: tools.count, Chart.bars("tool calls by name", tools, cls: "bar tool"))
        let bins = (0..<10).map { String(format: "%.1f", Double($0) / 10) }
        panel("risk_scores", "Risk score distribution", "per-interaction risk_score, bins of 0.1", points: p.total.risk.filter { $0 > 0 }.count,
              Chart.columns("risk score histogram", times: bins, series: [("events", "bar risk", p.total.risk)]))
        var drift = ""
        var driftPoints = 0
        for s in p.drift {
            let outside = s.points.filter(\.outside).count
            driftPoints += s.points.count
            drift += "<div><h3>\(Chart.escape(s.metric)) <span class=\"sub\">\(outside) of \(s.points.count) outside the band</span></h3>"
            drift += Chart.band("\(s.metric) against its baseline", times: s.points.map { short($0.time) }, values: s.points.map(\.mean),
                                low: s.points.map(\.bandLow), high: s.points.map(\.bandHigh), centre: s.points.map(\.baselineMean)) + "</div>"
        }
        drift = "<div class=\"multiples\">" + drift + "</div>"
        panel("behavioral_drift", "Behavioural drift", "each metric's mean per step against its baseline (mean ± 3 standard errors)",
              points: driftPoints, drift)

        let alerts: [[String: Any]] = p.alerts.map { a in
            var row: [String: Any] = ["id": a.id, "rule": a.rule, "severity": a.severity, "time": short(a.time), "summary": a.summary,
                                      "deliveries": a.deliveries.map { ["sink": $0.sink, "status": $0.status, "attempts": $0.attempts] }]
            if let link = options.alertLink { row["href"] = link(a.id) }
            if let s = a.sessionID {
                row["session"] = s
                if let link = options.sessionLink { row["sessionHref"] = link(s) }
            }
            return row
        }
        let ingest = p.ingest
        var health: [[String: String]] = [
            ["k": "events in range", "v": String(ingest.events)],
            ["k": "events per second (event time)", "v": String(format: "%.2f", ingest.eventsPerSecond)],
            ["k": "stream clock", "v": ingest.streamClock?.description ?? "no events yet"],
            ["k": "lag behind the wall clock", "v": ingest.lagSeconds.map { String(format: "%.0f s", $0) } ?? "n/a"],
            ["k": "rejected lines", "v": ingest.rejects.isEmpty ? "0" : ingest.rejects.map { "\($0.reason) \($0.count)" }.joined(separator: ", ")],
        ]
        if let live = ingest.liveLinesPerSecond { health.insert(["k": "lines per second (last minute)", "v": String(format: "%.1f", live)], at: 0) }
        let context: [String: Any] = [
            "title": "iw-detect · \(p.range.name)",
            "range": p.range.name, "start": p.start.description, "end": p.end.description,
            "live": options.live,
            "ranges": PanelRange.choices.map { ["name": $0, "current": $0 == p.range.name] },
            "panels": panels, "alerts": alerts, "noAlerts": alerts.isEmpty, "health": health,
            "latestRejects": ingest.latestRejects.map { ["where": "\($0.source):\($0.line)", "reason": $0.reason, "detail": $0.detail] },
            "generated": Timestamp.format(EventTime(seconds: generatedAt.timeIntervalSince1970)),
            "style": style,
        ]
        return library.render(context, withTemplate: "page") ?? ""
    }

    /// An alert's page: its summary, delivery state and stored JSON (already redacted).
    public static func alert(id: String, rule: String, severity: String, time: EventTime, summary: String, json: String,
                             deliveries: [(sink: String, status: String, attempts: Int64)], sessionHref: String?, session: String?) -> String {
        let pretty = (try? JSONValue.parse(json).pretty()) ?? json
        let context: [String: Any] = [
            "id": id, "rule": rule, "severity": severity, "time": time.description, "summary": summary, "json": pretty,
            "deliveries": deliveries.map { ["sink": $0.sink, "status": $0.status, "attempts": $0.attempts] },
            "session": session ?? "", "hasSession": session != nil, "sessionHref": sessionHref ?? false, "style": style,
        ]
        return library.render(context, withTemplate: "alert") ?? ""
    }

    /// A session's events, as `iw-detect session` prints them (no prompt or output text): time,
    /// source and line, user, model, scores, decision, tools, and the alerts marked.
    public static func session(id: String, query: ForensicQuery, alertLink: (String) -> String) -> String {
        let rows: [[String: Any]] = query.hits.map { h in
            let e = h.event
            func v(_ k: String) -> String { e[k].map { $0.stringValue ?? $0.serialized() } ?? "" }
            var tools = ""
            if case .array(let calls)? = e["tool_calls"] { tools = calls.compactMap { $0["name"]?.stringValue }.joined(separator: ", ") }
            return ["time": v("timestamp"), "where": "\(h.source):\(h.line)", "user": v("user_id"), "model": v("model_id"),
                    "injection": v("input_injection_score"), "risk": v("risk_score"), "pii": v("output_pii_detected"),
                    "decision": [v("guardrail_action"), v("decision")].filter { !$0.isEmpty }.joined(separator: " "), "tools": tools,
                    "alerts": h.alerts.map { ["rule": $0.rule, "severity": $0.severity, "href": alertLink($0.id)] }]
        }
        let context: [String: Any] = [
            "id": id, "rows": rows, "count": rows.count, "none": rows.isEmpty && query.securityRecords.isEmpty,
            "gaps": query.gaps.map { ["text": "\($0.source): lines \($0.firstLine)–\($0.lastLine) (\($0.events) event(s)) are missing: \($0.reason)"] },
            "records": query.securityRecords.map { ["json": $0.serialized()] }, "style": style,
        ]
        return library.render(context, withTemplate: "session") ?? ""
    }

    static let sessionTemplate = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>session {{id}} · iw-detect</title><style>{{{style}}}</style></head>
        <body><header><h1>iw-detect</h1><a href="/">dashboard</a></header>
        <main style="display:block">
        <section class="box" id="session"><h2>Session {{id}}</h2><p class="sub">{{count}} event(s), read back from their source; no prompt or output text</p>
        {{#none}}<p class="empty">no events of this session in the index</p>{{/none}}
        {{#gaps}}<p class="status-dead">{{text}}</p>{{/gaps}}
        <table><tr><th>time</th><th>source</th><th>user</th><th>model</th><th>injection</th><th>risk</th><th>PII</th><th>decision</th><th>tools</th><th>alerts</th></tr>
        {{#rows}}<tr class="event"><td>{{time}}</td><td>{{where}}</td><td>{{user}}</td><td>{{model}}</td><td>{{injection}}</td><td>{{risk}}</td><td>{{pii}}</td><td>{{decision}}</td><td>{{tools}}</td>
        <td>{{#alerts}}<a class="sev-{{severity}}" href="{{href}}">{{rule}}</a> {{/alerts}}</td></tr>{{/rows}}
        </table>
        {{#records}}<pre>{{json}}</pre>{{/records}}
        </section></main></body></html>
        """

    /// The dashboard's one script, served from `/static/refresh.js` (the page's Content-Security-
    /// Policy allows scripts from the server only, none inline): the opt-in 30 s refresh.
    public static let refreshScript = """
        (function () {
          var box = document.getElementById("refresh");
          var on = window.location.hash === "#refresh";
          box.checked = on;
          box.addEventListener("change", function () { window.location.hash = box.checked ? "refresh" : ""; if (box.checked) { window.location.reload(); } });
          if (on) { window.setTimeout(function () { window.location.reload(); }, 30000); }
        })();

        """

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
        header{display:flex;gap:16px;align-items:baseline;padding:12px 20px;background:#1d2330;color:#fff;flex-wrap:wrap}
        header h1{font-size:18px;margin:0}header a{color:#cfd8ff;margin-right:8px}header a.on{color:#fff;font-weight:700;text-decoration:none}
        main{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:14px;padding:14px 20px}
        section.panel,section.box{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}
        h2{font-size:15px;margin:0 0 2px}h3{font-size:13px;margin:8px 0 0}.sub{color:#667;font-size:12px;font-weight:400;margin:0}
        .chart{width:100%;height:auto}.axis{stroke:#99a}.tick,.label,.value{font-size:10px;fill:#556}
        .bar{fill:#5b7bd5}.attack{fill:#d5483b}.leak{fill:#c77d19}.ok{fill:#8fb996}.lat{fill:#7a5bd5}.tool{fill:#3b9ad5}.risk{fill:#d59a3b}
        .band{fill:#5b7bd5;opacity:.18}.centre{fill:none;stroke:#5b7bd5;stroke-dasharray:3 3}.line{fill:none;stroke:#1d2330;stroke-width:1.5}
        .dot{fill:#1d2330}.dot.out{fill:#d5483b}.empty{color:#889;font-style:italic}
        table{border-collapse:collapse;width:100%;font-size:12px}td,th{border-bottom:1px solid #e6e8ee;padding:3px 6px;text-align:left;vertical-align:top}
        .sev-critical,.sev-high{color:#b3261e;font-weight:600}.sev-medium{color:#a15c00}.status-dead{color:#b3261e}.status-pending{color:#a15c00}
        pre{white-space:pre-wrap;word-break:break-word;background:#f0f2f6;padding:8px;border-radius:4px}
        #behavioral_drift{grid-column:1/-1}.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:4px 16px}
        footer{color:#889;font-size:11px;padding:0 20px 16px}
        """

    static let pageTemplate = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>{{title}}</title><style>{{{style}}}</style></head>
        <body>
        <header><h1>iw-detect</h1>
        {{#live}}<nav>{{#ranges}}<a href="?range={{name}}" class="{{#current}}on{{/current}}">{{name}}</a>{{/ranges}}</nav>{{/live}}
        <span>{{start}} – {{end}}</span>
        {{#live}}<label><input type="checkbox" id="refresh"> refresh every 30 s</label>{{/live}}
        </header>
        <main>
        {{#panels}}
        <section class="panel" id="{{id}}" data-panel="{{id}}" data-points="{{points}}">
        <h2>{{title}}</h2><p class="sub">{{subtitle}}</p>
        {{^empty}}{{{svg}}}{{/empty}}{{#empty}}<p class="empty">no data in this range</p>{{/empty}}
        </section>
        {{/panels}}
        <section class="box" id="alerts"><h2>Latest alerts</h2>
        {{#noAlerts}}<p class="empty">no alerts in this range</p>{{/noAlerts}}
        {{^noAlerts}}<table><tr><th>time</th><th>rule</th><th>severity</th><th>summary</th><th>delivery</th></tr>
        {{#alerts}}<tr class="alert"><td>{{time}}</td><td>{{#href}}<a href="{{href}}">{{rule}}</a>{{/href}}{{^href}}{{rule}}{{/href}}</td>
        <td class="sev-{{severity}}">{{severity}}</td><td>{{summary}}{{#session}}<br><span class="sub">session {{#sessionHref}}<a href="{{sessionHref}}">{{session}}</a>{{/sessionHref}}{{^sessionHref}}{{session}}{{/sessionHref}}</span>{{/session}}</td>
        <td>{{#deliveries}}<span class="status-{{status}}">{{sink}}: {{status}}</span><br>{{/deliveries}}</td></tr>{{/alerts}}
        </table>{{/noAlerts}}
        </section>
        <section class="box" id="ingest"><h2>Ingest health</h2>
        <table>{{#health}}<tr><th>{{k}}</th><td>{{v}}</td></tr>{{/health}}</table>
        {{#latestRejects}}<p class="sub">{{where}}: {{reason}} ({{detail}})</p>{{/latestRejects}}
        </section>
        </main>
        <footer>generated {{generated}} · ranges end at the stream clock (the newest event)</footer>
        {{#live}}<script src="/static/refresh.js"></script>{{/live}}
        </body></html>
        """

    static let alertTemplate = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{{rule}} · iw-detect</title><style>{{{style}}}</style></head>
        <body><header><h1>iw-detect</h1><a href="../">dashboard</a></header>
        <main style="display:block">
        <section class="box"><h2>{{rule}} <span class="sev-{{severity}}">{{severity}}</span></h2>
        <p>{{summary}}</p><p class="sub">{{time}} · alert {{id}}</p>
        {{#hasSession}}<p>session {{#sessionHref}}<a href="{{sessionHref}}">{{session}}</a>{{/sessionHref}}{{^sessionHref}}{{session}}{{/sessionHref}}</p>{{/hasSession}}
        <h3>Delivery</h3><table>{{#deliveries}}<tr><td>{{sink}}</td><td class="status-{{status}}">{{status}}</td><td>{{attempts}} attempt(s)</td></tr>{{/deliveries}}</table>
        <h3>Alert</h3><pre>{{json}}</pre></section>
        </main></body></html>
        """
}
