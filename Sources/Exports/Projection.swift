import Alerts
import IWDetectCore
import Rules
import YAMLSupport
import Yams

/// Which fields an export target sends, under which names (`fields:`).
///
/// The default is the monitoring guide's `SIEMExporter` set, with its names, plus `log_id` (the
/// id a receiver dedups at-least-once deliveries by):
///
/// | name | value | | name | value |
/// |---|---|---|---|---|
/// | event_type | `"ai_interaction"` | | injection_score | input_injection_score |
/// | log_id | log_id | | tool_calls | the number of tool_calls |
/// | user_id | user_id | | pii_detected | output_pii_detected |
/// | session_id | session_id | | model_id | model_id |
/// | risk_score | risk_score | | latency_ms | total_latency_ms |
/// | guardrail_triggered | guardrail_triggered | | | |
///
/// `fields: {add: [...], drop: [...]}` changes it: an added item is a field name (resolved through
/// the rules' aliases and metrics: `tool_call_count` is a count, `injection_score` reads
/// `input_injection_score`) or `{name: field}` to send it under another name; `fields: [...]`
/// replaces the set. Prompts and outputs (`user_input`, `model_output`, `tool_results`) are sent
/// only when listed. A field an event lacks is left out of its document.
public struct ProjectionSpec: Sendable {
    public enum Source: Sendable, Equatable {
        case field(String)
        case constant(String)
    }

    public var entries: [(name: String, source: Source)]
    public private(set) var isDefault = true

    public static let guide: [(name: String, source: Source)] = [
        ("event_type", .constant("ai_interaction")),
        ("log_id", .field("log_id")),
        ("user_id", .field("user_id")),
        ("session_id", .field("session_id")),
        ("risk_score", .field("risk_score")),
        ("guardrail_triggered", .field("guardrail_triggered")),
        ("injection_score", .field("input_injection_score")),
        ("tool_calls", .field("tool_call_count")),
        ("pii_detected", .field("output_pii_detected")),
        ("model_id", .field("model_id")),
        ("latency_ms", .field("total_latency_ms")),
    ]

    public init() { entries = ProjectionSpec.guide }

    public func describe() -> String {
        (isDefault ? "the guide's: " : "") + entries.map { e in
            switch e.source {
            case .constant(let c): return "\(e.name)=\"\(c)\""
            case .field(let f): return f == e.name ? e.name : "\(e.name)=\(f)"
            }
        }.joined(separator: ", ")
    }

    mutating func add(_ name: String, _ source: Source) {
        if let i = entries.firstIndex(where: { $0.name == name }) { entries[i].source = source } else { entries.append((name, source)) }
    }

    /// Reads `fields:`; `sentinel` checks that names are valid Log Analytics column names.
    static func read(_ node: Node, target: String, sentinel: Bool, reader r: inout ConfigReader) -> ProjectionSpec {
        var spec = ProjectionSpec()
        spec.isDefault = false
        func items(_ n: Node, _ key: String) -> [(String, String, Node)] {
            guard case .sequence(let seq) = n else {
                r.error(n, "bad_type", "export '\(target)': fields.\(key) must be a list of field names or {name: field} mappings")
                return []
            }
            var out: [(String, String, Node)] = []
            for item in seq {
                if let s = item.string, !s.isEmpty, item.scalar != nil { out.append((s, s, item)); continue }
                if case .mapping(let m) = item, m.count == 1, let k = m.keys.first?.string, let v = m.values.first?.string, !k.isEmpty, !v.isEmpty {
                    out.append((k, v, item))
                    continue
                }
                r.error(item, "bad_value", "export '\(target)': each field is a name, or {name: field} to send a field under another name")
            }
            return out
        }
        switch node {
        case .sequence:
            spec.entries = []
            for (name, field, _) in items(node, "") { spec.add(name, .field(field)) }
        case .mapping(let m):
            for (k, _) in m where !["add", "drop"].contains(k.string ?? "") {
                r.error(k, "unknown_key", "export '\(target)': fields takes add and drop, not '\(k.string ?? "?")'")
            }
            if let add = m["add"] { for (name, field, _) in items(add, "add") { spec.add(name, .field(field)) } }
            if let drop = m["drop"] {
                for (name, _, item) in items(drop, "drop") {
                    if spec.entries.contains(where: { $0.name == name }) { spec.entries.removeAll { $0.name == name } } else {
                        r.error(item, "unknown_field", "export '\(target)': fields.drop names '\(name)', which is not sent (sent: \(spec.entries.map(\.name).joined(separator: ", ")))")
                    }
                }
            }
        default:
            r.error(node, "bad_type", "export '\(target)': fields must be {add: [...], drop: [...]} or a list of the fields to send")
        }
        if sentinel {
            for e in spec.entries where !(e.name.first?.isLetter ?? false) || !e.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                r.error(node, "bad_value", "export '\(target)': '\(e.name)' is not a Log Analytics column name (a letter, then letters, digits and _); send it as {\(e.name.filter { $0.isLetter || $0.isNumber || $0 == "_" }): …}")
            }
        }
        if spec.entries.isEmpty { r.error(node, "bad_value", "export '\(target)': fields leaves nothing to send") }
        return spec
    }
}

/// A ``ProjectionSpec`` resolved against the field table: what each event's document is made of.
struct Projection {
    enum Part {
        case slot(Int)
        case metric(MetricDefinition, Int)
        case constant(JSONValue)
    }

    let parts: [(String, Part)]
    /// Each part's `"name":`, rendered once.
    let keys: [[UInt8]]
    /// The part sent as `user_id`, if any (ECS `user.id`).
    let userPart: Int?

    init(_ spec: ProjectionSpec, metrics: [MetricDefinition], fields: inout FieldTable) {
        keys = spec.entries.map { entry in
            var k: [UInt8] = []
            JSONValue.quote(entry.name, into: &k)
            k.append(UInt8(ascii: ":"))
            return k
        }
        parts = spec.entries.map { entry in
            switch entry.source {
            case .constant(let c): return (entry.name, .constant(.string(c)))
            case .field(let name):
                if let m = metrics.first(where: { $0.name == name }), m.kind != .value {
                    return (entry.name, .metric(m, fields.slot(for: m.path)))
                }
                return (entry.name, .slot(fields.slot(for: fieldAliases[name] ?? name)))
            }
        }
        userPart = spec.entries.firstIndex { $0.name == "user_id" }
    }

    /// Appends the event's projected fields as JSON members (a missing field is left out);
    /// returns the `user_id` field's value when it is projected and a string.
    func write(_ event: Event, to out: inout [UInt8]) -> String? {
        var user: String?
        var first = true
        for p in parts.indices {
            switch parts[p].1 {
            case .constant(let v):
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: keys[p])
                v.write(to: &out)
            case .slot(let s):
                if case .missing = event.values[s] { continue }
                if p == userPart, case .string(let u) = event.values[s] { user = u }
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: keys[p])
                event.values[s].write(to: &out)
            case .metric(let m, let s):
                guard let v = m.read(event.values[s]) else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: keys[p])
                JSONValue.int(Int64(v)).write(to: &out)  // a count or a length
            }
            first = false
        }
        return user
    }
}
