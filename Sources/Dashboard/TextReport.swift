import Foundation
import IWDetectCore
import Pipeline

/// The panels as terminal tables (`iw-detect report` on a terminal).
public enum TextReport {
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 || header[i].isEmpty ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ")
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }

    /// A bar of up to `width` cells for `value` out of `high`.
    static func bar(_ value: Int64, _ high: Int64, width: Int = 30) -> String {
        guard high > 0, value > 0 else { return "" }
        return String(repeating: "█", count: max(1, Int((Double(value) / Double(high) * Double(width)).rounded())))
    }

    static func fmt(_ d: Double?) -> String { d.map { Chart.number($0) } ?? "-" }

    /// Every panel, one titled table after another.
    public static func render(_ p: PanelSet) -> String {
        var out: [String] = ["iw-detect report: \(p.start) to \(p.end) (\(p.range.name), steps of \(p.range.step / 60) min)", ""]
        func section(_ title: String, _ body: String) { out += [title, body, ""] }
        func series(_ values: [(EventTime, Int64)]) -> String {
            let nonzero = values.filter { $0.1 > 0 }
            guard !nonzero.isEmpty else { return "(none in range)" }
            let high = nonzero.map(\.1).max() ?? 1
            return table(["step", "count", ""], nonzero.map { [$0.0.description, String($0.1), bar($0.1, high)] })
        }
        section("Injection attempts over time (injection score > 0.7): \(p.total.injection)", series(p.points.map { ($0.time, $0.injection) }))
        let attackers = PanelSet.top(p.total.attackers, 10)
        section("Top attacking users", attackers.isEmpty ? "(none in range)" : table(["user_id", "attempts"], attackers.map { [$0.0, String($0.1)] }))
        section("PII leakage events: \(p.total.pii)", series(p.points.map { ($0.time, $0.pii) }))
        let g = p.total.guardrail
        let blocked = g[0] + g[2], allowed = g[1] + g[3]
        section("Guardrail effectiveness", table(["source", "blocked", "allowed", "flagged", "block ratio"], [
            ["inference log", String(g[0]), String(g[1]), "-", g[0] + g[1] > 0 ? String(format: "%.2f %%", 100 * Double(g[0]) / Double(g[0] + g[1])) : "-"],
            ["InferenceWall", String(g[2]), String(g[3]), String(g[4]), g[2] + g[3] > 0 ? String(format: "%.2f %%", 100 * Double(g[2]) / Double(g[2] + g[3])) : "-"],
            ["all", String(blocked), String(allowed), String(g[4]), blocked + allowed > 0 ? String(format: "%.2f %%", 100 * Double(blocked) / Double(blocked + allowed)) : "-"],
        ]))
        let lat = p.latencyRows
        section("Model latency percentiles (inference_latency_ms)", lat.isEmpty ? "(none in range)" :
            table(["model_id", "requests", "p50", "p95", "p99"], lat.map { [$0.model, String($0.count), fmt($0.p50), fmt($0.p95), fmt($0.p99)] }))
        let tools = PanelSet.top(p.total.tools, 20)
        section("Tool call distribution", tools.isEmpty ? "(none in range)" : table(["tool", "calls", ""], tools.map { [$0.0, String($0.1), bar($0.1, tools[0].1)] }))
        let high = p.total.risk.max() ?? 0
        section("Risk score distribution", table(["risk_score", "events", ""], p.total.risk.indices.map {
            [String(format: "%.1f–%.1f", Double($0) / 10, Double($0 + 1) / 10), String(p.total.risk[$0]), bar(p.total.risk[$0], high)]
        }))
        section("Behavioural drift (mean per step against the baseline: mean ± 3·std/√n)", p.drift.isEmpty ? "(none in range)" :
            table(["metric", "steps", "outside band", "latest mean", "baseline mean", "band"], p.drift.map { s in
                let last = s.points.last
                return [s.metric, String(s.points.count), String(s.points.filter(\.outside).count), fmt(last?.mean), fmt(last?.baselineMean),
                        last?.bandLow.map { "\(fmt($0))–\(fmt(last?.bandHigh))" } ?? "-"]
            }))
        section("Latest alerts", p.alerts.isEmpty ? "(none in range)" : table(["time", "severity", "rule", "summary", "delivery"], p.alerts.map { a in
            [a.time.description, a.severity, a.rule, a.summary.count > 70 ? String(a.summary.prefix(69)) + "…" : a.summary,
             a.deliveries.map { "\($0.sink):\($0.status)" }.joined(separator: " ")]
        }))
        let i = p.ingest
        section("Ingest health", table(["measure", "value"], [
            ["events in range", String(i.events)],
            ["events per second (event time)", String(format: "%.2f", i.eventsPerSecond)],
            ["stream clock", i.streamClock?.description ?? "no events yet"],
            ["rejected lines", i.rejects.isEmpty ? "0" : i.rejects.map { "\($0.reason) \($0.count)" }.joined(separator: ", ")],
        ]))
        return out.joined(separator: "\n")
    }
}
