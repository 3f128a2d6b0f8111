import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Posts each alert to a Slack incoming webhook as a Block Kit message (members in this order):
///
/// ```
/// { "text": fallback, ["channel", "username", "icon_emoji",]
///   "blocks": [
///     header   (plain_text)  "HIGH: rule"
///     section  (fields)      User, Session, Group, Event time, Alert id
///     section  (text+fields) *What fired* + the description; one field per value
///     section  (text)        *Recommended action*      (when the rule has one)
///     context  (mrkdwn)      Tags, Condition, repeats suppressed before
///     actions  (button)      "Open" → link_template     (when configured) ] }
/// ```
///
/// - `text`, the notification and screen-reader fallback: `[SEVERITY] rule: key=value … —
///   recommended action`, at most 3,000 characters.
/// - Slack's limits hold whatever the alert: header ≤ 150 characters, section text ≤ 3,000, each
///   field ≤ 2,000 and ≤ 10 fields per section (more values are summed up in the tenth), context
///   elements ≤ 3,000, button URL ≤ 3,000 (a longer link is left out).
/// - Every mrkdwn text has `&`, `<` and `>` escaped as Slack requires, so alert content cannot
///   form links or mentions. Baseline statistics are shown short: `p99 880 (n 5000)`.
///
/// 2xx (Slack answers `ok`) is success; 400, 403, 404 and 410 are not retryable and the error
/// carries Slack's reason (`invalid_payload`, `no_service`, `channel_is_archived`, …); 429 and 5xx
/// are retryable, honouring `Retry-After`. The webhook URL is the credential: it is never in an
/// error.
public struct SlackSink: AlertSink {
    public let name: String
    let url: URL
    let channel: String?
    let username: String?
    let iconEmoji: String?
    let linkTemplate: String?
    let timeout: Double
    public var kind: String { SlackSinkConfig.kind }

    public static let maxText = 3000
    public static let maxHeader = 150
    public static let maxSectionText = 3000
    public static let maxField = 2000
    public static let maxFields = 10
    public static let maxButtonURL = 3000
    /// The placeholders of `link_template`.
    public static let linkPlaceholders = ["id", "rule", "user_id", "session_id"]

    public init(name: String, url: URL, channel: String? = nil, username: String? = nil, iconEmoji: String? = nil,
                linkTemplate: String? = nil, timeout: Double = 5) {
        self.name = name
        self.url = url
        self.channel = channel
        self.username = username
        self.iconEmoji = iconEmoji
        self.linkTemplate = linkTemplate
        self.timeout = timeout
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        for alert in alerts {
            let body = Data(message(alert).serialized().utf8)
            let r = try await HTTPExchange.send(url, headers: ["Content-Type": "application/json"], body: body, timeout: timeout, sink: name)
            if (200..<300).contains(r.status) { continue }
            try HTTPExchange.check(r, sink: name, detail: detail(r.body))
        }
    }

    // MARK: - The message

    /// The webhook's JSON body for `alert`.
    public func message(_ a: AlertRecord) -> JSONValue {
        var top: [(String, JSONValue)] = [("text", .string(SlackSink.fallbackText(a)))]
        if let channel { top.append(("channel", .string(channel))) }
        if let username { top.append(("username", .string(username))) }
        if let iconEmoji { top.append(("icon_emoji", .string(iconEmoji))) }
        var blocks: [JSONValue] = [
            .object([("type", .string("header")), ("text", SlackSink.plain(clipped("\(a.severity.rawValue.uppercased()): \(a.rule)", to: SlackSink.maxHeader)))]),
            SlackSink.section(fields: SlackSink.whoFields(a)),
            SlackSink.section(text: SlackSink.mrkdwnText("*What fired*" + (a.description.isEmpty ? "" : "\n" + SlackSink.escape(a.description)),
                                                          limit: SlackSink.maxSectionText),
                              fields: SlackSink.valueFields(a)),
        ]
        if !a.recommendedAction.isEmpty {
            blocks.append(SlackSink.section(text: SlackSink.mrkdwnText("*Recommended action*\n" + SlackSink.escape(a.recommendedAction),
                                                                        limit: SlackSink.maxSectionText)))
        }
        var context: [JSONValue] = []
        if !a.tags.isEmpty { context.append(SlackSink.mrkdwn("*Tags:* " + a.tags.map { SlackSink.code($0) }.joined(separator: " "))) }
        if !a.condition.isEmpty { context.append(SlackSink.mrkdwn("*Condition:* " + SlackSink.code(a.condition))) }
        if a.suppressedSincePrevious > 0 {
            context.append(SlackSink.mrkdwn("\(a.suppressedSincePrevious) repeat\(a.suppressedSincePrevious == 1 ? "" : "s") suppressed before"))
        }
        if !context.isEmpty { blocks.append(.object([("type", .string("context")), ("elements", .array(context))])) }
        if let link = link(a), link.utf16.count <= SlackSink.maxButtonURL {
            blocks.append(.object([
                ("type", .string("actions")),
                ("elements", .array([.object([("type", .string("button")), ("text", SlackSink.plain("Open")), ("url", .string(link))])])),
            ]))
        }
        top.append(("blocks", .array(blocks)))
        return .object(top)
    }

    /// `[SEVERITY] rule: key=value … — recommended action`, escaped, at most 3,000 characters.
    public static func fallbackText(_ a: AlertRecord) -> String {
        var s = "[\(a.severity.rawValue.uppercased())] \(a.rule)"
        let who = whoPairs(a)
        if !who.isEmpty { s += ": " + who.map { "\($0)=\($1)" }.joined(separator: " ") }
        if !a.recommendedAction.isEmpty { s += " — " + a.recommendedAction }
        return clipEscaped(escape(s), to: maxText)
    }

    /// The link of `link_template` for `a`, values URL-encoded; nil without a template.
    public func link(_ a: AlertRecord) -> String? {
        guard let linkTemplate else { return nil }
        return SlackSink.fill(linkTemplate, ["id": a.id, "rule": a.rule, "user_id": a.userID ?? "", "session_id": a.sessionID ?? ""])
    }

    /// `template` with each `{name}` replaced by its value, percent-encoded (RFC 3986 unreserved
    /// characters are kept).
    public static func fill(_ template: String, _ values: [String: String]) -> String {
        var out = template
        for (k, v) in values {
            out = out.replacingOccurrences(of: "{\(k)}", with: v.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")
        }
        return out
    }

    static let sampleLinkValues = Dictionary(uniqueKeysWithValues: linkPlaceholders.map { ($0, "x") })

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// The group, then user and session when they are not part of it.
    static func whoPairs(_ a: AlertRecord) -> [(String, String)] {
        var who = a.groupPairs
        if let u = a.userID, !a.groupKey.contains("user_id") { who.append(("user_id", u)) }
        if let s = a.sessionID, !a.groupKey.contains("session_id") { who.append(("session_id", s)) }
        return who
    }

    static func whoFields(_ a: AlertRecord) -> [JSONValue] {
        let group = a.groupPairs.map { "\($0)=\($1)" }.joined(separator: " ")
        return [
            field("User", a.userID.map(escape) ?? "–"),
            field("Session", a.sessionID.map(escape) ?? "–"),
            field("Group", group.isEmpty ? "(the whole rule)" : escape(group)),
            field("Event time", escape(a.eventTime.description)),
            field("Alert id", code(a.id)),
        ]
    }

    /// One field per value of the evidence, at most ten (the tenth sums up the rest).
    static func valueFields(_ a: AlertRecord) -> [JSONValue] {
        guard case .object(let members) = a.values, !members.isEmpty else { return [] }
        let shown = members.count > maxFields ? Array(members.prefix(maxFields - 1)) : members
        var fields = shown.map { field(escape($0.0), escape(render($0.1))) }
        if members.count > maxFields { fields.append(field("…", "\(members.count - shown.count) more values")) }
        return fields
    }

    /// A value as it reads in Slack: numbers and text as they are, a redacted excerpt by its
    /// length, baseline statistics short (`p99 880 (n 5000)`), anything else as JSON.
    static func render(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .number(let d): return JSONValue.format(d)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .object:
            if case .bool(true)? = v["redacted"] {
                if case .int(let n)? = v["length"] { return "redacted (\(n) characters)" }
                return "redacted"
            }
            if let n = v["n"], let p99 = v["p99"] {
                var s = "p99 \(render(p99))"
                if let z = v["z"] { s += ", z " + render(round(z)) }
                s += " (n \(render(n)))"
                if case .bool(false)? = v["ready"] { s += ", not ready" }
                return s
            }
            return v.serialized()
        case .array: return v.serialized()
        }
    }

    /// Numbers to two decimals (a z-score), others unchanged.
    static func round(_ v: JSONValue) -> JSONValue {
        if case .number(let d) = v { return .number((d * 100).rounded() / 100) }
        return v
    }

    // MARK: - Block Kit pieces

    static func plain(_ s: String) -> JSONValue { .object([("type", .string("plain_text")), ("text", .string(s))]) }

    /// A mrkdwn text object; `s` is already escaped.
    static func mrkdwnText(_ s: String, limit: Int) -> JSONValue {
        .object([("type", .string("mrkdwn")), ("text", .string(clipEscaped(s, to: limit)))])
    }

    static func mrkdwn(_ s: String) -> JSONValue { mrkdwnText(s, limit: maxSectionText) }

    /// A field `*title*\nvalue` (both already escaped).
    static func field(_ title: String, _ value: String) -> JSONValue { mrkdwnText("*\(title)*\n\(value)", limit: maxField) }

    static func section(text: JSONValue? = nil, fields: [JSONValue] = []) -> JSONValue {
        var m: [(String, JSONValue)] = [("type", .string("section"))]
        if let text { m.append(("text", text)) }
        if !fields.isEmpty { m.append(("fields", .array(Array(fields.prefix(maxFields))))) }
        return .object(m)
    }

    /// `s` as inline code, escaped (a backtick inside would end the code span).
    static func code(_ s: String) -> String { "`" + escape(s.replacingOccurrences(of: "`", with: "'")) + "`" }

    /// Slack's escaping of mrkdwn text: `&`, `<` and `>` as entities.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Escaped text cut to `limit`, never inside an entity.
    static func clipEscaped(_ s: String, to limit: Int) -> String {
        guard s.utf16.count > limit else { return s }
        var body = String(clipped(s, to: limit).dropLast())
        if let amp = body.lastIndex(of: "&"), !body[amp...].contains(";") { body = String(body[..<amp]) }
        return body + "…"
    }

    // MARK: - Errors

    /// Slack's plain-text reason (`invalid_payload`, `no_service`), without any part of the URL.
    func detail(_ body: Data) -> String? {
        var said = HTTPExchange.excerpt(body).trimmingCharacters(in: .whitespacesAndNewlines)
        var secrets = [url.absoluteString, url.path]
        if let q = url.query { secrets.append(q) }
        secrets += url.pathComponents.filter { $0.count >= 6 && !$0.allSatisfy(\.isLetter) }
        for s in secrets.sorted(by: { $0.count > $1.count }) where s.count > 1 {
            said = said.replacingOccurrences(of: s, with: "(webhook URL)")
        }
        return said.isEmpty ? nil : said
    }
}

/// `type: slack`: posts each alert to a Slack channel through an incoming webhook, as a Block Kit
/// message.
/// - `webhook_url_env` / `webhook_url_file` / `webhook_url` (one, required): the incoming webhook
///   URL (`https://hooks.slack.com/services/…`); the URL is the credential, prefer
///   `webhook_url_env`.
/// - `channel`, `username`, `icon_emoji`: sent as the legacy top-level fields when set (webhooks
///   of a Slack app post to the channel chosen when it was installed and may ignore them).
/// - `link_template`: adds an "Open" button to the alert's page elsewhere, e.g.
///   `https://siem.example/alerts/{id}`; placeholders `{id}`, `{rule}`, `{user_id}`,
///   `{session_id}`, substituted URL-encoded.
/// - `timeout`: seconds per request (default 5).
public struct SlackSinkConfig: SinkConfig {
    public static let kind = "slack"
    public static let keys = ["webhook_url", "webhook_url_env", "webhook_url_file", "channel", "username", "icon_emoji", "link_template", "timeout"]
    public let name: String
    public var webhookURL: SecretReference
    public var channel: String?
    public var username: String?
    public var iconEmoji: String?
    public var linkTemplate: String?
    public var timeout: Double

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        timeout = r.timeout(map, sink: name)
        channel = r.string(map, "channel", "sink '\(name)': channel")
        username = r.string(map, "username", "sink '\(name)': username")
        iconEmoji = r.string(map, "icon_emoji", "sink '\(name)': icon_emoji")
        if let t = r.string(map, "link_template", "sink '\(name)': link_template") {
            if let problem = SlackSinkConfig.check(linkTemplate: t) {
                r.error(map["link_template"], "bad_value", "sink '\(name)': link_template \(problem)")
            } else {
                linkTemplate = t
            }
        }
        guard let url = SecretReference.read(map, "webhook_url", "sink '\(name)'", item: item, required: true, reader: &r) else { return nil }
        webhookURL = url
    }

    /// Why a link template is unusable, or nil.
    static func check(linkTemplate t: String) -> String? {
        var rest = Substring(t)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { return "has a '{' without '}'" }
            let name = String(rest[rest.index(after: open)..<close])
            if !SlackSink.linkPlaceholders.contains(name) {
                return "has an unknown placeholder {\(name)}; known: " + SlackSink.linkPlaceholders.map { "{\($0)}" }.joined(separator: ", ")
            }
            rest = rest[rest.index(after: close)...]
        }
        let sample = SlackSink.fill(t, SlackSink.sampleLinkValues)
        guard let url = URL(string: sample), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            return "must be an http(s) URL such as https://siem.example/alerts/{id}"
        }
        return nil
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        SlackSink(name: name, url: try webhookURL.url(environment, sink: name, key: "webhook_url"), channel: channel, username: username,
                  iconEmoji: iconEmoji, linkTemplate: linkTemplate, timeout: timeout)
    }

    public var summary: String {
        "Slack incoming webhook, URL from \(webhookURL.summary)" + (channel.map { ", channel \($0)" } ?? "")
            + (linkTemplate.flatMap { URL(string: SlackSink.fill($0, SlackSink.sampleLinkValues))?.host }.map { ", Open links to \($0)" } ?? "")
    }
}
