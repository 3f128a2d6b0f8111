import Alerts
import Foundation
import IWDetectCore
import Rules
import YAMLSupport
import Yams

/// One target of `exports:`: where the inference stream goes, which events, which fields, and how
/// far behind it may fall.
///
/// The connection keys are those of the sink of the same type (``SinkRegistry``): `url` and
/// `token_env` for `splunk_hec`, and so on; the export keys come on top. Defaults that differ from
/// the sink's: Splunk `source: ai_security_monitor` and `sourcetype: ai:inference` (the monitoring
/// guide's), Elastic `index: iw-detect-events`, and 1,000 events per request.
public struct ExportTargetConfig: Sendable {
    /// The receivers that can carry the stream.
    public static let kinds: [any SinkConfig.Type] = [SplunkHECSinkConfig.self, ElasticSinkConfig.self, LogstashSinkConfig.self, SentinelSinkConfig.self]
    public static let keys = ["fields", "filter", "enrich", "flush_interval", "max_lag"]

    public let name: String
    public var connection: any SinkConfig
    public var fields: ProjectionSpec
    /// The `filter:` condition, checked for syntax; compiled with the rules' lists by the engine.
    public var filter: (text: String, position: ConditionPosition)?
    /// Add `iw_detect.alerts` and `iw_detect.z.<metric>` to each event.
    public var enrich = true
    /// Seconds a partial batch waits for more events before it is sent.
    public var flushInterval = 1.0
    /// Events per request at most (the sink's `batch_size` key; 1…1000, default 1000).
    public var batchSize: Int
    /// How long (wall clock) the oldest unsent event may wait before the target is stalled: new
    /// events are then counted as skipped instead of queued.
    public var maxLag = EventTime.Duration.hours(24)

    public var kind: String { type(of: connection).kind }

    /// Reads one item of `exports:`.
    public static func read(_ item: Node, reader r: inout ConfigReader) -> ExportTargetConfig? {
        guard case .mapping(let m) = item else {
            r.error(item, "bad_type", "an export target must be a mapping with name, type and the type's keys")
            return nil
        }
        let names = kinds.map { $0.kind }.joined(separator: ", ")
        guard let type = r.string(m, "type", "an export target's type") else {
            if m["type"] == nil { r.error(item, "missing_key", "each export target needs a type: one of \(names)") }
            return nil
        }
        guard let kind = kinds.first(where: { $0.kind == type }) else {
            r.error(m["type"], "unknown_export_type", "export target '\(m["name"]?.string ?? "?")' has type '\(type)'; exports go to \(names)")
            return nil
        }
        _ = r.mapping(item, "export target '\(m["name"]?.string ?? "?")' (\(type))", keys: ["name", "type"] + kind.keys + keys)
        guard let name = r.string(m, "name", "an export target's name") else {
            if m["name"] == nil { r.error(item, "missing_key", "each export target needs a name") }
            return nil
        }
        guard var connection = kind.init(name: name, map: m, item: item, reader: &r) else { return nil }
        // The export defaults where the sink's are for alerts (the sink read batch_size, 1…1000).
        let batch = m["batch_size"] == nil ? 1000 : nil
        var batchSize = 1000
        switch connection {
        case var c as SplunkHECSinkConfig:
            if m["source"] == nil { c.source = "ai_security_monitor" }
            if m["sourcetype"] == nil { c.sourcetype = "ai:inference" }
            c.batchSize = batch ?? c.batchSize
            batchSize = c.batchSize
            connection = c
        case var c as ElasticSinkConfig:
            if m["index"] == nil { c.index = "iw-detect-events" }
            c.batchSize = batch ?? c.batchSize
            batchSize = c.batchSize
            connection = c
        case var c as LogstashSinkConfig:
            c.batchSize = batch ?? c.batchSize
            batchSize = c.batchSize
            connection = c
        case var c as SentinelSinkConfig:
            c.batchSize = batch ?? c.batchSize
            batchSize = c.batchSize
            connection = c
        default: break
        }
        var target = ExportTargetConfig(name: name, connection: connection, fields: ProjectionSpec(), batchSize: batchSize)
        if let node = m["fields"] { target.fields = ProjectionSpec.read(node, target: name, sentinel: kind == SentinelSinkConfig.self, reader: &r) }
        if let text = r.string(m, "filter", "export '\(name)': filter"), let node = m["filter"] {
            let position = ConditionPosition(file: r.file, node: node)
            if let d = EventCondition.syntaxError(text, at: position) { r.error(node, d.code, "export '\(name)': filter: \(d.message) (line \(d.line), column \(d.column))") }
            target.filter = (text, position)
        }
        if let v = r.bool(m, "enrich", "export '\(name)': enrich") { target.enrich = v }
        if let v = r.double(m, "flush_interval", "export '\(name)': flush_interval", in: 0...3600) { target.flushInterval = v }
        if let v = r.duration(m, "max_lag", "export '\(name)': max_lag", in: .seconds(1)...(.days(365))) { target.maxLag = v }
        return target
    }

    /// What `exports list` prints of its configuration: no secret.
    public var summary: String {
        connection.summary + " (or after \(JSONValue.format(flushInterval)) s); fields: " + fields.describe()
            + (filter.map { "; filter: \($0.text)" } ?? "") + (enrich ? "; enriched with alerts and z-scores" : "") + "; max_lag \(maxLag)"
    }

    /// The receiver, with its secrets resolved (errors name where a secret comes from, never it).
    public func makeShipper(environment: [String: String]) throws(SinkError) -> any EventShipper {
        let sink = try connection.makeSink(environment: environment)
        guard let shipper = sink as? any EventShipper else {
            throw SinkError("export '\(name)': a \(kind) receiver cannot carry events", isRetryable: false)
        }
        return shipper
    }
}
