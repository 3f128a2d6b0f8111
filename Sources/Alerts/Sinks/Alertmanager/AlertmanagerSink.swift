import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// POSTs alerts to Prometheus Alertmanager's API v2 (`POST {url}/api/v2/alerts`), a JSON array of
/// alerts per request, so Alertmanager's routes, grouping, silences and inhibitions apply.
///
/// Each alert: labels `alertname` (the rule), `severity`, `source="iw-detect"` and the group's key
/// and value (`user_id="attacker-7"`; names sanitised to `[a-zA-Z_][a-zA-Z0-9_]*`), so one rule
/// and group is one Alertmanager alert and repeats update it. Ids never become labels (they are
/// unbounded): the alert id, event id, the readable line, description, recommended action and the
/// values (compact JSON) are annotations. `startsAt` is the event time and `endsAt` the event
/// time plus the rule's dedup window; no resolved notification is ever sent by us.
///
/// 200 is success; 400 (Alertmanager refused the alerts) is not retryable and carries
/// Alertmanager's error text; 408, 429 and 5xx are retryable. Credentials never appear in errors.
public struct AlertmanagerSink: AlertSink {
    public let name: String
    let base: URL
    let authorization: String?
    /// The credential itself, to scrub from anything a receiver sends back.
    let secret: String?
    let generatorURLTemplate: String?
    let timeout: Double
    public let batchSize: Int
    public var kind: String { AlertmanagerSinkConfig.kind }

    /// How the sink authenticates.
    public enum Auth: Sendable {
        case none
        case bearer(String)
        case basic(username: String, password: String)
    }

    public init(name: String, url: URL, auth: Auth = .none, generatorURLTemplate: String? = nil, timeout: Double = 5, batchSize: Int = 64) {
        self.name = name
        base = url
        switch auth {
        case .none:
            authorization = nil
            secret = nil
        case .bearer(let token):
            authorization = "Bearer " + token
            secret = token
        case .basic(let user, let password):
            authorization = "Basic " + Data((user + ":" + password).utf8).base64EncodedString()
            secret = password
        }
        self.generatorURLTemplate = generatorURLTemplate
        self.timeout = timeout
        self.batchSize = max(1, batchSize)
    }

    /// `{url}/api/v2/…`, keeping a path prefix of the URL (Alertmanager behind a proxy).
    func endpoint(_ path: String) -> URL {
        var s = base.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        return URL(string: s + path) ?? base
    }

    var headers: [String: String] {
        var h = ["Content-Type": "application/json", "Accept": "application/json"]
        if let authorization { h["Authorization"] = authorization }
        return h
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        let body = Data(payload(alerts).serialized().utf8)
        let r = try await HTTPExchange.send(endpoint("/api/v2/alerts"), headers: headers, body: body, timeout: timeout, sink: name)
        try HTTPExchange.check(r, sink: name, detail: (200..<300).contains(r.status) ? nil : errorText(r.body))
    }

    /// Asks for Alertmanager's status (`GET /api/v2/status`): reachable, and the credentials pass a proxy in front.
    public func healthcheck() async throws(SinkError) {
        var h = headers
        h["Content-Type"] = nil
        let r = try await HTTPExchange.send(endpoint("/api/v2/status"), method: "GET", headers: h, body: Data(), timeout: timeout, sink: name)
        try HTTPExchange.check(r, sink: name, detail: (200..<300).contains(r.status) ? nil : errorText(r.body))
    }

    /// What Alertmanager said: its error is a JSON string (`"start time must be before end
    /// time"`) or `{"code":…,"message":…}`; anything else is shown as an excerpt. The credential
    /// is scrubbed should a proxy echo it.
    func errorText(_ body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        let text = String(decoding: body, as: UTF8.self)
        var said: String
        switch try? JSONValue.parse(text) {
        case .string(let s)?: said = s
        case let v? where v["message"] != nil:
            if case .string(let s)? = v["message"] { said = s } else { said = HTTPExchange.excerpt(body) }
        default: said = HTTPExchange.excerpt(body)
        }
        if said.count > 300 { said = String(said.prefix(300)) + "…" }
        if let secret, !secret.isEmpty { said = said.replacingOccurrences(of: secret, with: "(redacted)") }
        return said
    }

    /// The request body: a JSON array of postable alerts.
    public func payload(_ alerts: [AlertRecord]) -> JSONValue {
        .array(alerts.map(alert))
    }

    /// One postable alert.
    public func alert(_ a: AlertRecord) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("labels", .object(AlertmanagerSink.labels(a).map { ($0.0, .string($0.1)) })),
            ("annotations", .object(AlertmanagerSink.annotations(a).map { ($0.0, .string($0.1)) })),
            ("startsAt", .string(a.eventTime.description)),
            ("endsAt", .string((a.eventTime + a.dedupWindow).description)),
        ]
        if let generatorURLTemplate { members.append(("generatorURL", .string(AlertmanagerSink.generatorURL(generatorURLTemplate, a)))) }
        return .object(members)
    }

    /// The labels: identity only (rule, severity, source, group), never an id.
    public static func labels(_ a: AlertRecord) -> [(String, String)] {
        var labels: [(String, String)] = [("alertname", a.rule), ("severity", a.severity.rawValue), ("source", "iw-detect")]
        for (key, value) in a.groupPairs where !value.isEmpty {
            var n = labelName(key)
            while labels.contains(where: { $0.0 == n }) { n = "group_" + n }
            labels.append((n, value))
        }
        return labels
    }

    /// The annotations (empty ones left out).
    public static func annotations(_ a: AlertRecord) -> [(String, String)] {
        let all: [(String, String)] = [
            ("summary", a.summaryLine),
            ("description", a.description),
            ("recommended_action", a.recommendedAction),
            ("alert_id", a.id),
            ("event_id", a.eventID),
            ("session_id", a.sessionID ?? ""),
            ("values", a.values.serialized()),
        ]
        return all.filter { !$0.1.isEmpty }
    }

    /// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters become `_`, and a
    /// name that is empty or starts with a digit gets a leading `_`.
    public static func labelName(_ s: String) -> String {
        var out = String(String.UnicodeScalarView(s.unicodeScalars.map { c in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c))) || c == "_" ? c : "_"
        }))
        if out.isEmpty || out.first!.isNumber { out = "_" + out }
        return out
    }

    /// The template with `{id}` and `{rule}` replaced (percent-encoded).
    public static func generatorURL(_ template: String, _ a: AlertRecord) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s }
        return template.replacingOccurrences(of: "{id}", with: enc(a.id)).replacingOccurrences(of: "{rule}", with: enc(a.rule))
    }
}

/// `type: alertmanager`: POSTs alerts to Prometheus Alertmanager (API v2), whose routes then
/// notify (grouping, silences, inhibitions apply).
/// - `url` (required): Alertmanager's base URL, e.g. `http://alertmanager:9093` (a path prefix is
///   kept: `https://proxy/alertmanager`); no credentials in it (use the keys below).
/// - `bearer_token_env` / `bearer_token_file` / `bearer_token`: send `Authorization: Bearer …`
///   (an authenticating proxy, a managed Alertmanager).
/// - `username` with `password_env` / `password_file` / `password`: HTTP basic auth
///   (Alertmanager's own `web.config.file` `basic_auth_users`). Not together with a bearer token.
/// - `generator_url_template`: the alerts' `generatorURL`, with `{id}` (the alert id) and
///   `{rule}` replaced, e.g. `https://iw-detect.example/alerts/{id}`; without it none is sent.
/// - `timeout`: seconds per request (default 5).
/// - `batch_size`: alerts per request, 1–1000 (default 64).
public struct AlertmanagerSinkConfig: SinkConfig {
    public static let kind = "alertmanager"
    public static let keys = ["url", "bearer_token", "bearer_token_env", "bearer_token_file", "username", "password", "password_env",
                              "password_file", "generator_url_template", "timeout", "batch_size"]
    public let name: String
    public var url: URL
    public var bearerToken: SecretReference?
    public var username: String?
    public var password: SecretReference?
    public var generatorURLTemplate: String?
    public var timeout: Double
    public var batchSize: Int = 64

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        timeout = r.timeout(map, sink: name)
        if let n = r.int(map, "batch_size", "sink '\(name)': batch_size", in: 1...1000) { batchSize = Int(n) }
        bearerToken = SecretReference.read(map, "bearer_token", "sink '\(name)'", item: item, required: false, reader: &r)
        username = r.string(map, "username", "sink '\(name)': username")
        password = SecretReference.read(map, "password", "sink '\(name)'", item: item, required: false, reader: &r)
        if username != nil && password == nil && map.keys.allSatisfy({ !["password", "password_env", "password_file"].contains($0.string ?? "") }) {
            r.error(map["username"], "missing_key", "sink '\(name)': username needs 'password_env' (an environment variable), 'password_file' or 'password'")
        }
        if password != nil && username == nil && map["username"] == nil {
            r.error(item, "missing_key", "sink '\(name)': a password needs 'username' (HTTP basic auth)")
        }
        if bearerToken != nil && (username != nil || password != nil) {
            r.error(map["username"] ?? item, "conflicting_keys", "sink '\(name)': give a bearer token or username and password, not both")
        }
        if let node = map["generator_url_template"], let t = r.string(map, "generator_url_template", "sink '\(name)': generator_url_template") {
            let sample = t.replacingOccurrences(of: "{id}", with: "x").replacingOccurrences(of: "{rule}", with: "x")
            if let u = URL(string: sample), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil {
                generatorURLTemplate = t
            } else {
                r.error(node, "bad_value", "sink '\(name)': generator_url_template must be an http(s) URL, with {id} or {rule} where they go")
            }
        }
        guard let url = r.url(map, "url", "sink '\(name)': url") else {
            if map["url"] == nil { r.error(item, "missing_key", "sink '\(name)': an alertmanager sink needs 'url' (e.g. http://alertmanager:9093)") }
            return nil
        }
        guard url.user == nil && url.password == nil else {
            r.error(map["url"], "bad_value", "sink '\(name)': url must not hold credentials; use username with password_env, or bearer_token_env")
            return nil
        }
        self.url = url
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        var auth = AlertmanagerSink.Auth.none
        if let bearerToken {
            auth = .bearer(try bearerToken.resolve(environment, sink: name, key: "bearer_token"))
        } else if let username, let password {
            auth = .basic(username: username, password: try password.resolve(environment, sink: name, key: "password"))
        }
        return AlertmanagerSink(name: name, url: url, auth: auth, generatorURLTemplate: generatorURLTemplate, timeout: timeout, batchSize: batchSize)
    }

    /// The receiver without path or query, and where the credential comes from.
    public var summary: String {
        var s = "Alertmanager API v2 at \(url.scheme ?? "http")://\(url.host ?? "?")" + (url.port.map { ":\($0)" } ?? "")
        if let bearerToken { s += ", bearer token from \(bearerToken.summary)" }
        if let username, let password { s += ", basic auth as \(username) (password from \(password.summary))" }
        return s
    }
}
