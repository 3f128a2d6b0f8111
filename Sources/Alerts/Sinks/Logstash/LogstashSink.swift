import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// POSTs a batch of alerts as one JSON array to a Logstash `http` input: with `codec => json` (the
/// default for `application/json`) Logstash makes one event of each element.
///
/// Elements are the alerts' JSON (as stdout, JSONL and webhooks write it) or, with `format: ecs`,
/// their ECS documents (``ECSDocument``), ready for an `elasticsearch` output. 2xx is success;
/// 408, 429 (the input's queue is full) and 5xx are retryable; other statuses are not.
public struct LogstashSink: AlertSink {
    public enum Format: String, Sendable, CaseIterable {
        case alert, ecs
    }

    public let name: String
    let url: URL
    let format: Format
    let authorization: String?
    let secrets: [String]
    let timeout: Double
    public let batchSize: Int
    public var kind: String { LogstashSinkConfig.kind }

    public init(name: String, url: URL, format: Format = .alert, authorization: String? = nil, secrets: [String] = [],
                batchSize: Int = 100, timeout: Double = 5) {
        self.name = name
        self.url = url
        self.format = format
        self.authorization = authorization
        self.secrets = secrets + (authorization.map { [$0] } ?? [])
        self.batchSize = max(1, batchSize)
        self.timeout = timeout
    }

    public func body(_ alerts: [AlertRecord]) -> String {
        JSONValue.array(alerts.map { format == .ecs ? ECSDocument.document($0) : $0.json }).serialized()
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        var h = ["Content-Type": "application/json"]
        if let authorization { h["Authorization"] = authorization }
        do throws(SinkError) {
            let r = try await HTTPExchange.send(url, headers: h, body: Data(body(alerts).utf8), timeout: timeout, sink: name)
            let refused = r.status == 401 || r.status == 403
            try HTTPExchange.check(r, sink: name, detail: refused ? "the credentials were refused" : nil)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }
}

/// `type: logstash`: a Logstash `http` input (`input { http { port => 8080 } }`).
/// - `url` (required): the input's URL, e.g. `http://logstash.example.com:8080` (an address, not a
///   secret; no credentials in it). Batches are POSTed to it as they are.
/// - `format`: `alert` (default: each alert's JSON) or `ecs` (each alert's ECS document).
/// - `username` with `password_env` / `password_file` / `password`: basic authentication, for an
///   input with `user` and `password` set.
/// - `batch_size`: alerts per request (one JSON array), 1…1000 (default 100).
/// - `timeout`: seconds per request (default 5).
public struct LogstashSinkConfig: SinkConfig {
    public static let kind = "logstash"
    public static let keys = ["url", "format", "username", "password", "password_env", "password_file", "batch_size", "timeout"]
    public let name: String
    public var url: URL
    public var format = LogstashSink.Format.alert
    public var credentials: HTTPCredentials?
    public var batchSize = 100
    public var timeout: Double = 5

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        let url = r.siemURL(map, "url", sink: name, kind: Self.kind, item: item, example: "http://logstash.example.com:8080")
        if let f = r.string(map, "format", "sink '\(name)': format") {
            if let v = LogstashSink.Format(rawValue: f) { format = v } else {
                r.error(map["format"], "bad_value", "sink '\(name)': format must be alert or ecs, got '\(f)'")
            }
        }
        credentials = HTTPCredentials.read(map, sink: name, item: item, apiKey: false, reader: &r)
        batchSize = r.siemBatchSize(map, sink: name)
        timeout = r.timeout(map, sink: name)
        guard let url else { return nil }
        self.url = url
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        let auth = try credentials?.header(environment, sink: name)
        return LogstashSink(name: name, url: url, format: format, authorization: auth?.value, secrets: auth?.secrets ?? [],
                            batchSize: batchSize, timeout: timeout)
    }

    public var summary: String {
        "Logstash http input at \(SIEMSupport.display(url)), \(format.rawValue) JSON arrays, "
            + (credentials?.summary ?? "no authentication") + ", batches of \(batchSize)"
    }
}
