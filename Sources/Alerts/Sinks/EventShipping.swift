import Foundation
import IWDetectCore

/// One exported inference event, as the exports stage hands it to a receiver's format: the
/// projected fields already rendered as JSON members, the event's time and id, and what
/// detection said of it. Rendered once, as bytes: exports write thousands of these a second.
public struct ExportedEvent: Sendable {
    /// The projected fields as JSON object members, `"name":value` joined by commas, without
    /// braces (empty when no field was present).
    public var members: [UInt8]
    public var time: EventTime
    /// `log_id` (else InferenceWall's `request_id`, else `source:line`): the receiver's document id.
    public var id: String
    /// The `user_id` field, when projected and a string (ECS `user.id`).
    public var userID: String?
    /// `iw_detect`'s value, rendered: the rules the event fired and its baseline z-scores; nil
    /// without enrichment.
    public var enrichment: [UInt8]?

    public init(members: [UInt8], time: EventTime, id: String, userID: String? = nil, enrichment: [UInt8]? = nil) {
        self.members = members
        self.time = time
        self.id = id
        self.userID = userID
        self.enrichment = enrichment
    }

    /// Appends `{lead…, members, "iw_detect":…}`: the document with `lead` (rendered members) first.
    func writeDocument(lead: [UInt8], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        out.append(contentsOf: lead)
        if !lead.isEmpty && !members.isEmpty { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: members)
        if let enrichment {
            if !lead.isEmpty || !members.isEmpty { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #""iw_detect":"#.utf8)
            out.append(contentsOf: enrichment)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension JSONValue {
    /// The members of an object, rendered and joined by commas, without braces.
    static func members(_ m: [(String, JSONValue)]) -> [UInt8] {
        var out: [UInt8] = []
        JSONValue.object(m).write(to: &out)
        return Array(out.dropFirst().dropLast())
    }
}

/// A SIEM sink that also carries the inference stream (`exports:`), sharing its alert encoder's
/// envelope, transport, answers and secret handling.
///
/// ## Implementation requirements
/// - ``writeItem(_:to:)`` appends one event as one item of the receiver's request body; items
///   joined by ``itemSeparator`` (and wrapped by ``ship(_:)``) make a body, so a batch can be
///   rendered once, stored, and sent later in any grouping of whole fragments.
/// - ``ship(_:)`` sends fragments (runs of items already joined by ``itemSeparator``) in one
///   request, and throws ``SinkError`` (retryable or not, secrets scrubbed) unless the receiver
///   took every item.
public protocol EventShipper: AlertSink {
    func writeItem(_ event: ExportedEvent, to out: inout [UInt8])
    var itemSeparator: UInt8? { get }
    /// The largest body the receiver takes (Sentinel: 1 MB), or nil.
    var maxBodyBytes: Int? { get }
    func ship(_ fragments: [[UInt8]]) async throws(SinkError)
}

extension EventShipper {
    public var maxBodyBytes: Int? { nil }
}

/// Fragments joined by `separator` into one body, between `open` and `close`.
func joined(_ fragments: [[UInt8]], separator: UInt8?, open: UInt8? = nil, close: UInt8? = nil) -> Data {
    var body = Data(capacity: fragments.reduce(2) { $0 + $1.count + 1 })
    if let open { body.append(open) }
    for (k, f) in fragments.enumerated() {
        if k > 0, let separator { body.append(separator) }
        body.append(contentsOf: f)
    }
    if let close { body.append(close) }
    return body
}

extension SplunkHECSink: EventShipper {
    /// `{"time", "host", "source", "sourcetype", "index"?, "event": {"source", "sourcetype", …fields}}`:
    /// the monitoring guide's `_to_splunk_hec` shape, which repeats `source` and `sourcetype` in
    /// the event, with HEC's own metadata so Splunk indexes it under that source type.
    public func writeItem(_ event: ExportedEvent, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"time":"#.utf8)
        JSONValue.number(SplunkHECSink.hecTime(event.time)).write(to: &out)
        out.append(UInt8(ascii: ","))
        out.append(contentsOf: exportMeta)
        out.append(contentsOf: #","event":"#.utf8)
        event.writeDocument(lead: exportLead, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    public var itemSeparator: UInt8? { UInt8(ascii: "\n") }

    public func ship(_ fragments: [[UInt8]]) async throws(SinkError) {
        do throws(SinkError) {
            let r = try await HTTPExchange.send(endpoint, headers: headers, body: joined(fragments, separator: itemSeparator), timeout: timeout, sink: name)
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
    public func writeItem(_ event: ExportedEvent, to out: inout [UInt8]) {
        JSONValue.object([("create", .object([("_index", .string(index)), ("_id", .string(event.id))]))]).write(to: &out)
        out.append(UInt8(ascii: "\n"))
        var head: [(String, JSONValue)] = [
            ("@timestamp", .string(event.time.description)),
            ("ecs", .object([("version", .string(ECSDocument.ecsVersion))])),
            ("event", .object([("kind", .string("event")), ("dataset", .string("ai.inference")), ("id", .string(event.id)),
                               ("provider", .string("iw-detect"))])),
        ]
        if let user = event.userID { head.append(("user", .object([("id", .string(user))]))) }
        out.append(UInt8(ascii: "{"))
        out.append(contentsOf: JSONValue.members(head))
        out.append(contentsOf: #","inference":{"#.utf8)
        out.append(contentsOf: event.members)
        out.append(UInt8(ascii: "}"))
        if let e = event.enrichment {
            out.append(contentsOf: #","iw_detect":"#.utf8)
            out.append(contentsOf: e)
        }
        out.append(contentsOf: "}\n".utf8)
    }

    public var itemSeparator: UInt8? { nil }

    public func ship(_ fragments: [[UInt8]]) async throws(SinkError) {
        do throws(SinkError) {
            let r = try await HTTPExchange.send(bulkURL, headers: headers, body: joined(fragments, separator: nil), timeout: timeout, sink: name)
            try ElasticSink.check(r, sink: name)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }
}

extension LogstashSink: EventShipper {
    /// The projected fields with `@timestamp` first (Logstash's event time), as one element of
    /// the request's JSON array.
    public func writeItem(_ event: ExportedEvent, to out: inout [UInt8]) {
        event.writeDocument(lead: JSONValue.members([("@timestamp", .string(event.time.description))]), to: &out)
    }

    public var itemSeparator: UInt8? { UInt8(ascii: ",") }

    public func ship(_ fragments: [[UInt8]]) async throws(SinkError) {
        var h = ["Content-Type": "application/json"]
        if let authorization { h["Authorization"] = authorization }
        do throws(SinkError) {
            let body = joined(fragments, separator: itemSeparator, open: UInt8(ascii: "["), close: UInt8(ascii: "]"))
            let r = try await HTTPExchange.send(url, headers: h, body: body, timeout: timeout, sink: name)
            let refused = r.status == 401 || r.status == 403
            try HTTPExchange.check(r, sink: name, detail: refused ? "the credentials were refused" : nil)
        } catch {
            throw SIEMSupport.scrub(error, secrets)
        }
    }
}

extension SentinelSink: EventShipper {
    /// A record: `TimeGenerated`, the projected fields as columns, and `iw_detect` (dynamic).
    public func writeItem(_ event: ExportedEvent, to out: inout [UInt8]) {
        event.writeDocument(lead: JSONValue.members([("TimeGenerated", .string(event.time.description))]), to: &out)
    }

    public var itemSeparator: UInt8? { UInt8(ascii: ",") }
    public var maxBodyBytes: Int? { maxRequestBytes }

    public func ship(_ fragments: [[UInt8]]) async throws(SinkError) {
        let token = try currentToken()
        do throws(SinkError) {
            try await post(joined(fragments, separator: itemSeparator, open: UInt8(ascii: "["), close: UInt8(ascii: "]")), token: token)
        } catch {
            throw SIEMSupport.scrub(error, [token])
        }
    }
}
