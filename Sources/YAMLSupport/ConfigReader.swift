import IWDetectCore
import Yams

/// Reads typed values out of a YAML config document, collecting every problem with its file, line
/// and column instead of stopping at the first (the rule loader's way; alertmanager joins errors
/// the same way).
///
/// Each accessor checks the node's type and range and returns nil after recording a diagnostic,
/// so the caller keeps the default and goes on to the next key.
public struct ConfigReader {
    public let file: String
    public private(set) var diagnostics: [Diagnostic] = []

    public init(file: String) { self.file = file }

    public mutating func error(_ node: Node?, _ code: String, _ message: String) {
        diagnostics.append(Diagnostic(code, .error, message, file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1))
    }

    /// The node as a mapping whose keys are all in `keys`; unknown keys are errors. (Repeated
    /// keys never get here: the YAML library refuses them.)
    public mutating func mapping(_ node: Node, _ what: String, keys: [String]) -> Node.Mapping? {
        guard case .mapping(let m) = node else {
            error(node, "bad_type", "\(what) must be a mapping of keys, e.g. { \(keys.prefix(2).map { "\($0): …" }.joined(separator: ", ")) }")
            return nil
        }
        for (k, _) in m {
            let key = k.string ?? ""
            if !keys.contains(key) {
                let hint = KnownFieldsHint.nearest(key, in: keys).map { "did you mean '\($0)'? " } ?? ""
                error(k, "unknown_key", "unknown key '\(key)' in \(what); \(hint)known: \(keys.sorted().joined(separator: ", "))")
            }
        }
        return m
    }

    private func scalar(_ node: Node) -> Node.Scalar? {
        if case .scalar(let s) = node { return s }
        return nil
    }

    /// A plain (unquoted) scalar that is YAML's null: `~`, `null` or nothing.
    private func isNull(_ node: Node) -> Bool {
        guard let s = scalar(node), s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    public mutating func int(_ m: Node.Mapping, _ key: String, _ what: String, in range: ClosedRange<Int64>) -> Int64? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard let s = scalar(node), let v = Int64(String(s.string.filter { $0 != "_" })) else {
            error(node, "bad_type", "\(what) must be a whole number, got \(show(node))")
            return nil
        }
        guard range.contains(v) else {
            error(node, "out_of_range", "\(what) must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
            return nil
        }
        return v
    }

    public mutating func double(_ m: Node.Mapping, _ key: String, _ what: String, in range: ClosedRange<Double>) -> Double? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard let s = scalar(node), let v = Double(s.string), v.isFinite else {
            error(node, "bad_type", "\(what) must be a number, got \(show(node))")
            return nil
        }
        guard range.contains(v) else {
            error(node, "out_of_range", "\(what) must be between \(JSONValue.format(range.lowerBound)) and \(JSONValue.format(range.upperBound)), got \(JSONValue.format(v))")
            return nil
        }
        return v
    }

    public mutating func bool(_ m: Node.Mapping, _ key: String, _ what: String) -> Bool? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard let s = scalar(node), s.style == .plain, let v = ["true": true, "false": false][s.string.lowercased()] else {
            error(node, "bad_type", "\(what) must be true or false, got \(show(node))")
            return nil
        }
        return v
    }

    public mutating func string(_ m: Node.Mapping, _ key: String, _ what: String, allowEmpty: Bool = false) -> String? {
        guard let node = m[key] else { return nil }
        guard let s = scalar(node) else {
            error(node, "bad_type", "\(what) must be text, got \(show(node))")
            return nil
        }
        if isNull(node) && !allowEmpty { return nil }
        guard allowEmpty || !s.string.isEmpty else {
            error(node, "bad_value", "\(what) must not be empty")
            return nil
        }
        return s.string
    }

    public mutating func duration(_ m: Node.Mapping, _ key: String, _ what: String, in range: ClosedRange<EventTime.Duration>) -> EventTime.Duration? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard let s = scalar(node), let d = EventTime.Duration(parsing: s.string) else {
            error(node, "bad_duration", "\(what) must be a duration such as 30s, 5m, 1h or 14d, got \(show(node))")
            return nil
        }
        guard range.contains(d) else {
            error(node, "out_of_range", "\(what) must be between \(range.lowerBound) and \(range.upperBound), got \(d)")
            return nil
        }
        return d
    }

    public mutating func stringList(_ m: Node.Mapping, _ key: String, _ what: String) -> [String]? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard case .sequence(let seq) = node else {
            error(node, "bad_type", "\(what) must be a list, e.g. [a, b], got \(show(node))")
            return nil
        }
        var out: [String] = []
        for item in seq {
            guard let s = scalar(item), !s.string.isEmpty else {
                error(item, "bad_type", "each item of \(what) must be non-empty text, got \(show(item))")
                continue
            }
            out.append(s.string)
        }
        return out
    }

    /// The items of a list of mappings.
    public mutating func sequence(_ m: Node.Mapping, _ key: String, _ what: String) -> [Node]? {
        guard let node = m[key], !isNull(node) else { return nil }
        guard case .sequence(let seq) = node else {
            error(node, "bad_type", "\(what) must be a list of mappings (YAML items starting with '-')")
            return nil
        }
        return Array(seq)
    }

    /// A short rendering of a node for messages.
    public func show(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "'\(s.string.prefix(40))'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

/// "Did you mean" for config keys.
enum KnownFieldsHint {
    static func nearest(_ key: String, in keys: [String]) -> String? {
        let scored = keys.map { ($0, EditDistance.between($0, key)) }.filter { $0.1 <= max(2, key.count / 4) }
        return scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }?.0
    }
}
