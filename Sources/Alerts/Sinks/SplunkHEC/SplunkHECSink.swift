import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Sends alerts to Splunk's HTTP Event Collector: `POST {url}/services/collector/event` with
/// `Authorization: Splunk <token>`, a batch per request in HEC's batch form (event objects one
/// after another, here one per line).
///
/// Each event is `{"time": <event time, epoch seconds with milliseconds>, "host", "source",
/// "sourcetype", "index"? (omitted when unset), "event": <the alert's JSON>}`.
///
/// Answers: 2xx (`{"text":"Success","code":0}`) is success. HEC's `code`/`text` are quoted in
/// errors. 400 (invalid data format, code 6; incorrect index, code 7; …) is not retryable, except
/// code 9 (server busy); 401/403 (token disabled, invalid or missing) are not retryable; 408,
/// 429, 503 and other 5xx are, honouring `Retry-After`. The token never appears in an error.
///
/// A random `X-Splunk-Request-Channel` is sent so that a token with indexer acknowledgement
/// turned on accepts the events too (the acknowledgement itself is not polled).
public struct SplunkHECSink: AlertSink {
    public let name: String
    let endpoint: URL
    let token: String
    let host: String
    let source: String
    let sourcetype: String
    let index: String?
    let timeout: Double
    let channel: String
    /// An exported event's fixed members, rendered once: the envelope's after `time`, and the
    /// event's own `source` and `sourcetype` (see ``writeItem(_:to:)``).
    let exportMeta: [UInt8]
    let exportLead: [UInt8]
    public let batchSize: Int
    public var kind: String { SplunkHECSinkConfig.kind }

    public init(name: String, url: URL, token: String, host: String? = nil, source: String = "iw-detect",
                sourcetype: String = "iw-detect:alert", index: String? = nil, batchSize: Int = 100, timeout: Double = 5) {
        self.name = name
        self.endpoint = SplunkHECSink.eventURL(url)
        self.token = token
        self.host = host ?? ProcessInfo.processInfo.hostName
        self.source = source
        self.sourcetype = sourcetype
        self.index = index
        self.batchSize = max(1, batchSize)
        self.timeout = timeout
        self.channel = UUID().uuidString
        var meta: [(String, JSONValue)] = [("host", .string(self.host)), ("source", .string(source)), ("sourcetype", .string(sourcetype))]
        if let index { meta.append(("index", .string(index))) }
        exportMeta = JSONValue.members(meta)
        exportLead = JSONValue.members([("source", .string(source)), ("sourcetype", .string(sourcetype))])
    }

    /// `{base}/services/collector/event` (a base already ending in it is kept).
    public static func eventURL(_ base: URL) -> URL {
        var s = base.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        if s.hasSuffix("/services/collector/event") { return URL(string: s) ?? base }
        if s.hasSuffix("/services/collector") { return URL(string: s + "/event") ?? base }
        return SIEMSupport.join(base, "/services/collector/event")
    }

    /// HEC's `time`: epoch seconds with milliseconds.
    public static func hecTime(_ t: EventTime) -> Double {
        let millis = t.micros >= 0 ? t.micros / 1000 : (t.micros - 999) / 1000
        return Double(millis) / 1000
    }

    /// One HEC event.
    public func event(_ alert: AlertRecord) -> JSONValue { envelope(alert.eventTime, alert.json) }

    /// HEC's event object: its metadata around `event`.
    func envelope(_ time: EventTime, _ event: JSONValue) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("time", .number(SplunkHECSink.hecTime(time))),
            ("host", .string(host)),
            ("source", .string(source)),
            ("sourcetype", .string(sourcetype)),
        ]
        if let index { members.append(("index", .string(index))) }
        members.append(("event", event))
        return .object(members)
    }

    /// The request body: the events, one per line.
    public func body(_ alerts: [AlertRecord]) -> String {
        alerts.map { event($0).serialized() }.joined(separator: "\n")
    }

    var headers: [String: String] {
        ["Authorization": "Splunk " + token, "Content-Type": "application/json", "X-Splunk-Request-Channel": channel]
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        do throws(SinkError) {
            let r = try await HTTPExchange.send(endpoint, headers: headers, body: Data(body(alerts).utf8), timeout: timeout, sink: name)
            try SplunkHECSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }

    /// Posts an empty body: HEC answers 400 with code 5 ("No data") once the token is accepted,
    /// so nothing is indexed.
    public func healthcheck() async throws(SinkError) {
        do throws(SinkError) {
            let r = try await HTTPExchange.send(endpoint, headers: headers, body: Data(), timeout: timeout, sink: name)
            if r.status == 400, SIEMSupport.int(SIEMSupport.json(r.body)?["code"]) == 5 { return }
            try SplunkHECSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }

    /// HEC's answer as success or a ``SinkError``.
    public static func check(_ r: HTTPExchange.Response, sink: String) throws(SinkError) {
        if (200..<300).contains(r.status) { return }
        let answer = SIEMSupport.json(r.body)
        let code = SIEMSupport.int(answer?["code"])
        var detail: String
        if let code {
            detail = "HEC code \(code)"
            if let text = SIEMSupport.string(answer?["text"]) { detail += ": " + text }
            if let n = SIEMSupport.int(answer?["invalid-event-number"]) { detail += " (event \(n) of the batch)" }
        } else {
            detail = r.body.isEmpty ? "" : HTTPExchange.excerpt(r.body, limit: 120)
        }
        if r.status == 401 || r.status == 403 {
            detail = "the HEC token was refused (invalid, disabled or not allowed)" + (detail.isEmpty ? "" : "; " + detail)
        }
        let retryable = code == 9 || r.status == 408 || r.status == 429 || r.status >= 500
        throw SinkError("sink '\(sink)': HTTP \(r.status)" + (detail.isEmpty ? "" : ": " + detail), isRetryable: retryable,
                        retryAfter: r.header("Retry-After").flatMap(HTTPExchange.retryAfter), status: r.status)
    }
}

/// `type: splunk_hec`: Splunk's HTTP Event Collector.
/// - `url` (required): the HEC base URL, e.g. `https://splunk.example.com:8088` (an address, not a
///   secret; no credentials in it). Events are posted to `{url}/services/collector/event`.
/// - `token_env` / `token_file` / `token` (one, required): the HEC token, sent as
///   `Authorization: Splunk <token>`; prefer `token_env` or `token_file`.
/// - `source`: the events' `source` (default `iw-detect`).
/// - `sourcetype`: the events' `sourcetype` (default `iw-detect:alert`).
/// - `index`: the index to write to (default: left out, so the token's default index).
/// - `host`: the events' `host` (default: this machine's host name).
/// - `batch_size`: events per request, 1…1000 (default 100).
/// - `timeout`: seconds per request (default 5).
public struct SplunkHECSinkConfig: SinkConfig {
    public static let kind = "splunk_hec"
    public static let keys = ["url", "token", "token_env", "token_file", "source", "sourcetype", "index", "host", "batch_size", "timeout"]
    public let name: String
    public var url: URL
    public var token: SecretReference
    public var source = "iw-detect"
    public var sourcetype = "iw-detect:alert"
    public var index: String?
    public var host: String?
    public var batchSize = 100
    public var timeout: Double = 5

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        let url = r.siemURL(map, "url", sink: name, kind: Self.kind, item: item, example: "https://splunk.example.com:8088")
        let token = SecretReference.read(map, "token", "sink '\(name)': the HEC token", item: item, required: true, reader: &r)
        source = r.string(map, "source", "sink '\(name)': source") ?? source
        sourcetype = r.string(map, "sourcetype", "sink '\(name)': sourcetype") ?? sourcetype
        index = r.string(map, "index", "sink '\(name)': index")
        host = r.string(map, "host", "sink '\(name)': host")
        batchSize = r.siemBatchSize(map, sink: name)
        timeout = r.timeout(map, sink: name)
        guard let url, let token else { return nil }
        self.url = url
        self.token = token
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        SplunkHECSink(name: name, url: url, token: try token.resolve(environment, sink: name, key: "token"), host: host,
                      source: source, sourcetype: sourcetype, index: index, batchSize: batchSize, timeout: timeout)
    }

    public var summary: String {
        "Splunk HEC at \(SIEMSupport.display(url))" + (index.map { ", index \($0)" } ?? "")
            + ", sourcetype \(sourcetype), token from \(token.summary), batches of \(batchSize)"
    }
}
