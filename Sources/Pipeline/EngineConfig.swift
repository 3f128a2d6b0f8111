import Alerts
import Baseline
import Foundation
import IWDetectCore
import Rules
import Yams

/// Everything the engine needs, resolved from flags, `IW_DETECT_*` variables and the config file.
public struct EngineConfig: Sendable {
    public var databasePath: String
    public var rulePaths: [String]
    public var metrics: [MetricDefinition] = MetricDefinition.defaults
    public var baseline = BaselineSettings()
    public var evaluation = EvaluationSettings()
    public var delivery = DeliverySettings()
    /// Lines longer than this are rejected (`line_too_long`) without being buffered.
    public var maxLineBytes = 1 << 20
    /// Lines per committed batch at most; a batch also ends whenever the input is caught up.
    public var batchLines = 20_000
    public var sinks: [SinkConfig] = []
    public var routes: [Severity: [String]] = AlertRouter.defaultRoutes
    /// Whether stdout receives every alert (default: only when no other sink is configured).
    public var stdout: Bool?
    /// Force a readable (true) or JSON (false) stdout, instead of deciding by isatty.
    public var readableStdout: Bool?

    public init(databasePath: String, rulePaths: [String]) {
        self.databasePath = databasePath
        self.rulePaths = rulePaths
    }

    /// One configured sink.
    public struct SinkConfig: Sendable, Codable, Equatable {
        /// The name routes refer to (`siem`, `pager`, `slack`, or any other).
        public var name: String
        /// `stdout`, `jsonl` or `webhook`.
        public var type: String
        /// `jsonl`: the file alerts are appended to.
        public var path: String?
        /// `webhook`: the endpoint. Prefer `url_env`, so the URL (often a secret) stays out of files.
        public var url: String?
        /// `webhook`: the environment variable holding the endpoint.
        public var url_env: String?
        /// `webhook`: request timeout in seconds (default 5).
        public var timeout: Double?
    }
}

/// The config file (YAML). Every key is optional; unknown keys are errors.
struct ConfigFile: Codable {
    var max_line_bytes: Int?
    var batch_lines: Int?
    var allowed_lateness: String?
    var baseline: BaselineSection?
    var sinks: [EngineConfig.SinkConfig]?
    var routes: [String: [String]]?
    var stdout: Bool?
    var delivery: DeliverySection?
    var metrics: [MetricSection]?

    struct BaselineSection: Codable {
        var window_days: Int64?
        var min_samples: Int64?
        var recompute_every: String?
        var exclude_alerting: Bool?
        var segment_by: String?
        var max_segments: Int?
        var min_days: Int?
    }

    /// A metric declared in the config, besides the defaults.
    struct MetricSection: Codable {
        /// The name rules and `baseline show` use.
        var name: String
        /// The dotted field path it is read from.
        var field: String
        /// `value` (the field's number, the default), `count` (the length of a list field) or
        /// `bytes` (the UTF-8 length of a text field).
        var kind: String?
    }

    struct DeliverySection: Codable {
        var max_attempts: Int64?
        var base_backoff_seconds: Double?
        var max_backoff_seconds: Double?
    }

    static let keys: [String: Set<String>] = [
        "": ["max_line_bytes", "batch_lines", "allowed_lateness", "baseline", "sinks", "routes", "stdout", "delivery", "metrics"],
        "baseline": ["window_days", "min_samples", "min_days", "recompute_every", "exclude_alerting", "segment_by", "max_segments"],
        "metrics": ["name", "field", "kind"],
        "delivery": ["max_attempts", "base_backoff_seconds", "max_backoff_seconds"],
        "sinks": ["name", "type", "path", "url", "url_env", "timeout"],
    ]
}

/// A configuration problem, naming the file and what to fix.
public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension EngineConfig {
    /// Applies a YAML config file on top of the current values.
    public mutating func apply(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(path): cannot read the config file")
        }
        let node: Yams.Node?
        do { node = try Yams.compose(yaml: text) } catch { throw ConfigError("\(path): invalid YAML: \(error)") }
        try ConfigFileChecker.checkKeys(node, path: path)
        let file: ConfigFile
        do { file = try YAMLDecoder().decode(ConfigFile.self, from: text) } catch {
            throw ConfigError("\(path): \(error)")
        }
        if let v = file.max_line_bytes { maxLineBytes = v }
        if let v = file.batch_lines { batchLines = max(1, v) }
        if let v = file.allowed_lateness {
            guard let d = EventTime.Duration(parsing: v) else { throw ConfigError("\(path): allowed_lateness '\(v)' is not a duration such as 5m") }
            evaluation.allowedLateness = d
        }
        if let b = file.baseline {
            if let v = b.window_days { baseline.windowDays = v }
            if let v = b.min_samples { baseline.minSamples = v }
            if let v = b.exclude_alerting { baseline.excludeAlerting = v }
            if let v = b.segment_by { baseline.segmentField = v.isEmpty ? nil : v }
            if let v = b.max_segments { baseline.maxSegments = max(0, v) }
            if let v = b.min_days { baseline.minDays = max(0, v) }
            if let v = b.recompute_every {
                guard let d = EventTime.Duration(parsing: v), d.micros > 0 else { throw ConfigError("\(path): baseline.recompute_every '\(v)' is not a duration such as 1h") }
                baseline.recomputeEvery = d
            }
        }
        if let d = file.delivery {
            if let v = d.max_attempts { delivery.maxAttempts = v }
            if let v = d.base_backoff_seconds { delivery.baseBackoff = v }
            if let v = d.max_backoff_seconds { delivery.maxBackoff = v }
        }
        for m in file.metrics ?? [] {
            guard !m.name.isEmpty, !m.field.isEmpty else { throw ConfigError("\(path): metrics: each metric needs a name and a field") }
            guard let kind = MetricDefinition.Kind(rawValue: m.kind ?? "value") else {
                throw ConfigError("\(path): metric '\(m.name)': kind must be value, count or bytes")
            }
            guard !metrics.contains(where: { $0.name == m.name }) else { throw ConfigError("\(path): metric '\(m.name)' is defined twice (or is a default metric)") }
            metrics.append(MetricDefinition(name: m.name, path: m.field, kind: kind))
        }
        if let s = file.sinks { sinks = s }
        if let v = file.stdout { stdout = v }
        if let r = file.routes {
            var routes: [Severity: [String]] = [:]
            for (k, v) in r {
                guard let sev = Severity(rawValue: k) else { throw ConfigError("\(path): routes: '\(k)' is not a severity (low, medium, high, critical)") }
                routes[sev] = v
            }
            for sev in Severity.allCases where routes[sev] == nil { routes[sev] = [] }
            self.routes = routes
            let known = Set(sinks.map(\.name) + ["stdout"])
            for (sev, names) in routes.sorted(by: { $0.key < $1.key }) {
                for n in names where !known.contains(n) {
                    throw ConfigError("\(path): routes.\(sev.rawValue) names sink '\(n)', which is not defined under sinks")
                }
            }
        }
        for s in sinks where !["stdout", "jsonl", "webhook"].contains(s.type) {
            throw ConfigError("\(path): sink '\(s.name)' has type '\(s.type)'; known types: stdout, jsonl, webhook")
        }
    }

    /// Builds the sinks. Secrets come from the environment; errors never print them.
    public func makeSinks(environment: [String: String]) throws -> [any AlertSink] {
        var out: [any AlertSink] = []
        for s in sinks {
            switch s.type {
            case "stdout": out.append(StdoutSink(name: s.name, readable: readableStdout))
            case "jsonl":
                guard let path = s.path else { throw ConfigError("sink '\(s.name)': a jsonl sink needs 'path'") }
                do { out.append(try JSONLFileSink(name: s.name, path: path)) } catch { throw ConfigError(error.message) }
            case "webhook":
                let raw = s.url ?? s.url_env.flatMap { environment[$0] }
                guard let raw, !raw.isEmpty else {
                    throw ConfigError("sink '\(s.name)': a webhook sink needs 'url' or 'url_env'" + (s.url_env.map { " (the variable \($0) is not set)" } ?? ""))
                }
                guard let url = URL(string: raw), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                    throw ConfigError("sink '\(s.name)': the webhook URL is not an http(s) URL (value not shown)")
                }
                out.append(WebhookSink(name: s.name, url: url, timeout: s.timeout ?? 5))
            default: throw ConfigError("sink '\(s.name)': unknown type '\(s.type)'")
            }
        }
        if stdout ?? sinks.isEmpty, !out.contains(where: { $0.name == "stdout" }) {
            out.append(StdoutSink(name: "stdout", readable: readableStdout))
        }
        return out
    }
}

enum ConfigFileChecker {
    static func checkKeys(_ node: Yams.Node?, path: String) throws {
        guard let node else { return }
        guard case .mapping(let map) = node else { throw ConfigError("\(path): the config file must be a mapping of keys") }
        try check(map, section: "", path: path)
        if let b = map["baseline"], case .mapping(let m) = b { try check(m, section: "baseline", path: path) }
        if let b = map["delivery"], case .mapping(let m) = b { try check(m, section: "delivery", path: path) }
        for list in ["sinks", "metrics"] {
            if let s = map[list], case .sequence(let seq) = s {
                for item in seq { if case .mapping(let m) = item { try check(m, section: list, path: path) } }
            }
        }
    }

    static func check(_ map: Yams.Node.Mapping, section: String, path: String) throws {
        let allowed = ConfigFile.keys[section] ?? []
        for (k, _) in map {
            let key = k.string ?? ""
            if !allowed.contains(key) {
                let line = k.mark.map { ":\($0.line):\($0.column)" } ?? ""
                throw ConfigError("\(path)\(line): unknown key '\(key)'\(section.isEmpty ? "" : " in \(section)"); known: \(allowed.sorted().joined(separator: ", "))")
            }
        }
    }
}
