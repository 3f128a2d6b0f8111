import CCrypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore
import YAMLSupport
import Yams

/// Triggers one PagerDuty alert per iw-detect alert through the Events API v2:
/// `POST {base_url}/v2/enqueue` with a JSON body of this shape (members in this order):
///
/// ```
/// { "routing_key": KEY, "event_action": "trigger",
///   "dedup_key": "iw-detect/RULE/GROUP VALUE/WINDOW START", "client": "iw-detect",
///   "payload": { "summary", "severity", "source", "timestamp", "component", "group", "class",
///                "custom_details": { "alert_id", "description", "user_id", "session_id", "action",
///                                    "recommended_action", "condition", "values", "event_ids",
///                                    "tags", "suppressed_since_previous", "detected_at" } } }
/// ```
///
/// - `dedup_key` is stable per rule, group and suppression window (the alert's event time floored
///   to the rule's `dedup_window`), so repeats in a window update one PagerDuty alert; at most
///   255 characters (a long group value is replaced by `sha256:HEX`).
/// - `summary`: `[SEVERITY] rule: key=value …` (the group, then user and session), at most
///   1,024 characters, cut with "…".
/// - `severity`: critical → critical, high → error, medium → warning, low → info.
/// - `timestamp`: the alert's event time (RFC 3339); `group`: the group value (left out when the
///   rule has no dedup key); `class`: the rule.
/// - The body stays within 512 KB: when larger, custom_details members are dropped (`values`
///   first) and `"truncated"` says so, as Alertmanager does.
///
/// 202 (any 2xx) is success; 400 is not retryable and the error carries PagerDuty's `message` and
/// `errors`; 429 and 5xx are retryable, honouring `Retry-After`. The routing key is never in an
/// error.
public struct PagerDutySink: AlertSink {
    public let name: String
    let endpoint: URL
    let routingKey: String
    let source: String
    let component: String
    let timeout: Double
    public var kind: String { PagerDutySinkConfig.kind }

    public static let defaultBaseURL = URL(string: "https://events.pagerduty.com")!
    public static let defaultComponent = "llm-application"
    /// PagerDuty's limits: `payload.summary`, `dedup_key`, and the whole request (512 KB, counted
    /// as 512,000 bytes like Alertmanager, which is within either reading of "KB").
    public static let maxSummary = 1024
    public static let maxDedupKey = 255
    public static let maxBody = 512_000
    public static let truncationNote = "custom_details were cut to fit PagerDuty's 512 KB limit"

    public init(name: String, baseURL: URL = PagerDutySink.defaultBaseURL, routingKey: String, source: String? = nil,
                component: String = PagerDutySink.defaultComponent, timeout: Double = 5) {
        self.name = name
        var base = baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        self.endpoint = URL(string: base + "/v2/enqueue") ?? baseURL
        self.routingKey = routingKey
        self.source = source ?? PagerDutySink.hostName
        self.component = component
        self.timeout = timeout
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        for alert in alerts {
            let body = Data(event(alert).serialized().utf8)
            let r = try await HTTPExchange.send(endpoint, headers: ["Content-Type": "application/json"], body: body,
                                                timeout: timeout, sink: name)
            if (200..<300).contains(r.status) { continue }
            try HTTPExchange.check(r, sink: name, detail: detail(r.body))
        }
    }

    // MARK: - The event

    /// The Events API v2 request body for `alert`.
    public func event(_ a: AlertRecord) -> JSONValue {
        var details = PagerDutySink.customDetails(a)
        let full = build(a, details: details, group: a.groupValue, rule: a.rule)
        if full.serialized().utf8.count <= PagerDutySink.maxBody { return full }
        // Too large: drop members, the bulkiest kinds first, until it fits.
        let note: (String, JSONValue) = ("truncated", .string(PagerDutySink.truncationNote))
        for key in ["values", "event_ids", "condition", "description", "recommended_action", "tags", "action", "user_id", "session_id"] {
            details.removeAll { $0.0 == key }
            let e = build(a, details: details + [note], group: a.groupValue, rule: a.rule)
            if e.serialized().utf8.count <= PagerDutySink.maxBody { return e }
        }
        // Still too large: only an enormous group value or rule name can do that; cut them too.
        return build(a, details: details + [note], group: clipped(a.groupValue, to: 1024), rule: clipped(a.rule, to: 1024))
    }

    private func build(_ a: AlertRecord, details: [(String, JSONValue)], group: String, rule: String) -> JSONValue {
        var payload: [(String, JSONValue)] = [
            ("summary", .string(PagerDutySink.summary(a))),
            ("severity", .string(PagerDutySink.severity(a.severity))),
            ("source", .string(source)),
            ("timestamp", .string(a.eventTime.description)),
            ("component", .string(component)),
        ]
        if !group.isEmpty { payload.append(("group", .string(group))) }
        payload.append(("class", .string(rule)))
        payload.append(("custom_details", .object(details)))
        return .object([
            ("routing_key", .string(routingKey)),
            ("event_action", .string("trigger")),
            ("dedup_key", .string(PagerDutySink.dedupKey(a))),
            ("client", .string("iw-detect")),
            ("payload", .object(payload)),
        ])
    }

    /// What PagerDuty shows under "custom details": what the alert carries besides the summary.
    static func customDetails(_ a: AlertRecord) -> [(String, JSONValue)] {
        var d: [(String, JSONValue)] = [("alert_id", .string(a.id))]
        if !a.description.isEmpty { d.append(("description", .string(a.description))) }
        if let u = a.userID { d.append(("user_id", .string(u))) }
        if let s = a.sessionID { d.append(("session_id", .string(s))) }
        d += [
            ("action", .string(a.action)),
            ("recommended_action", .string(a.recommendedAction)),
            ("condition", .string(a.condition)),
            ("values", a.values),
            ("event_ids", .array(a.eventIDs.map { .string($0) })),
            ("tags", .array(a.tags.map { .string($0) })),
            ("suppressed_since_previous", .int(a.suppressedSincePrevious)),
            ("detected_at", .string(a.detectedAt.description)),
        ]
        return d
    }

    /// iw-detect's severity as PagerDuty's (`critical`, `error`, `warning`, `info`).
    public static func severity(_ s: Severity) -> String {
        switch s {
        case .critical: return "critical"
        case .high: return "error"
        case .medium: return "warning"
        case .low: return "info"
        }
    }

    /// `[SEVERITY] rule: key=value …`, at most 1,024 characters.
    public static func summary(_ a: AlertRecord) -> String {
        var s = "[\(a.severity.rawValue.uppercased())] \(a.rule)"
        var who = a.groupPairs.map { "\($0)=\($1)" }
        if let u = a.userID, !a.groupKey.contains("user_id") { who.append("user_id=\(u)") }
        if let sid = a.sessionID, !a.groupKey.contains("session_id") { who.append("session_id=\(sid)") }
        if !who.isEmpty { s += ": " + who.joined(separator: " ") }
        return clipped(s, to: maxSummary)
    }

    /// `iw-detect/RULE/GROUP/WINDOW START`: the same for every alert of a rule and group within
    /// one suppression window; at most 255 characters.
    public static func dedupKey(_ a: AlertRecord) -> String {
        let w = a.dedupWindow.micros, t = a.eventTime.micros
        let start = EventTime(micros: w > 0 ? t - ((t % w) + w) % w : t).description
        let plain = "iw-detect/\(a.rule)/\(a.groupValue)/\(start)"
        if plain.utf8.count <= maxDedupKey { return plain }
        let hashedGroup = "iw-detect/\(a.rule)/sha256:\(sha256Hex(a.groupValue))/\(start)"
        if hashedGroup.utf8.count <= maxDedupKey { return hashedGroup }
        return "iw-detect/sha256:\(sha256Hex(a.rule + "\u{0}" + a.groupValue))/\(start)"
    }

    /// SHA-256 of the UTF-8 text, as lowercase hex.
    static func sha256Hex(_ s: String) -> String {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let bytes = Array(s.utf8)
        _ = bytes.withUnsafeBytes { b in EVP_Digest(b.baseAddress, b.count, &out, &length, EVP_sha256(), nil) }
        return out.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// This machine's name (the default `source`).
    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "iw-detect" }
        let host = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return host.isEmpty ? "iw-detect" : host
    }

    // MARK: - Errors

    /// What PagerDuty said, for the error: `message` and `errors` of its JSON answer, else the
    /// start of the body; the routing key cut out, in case an answer echoes it.
    func detail(_ body: Data) -> String? {
        let text = String(decoding: body.prefix(64 * 1024), as: UTF8.self)
        var said: String
        if let v = try? JSONValue.parse(text), case .object = v {
            var parts: [String] = []
            if case .string(let m)? = v["message"], !m.isEmpty { parts.append(m) }
            if case .array(let errors)? = v["errors"] {
                let list = errors.map { if case .string(let s) = $0 { return s } else { return $0.serialized() } }
                if !list.isEmpty { parts.append(list.joined(separator: "; ")) }
            }
            said = parts.isEmpty ? HTTPExchange.excerpt(body) : parts.joined(separator: ": ")
        } else {
            said = HTTPExchange.excerpt(body).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if !routingKey.isEmpty { said = said.replacingOccurrences(of: routingKey, with: "(routing key)") }
        said = clipped(said, to: 300)
        return said.isEmpty ? nil : said
    }
}

/// `type: pagerduty`: one PagerDuty alert per iw-detect alert, through the Events API v2.
/// - `routing_key_env` / `routing_key_file` / `routing_key` (one, required): the integration key
///   of the service's "Events API v2" integration; prefer `routing_key_env`.
/// - `base_url`: the Events API's address; `/v2/enqueue` is appended (default
///   `https://events.pagerduty.com`; `https://events.eu.pagerduty.com` for an EU account).
/// - `source`: `payload.source`, the affected system (default: this host's name).
/// - `component`: `payload.component` (default `llm-application`).
/// - `timeout`: seconds per request (default 5).
public struct PagerDutySinkConfig: SinkConfig {
    public static let kind = "pagerduty"
    public static let keys = ["base_url", "routing_key", "routing_key_env", "routing_key_file", "source", "component", "timeout"]
    public let name: String
    public var routingKey: SecretReference
    public var baseURL: URL = PagerDutySink.defaultBaseURL
    public var source: String?
    public var component: String = PagerDutySink.defaultComponent
    public var timeout: Double

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        timeout = r.timeout(map, sink: name)
        if let url = r.url(map, "base_url", "sink '\(name)': base_url") { baseURL = url }
        source = r.string(map, "source", "sink '\(name)': source")
        if let c = r.string(map, "component", "sink '\(name)': component") { component = c }
        guard let key = SecretReference.read(map, "routing_key", "sink '\(name)'", item: item, required: true, reader: &r) else { return nil }
        routingKey = key
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        PagerDutySink(name: name, baseURL: baseURL, routingKey: try routingKey.resolve(environment, sink: name, key: "routing_key"),
                      source: source, component: component, timeout: timeout)
    }

    public var summary: String {
        "PagerDuty Events API v2 at \(baseURL.host ?? "?"), routing key from \(routingKey.summary)"
    }
}
