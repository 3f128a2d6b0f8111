import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Writes alerts to Elasticsearch with the `_bulk` API as ECS documents (``ECSDocument``).
///
/// `POST {url}/_bulk` (`Content-Type: application/x-ndjson`), per alert an action line
/// `{"create":{"_index":INDEX,"_id":ALERT_ID}}` and the document. The alert id is the document id,
/// so a retried batch is idempotent: an item answered `409` (version conflict: the document exists)
/// counts as delivered. `create` also suits a data stream.
///
/// Answers: a non-2xx status is retryable for 408, 429 and 5xx (the error's `type`/`reason` quoted).
/// A 200 with `errors: true` is read item by item: any item failed with 429 or 5xx makes the batch
/// retryable; other failed items (a 400 mapping error) make it fail for good, with the first
/// failure's `type` and `reason` in the message; all items 2xx or 409 is success.
public struct ElasticSink: AlertSink {
    public let name: String
    let bulkURL: URL
    let baseURL: URL
    let index: String
    let authorization: String?
    let secrets: [String]
    let timeout: Double
    public let batchSize: Int
    public var kind: String { ElasticSinkConfig.kind }

    /// `authorization`: the `Authorization` header's value, if any (`ApiKey …`, `Basic …`).
    public init(name: String, url: URL, index: String = "iw-detect-alerts", authorization: String? = nil, secrets: [String] = [],
                batchSize: Int = 100, timeout: Double = 5) {
        self.name = name
        self.baseURL = url
        self.bulkURL = SIEMSupport.join(url, "/_bulk")
        self.index = index
        self.authorization = authorization
        self.secrets = secrets + (authorization.map { [$0] } ?? [])
        self.batchSize = max(1, batchSize)
        self.timeout = timeout
    }

    /// The bulk request body: action line and document per alert, each line ending in `\n`.
    public func body(_ alerts: [AlertRecord]) -> String {
        var out = ""
        for a in alerts {
            out += JSONValue.object([("create", .object([("_index", .string(index)), ("_id", .string(a.id))]))]).serialized() + "\n"
            out += ECSDocument.document(a).serialized() + "\n"
        }
        return out
    }

    var headers: [String: String] {
        var h = ["Content-Type": "application/x-ndjson"]
        if let authorization { h["Authorization"] = authorization }
        return h
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        do throws(SinkError) {
            let r = try await HTTPExchange.send(bulkURL, headers: headers, body: Data(body(alerts).utf8), timeout: timeout, sink: name)
            try ElasticSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }

    /// With credentials, `GET /_security/_authenticate` (allowed to every authenticated user, so
    /// a write-only API key passes); without, `GET /`.
    public func healthcheck() async throws(SinkError) {
        do throws(SinkError) {
            let url = SIEMSupport.join(baseURL, authorization == nil ? "/" : "/_security/_authenticate")
            var h: [String: String] = [:]
            if let authorization { h["Authorization"] = authorization }
            let r = try await HTTPExchange.send(url, method: "GET", headers: h, body: Data(), timeout: timeout, sink: name)
            try ElasticSink.checkStatus(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }

    /// The error of an Elasticsearch answer (`{"error":{"type","reason"}}`), as `type: reason`.
    static func reason(_ error: JSONValue?) -> String? {
        guard let error else { return nil }
        if let s = SIEMSupport.string(error) { return s }
        let type = SIEMSupport.string(error["type"]), reason = SIEMSupport.string(error["reason"])
        switch (type, reason) {
        case (let t?, let r?): return "\(t): \(r.count > 300 ? String(r.prefix(300)) + "…" : r)"
        case (let t?, nil): return t
        case (nil, let r?): return r
        default: return nil
        }
    }

    /// A non-2xx status as ``HTTPExchange/check(_:sink:detail:)`` does, with Elasticsearch's reason.
    static func checkStatus(_ r: HTTPExchange.Response, sink: String) throws(SinkError) {
        if (200..<300).contains(r.status) { return }
        var detail = reason(SIEMSupport.json(r.body)?["error"])
        if r.status == 401 || r.status == 403 { detail = "the credentials were refused" + (detail.map { "; " + $0 } ?? "") }
        try HTTPExchange.check(r, sink: sink, detail: detail)
    }

    /// A bulk answer as success or a ``SinkError``.
    public static func check(_ r: HTTPExchange.Response, sink: String) throws(SinkError) {
        try checkStatus(r, sink: sink)
        guard let answer = SIEMSupport.json(r.body) else {
            throw SinkError("sink '\(sink)': HTTP \(r.status) with an unreadable bulk response", isRetryable: true, status: r.status)
        }
        guard case .bool(true)? = answer["errors"] else { return }
        guard case .array(let items)? = answer["items"] else {
            throw SinkError("sink '\(sink)': the bulk response reports errors but lists no items", isRetryable: true, status: r.status)
        }
        var retryable = 0, failed = 0
        var first: (Int, String)?
        for item in items {
            guard case .object(let actions) = item, let result = actions.first?.1, let status = SIEMSupport.int(result["status"]) else { continue }
            if (200..<300).contains(status) || status == 409 { continue }
            failed += 1
            if status == 429 || status >= 500 { retryable += 1 }
            if first == nil { first = (status, reason(result["error"]) ?? "no reason given") }
        }
        guard failed > 0, let first else { return }
        let message = "sink '\(sink)': \(failed) of \(items.count) bulk items failed"
            + (retryable > 0 ? " (\(retryable) retryable)" : "") + "; first: \(first.0) \(first.1)"
        throw SinkError(message, isRetryable: retryable > 0, status: first.0)
    }
}

/// `type: elastic`: Elasticsearch (or an Elastic Cloud deployment) through the `_bulk` API, as ECS
/// documents.
/// - `url` (required): the cluster's base URL, e.g. `https://es.example.com:9200` (an address, not a
///   secret; no credentials in it). Batches go to `{url}/_bulk`.
/// - `index`: the index or data stream written to (default `iw-detect-alerts`).
/// - `api_key_env` / `api_key_file` / `api_key`: an API key (its encoded form), sent as
///   `Authorization: ApiKey …`. Or:
/// - `username` with `password_env` / `password_file` / `password`: basic authentication.
///   (Neither: no authentication.)
/// - `batch_size`: alerts per bulk request, 1…1000 (default 100).
/// - `timeout`: seconds per request (default 5).
///
/// The evidence (`iw_detect.values`) keeps each rule's own names and types; give the index a
/// template mapping `iw_detect.values` as `flattened`, so that two rules using one name for a
/// number and a text never fail a document with `mapper_parsing_exception`.
public struct ElasticSinkConfig: SinkConfig {
    public static let kind = "elastic"
    public static let keys = ["url", "index", "api_key", "api_key_env", "api_key_file", "username", "password", "password_env", "password_file",
                              "batch_size", "timeout"]
    public let name: String
    public var url: URL
    public var index = "iw-detect-alerts"
    public var credentials: HTTPCredentials?
    public var batchSize = 100
    public var timeout: Double = 5

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        let url = r.siemURL(map, "url", sink: name, kind: Self.kind, item: item, example: "https://es.example.com:9200")
        if let i = r.string(map, "index", "sink '\(name)': index") {
            // Elasticsearch's index name rules: lowercase, no spaces or \ / * ? " < > | , #, not starting with - _ +.
            if i != i.lowercased() || i.contains(where: { " \\/*?\"<>|,#:".contains($0) }) || "-_+".contains(i.first!) {
                r.error(map["index"], "bad_value", "sink '\(name)': index '\(i)' is not a valid index name (lowercase, no spaces or \\ / * ? \" < > | , # :, not starting with - _ +)")
            } else {
                index = i
            }
        }
        credentials = HTTPCredentials.read(map, sink: name, item: item, apiKey: true, reader: &r)
        batchSize = r.siemBatchSize(map, sink: name)
        timeout = r.timeout(map, sink: name)
        guard let url else { return nil }
        self.url = url
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        let auth = try credentials?.header(environment, sink: name)
        return ElasticSink(name: name, url: url, index: index, authorization: auth?.value, secrets: auth?.secrets ?? [],
                           batchSize: batchSize, timeout: timeout)
    }

    public var summary: String {
        "Elasticsearch bulk at \(SIEMSupport.display(url)), index \(index), " + (credentials?.summary ?? "no authentication")
            + ", batches of \(batchSize)"
    }
}
