import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Sends alerts to Microsoft Sentinel (a Log Analytics workspace) through the Azure Monitor Logs
/// Ingestion API: `POST {endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream}?api-version=2023-01-01`
/// with `Authorization: Bearer <token>` and a JSON array of records.
///
/// Each record has these columns (the custom table `…_CL` and the DCR's stream declare them):
///
/// | column | type | | column | type |
/// |---|---|---|---|---|
/// | TimeGenerated | datetime (event time) | | EventId | string |
/// | AlertId | string | | EventIds | dynamic (array) |
/// | Rule | string | | Values | dynamic (the evidence) |
/// | Severity | string | | RecommendedAction | string |
/// | Action | string | | Condition | string |
/// | Description | string | | Tags | dynamic (array) |
/// | UserId | string (left out when unknown) | | SuppressedSincePrevious | long |
/// | SessionId | string (left out when unknown) | | DetectedAt | datetime |
/// | GroupKey | string (fields joined by `,`) | | GroupValue | string |
///
/// The API takes at most 1 MB per call: a batch whose records would pass ``maxRequestBytes`` is
/// sent in several requests, one after another (should a later one fail, the retry sends the
/// earlier ones again: `AlertId` identifies duplicates). One record larger than that is refused,
/// not retried; so is a `413`.
///
/// Answers: 2xx (204) is success; 401/403 (a token expired, for another audience, or without the
/// *Monitoring Metrics Publisher* role on the DCR) are not retryable; 408, 429 and 5xx are,
/// honouring `Retry-After`; others are not.
///
/// The token is an Entra ID access token for `https://monitor.azure.com/` that iw-detect does not
/// obtain itself: `token_file` is read again for every request, so a sidecar (or a cron job
/// running `az account get-access-token`) can keep it current; `token_env` and `token` are read
/// once, at start, and suit short runs.
public struct SentinelSink: AlertSink {
    /// Where the bearer token comes from: fixed at start, or a file read at every request.
    public enum Token: Sendable {
        case fixed(String)
        case file(String)
    }

    public let name: String
    let requestURL: URL
    let token: Token
    let timeout: Double
    let maxRequestBytes: Int
    public let batchSize: Int
    public var kind: String { SentinelSinkConfig.kind }

    /// The Logs Ingestion API's limit per call.
    public static let apiLimitBytes = 1_000_000
    public static let apiVersion = "2023-01-01"

    public init(name: String, endpoint: URL, dcrImmutableID: String, stream: String, token: Token, batchSize: Int = 100,
                timeout: Double = 5, maxRequestBytes: Int = SentinelSink.apiLimitBytes) {
        self.name = name
        self.requestURL = SentinelSink.requestURL(endpoint: endpoint, dcrImmutableID: dcrImmutableID, stream: stream)
        self.token = token
        self.batchSize = max(1, batchSize)
        self.timeout = timeout
        self.maxRequestBytes = maxRequestBytes
    }

    public static func requestURL(endpoint: URL, dcrImmutableID: String, stream: String) -> URL {
        SIEMSupport.join(endpoint, "/dataCollectionRules/\(dcrImmutableID)/streams/\(stream)?api-version=\(apiVersion)")
    }

    /// One record of the stream.
    public static func record(_ a: AlertRecord) -> JSONValue {
        var r: [(String, JSONValue)] = [
            ("TimeGenerated", .string(a.eventTime.description)),
            ("AlertId", .string(a.id)),
            ("Rule", .string(a.rule)),
            ("Severity", .string(a.severity.rawValue)),
            ("Action", .string(a.action)),
            ("Description", .string(a.description)),
        ]
        if let user = a.userID { r.append(("UserId", .string(user))) }
        if let session = a.sessionID { r.append(("SessionId", .string(session))) }
        r += [
            ("GroupKey", .string(a.groupKey.joined(separator: ","))),
            ("GroupValue", .string(a.groupValue)),
            ("EventId", .string(a.eventID)),
            ("EventIds", .array(a.eventIDs.map { .string($0) })),
            ("Values", a.values),
            ("RecommendedAction", .string(a.recommendedAction)),
            ("Condition", .string(a.condition)),
            ("Tags", .array(a.tags.map { .string($0) })),
            ("SuppressedSincePrevious", .int(a.suppressedSincePrevious)),
            ("DetectedAt", .string(a.detectedAt.description)),
        ]
        return .object(r)
    }

    /// The request bodies for `alerts`: JSON arrays of records, each at most ``maxRequestBytes``.
    public func bodies(_ alerts: [AlertRecord]) throws(SinkError) -> [String] {
        var bodies: [String] = []
        var current: [String] = []
        var size = 2
        for a in alerts {
            let text = SentinelSink.record(a).serialized()
            let bytes = text.utf8.count
            guard bytes + 2 <= maxRequestBytes else {
                throw SinkError("sink '\(name)': alert \(a.id) is \(bytes) bytes as a record, more than the \(maxRequestBytes) bytes the Logs Ingestion API takes per call",
                                isRetryable: false)
            }
            if !current.isEmpty && size + 1 + bytes > maxRequestBytes {
                bodies.append("[" + current.joined(separator: ",") + "]")
                current = []
                size = 2
            }
            size += (current.isEmpty ? 0 : 1) + bytes
            current.append(text)
        }
        if !current.isEmpty { bodies.append("[" + current.joined(separator: ",") + "]") }
        return bodies
    }

    /// The current token (a token file is read again each time; a missing or empty file is
    /// retryable, as a sidecar may be replacing it).
    func currentToken() throws(SinkError) -> String {
        switch token {
        case .fixed(let t): return t
        case .file(let path):
            do throws(SinkError) {
                return try SecretReference.file(path).resolve([:], sink: name, key: "token")
            } catch {
                var e = error
                e.isRetryable = true
                throw e
            }
        }
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        let token = try currentToken()
        do throws(SinkError) {
            for body in try bodies(alerts) {
                try await post(Data(body.utf8), token: token)
            }
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }

    /// Posts an empty array: checks the endpoint, DCR, stream and token without adding a row.
    public func healthcheck() async throws(SinkError) {
        let token = try currentToken()
        do throws(SinkError) {
            try await post(Data("[]".utf8), token: token)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }

    func post(_ body: Data, token: String) async throws(SinkError) {
        let headers = ["Authorization": "Bearer " + token, "Content-Type": "application/json"]
        let r = try await HTTPExchange.send(requestURL, headers: headers, body: body, timeout: timeout, sink: name)
        try SentinelSink.check(r, sink: name)
    }

    /// The API's answer as success or a ``SinkError`` (its `error.code`/`error.message` quoted).
    public static func check(_ r: HTTPExchange.Response, sink: String) throws(SinkError) {
        if (200..<300).contains(r.status) { return }
        let error = SIEMSupport.json(r.body)?["error"]
        var detail = [SIEMSupport.string(error?["code"]), SIEMSupport.string(error?["message"]).map { $0.count > 300 ? String($0.prefix(300)) + "…" : $0 }]
            .compactMap { $0 }.joined(separator: ": ")
        switch r.status {
        case 401, 403:
            detail = "the bearer token was refused (expired, for another audience, or lacking the Monitoring Metrics Publisher role on the DCR)"
                + (detail.isEmpty ? "" : "; " + detail)
        case 413:
            detail = "payload too large: the Logs Ingestion API takes at most 1 MB per call; lower batch_size"
                + (detail.isEmpty ? "" : "; " + detail)
        default: break
        }
        try HTTPExchange.check(r, sink: sink, detail: detail.isEmpty ? nil : detail)
    }
}

/// `type: sentinel`: Microsoft Sentinel through the Azure Monitor Logs Ingestion API (a data
/// collection endpoint, a data collection rule and a custom table; ``SentinelSink`` lists the
/// table's columns).
/// - `endpoint` (required): the data collection endpoint's logs ingestion URL, e.g.
///   `https://my-dce-a1b2.westeurope-1.ingest.monitor.azure.com` (an address, not a secret).
/// - `dcr_immutable_id` (required): the DCR's immutable id, `dcr-` and 32 hex digits.
/// - `stream` (required): the DCR's input stream, e.g. `Custom-IWDetectAlerts_CL`.
/// - `token_file` / `token_env` / `token` (one, required): an Entra ID access token for
///   `https://monitor.azure.com/`, sent as `Authorization: Bearer <token>`. iw-detect does not
///   obtain or refresh it: the variable or file must hold a current token. Prefer `token_file`,
///   read again for every request, kept current by a sidecar or a timer; `token_env` and `token`
///   are read once at start (tokens last about an hour).
/// - `batch_size`: alerts per request, 1…1000 (default 100); a batch is also split so that no
///   request passes the API's 1 MB.
/// - `timeout`: seconds per request (default 5).
public struct SentinelSinkConfig: SinkConfig {
    public static let kind = "sentinel"
    public static let keys = ["endpoint", "dcr_immutable_id", "stream", "token", "token_env", "token_file", "batch_size", "timeout"]
    public let name: String
    public var endpoint: URL
    public var dcrImmutableID: String
    public var stream: String
    public var token: SecretReference
    public var batchSize = 100
    public var timeout: Double = 5

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        let endpoint = r.siemURL(map, "endpoint", sink: name, kind: Self.kind, item: item,
                                 example: "https://my-dce-a1b2.westeurope-1.ingest.monitor.azure.com")
        var dcr: String?
        if map["dcr_immutable_id"] == nil {
            r.error(item, "missing_key", "sink '\(name)' (sentinel) needs 'dcr_immutable_id', the DCR's immutable id (dcr-…)")
        } else if let d = r.string(map, "dcr_immutable_id", "sink '\(name)': dcr_immutable_id") {
            let hex = d.dropFirst(4)
            if d.hasPrefix("dcr-") && hex.count == 32 && hex.allSatisfy(\.isHexDigit) { dcr = d } else {
                r.error(map["dcr_immutable_id"], "bad_value", "sink '\(name)': dcr_immutable_id must be dcr- and 32 hex digits (the DCR's Immutable Id), got '\(d.prefix(60))'")
            }
        }
        var stream: String?
        if map["stream"] == nil {
            r.error(item, "missing_key", "sink '\(name)' (sentinel) needs 'stream', e.g. Custom-IWDetectAlerts_CL")
        } else if let s = r.string(map, "stream", "sink '\(name)': stream") {
            let parts = s.split(separator: "-", maxSplits: 1)
            if parts.count == 2, ["Custom", "Microsoft"].contains(parts[0]), !parts[1].isEmpty,
               parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                stream = s
            } else {
                r.error(map["stream"], "bad_value", "sink '\(name)': stream must be the DCR's stream name, such as Custom-IWDetectAlerts_CL, got '\(s.prefix(60))'")
            }
        }
        let token = SecretReference.read(map, "token", "sink '\(name)': the bearer token", item: item, required: true, reader: &r)
        batchSize = r.siemBatchSize(map, sink: name)
        timeout = r.timeout(map, sink: name)
        guard let endpoint, let dcr, let stream, let token else { return nil }
        self.endpoint = endpoint
        self.dcrImmutableID = dcr
        self.stream = stream
        self.token = token
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        let value = try token.resolve(environment, sink: name, key: "token")
        let source: SentinelSink.Token
        if case .file(let path) = token { source = .file(path) } else { source = .fixed(value) }
        return SentinelSink(name: name, endpoint: endpoint, dcrImmutableID: dcrImmutableID, stream: stream, token: source,
                            batchSize: batchSize, timeout: timeout)
    }

    public var summary: String {
        "Sentinel (Logs Ingestion) at \(SIEMSupport.display(endpoint)), DCR \(dcrImmutableID), stream \(stream), token from \(token.summary)"
            + (token.isFile ? " (read at every request)" : "") + ", batches of \(batchSize) (at most 1 MB per request)"
    }
}

extension SecretReference {
    fileprivate var isFile: Bool {
        if case .file = self { return true }
        return false
    }
}
