import IWDetectCore

/// An alert as an Elastic Common Schema document (nested objects, not dotted keys), for the
/// Elastic and Logstash sinks.
///
/// ```
/// @timestamp            event time                ecs.version   8.11.0
/// message               the readable summary line tags          the rule's tags
/// event.kind            "alert"                   event.category ["intrusion_detection"]
/// event.type            ["info"]                  event.severity 21 | 47 | 73 | 99 (low … critical)
/// event.id              alert id                  event.created  detected_at
/// event.action          the rule's action         event.provider "iw-detect"
/// rule.name, rule.description                     user.id        (when known)
/// labels.session_id     (ECS has no session field; when known)
/// iw_detect.severity, .values (the evidence), .recommended_action, .condition, .event_id,
///           .event_ids, .group_key, .group_value, .suppressed_since_previous
/// ```
public enum ECSDocument {
    public static let ecsVersion = "8.11.0"

    /// `event.severity`: the scale Elastic Security maps its severities to (its default risk
    /// scores): low 21, medium 47, high 73, critical 99.
    public static func severity(_ s: Severity) -> Int64 {
        switch s {
        case .low: return 21
        case .medium: return 47
        case .high: return 73
        case .critical: return 99
        }
    }

    public static func document(_ a: AlertRecord) -> JSONValue {
        var doc: [(String, JSONValue)] = [
            ("@timestamp", .string(a.eventTime.description)),
            ("ecs", .object([("version", .string(ecsVersion))])),
            ("message", .string(a.summaryLine)),
            ("tags", .array(a.tags.map { .string($0) })),
            ("event", .object([
                ("kind", .string("alert")),
                ("category", .array([.string("intrusion_detection")])),
                ("type", .array([.string("info")])),
                ("severity", .int(severity(a.severity))),
                ("id", .string(a.id)),
                ("created", .string(a.detectedAt.description)),
                ("action", .string(a.action)),
                ("provider", .string("iw-detect")),
            ])),
            ("rule", .object([("name", .string(a.rule)), ("description", .string(a.description))])),
        ]
        if let user = a.userID { doc.append(("user", .object([("id", .string(user))]))) }
        if let session = a.sessionID { doc.append(("labels", .object([("session_id", .string(session))]))) }
        doc.append(("iw_detect", .object([
            ("severity", .string(a.severity.rawValue)),
            ("values", a.values),
            ("recommended_action", .string(a.recommendedAction)),
            ("condition", .string(a.condition)),
            ("event_id", .string(a.eventID)),
            ("event_ids", .array(a.eventIDs.map { .string($0) })),
            ("group_key", .array(a.groupKey.map { .string($0) })),
            ("group_value", .string(a.groupValue)),
            ("suppressed_since_previous", .int(a.suppressedSincePrevious)),
        ])))
        return .object(doc)
    }
}
