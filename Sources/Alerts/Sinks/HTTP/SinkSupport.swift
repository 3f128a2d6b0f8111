import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Helpers shared by the SIEM sinks (Splunk HEC, Elastic, Logstash, Sentinel).
enum SIEMSupport {
    /// `message` with every secret in `secrets` replaced by `(redacted)`: a receiver that echoes
    /// a credential back in its answer never gets it into a log.
    static func scrub(_ message: String, _ secrets: [String]) -> String {
        var m = message
        for s in secrets where !s.isEmpty { m = m.replacingOccurrences(of: s, with: "(redacted)") }
        return m
    }

    static func scrub(_ e: SinkError, _ secrets: [String]) -> SinkError {
        var e = e
        e.message = scrub(e.message, secrets)
        return e
    }

    /// `base` (trailing slashes dropped) followed by `path` (starting with `/`).
    static func join(_ base: URL, _ path: String) -> URL {
        var s = base.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        return URL(string: s + path) ?? base
    }

    /// How a plain receiver URL is shown in summaries: its host and port, nothing else.
    static func display(_ url: URL) -> String {
        (url.host ?? "?") + (url.port.map { ":\($0)" } ?? "")
    }

    static func int(_ v: JSONValue?) -> Int? {
        switch v {
        case .int(let n)?: return Int(n)
        case .number(let d)? where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    static func string(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    /// The response body as JSON, if it is.
    static func json(_ body: Data) -> JSONValue? {
        guard !body.isEmpty else { return nil }
        return try? JSONValue.parse(String(decoding: body, as: UTF8.self))
    }

    /// `Authorization: Basic …` for a user and password.
    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }
}

extension ConfigReader {
    /// A required plain base URL (a receiver's address, not a secret): http(s), with a host, and
    /// without user information (credentials go in the sink's secret keys).
    mutating func siemURL(_ m: Node.Mapping, _ key: String, sink: String, kind: String, item: Node, example: String) -> URL? {
        guard m[key] != nil else {
            error(item, "missing_key", "sink '\(sink)' (\(kind)) needs '\(key)', e.g. \(example)")
            return nil
        }
        guard let url = url(m, key, "sink '\(sink)': \(key)") else { return nil }
        if url.user != nil || url.password != nil {
            error(m[key], "bad_value", "sink '\(sink)': \(key) must not carry credentials (user:password@); use the sink's secret keys")
            return nil
        }
        return url
    }

    /// `batch_size`: alerts per request, 1…1000 (default 100).
    mutating func siemBatchSize(_ m: Node.Mapping, sink: String) -> Int {
        Int(int(m, "batch_size", "sink '\(sink)': batch_size", in: 1...1000) ?? 100)
    }
}

/// Optional HTTP credentials of an Elastic or Logstash sink: an Elasticsearch API key
/// (`Authorization: ApiKey …`) or a user and password (`Authorization: Basic …`).
public enum HTTPCredentials: Sendable, Equatable {
    /// The API key's encoded form (what Kibana shows as "Encoded", base64 of `id:key`).
    case apiKey(SecretReference)
    case basic(username: String, password: SecretReference)

    /// Reads `api_key*` (when `apiKey`) or `username` with `password*`; nil when none is given
    /// (or after recording a problem).
    static func read(_ map: Node.Mapping, sink: String, item: Node, apiKey allowAPIKey: Bool,
                     reader r: inout ConfigReader) -> HTTPCredentials? {
        let key = allowAPIKey ? SecretReference.read(map, "api_key", "sink '\(sink)': api_key", item: item, required: false, reader: &r) : nil
        let user = r.string(map, "username", "sink '\(sink)': username")
        let password = SecretReference.read(map, "password", "sink '\(sink)': password", item: item, required: false, reader: &r)
        let passwordNode = ["password", "password_env", "password_file"].lazy.compactMap { map[$0] }.first
        if let key {
            if user != nil || password != nil {
                r.error(map["username"] ?? passwordNode, "conflicting_keys",
                        "sink '\(sink)': give an API key (api_key_env, …) or username and password, not both")
                return nil
            }
            return .apiKey(key)
        }
        switch (user, password) {
        case (let u?, let p?): return .basic(username: u, password: p)
        case (_?, nil):
            r.error(map["username"], "missing_key", "sink '\(sink)': username needs 'password_env' (an environment variable), 'password_file' or 'password'")
            return nil
        case (nil, _?):
            r.error(passwordNode, "missing_key", "sink '\(sink)': a password needs a 'username'")
            return nil
        case (nil, nil): return nil
        }
    }

    /// The `Authorization` header's value and the secrets it carries (for scrubbing).
    func header(_ environment: [String: String], sink: String) throws(SinkError) -> (value: String, secrets: [String]) {
        switch self {
        case .apiKey(let ref):
            let k = try ref.resolve(environment, sink: sink, key: "api_key")
            return ("ApiKey " + k, [k])
        case .basic(let user, let ref):
            let p = try ref.resolve(environment, sink: sink, key: "password")
            let value = SIEMSupport.basic(user, p)
            return (value, [p, String(value.dropFirst("Basic ".count))])
        }
    }

    public var summary: String {
        switch self {
        case .apiKey(let ref): return "API key from \(ref.summary)"
        case .basic(let user, let ref): return "basic auth as \(user) (password from \(ref.summary))"
        }
    }
}

/// `s` cut to at most `limit` UTF-16 units (the unit the receivers' limits count), ending with
/// `…` when cut; never splits a character.
func clipped(_ s: String, to limit: Int) -> String {
    guard s.utf16.count > limit else { return s }
    var out = ""
    var used = 0
    for c in s {
        let n = c.utf16.count
        if used + n > limit - 1 { break }
        out.append(c)
        used += n
    }
    return out + "…"
}
