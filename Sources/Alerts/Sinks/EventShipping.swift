import Foundation
import IWDetectCore

/// One exported inference event, as the exports stage hands it to a receiver's format: the
/// projected fields (in order), the event's time and id, and what detection said of it.
public struct ExportedEvent: Sendable {
    public var fields: [(String, JSONValue)]
    public var time: EventTime
    /// `log_id` (else InferenceWall's `request_id`, else `source:line`): the receiver's document id.
    public var id: String
    /// `iw_detect`: the rules the event fired and its baseline z-scores; nil without enrichment.
    public var enrichment: JSONValue?

    public init(fields: [(String, JSONValue)], time: EventTime, id: String, enrichment: JSONValue? = nil) {
        self.fields = fields
        self.time = time
        self.id = id
        self.enrichment = enrichment
    }

    /// The fields followed by `iw_detect` when enriched.
    var document: [(String, JSONValue)] { enrichment.map { fields + [("iw_detect", $0)] } ?? fields }
}

/// A SIEM sink that also carries the inference stream (`exports:`), sharing its alert encoder's
/// envelope, transport, answers and secret handling.
///
/// ## Implementation requirements
/// - ``eventItem(_:)`` renders one event as one item of the receiver's request body; items joined
///   by ``itemSeparator`` (and wrapped by ``ship(_:)``) make a body, so a batch can be rendered
///   once, stored, and sent later in any grouping of whole fragments.
/// - ``ship(_:)`` sends fragments (runs of items already joined by ``itemSeparator``) in one
///   request, and throws ``SinkError`` (retryable or not, secrets scrubbed) unless the receiver
///   took every item.
public protocol EventShipper: AlertSink {
    func eventItem(_ event: ExportedEvent) -> String
    var itemSeparator: String { get }
    /// The largest body the receiver takes (Sentinel: 1 MB), or nil.
    var maxBodyBytes: Int? { get }
    func ship(_ fragments: [String]) async throws(SinkError)
}

extension EventShipper {
    public var maxBodyBytes: Int? { nil }
}

extension SplunkHECSink: EventShipper {
    /// `{"time", "host", "source", "sourcetype", "index"?, "event": {"source", "sourcetype", …fields}}`:
    /// the monitoring guide's `_to_splunk_hec` shape, which repeats `source` and `sourcetype` in
    /// the event, with HEC's own metadata so Splunk indexes it under that source type.
    public func eventItem(_ event: ExportedEvent) -> String {
        envelope(event.time, .object([("source", .string(source)), ("sourcetype", .string(sourcetype))] + event.document)).serialized()
    }

    public var itemSeparator: String { "\n" }

    public func ship(_ fragments: [String]) async throws(SinkError) {
        do throws(SinkError) {
            let r = try await HTTPExchange.send(endpoint, headers: headers, body: Data(fragments.joined(separator: "\n").utf8), timeout: timeout, sink: name)
            try SplunkHECSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }
}

extension ElasticSink: EventShipper {
    /// `{"create":{"_index","_id": event id}}` and the ECS document: `@timestamp`, `ecs.version`,
    /// `event.kind: event`, `event.dataset: ai.inference`, `event.id`, `event.provider`, `user.id`
    /// (when `user_id` is projected), the projected fields under `inference`, and `iw_detect`.
    /// The event id as `_id` makes a resent batch idempotent (`409` counts as delivered).
    public func eventItem(_ event: ExportedEvent) -> String {
        var doc: [(String, JSONValue)] = [
            ("@timestamp", .string(event.time.description)),
            ("ecs", .object([("version", .string(ECSDocument.ecsVersion))])),
            ("event", .object([("kind", .string("event")), ("dataset", .string("ai.inference")), ("id", .string(event.id)),
                               ("provider", .string("iw-detect"))])),
        ]
        if let user = event.fields.first(where: { $0.0 == "user_id" })?.1, case .string = user { doc.append(("user", .object([("id", user)]))) }
        doc.append(("inference", .object(event.fields)))
        if let e = event.enrichment { doc.append(("iw_detect", e)) }
        let action = JSONValue.object([("create", .object([("_index", .string(index)), ("_id", .string(event.id))]))])
        return action.serialized() + "\n" + JSONValue.object(doc).serialized() + "\n"
    }

    public var itemSeparator: String { "" }

    public func ship(_ fragments: [String]) async throws(SinkError) {
        do throws(SinkError) {
            let r = try await HTTPExchange.send(bulkURL, headers: headers, body: Data(fragments.joined().utf8), timeout: timeout, sink: name)
            try ElasticSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }
}

extension LogstashSink: EventShipper {
    /// The projected fields with `@timestamp` first (Logstash's event time), as one element of
    /// the request's JSON array.
    public func eventItem(_ event: ExportedEvent) -> String {
        JSONValue.object([("@timestamp", .string(event.time.description))] + event.document).serialized()
    }

    public var itemSeparator: String { "," }

    public func ship(_ fragments: [String]) async throws(SinkError) {
        var h = ["Content-Type": "application/json"]
        if let authorization { h["Authorization"] = authorization }
        do throws(SinkError) {
            let body = "[" + fragments.joined(separator: ",") + "]"
            let r = try await HTTPExchange.send(url, headers: h, body: Data(body.utf8), timeout: timeout, sink: name)
            let refused = r.status == 401 || r.status == 403
            try HTTPExchange.check(r, sink: name, detail: refused ? "the credentials were refused" : nil)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }
}

extension SentinelSink: EventShipper {
    /// A record: `TimeGenerated`, the projected fields as columns, and `iw_detect` (dynamic).
    public func eventItem(_ event: ExportedEvent) -> String {
        JSONValue.object([("TimeGenerated", .string(event.time.description))] + event.document).serialized()
    }

    public var itemSeparator: String { "," }
    public var maxBodyBytes: Int? { maxRequestBytes }

    public func ship(_ fragments: [String]) async throws(SinkError) {
        let token = try currentToken()
        do throws(SinkError) {
            try await post(Data(("[" + fragments.joined(separator: ",") + "]").utf8), token: token)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }
}
