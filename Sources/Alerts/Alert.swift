import IWDetectCore

/// An alert: a detection that passed dedup, with a stable id and its JSON form.
public struct Alert: Sendable {
    /// Stable: the same rule, group, event time and event give the same id.
    public var id: String
    public var rule: String
    public var severity: Severity
    public var eventTime: EventTime
    public var groupValue: String
    /// Channels the alert is routed to.
    public var channels: [String]
    /// The alert as delivered (sinks may reshape it).
    public var json: JSONValue

    /// Builds an alert from a detection.
    /// - Parameters:
    ///   - suppressed: repeats folded into the previous alert of this rule and group since it fired.
    ///   - detectedAt: wall-clock time of detection (reported, never part of the id).
    public init(detection d: Detection, suppressedBefore suppressed: Int64, detectedAt: EventTime, channels: [String]) {
        var h = StableHash()
        h.combine(d.rule.name)
        h.combine(d.groupValue)
        h.combine(d.eventTime.micros)
        h.combine(d.eventID)
        id = h.hex
        rule = d.rule.name
        severity = d.rule.severity
        eventTime = d.eventTime
        groupValue = d.groupValue
        self.channels = channels
        json = .object([
            ("id", .string(id)),
            ("source", .string("iw-detect")),
            ("rule", .string(d.rule.name)),
            ("severity", .string(d.rule.severity.rawValue)),
            ("action", .string(d.rule.action)),
            ("description", .string(d.rule.description)),
            ("event_time", .string(d.eventTime.description)),
            ("detected_at", .string(detectedAt.description)),
            ("group_key", .array(d.rule.dedupKey.map { .string($0) })),
            ("group_value", .string(d.groupValue)),
            ("user_id", d.userID.map { .string($0) } ?? .null),
            ("session_id", d.sessionID.map { .string($0) } ?? .null),
            ("event_id", .string(d.eventID)),
            ("event_ids", .array(d.eventIDs.map { .string($0) })),
            ("values", .object(d.evidence)),
            ("condition", .string(d.rule.condition)),
            ("recommended_action", .string(d.rule.recommendedAction)),
            ("suppressed_since_previous", .int(suppressed)),
            ("tags", .array(d.rule.tags.map { .string($0) })),
        ])
    }
}
