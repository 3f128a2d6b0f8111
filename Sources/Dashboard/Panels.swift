import Alerts
import Baseline
import Foundation
import IWDetectCore
import Pipeline

/// A time range of the panels, ending at the stream clock (the newest event's five minutes), so a
/// replayed file shows its own days.
public struct PanelRange: Sendable, Equatable {
    /// As given (`24h`).
    public let name: String
    public let span: EventTime.Duration
    /// Seconds per point of the series.
    public let step: Int64

    /// The dashboard's choices.
    public static let choices = ["1h", "24h", "7d", "30d"]
    static let niceSteps: [Int64] = [300, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400]

    /// A range from a duration (`1h`, `24h`, `7d`, `90m`); nil for anything else, or a range under
    /// 5 minutes or over 400 days.
    public init?(_ text: String) {
        guard let d = EventTime.Duration(parsing: text), d.micros >= 300_000_000, d.micros <= 400 * EventTime.microsPerDay else { return nil }
        name = text
        span = d
        let seconds = d.micros / 1_000_000
        // At most about 170 points: 1h by 5 minutes, 24h by 15 minutes, 7d by hour, 30d by 6 hours.
        let nice = PanelRange.niceSteps.first { $0 * 170 >= seconds } ?? 86_400 * ((seconds / 170 + 86_399) / 86_400)
        // Past the five-minute buckets' retention the hour buckets are read: steps of an hour at least.
        step = d > Rollups.fineRetention ? max(nice, 3600) : nice
    }

    /// Five-minute buckets serve ranges up to their retention at steps under an hour; hours the rest.
    var resolution: Int64 { span <= Rollups.fineRetention && step < 3600 ? Rollups.fine : Rollups.hour }
}

/// The monitoring guide's eight panels (Step 6) over one range, with the latest alerts and the
/// ingest's health, read from the rollups and the alert tables of a state database.
public struct PanelSet: Sendable {
    public static let names = ["injection_attempts", "top_attackers", "pii_leakage", "guardrail_effectiveness",
                               "latency_percentiles", "tool_calls", "risk_scores", "behavioral_drift", "alerts", "ingest"]

    public var range: PanelRange
    /// The series' first point and the range's end (exclusive), in event time.
    public var start: EventTime
    public var end: EventTime
    /// Every bucket of the range added up.
    public var total: RollupBucket
    /// Per step of the range, oldest first.
    public var points: [Point]
    public var drift: [DriftSeries]
    public var alerts: [AlertRow]
    public var ingest: Ingest

    public struct Point: Sendable {
        public var time: EventTime
        public var events: Int64
        public var injection: Int64
        public var pii: Int64
        public var blocked: Int64
        public var allowed: Int64
    }

    public struct DriftSeries: Sendable {
        public var metric: String
        public var points: [DriftPoint]
    }

    /// A step's mean of the metric, and the band the baseline expects a mean of `n` values in:
    /// baseline mean ± 3 standard errors (3·std/√n).
    public struct DriftPoint: Sendable {
        public var time: EventTime
        public var mean: Double
        public var n: Int64
        public var baselineMean: Double?
        public var bandLow: Double?
        public var bandHigh: Double?
        public var outside: Bool { guard let lo = bandLow, let hi = bandHigh else { return false }; return mean < lo || mean > hi }
    }

    public struct AlertRow: Sendable {
        public var id: String
        public var rule: String
        public var severity: String
        public var time: EventTime
        public var summary: String
        public var userID: String?
        public var sessionID: String?
        /// Per sink: delivered, pending or dead, and attempts so far.
        public var deliveries: [(sink: String, status: String, attempts: Int64)]
    }

    public struct Ingest: Sendable {
        /// Events in the range and their rate over it (event time).
        public var events: Int64
        public var eventsPerSecond: Double
        /// Lines rejected since the database began, by reason, and the latest few.
        public var rejects: [(reason: String, count: Int64)]
        public var latestRejects: [(source: String, line: Int64, reason: String, detail: String)]
        /// The newest event's time, and how far it is behind the wall clock.
        public var streamClock: EventTime?
        public var lagSeconds: Double?
        /// Set by `serve`: lines per second read over the last minute, from the running pipeline.
        public var liveLinesPerSecond: Double?
    }

    // MARK: - Reading

    /// The top `n` entries of a count map, largest first, then by name.
    public static func top(_ map: [String: Int64], _ n: Int) -> [(String, Int64)] {
        Array(map.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n))
    }

    /// Reads the panels from `db`, the range ending at the stream clock (the end of the newest
    /// five minutes with events) or at `end` when given.
    public static func read(_ db: Database, range: PanelRange, end givenEnd: EventTime? = nil, now: Date = Date(), alertLimit: Int = 20) throws -> PanelSet {
        // The newest buckets not more than a day past the wall clock (an event dated in the future
        // does not move every range past the data).
        let limit = Int64(now.timeIntervalSince1970) + 86_400
        let newestFine = try db.query("SELECT max(bucket) FROM rollups WHERE res = ? AND bucket <= ?", [.int(Rollups.fine), .int(limit / Rollups.fine)]) {
            $0.isNull(0) ? nil : $0.int(0)
        }.first ?? nil
        let newestHour = try db.query("SELECT max(bucket) FROM rollups WHERE res = ? AND bucket <= ?", [.int(Rollups.hour), .int(limit / Rollups.hour)]) {
            $0.isNull(0) ? nil : $0.int(0)
        }.first ?? nil
        let clock: EventTime? = newestFine.map { EventTime(micros: ($0 + 1) * Rollups.fine * 1_000_000) } ?? newestHour.map { EventTime(micros: ($0 + 1) * 3_600_000_000) }
        let stepMicros = range.step * 1_000_000
        let rawEnd = givenEnd ?? clock ?? EventTime(seconds: now.timeIntervalSince1970)
        let end = EventTime(micros: ceilDiv(rawEnd.micros, stepMicros) * stepMicros)
        let start = end - range.span
        let res = range.resolution
        let buckets = try rows(db, res: res, from: start, to: end)

        var total = RollupBucket()
        let count = Int((end.micros - start.micros) / stepMicros)
        var points = (0..<count).map { Point(time: EventTime(micros: start.micros + Int64($0) * stepMicros), events: 0, injection: 0, pii: 0, blocked: 0, allowed: 0) }
        for (time, b) in buckets {
            total.merge(b)
            let i = Int((time.micros - start.micros) / stepMicros)
            guard points.indices.contains(i) else { continue }
            points[i].events += b.events
            points[i].injection += b.injection
            points[i].pii += b.pii
            points[i].blocked += b.guardrail[0] + b.guardrail[2]
            points[i].allowed += b.guardrail[1] + b.guardrail[3]
        }
        if res == Rollups.fine {
            // Latency sketches are kept per hour: the percentiles cover the hours the range touches.
            let hourStart = EventTime(micros: start.hour * EventTime.microsPerHour)
            total.latency = [:]
            for (_, b) in try rows(db, res: Rollups.hour, from: hourStart, to: end) {
                for (k, sketch) in b.latency {
                    if total.latency[k] == nil { total.latency[k] = sketch } else { total.latency[k]!.merge(sketch) }
                }
            }
        }
        let drift = try driftSeries(db, start: start, end: end, step: range.step)
        let alerts = try alertRows(db, from: start, to: end, limit: alertLimit)
        var ingest = Ingest(events: total.events, eventsPerSecond: Double(total.events) / (Double(range.span.micros) / 1e6),
                            rejects: [], latestRejects: [], streamClock: clock, lagSeconds: nil)
        ingest.rejects = try db.query("SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY 2 DESC, 1") { ($0.text(0), $0.int(1)) }
        ingest.latestRejects = try db.query("SELECT source, line, reason, detail FROM rejects ORDER BY id DESC LIMIT 5") { ($0.text(0), $0.int(1), $0.text(2), $0.text(3)) }
        if let clock { ingest.lagSeconds = max(0, now.timeIntervalSince1970 - Double(clock.micros) / 1e6) }
        return PanelSet(range: range, start: start, end: end, total: total, points: points, drift: drift, alerts: alerts, ingest: ingest)
    }

    static func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

    /// The decoded buckets of a resolution in [from, to), oldest first.
    static func rows(_ db: Database, res: Int64, from: EventTime, to: EventTime) throws -> [(EventTime, RollupBucket)] {
        let size = res * 1_000_000
        let texts = try db.query("SELECT bucket, data FROM rollups WHERE res = ? AND bucket >= ? AND bucket < ? ORDER BY bucket",
                                 [.int(res), .int(ceilDiv(from.micros, size)), .int(ceilDiv(to.micros, size))]) { ($0.int(0), $0.text(1)) }
        return texts.compactMap { bucket, text in
            guard let json = try? JSONValue.parse(text), let b = RollupBucket(json: json) else { return nil }
            return (EventTime(micros: bucket * size), b)
        }
    }

    /// Hourly means against the baseline band; at least the last 24 hours.
    static func driftSeries(_ db: Database, start: EventTime, end: EventTime, step: Int64) throws -> [DriftSeries] {
        let from = EventTime(micros: min(start, end - .hours(24)).hour * EventTime.microsPerHour)
        let stepMicros = max(step, 3600) * 1_000_000
        var series: [String: [Int64: (sum: Double, n: Int64, mean: Double?, std: Double?)]] = [:]
        var order: [String] = []
        for (time, b) in try rows(db, res: Rollups.hour, from: from, to: end) {
            let k = (time.micros - from.micros) / stepMicros
            for c in b.metrics where c.n > 0 {
                if series[c.name] == nil { order.append(c.name) }
                var cell = series[c.name, default: [:]][k] ?? (0, 0, nil, nil)
                cell.sum += c.sum
                cell.n += c.n
                if cell.mean == nil { cell.mean = c.baseMean; cell.std = c.baseStd }
                series[c.name, default: [:]][k] = cell
            }
        }
        return order.map { name in
            let cells = series[name]!.sorted { $0.key < $1.key }
            return DriftSeries(metric: name, points: cells.map { k, c in
                let mean = c.sum / Double(c.n)
                var p = DriftPoint(time: EventTime(micros: from.micros + k * stepMicros), mean: mean, n: c.n, baselineMean: c.mean)
                if let m = c.mean, let s = c.std {
                    let half = 3 * s / Double(c.n).squareRoot()
                    p.bandLow = m - half
                    p.bandHigh = m + half
                }
                return p
            })
        }
    }

    /// The latest alerts in [from, to), newest first, with each sink's delivery state.
    static func alertRows(_ db: Database, from: EventTime, to: EventTime, limit: Int) throws -> [AlertRow] {
        var rows = try db.query("SELECT id, rule, severity, event_time, json FROM alerts WHERE event_time >= ? AND event_time < ? ORDER BY event_time DESC, seq DESC LIMIT ?",
                                [.int(from.micros), .int(to.micros), .int(Int64(limit))]) { s -> AlertRow in
            let record = try? AlertRecord(json: s.text(4))
            return AlertRow(id: s.text(0), rule: s.text(1), severity: s.text(2), time: EventTime(micros: s.int(3)), summary: record?.brief ?? "",
                            userID: record?.userID, sessionID: record?.sessionID, deliveries: [])
        }
        for i in rows.indices {
            rows[i].deliveries = try db.query("SELECT sink, status, attempts FROM outbox WHERE alert_id = ? ORDER BY sink", [.text(rows[i].id)]) { ($0.text(0), $0.text(1), $0.int(2)) }
        }
        return rows
    }

    // MARK: - JSON

    /// One panel as the JSON of `/api/panels/<name>`; nil for an unknown name.
    public func json(_ name: String) -> JSONValue? {
        func series(_ value: (Point) -> Int64) -> JSONValue { .array(points.map { .object([("t", .string($0.time.description)), ("count", .int(value($0)))]) }) }
        func opt(_ d: Double?) -> JSONValue { d.map { .number($0) } ?? .null }
        let body: [(String, JSONValue)]
        switch name {
        case "injection_attempts":
            body = [("description", .string("inputs with input_injection_score > 0.7 or an InferenceWall INJ- match, per step")),
                    ("total", .int(total.injection)), ("series", series(\.injection))]
        case "top_attackers":
            body = [("description", .string("users ranked by injection attempts (at most \(RollupBucket.maxUsers) kept per bucket; later ones in \(RollupBucket.other))")),
                    ("users", .array(PanelSet.top(total.attackers, 10).map { .object([("user_id", .string($0.0)), ("attempts", .int($0.1))]) }))]
        case "pii_leakage":
            body = [("description", .string("outputs with output_pii_detected or an InferenceWall DL- match, per step")),
                    ("total", .int(total.pii)), ("series", series(\.pii))]
        case "guardrail_effectiveness":
            let g = total.guardrail
            let blocked = g[0] + g[2], allowed = g[1] + g[3]
            body = [("description", .string("blocked against allowed requests: the inference log's guardrail_action and InferenceWall's decision")),
                    ("blocked", .int(blocked)), ("allowed", .int(allowed)), ("flagged", .int(g[4])),
                    ("block_ratio", blocked + allowed > 0 ? .number(Double(blocked) / Double(blocked + allowed)) : .null),
                    ("inference_log", .object([("blocked", .int(g[0])), ("allowed", .int(g[1]))])),
                    ("inferencewall", .object([("blocked", .int(g[2])), ("allowed", .int(g[3])), ("flagged", .int(g[4]))])),
                    ("series", .array(points.map { .object([("t", .string($0.time.description)), ("blocked", .int($0.blocked)), ("allowed", .int($0.allowed))]) }))]
        case "latency_percentiles":
            body = [("description", .string("inference_latency_ms percentiles per model_id (sketch, about 4 % relative error; per hour: the hours the range touches)")),
                    ("models", .array(latencyRows.map { r in
                        .object([("model_id", .string(r.model)), ("count", .int(r.count)), ("p50", opt(r.p50)), ("p95", opt(r.p95)), ("p99", opt(r.p99))])
                    }))]
        case "tool_calls":
            body = [("description", .string("tool calls by tool name (at most \(RollupBucket.maxTools) names per bucket)")),
                    ("tools", .array(PanelSet.top(total.tools, 50).map { .object([("name", .string($0.0)), ("calls", .int($0.1))]) }))]
        case "risk_scores":
            body = [("description", .string("risk_score histogram, bins of 0.1")),
                    ("bins", .array(total.risk.indices.map { i in
                        .object([("from", .number(Double(i) / 10)), ("to", .number(Double(i + 1) / 10)), ("count", .int(total.risk[i]))])
                    }))]
        case "behavioral_drift":
            body = [("description", .string("each metric's mean per step (at least hourly, at least the last 24 h) against its baseline: mean ± 3·std/√n")),
                    ("metrics", .array(drift.map { s in
                        .object([("metric", .string(s.metric)), ("points", .array(s.points.map { p in
                            .object([("t", .string(p.time.description)), ("mean", .number(p.mean)), ("n", .int(p.n)),
                                     ("baseline_mean", opt(p.baselineMean)), ("band_low", opt(p.bandLow)), ("band_high", opt(p.bandHigh)),
                                     ("outside", .bool(p.outside))])
                        }))])
                    }))]
        case "alerts":
            body = [("alerts", .array(alerts.map { a in
                var o: [(String, JSONValue)] = [("id", .string(a.id)), ("rule", .string(a.rule)), ("severity", .string(a.severity)),
                                                ("time", .string(a.time.description)), ("summary", .string(a.summary))]
                if let u = a.userID { o.append(("user_id", .string(u))) }
                if let s = a.sessionID { o.append(("session_id", .string(s))) }
                o.append(("deliveries", .array(a.deliveries.map { .object([("sink", .string($0.sink)), ("status", .string($0.status)), ("attempts", .int($0.attempts))]) })))
                return .object(o)
            }))]
        case "ingest":
            var o: [(String, JSONValue)] = [("events", .int(ingest.events)), ("events_per_second", .number(ingest.eventsPerSecond)),
                                            ("rejects", .object(ingest.rejects.map { ($0.reason, .int($0.count)) })),
                                            ("latest_rejects", .array(ingest.latestRejects.map {
                                                .object([("source", .string($0.source)), ("line", .int($0.line)), ("reason", .string($0.reason)), ("detail", .string($0.detail))])
                                            })),
                                            ("stream_clock", ingest.streamClock.map { .string($0.description) } ?? .null), ("lag_seconds", opt(ingest.lagSeconds))]
            if let live = ingest.liveLinesPerSecond { o.append(("lines_per_second", .number(live))) }
            body = o
        default:
            return nil
        }
        return .object([("panel", .string(name)), ("range", .string(range.name)), ("start", .string(start.description)),
                        ("end", .string(end.description)), ("step_seconds", .int(range.step))] + body)
    }

    /// Per model, the latency percentiles over the range, most requests first.
    public var latencyRows: [(model: String, count: Int64, p50: Double?, p95: Double?, p99: Double?)] {
        total.latency.map { ($0.key, $0.value.count, $0.value.quantile(0.5), $0.value.quantile(0.95), $0.value.quantile(0.99)) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.model < $1.model }
    }
}
