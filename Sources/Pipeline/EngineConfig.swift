import Alerts
import Baseline
import Exports
import Foundation
import IWDetectCore
import Ingest
import Rules
import YAMLSupport
import Yams

/// Everything the engine needs, resolved from flags, `IW_DETECT_*` variables and the config file.
public struct EngineConfig: Sendable {
    public var databasePath: String
    public var rulePaths: [String]
    public var metrics: [MetricDefinition] = MetricDefinition.defaults
    public var baseline = BaselineSettings()
    public var evaluation = EvaluationSettings()
    public var delivery = DeliveryPolicy()
    /// Lines longer than this are rejected (`line_too_long`) without being buffered.
    public var maxLineBytes = 1 << 20
    /// Lines per committed batch at most; a batch also ends whenever the input is caught up.
    public var batchLines = 20_000
    /// Threads `ingest` uses (`threads`, `--threads`): from 2, lines are read and decoded on a
    /// thread of their own beside the pipeline (``DecodeAhead``). One by default: on the machines
    /// measured (2 vCPUs) the second thread saved no time and cost a fifth more CPU (README).
    public var threads = 1
    /// The configured sinks (``SinkRegistry`` lists the kinds).
    public var sinks: [any SinkConfig] = []
    public var routes: [Severity: [String]] = AlertRouter.defaultRoutes
    /// Field names the rules may use besides the schemas' (no `unknown_field` warning).
    public var fields: [String] = []
    /// Whether stdout receives every alert (default: only when no other sink is configured).
    public var stdout: Bool?
    /// Keep the dashboard's rollups (`rollups`, default true): what `report` and serve's
    /// dashboard read.
    public var rollups = true
    /// What is kept for how long (`retention:`), and whether the forensic index is kept.
    public var retention = RetentionSettings()
    /// Force a readable (true) or JSON (false) stdout, instead of deciding by isatty.
    public var readableStdout: Bool?
    public var serve = ServeSettings()
    /// Where the inference stream is forwarded (`exports:`).
    public var exports: [ExportTargetConfig] = []

    public init(databasePath: String, rulePaths: [String]) {
        self.databasePath = databasePath
        self.rulePaths = rulePaths
    }
}

/// A configuration problem: every diagnostic found, each naming the file, line and column.
public struct ConfigError: Error, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    private var text: String?

    public init(_ description: String) {
        diagnostics = []
        text = description
    }

    public init(diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String {
        text ?? (diagnostics.map(\.description).joined(separator: "\n") + "\nthe config has \(diagnostics.count) error(s)")
    }
}

extension EngineConfig {
    /// The config file's keys, by section (`""` is the top level).
    static let keys: [String: [String]] = [
        "": ["max_line_bytes", "batch_lines", "threads", "allowed_lateness", "fields", "baseline", "sinks", "routes", "stdout", "delivery", "metrics", "serve", "exports", "rollups", "retention"],
        "retention": ["hot_days", "security_days", "alert_days", "reject_days", "index"],
        "serve": ["listen", "max_body_bytes", "journal", "journal_sync", "journal_keep", "journal_keep_bytes", "max_journal_records", "max_journal_bytes", "token", "token_env", "token_file",
                  "shutdown_timeout", "retry_after"],
        "baseline": ["window", "window_days", "window_samples", "min_samples", "min_span", "min_days", "recompute_every", "exclude_alerting", "segment_by", "max_segments", "quarantine", "seasonality"],
        "quarantine": ["persist", "min_users", "min_sessions", "min_share", "move_threshold"],
        "seasonality": ["mode", "timezone", "metrics", "prior"],
        "metrics": ["name", "field", "kind"],
        "delivery": ["max_attempts", "max_age_hours", "base_backoff_seconds", "max_backoff_seconds",
                     "circuit_breaker_failures", "circuit_breaker_cooldown_seconds"],
    ]

    /// Applies a YAML config file on top of the current values. Every problem in the file is
    /// reported at once (``ConfigError/diagnostics``); on any error nothing is applied.
    public mutating func apply(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("\(path): cannot read the config file") }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError("\(path): the config file is not UTF-8 text") }
        try apply(yaml: text, file: path)
    }

    /// Applies config text; `file` names it in diagnostics.
    public mutating func apply(yaml text: String, file path: String) throws {
        var r = ConfigReader(file: path)
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw ConfigError(diagnostics: [.yaml(error, file: path)]) }
        guard let root else { return }  // an empty file: all defaults
        var next = self
        next.read(root, &r)
        guard r.diagnostics.isEmpty else {
            throw ConfigError(diagnostics: r.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        self = next
    }

    /// Decodes, applies defaults (the current values), validates ranges, then checks cross-references.
    private mutating func read(_ root: Node, _ r: inout ConfigReader) {
        var seasonalityNode: Node? = nil
        guard let top = r.mapping(root, "the config file", keys: EngineConfig.keys[""]!) else { return }
        if let v = r.int(top, "max_line_bytes", "max_line_bytes", in: 256...(256 << 20)) { maxLineBytes = Int(v) }
        if let v = r.int(top, "batch_lines", "batch_lines", in: 1...1_000_000) { batchLines = Int(v) }
        if let v = r.int(top, "threads", "threads", in: 1...256) { threads = Int(v) }
        if let v = r.duration(top, "allowed_lateness", "allowed_lateness", in: .seconds(0)...(.days(7))) { evaluation.allowedLateness = v }
        if let v = r.stringList(top, "fields", "fields") { fields = v }
        if let v = r.bool(top, "stdout", "stdout") { stdout = v }
        if let v = r.bool(top, "rollups", "rollups") { rollups = v }
        if let node = top["retention"], let t = r.mapping(node, "retention", keys: EngineConfig.keys["retention"]!) {
            if let v = r.int(t, "hot_days", "retention.hot_days", in: 1...3650) { retention.hotDays = Int(v) }
            if let v = r.int(t, "security_days", "retention.security_days", in: 1...36500) { retention.securityDays = Int(v) }
            if let v = r.int(t, "alert_days", "retention.alert_days", in: 1...36500) { retention.alertDays = Int(v) }
            if let v = r.int(t, "reject_days", "retention.reject_days", in: 1...36500) { retention.rejectDays = Int(v) }
            if let v = r.bool(t, "index", "retention.index") { retention.index = v }
        }
        if let node = top["baseline"], let b = r.mapping(node, "baseline", keys: EngineConfig.keys["baseline"]!) {
            if let v = r.int(b, "window_days", "baseline.window_days", in: 1...365) { baseline.windowDays = v }
            if let v = r.duration(b, "window", "baseline.window", in: .hours(1)...(.days(365))) {
                if b["window_days"] != nil { r.error(b["window"], "conflict", "baseline.window and baseline.window_days both set: keep one (window_days: N is window: Nd)") }
                baseline.window = v
            }
            if let v = r.int(b, "window_samples", "baseline.window_samples", in: 1...1_000_000_000) { baseline.windowSamples = v }
            if let v = r.int(b, "min_samples", "baseline.min_samples", in: 1...1_000_000_000) { baseline.minSamples = v }
            if let v = r.int(b, "min_days", "baseline.min_days", in: 0...365) { baseline.minSpan = .days(v) }
            if let v = r.duration(b, "min_span", "baseline.min_span", in: .seconds(0)...(.days(365))) {
                if b["min_days"] != nil { r.error(b["min_span"], "conflict", "baseline.min_span and baseline.min_days both set: keep one (min_days: N is min_span: Nd)") }
                baseline.minSpan = v
            }
            if let v = r.bool(b, "exclude_alerting", "baseline.exclude_alerting") { baseline.excludeAlerting = v }
            if let v = r.string(b, "segment_by", "baseline.segment_by", allowEmpty: true) { baseline.segmentField = v.isEmpty ? nil : v }
            if let v = r.int(b, "max_segments", "baseline.max_segments", in: 0...100_000) { baseline.maxSegments = Int(v) }
            if let v = r.duration(b, "recompute_every", "baseline.recompute_every", in: .minutes(1)...(.days(365))) { baseline.recomputeEvery = v }
            if let node = b["quarantine"], let q = r.mapping(node, "baseline.quarantine", keys: EngineConfig.keys["quarantine"]!) {
                if let v = r.duration(q, "persist", "baseline.quarantine.persist", in: .minutes(1)...(.days(365))) { baseline.quarantine.persist = v }
                if let v = r.int(q, "min_users", "baseline.quarantine.min_users", in: 1...1_000_000) { baseline.quarantine.minUsers = Int(v) }
                if let v = r.int(q, "min_sessions", "baseline.quarantine.min_sessions", in: 1...1_000_000) { baseline.quarantine.minSessions = Int(v) }
                if let v = r.double(q, "min_share", "baseline.quarantine.min_share", in: 0...1) { baseline.quarantine.minShare = v }
                if let v = r.double(q, "move_threshold", "baseline.quarantine.move_threshold", in: 0...1000) { baseline.quarantine.moveThreshold = v }
            }
            if let node = b["seasonality"], let q = r.mapping(node, "baseline.seasonality", keys: EngineConfig.keys["seasonality"]!) {
                var mode = Seasonality.Mode.hourOfDay
                if let v = r.string(q, "mode", "baseline.seasonality.mode") {
                    if let m = Seasonality.Mode(rawValue: v) { mode = m } else {
                        r.error(q["mode"], "bad_value", "baseline.seasonality.mode must be hour_of_day or hour_of_week, got '\(v)'")
                    }
                }
                let zone = r.string(q, "timezone", "baseline.seasonality.timezone") ?? "UTC"
                let names = r.stringList(q, "metrics", "baseline.seasonality.metrics")
                let prior = r.double(q, "prior", "baseline.seasonality.prior", in: 0...1_000_000_000) ?? 10
                if let season = Seasonality(mode: mode, timeZone: zone, metrics: names, prior: prior) {
                    baseline.seasonality = season
                    seasonalityNode = q["metrics"]
                } else {
                    r.error(q["timezone"], "bad_value", "baseline.seasonality.timezone: '\(zone)' is not a time zone; use an IANA name such as UTC or Europe/Paris")
                }
            }
            if baseline.minSpan.micros > baseline.windowHours * EventTime.microsPerHour,
               let node = b["min_span"] ?? b["min_days"] ?? b["window"] ?? b["window_days"] {
                r.error(node, "out_of_range", "baseline.min_span (\(baseline.minSpan)) cannot exceed the window (\(EventTime.Duration.hours(baseline.windowHours))): the baseline would never be ready")
            }
        }
        if let node = top["delivery"], let d = r.mapping(node, "delivery", keys: EngineConfig.keys["delivery"]!) {
            if let v = r.int(d, "max_attempts", "delivery.max_attempts", in: 1...1000) { delivery.maxAttempts = v }
            if let v = r.double(d, "base_backoff_seconds", "delivery.base_backoff_seconds", in: 0.001...3600) { delivery.baseBackoff = v }
            if let v = r.double(d, "max_backoff_seconds", "delivery.max_backoff_seconds", in: 0.001...86_400) { delivery.maxBackoff = v }
            if let v = r.double(d, "max_age_hours", "delivery.max_age_hours", in: 0.001...8760) { delivery.maxAgeHours = v }
            if let v = r.int(d, "circuit_breaker_failures", "delivery.circuit_breaker_failures", in: 1...1000) { delivery.breakerFailures = Int(v) }
            if let v = r.double(d, "circuit_breaker_cooldown_seconds", "delivery.circuit_breaker_cooldown_seconds", in: 0.01...3600) { delivery.breakerCooldown = v }
            if delivery.maxBackoff < delivery.baseBackoff, let node = d["max_backoff_seconds"] ?? d["base_backoff_seconds"] {
                r.error(node, "out_of_range", "delivery.max_backoff_seconds (\(JSONValue.format(delivery.maxBackoff))) is less than base_backoff_seconds (\(JSONValue.format(delivery.baseBackoff)))")
            }
        }
        if let node = top["serve"], let m = r.mapping(node, "serve", keys: EngineConfig.keys["serve"]!) {
            if let v = r.string(m, "listen", "serve.listen") {
                if ServeSettings.parseListen(v) == nil { r.error(m["listen"], "bad_value", "serve.listen must be HOST:PORT, e.g. 127.0.0.1:8080, got '\(v)'") }
                serve.listen = v
            }
            if let v = r.int(m, "max_body_bytes", "serve.max_body_bytes", in: 1024...(1 << 30)) { serve.maxBodyBytes = Int(v) }
            if let v = r.string(m, "journal", "serve.journal") { serve.journalPath = v }
            if let v = r.string(m, "journal_sync", "serve.journal_sync") {
                if let sync = InputJournal.Sync(rawValue: v) { serve.journalSync = sync } else {
                    r.error(m["journal_sync"], "bad_value", "serve.journal_sync must be normal or full, got '\(v)'")
                }
            }
            if let v = r.duration(m, "journal_keep", "serve.journal_keep", in: .seconds(0)...(.days(365))) { serve.journalKeep = Double(v.micros) / 1e6 }
            if let v = r.int(m, "journal_keep_bytes", "serve.journal_keep_bytes", in: 0...(1 << 40)) { serve.journalKeepBytes = Int(v) }
            if let v = r.int(m, "max_journal_records", "serve.max_journal_records", in: 1...100_000_000) { serve.maxJournalRecords = Int(v) }
            if let v = r.int(m, "max_journal_bytes", "serve.max_journal_bytes", in: 1024...(1 << 40)) { serve.maxJournalBytes = Int(v) }
            if let v = r.double(m, "shutdown_timeout", "serve.shutdown_timeout", in: 0...3600) { serve.shutdownTimeout = v }
            if let v = r.int(m, "retry_after", "serve.retry_after", in: 1...3600) { serve.retryAfter = Int(v) }
            serve.token = SecretReference.read(m, "token", "serve", item: node, required: false, reader: &r)
        }
        for item in r.sequence(top, "metrics", "metrics") ?? [] {
            guard let m = r.mapping(item, "a metric", keys: EngineConfig.keys["metrics"]!) else { continue }
            let name = r.string(m, "name", "a metric's name")
            let field = r.string(m, "field", "metric '\(name ?? "?")': field")
            if m["name"] == nil || m["field"] == nil { r.error(item, "missing_key", "each metric needs a name and a field") }
            var kind = MetricDefinition.Kind.value
            if let k = r.string(m, "kind", "metric '\(name ?? "?")': kind") {
                if let parsed = MetricDefinition.Kind(rawValue: k) { kind = parsed } else {
                    r.error(m["kind"], "bad_value", "metric '\(name ?? "?")': kind must be value, count or bytes, got '\(k)'")
                }
            }
            guard let name, let field else { continue }
            if metrics.contains(where: { $0.name == name }) {
                r.error(m["name"], "duplicate_metric", "metric '\(name)' is defined twice (or is a default metric)")
                continue
            }
            metrics.append(MetricDefinition(name: name, path: field, kind: kind))
        }
        if let names = baseline.seasonality?.metrics {
            for n in names where !metrics.contains(where: { $0.name == n }) {
                r.error(seasonalityNode, "unknown_metric", "baseline.seasonality.metrics: '\(n)' is not a metric; metrics: \(metrics.map(\.name).joined(separator: ", "))")
            }
        }
        if let items = r.sequence(top, "sinks", "sinks") {
            sinks = []
            for item in items {
                guard let sink = SinkRegistry.read(item, reader: &r) else { continue }
                if sinks.contains(where: { $0.name == sink.name }) {
                    r.error(item["name"], "duplicate_sink", "sink '\(sink.name)' is defined twice")
                    continue
                }
                sinks.append(sink)
            }
        }
        if let items = r.sequence(top, "exports", "exports") {
            exports = []
            for item in items {
                guard let target = ExportTargetConfig.read(item, reader: &r) else { continue }
                if exports.contains(where: { $0.name == target.name }) {
                    r.error(item["name"], "duplicate_export", "export target '\(target.name)' is defined twice")
                    continue
                }
                exports.append(target)
            }
        }
        if let node = top["routes"], case .mapping(let map) = node {
            var routes: [Severity: [String]] = [:]
            let known = Set(sinks.map(\.name) + ["stdout"])
            for (k, v) in map {
                guard let sev = Severity(rawValue: k.string ?? "") else {
                    r.error(k, "bad_severity", "routes: '\(k.string ?? "?")' is not a severity (low, medium, high, critical)")
                    continue
                }
                guard let names = r.stringList(map, k.string!, "routes.\(sev.rawValue)") else { continue }
                for n in names where !known.contains(n) {
                    r.error(v, "unknown_sink", "routes.\(sev.rawValue) names sink '\(n)', which is not defined under sinks")
                }
                routes[sev] = names
            }
            for sev in Severity.allCases where routes[sev] == nil { routes[sev] = [] }
            self.routes = routes
        } else if let node = top["routes"] {
            r.error(node, "bad_type", "routes must map severities to lists of sink names, e.g. { critical: [pager, siem] }")
        }
    }

    /// Builds the sinks. Secrets come from the environment or files; errors never print them.
    public func makeSinks(environment: [String: String]) throws -> [any AlertSink] {
        var out: [any AlertSink] = []
        for s in sinks {
            var config = s
            if readableStdout != nil, var stdoutConfig = s as? StdoutSinkConfig {
                stdoutConfig.readable = readableStdout
                config = stdoutConfig
            }
            do { out.append(try config.makeSink(environment: environment)) } catch { throw ConfigError(error.message) }
        }
        if stdout ?? sinks.isEmpty, !out.contains(where: { $0.name == "stdout" }) {
            out.append(StdoutSink(name: "stdout", readable: readableStdout))
        }
        return out
    }
}
