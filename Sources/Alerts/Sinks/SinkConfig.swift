import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// A sink's configuration: strict (unknown keys are errors), every key documented on the type,
/// secrets by reference (``SecretReference``), and the factory of its sink.
///
/// ## Implementation requirements
/// - `init?(name:map:item:reader:)` reads every key with the ``ConfigReader``, which records each
///   problem with its line and column; it returns nil only when the sink cannot be described.
/// - ``makeSink(environment:)`` resolves secrets and builds the sink; its errors name the
///   variable or file a secret comes from, never the secret.
/// - ``summary`` is what `iw-detect sinks list` prints: no secret, no URL that may hold one.
public protocol SinkConfig: Sendable {
    /// The `type:` that selects it (a noun named after the service: `pagerduty`, `splunk_hec`).
    static var kind: String { get }
    /// Its keys besides `name` and `type`.
    static var keys: [String] { get }
    var name: String { get }
    init?(name: String, map: Node.Mapping, item: Node, reader: inout ConfigReader)
    func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink
    var summary: String { get }
}

/// Every sink kind iw-detect has: the one list to extend (alertmanager's `config/receiver`).
public enum SinkRegistry {
    public static let kinds: [any SinkConfig.Type] = [
        StdoutSinkConfig.self,
        JSONLFileSinkConfig.self,
        WebhookSinkConfig.self,
        SplunkHECSinkConfig.self,
        ElasticSinkConfig.self,
        LogstashSinkConfig.self,
        SentinelSinkConfig.self,
        PagerDutySinkConfig.self,
        SlackSinkConfig.self,
        SyslogSinkConfig.self,
        AlertmanagerSinkConfig.self,
    ]

    public static var kindNames: [String] { kinds.map { $0.kind } }

    /// Reads one item of `sinks:`.
    public static func read(_ item: Node, reader r: inout ConfigReader) -> (any SinkConfig)? {
        guard case .mapping(let m) = item else {
            r.error(item, "bad_type", "a sink must be a mapping with name, type and the type's keys")
            return nil
        }
        guard let type = r.string(m, "type", "a sink's type") else {
            if m["type"] == nil { r.error(item, "missing_key", "each sink needs a type: one of \(kindNames.joined(separator: ", "))") }
            return nil
        }
        guard let kind = kinds.first(where: { $0.kind == type }) else {
            r.error(m["type"], "unknown_sink_type", "sink '\(m["name"]?.string ?? "?")' has type '\(type)'; known types: \(kindNames.joined(separator: ", "))")
            return nil
        }
        _ = r.mapping(item, "sink '\(m["name"]?.string ?? "?")' (\(type))", keys: ["name", "type"] + kind.keys)
        guard let name = r.string(m, "name", "a sink's name") else {
            if m["name"] == nil { r.error(item, "missing_key", "each sink needs a name (routes refer to it)") }
            return nil
        }
        return kind.init(name: name, map: m, item: item, reader: &r)
    }
}

/// Where a secret comes from: `KEY_env: VARIABLE` (recommended), `KEY_file: PATH` (a file holding
/// it, such as a mounted secret), or `KEY: value` in the config itself. Only the reference is
/// ever printed.
public enum SecretReference: Sendable, Equatable {
    case environment(String)
    case file(String)
    case literal(String)

    /// Reads `key`, `key_env` or `key_file` (exactly one) from `map`; the keys must be in the
    /// sink's ``SinkConfig/keys``.
    public static func read(_ map: Node.Mapping, _ key: String, _ what: String, item: Node, required: Bool,
                            reader r: inout ConfigReader) -> SecretReference? {
        let given = [key, key + "_env", key + "_file"].filter { map[$0] != nil }
        guard given.count <= 1 else {
            r.error(map[given[1]], "conflicting_keys", "\(what): give one of \(given.joined(separator: ", ")), not several")
            return nil
        }
        guard let which = given.first else {
            if required { r.error(item, "missing_key", "\(what) needs '\(key)_env' (an environment variable), '\(key)_file' or '\(key)'") }
            return nil
        }
        guard let value = r.string(map, which, "\(what): \(which)") else { return nil }
        switch which {
        case key + "_env": return .environment(value)
        case key + "_file": return .file(value)
        default: return .literal(value)
        }
    }

    /// The secret; errors say where it was looked for, never what it is.
    public func resolve(_ environment: [String: String], sink: String, key: String) throws(SinkError) -> String {
        switch self {
        case .literal(let v): return v
        case .environment(let name):
            guard let v = environment[name], !v.isEmpty else {
                throw SinkError("sink '\(sink)': \(key) comes from the environment variable \(name), which is not set", isRetryable: false)
            }
            return v
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SinkError("sink '\(sink)': \(key) comes from the file \(path), which cannot be read", isRetryable: false)
            }
            let v = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !v.isEmpty else { throw SinkError("sink '\(sink)': the file \(path) (for \(key)) is empty", isRetryable: false) }
            return v
        }
    }

    /// How `sinks list` shows it.
    public var summary: String {
        switch self {
        case .environment(let name): return "$\(name)"
        case .file(let path): return "file \(path)"
        case .literal: return "(in the config)"
        }
    }

    /// Resolves an URL secret and checks it is http(s) with a host; the value is never shown.
    public func url(_ environment: [String: String], sink: String, key: String) throws(SinkError) -> URL {
        let raw = try resolve(environment, sink: sink, key: key)
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw SinkError("sink '\(sink)': \(key) is not an http(s) URL (value not shown)", isRetryable: false)
        }
        return url
    }
}

extension ConfigReader {
    /// A plain http(s) base URL (not a secret: a receiver's address).
    public mutating func url(_ m: Node.Mapping, _ key: String, _ what: String) -> URL? {
        guard let s = string(m, key, what) else { return nil }
        guard let url = URL(string: s), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            error(m[key], "bad_value", "\(what) must be an http(s) URL such as https://events.pagerduty.com")
            return nil
        }
        return url
    }

    /// Request timeout in seconds (default 5).
    public mutating func timeout(_ m: Node.Mapping, sink: String) -> Double {
        double(m, "timeout", "sink '\(sink)': timeout", in: 0.1...300) ?? 5
    }
}
