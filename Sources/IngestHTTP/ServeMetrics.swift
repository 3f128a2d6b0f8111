import Alerts
import Exports
import Foundation
import IWDetectCore
import Ingest
import CoreMetrics
import Metrics
import Pipeline
import Prometheus
import Synchronization

/// The metrics `serve` exposes at `/metrics`, in the Prometheus text format: recorded through
/// swift-metrics into a swift-prometheus registry. Labels are bounded: input kinds, reject
/// reasons, rule names, severities, sink names, metric names, HTTP status codes; never a user,
/// session or address.
public final class ServeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Help text per metric family, added to the exposition (swift-metrics carries none).
    static let help: [String: String] = [
        "iw_detect_lines_read_total": "Lines (records) read, by input kind (file, stdin, http).",
        "iw_detect_lines_accepted_total": "Lines decoded into events, by input kind.",
        "iw_detect_lines_rejected_total": "Lines rejected, by input kind and reason (see iw-detect rejects).",
        "iw_detect_alerts_raised_total": "Alerts raised, by rule and severity.",
        "iw_detect_alerts_suppressed_total": "Detections suppressed as duplicates, by rule.",
        "iw_detect_deliveries_total": "Alert deliveries to network sinks, by sink and outcome (delivered, failed, dead).",
        "iw_detect_outbox_pending": "Alert deliveries waiting in the outbox, by sink.",
        "iw_detect_outbox_dead": "Dead-lettered alert deliveries, by sink (see alerts redeliver).",
        "iw_detect_journal_depth": "Records received by the HTTP input and not yet processed.",
        "iw_detect_journal_bound": "The journal's bound (serve.max_journal_records); requests past it get 503.",
        "iw_detect_batch_commit_duration_seconds": "Time to commit a batch (state, rejects, alerts, checkpoints) and write local sinks.",
        "iw_detect_event_lag_seconds": "Wall clock minus the stream clock (the newest event time seen), at the last commit.",
        "iw_detect_baseline_ready": "1 when the metric's global baseline is ready (enough samples and days), else 0.",
        "iw_detect_baseline_quarantined_events_total": "Events held in quarantine because they fired only statistical rules (see Baselines, Quarantine).",
        "iw_detect_baseline_quarantine_outcomes_total": "Quarantines closed, by outcome: admitted (a shift became the new normal, baseline_shift_accepted) or refused (too small a share; its events never train).",
        "iw_detect_baseline_quarantines_open": "Quarantines open now (one per segment at most).",
        "iw_detect_rule_reloads_total": "Rule-set reloads, by outcome (ok, refused).",
        "iw_detect_http_requests_total": "Requests to the HTTP input, by status code.",
        "iw_detect_http_request_duration_seconds": "Time from a request's arrival to its answer, at the HTTP input.",
        "iw_detect_journal_commit_duration_seconds": "Time of one group commit of the input journal (the requests that share it are answered after it).",
        "iw_detect_journal_commit_requests": "Requests per group commit of the input journal.",
        "iw_detect_export_events_total": "Events of the inference stream per export target, by outcome: sent (acknowledged by the receiver), skipped (the target was stalled past max_lag, or the event was larger than the receiver takes), dead (refused for good max_attempts times; kept in export_dead).",
        "iw_detect_export_requests_failed_total": "Export requests that failed (they are retried), by target.",
        "iw_detect_export_queued_events": "Events queued for an export target and not yet acknowledged.",
        "iw_detect_export_lag_seconds": "Seconds the oldest event queued for an export target has waited (0 when nothing is queued).",
        "iw_detect_export_stalled": "1 while an export target is stalled (its oldest queued event waited more than max_lag: new events are skipped), else 0.",
    ]

    /// What was last reported to the counters (the summary is cumulative).
    private let last = Mutex(Reported())
    struct Reported {
        var inputs: [String: IngestSummary.InputCounts] = [:]
        var alerts: [String: Int64] = [:]
        var suppressed: [String: Int64] = [:]
        var reloads: Int64 = 0
        var refused: Int64 = 0
        var deliveries: [String: DeliveryService.SinkStats] = [:]
        var exports: [String: ExportService.Stats] = [:]
        var exportSkipped: [String: Int64] = [:]
        /// The database's quarantine counts when serve started reporting (counters start at 0).
        var quarantine: (events: Int64, admitted: Int64, refused: Int64)?
    }

    public init() {
        registry = PrometheusCollectorRegistry()
    }

    /// Makes this registry the process's metrics backend (once, at start).
    public func bootstrap() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "iw_detect_batch_commit_duration_seconds": [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5)],
            "iw_detect_journal_commit_duration_seconds": [.microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                                                          .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250)],
            "iw_detect_http_request_duration_seconds": [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                                                        .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1)],
        ]
        factory.valueHistogramBuckets = ["iw_detect_journal_commit_requests": [1, 2, 4, 8, 16, 32, 64, 128]]
        MetricsSystem.bootstrap(factory)
    }

    /// After a commit (on the pipeline's thread): the summary's growth into the counters.
    public func committed(_ summary: IngestSummary, duration: Duration, streamClock: EventTime, baseline: [(String, Bool)],
                          quarantine: (events: Int64, admitted: Int64, refused: Int64, open: Int) = (0, 0, 0, 0)) {
        Gauge(label: "iw_detect_baseline_quarantines_open").record(quarantine.open)
        Metrics.Timer(label: "iw_detect_batch_commit_duration_seconds").recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        if !streamClock.isUnset {
            Gauge(label: "iw_detect_event_lag_seconds").record(Date().timeIntervalSince1970 - Double(streamClock.micros) / 1e6)
        }
        for (metric, ready) in baseline {
            Gauge(label: "iw_detect_baseline_ready", dimensions: [("metric", metric)]).record(ready ? 1 : 0)
        }
        last.withLock { r in
            for (input, now) in summary.inputs {
                let was = r.inputs[input] ?? IngestSummary.InputCounts()
                add("iw_detect_lines_read_total", [("input", input)], now.read - was.read)
                add("iw_detect_lines_accepted_total", [("input", input)], now.accepted - was.accepted)
                for (reason, n) in now.rejected {
                    add("iw_detect_lines_rejected_total", [("input", input), ("reason", reason)], n - (was.rejected[reason] ?? 0))
                }
                r.inputs[input] = now
            }
            for (key, n) in summary.alerts {
                let parts = key.split(separator: "\t", maxSplits: 1).map(String.init)
                add("iw_detect_alerts_raised_total", [("rule", parts[0]), ("severity", parts.count > 1 ? parts[1] : "")], n - (r.alerts[key] ?? 0))
                r.alerts[key] = n
            }
            for (rule, n) in summary.suppressed {
                add("iw_detect_alerts_suppressed_total", [("rule", rule)], n - (r.suppressed[rule] ?? 0))
                r.suppressed[rule] = n
            }
            let was = r.quarantine ?? (quarantine.events, quarantine.admitted, quarantine.refused)
            add("iw_detect_baseline_quarantined_events_total", [], quarantine.events - was.events)
            add("iw_detect_baseline_quarantine_outcomes_total", [("outcome", "admitted")], quarantine.admitted - was.admitted)
            add("iw_detect_baseline_quarantine_outcomes_total", [("outcome", "refused")], quarantine.refused - was.refused)
            r.quarantine = (quarantine.events, quarantine.admitted, quarantine.refused)
            add("iw_detect_rule_reloads_total", [("outcome", "ok")], summary.reloads - r.reloads)
            add("iw_detect_rule_reloads_total", [("outcome", "refused")], summary.reloadsRefused - r.refused)
            r.reloads = summary.reloads
            r.refused = summary.reloadsRefused
            for (target, e) in summary.exports {
                add("iw_detect_export_events_total", [("target", target), ("outcome", "skipped")], e.skipped - (r.exportSkipped[target] ?? 0))
                r.exportSkipped[target] = e.skipped
            }
        }
    }

    /// Before a scrape: the export workers' counts and each target's queue (from the spool).
    public func refresh(exports stats: [String: ExportService.Stats], targets: [ExportStore.Status]) {
        last.withLock { r in
            for status in targets {
                let now = stats[status.name] ?? ExportService.Stats(), was = r.exports[status.name] ?? ExportService.Stats()
                add("iw_detect_export_events_total", [("target", status.name), ("outcome", "sent")], now.sent - was.sent)
                add("iw_detect_export_events_total", [("target", status.name), ("outcome", "skipped")], 0)
                add("iw_detect_export_events_total", [("target", status.name), ("outcome", "dead")], now.dead - was.dead)
                add("iw_detect_export_requests_failed_total", [("target", status.name)], now.failures - was.failures)
                r.exports[status.name] = now
            }
        }
        for status in targets {
            Gauge(label: "iw_detect_export_queued_events", dimensions: [("target", status.name)]).record(Double(status.pending))
            Gauge(label: "iw_detect_export_lag_seconds", dimensions: [("target", status.name)]).record(status.lag(now: Date().timeIntervalSince1970))
            Gauge(label: "iw_detect_export_stalled", dimensions: [("target", status.name)]).record(status.stalled ? 1 : 0)
        }
    }

    /// Before a scrape: the delivery workers' counts, the outbox and the journal.
    public func refresh(deliveries: [String: DeliveryService.SinkStats], outbox: [(sink: String, pending: Int64, dead: Int64)], journal: InputJournal?) {
        last.withLock { r in
            for (sink, now) in deliveries {
                let was = r.deliveries[sink] ?? DeliveryService.SinkStats()
                add("iw_detect_deliveries_total", [("sink", sink), ("outcome", "delivered")], Int64(now.delivered - was.delivered))
                add("iw_detect_deliveries_total", [("sink", sink), ("outcome", "failed")], Int64(now.failed - was.failed))
                add("iw_detect_deliveries_total", [("sink", sink), ("outcome", "dead")], Int64(now.dead - was.dead))
                r.deliveries[sink] = now
            }
        }
        for o in outbox {
            Gauge(label: "iw_detect_outbox_pending", dimensions: [("sink", o.sink)]).record(Double(o.pending))
            Gauge(label: "iw_detect_outbox_dead", dimensions: [("sink", o.sink)]).record(Double(o.dead))
        }
        if let journal {
            Gauge(label: "iw_detect_journal_depth").record(Double(journal.depth))
            Gauge(label: "iw_detect_journal_bound").record(Double(journal.maxRecords))
        }
    }

    /// A group commit of the input journal.
    func journalCommit(duration: Duration, requests: Int) {
        Metrics.Timer(label: "iw_detect_journal_commit_duration_seconds").recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        Recorder(label: "iw_detect_journal_commit_requests", aggregate: true).record(requests)
    }

    /// The request path's handles, made once (after ``bootstrap()``) rather than looked up per request.
    private let requestHandles = Mutex<(timer: Metrics.Timer?, counters: [Int: CoreMetrics.Counter])>((nil, [:]))

    /// A request answered by the HTTP input.
    func request(status: Int, duration: Duration) {
        let (timer, counter) = requestHandles.withLock { h -> (Metrics.Timer, CoreMetrics.Counter) in
            if h.timer == nil { h.timer = Metrics.Timer(label: "iw_detect_http_request_duration_seconds") }
            if h.counters[status] == nil { h.counters[status] = Counter(label: "iw_detect_http_requests_total", dimensions: [("code", String(status))]) }
            return (h.timer!, h.counters[status]!)
        }
        counter.increment()
        timer.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// Counters are created at zero (so a series exists before its first event) and only grow.
    private func add(_ label: String, _ dimensions: [(String, String)], _ n: Int64) {
        let c = Counter(label: label, dimensions: dimensions)
        if n > 0 { c.increment(by: n) }
    }

    /// The exposition: the registry's text with a `# HELP` line before each family's `# TYPE`.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var out = ""
        out.reserveCapacity(buffer.count + 4096)
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).split(separator: " ").first.map(String.init) ?? ""
                if let text = ServeMetrics.help[name] { out += "# HELP \(name) \(text)\n" }
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return Array(out.utf8)
    }
}
