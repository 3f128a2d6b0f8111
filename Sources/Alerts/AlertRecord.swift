import IWDetectCore

/// An alert as it is stored and as sinks receive it: every field typed.
///
/// Its JSON form (``json``) is the alert iw-detect writes to stdout, JSONL files and webhooks;
/// other sinks build their own payloads from the fields. Evidence carries ids, scores, values and
/// short redacted excerpts, never whole prompts or outputs (the rule engine redacts them).
public struct AlertRecord: Sendable, Equatable {
    /// Stable: the same rule, group, event time and event give the same id.
    public var id: String
    public var rule: String
    public var severity: Severity
    public var action: String
    public var description: String
    public var eventTime: EventTime
    /// Wall-clock time of detection (reported, never part of the id).
    public var detectedAt: EventTime
    /// The dedup key's fields, and the group's value (`u-1`, or `u-1|s-9` for a compound key).
    public var groupKey: [String]
    public var groupValue: String
    public var userID: String?
    public var sessionID: String?
    public var eventID: String
    public var eventIDs: [String]
    /// What made the rule fire: fields, window values, baseline statistics (a JSON object).
    public var values: JSONValue
    public var condition: String
    public var recommendedAction: String
    /// Repeats folded into the previous alert of this rule and group since it fired.
    public var suppressedSincePrevious: Int64
    public var tags: [String]
    /// The rule's suppression window: repeats within it are folded into this alert.
    public var dedupWindow: EventTime.Duration
    /// Repeats folded into this alert so far (the database's count, not in the JSON).
    public var suppressed: Int64 = 0 {
        didSet { episode?.events = suppressed + 1 }
    }
    /// Episode dedup: the episode this alert opened, as far as it is known.
    public var episode: Episode?

    /// An anomalous episode (`dedup: {mode: episode}`): its detections, its latest one, and when it
    /// closed (nil while open).
    public struct Episode: Sendable, Equatable {
        public var quiet: EventTime.Duration
        public var events: Int64
        public var lastEventTime: EventTime
        public var closedAt: EventTime?

        var json: JSONValue {
            .object([("quiet", .string(quiet.description)), ("events", .int(events)),
                     ("last_event_time", .string(lastEventTime.description)),
                     ("closed_at", closedAt.map { .string($0.description) } ?? .null)])
        }
    }
    /// The order the alert was raised in (the database's sequence; 0 before it is stored).
    public var seq: Int64 = 0

    /// The alert a detection raises.
    public init(detection d: Detection, suppressedBefore: Int64, detectedAt: EventTime) {
        assert(d.deferredBaselines == nil, "an alert's detection must have its baseline evidence (RuleEngine.completeEvidence)")
        var h = StableHash()
        h.combine(d.rule.name)
        h.combine(d.groupValue)
        h.combine(d.eventTime.micros)
        h.combine(d.eventID)
        id = h.hex
        rule = d.rule.name
        severity = d.rule.severity
        action = d.rule.action
        description = d.rule.description
        eventTime = d.eventTime
        self.detectedAt = detectedAt
        groupKey = d.rule.dedupKey
        groupValue = d.groupValue
        userID = d.userID
        sessionID = d.sessionID
        eventID = d.eventID
        eventIDs = d.eventIDs
        values = .object(d.evidence)
        condition = d.rule.condition
        recommendedAction = d.rule.recommendedAction
        suppressedSincePrevious = suppressedBefore
        tags = d.rule.tags
        dedupWindow = d.rule.dedupWindow
        if d.rule.episode { episode = Episode(quiet: d.rule.dedupWindow, events: 1, lastEventTime: d.eventTime, closedAt: nil) }
    }

    /// The alert's JSON, members in a fixed order.
    public var json: JSONValue {
        .object([
            ("id", .string(id)),
            ("source", .string("iw-detect")),
            ("rule", .string(rule)),
            ("severity", .string(severity.rawValue)),
            ("action", .string(action)),
            ("description", .string(description)),
            ("event_time", .string(eventTime.description)),
            ("detected_at", .string(detectedAt.description)),
            ("group_key", .array(groupKey.map { .string($0) })),
            ("group_value", .string(groupValue)),
            ("user_id", userID.map { .string($0) } ?? .null),
            ("session_id", sessionID.map { .string($0) } ?? .null),
            ("event_id", .string(eventID)),
            ("event_ids", .array(eventIDs.map { .string($0) })),
            ("values", values),
            ("condition", .string(condition)),
            ("recommended_action", .string(recommendedAction)),
            ("suppressed_since_previous", .int(suppressedSincePrevious)),
            ("dedup_window", .string(dedupWindow.description)),
            ("tags", .array(tags.map { .string($0) })),
        ] + (episode.map { [("episode", $0.json)] } ?? []))
    }

    /// Why a stored alert could not be read back.
    public struct DecodeError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the JSON form back (a stored alert).
    public init(json text: String, suppressed: Int64 = 0, seq: Int64 = 0) throws {
        let v: JSONValue
        do { v = try JSONValue.parse(text) } catch { throw DecodeError(description: "stored alert: \(error)") }
        func string(_ k: String) throws -> String {
            guard case .string(let s)? = v[k] else { throw DecodeError(description: "stored alert: no text '\(k)'") }
            return s
        }
        func optional(_ k: String) -> String? {
            if case .string(let s)? = v[k] { return s }
            return nil
        }
        func strings(_ k: String) -> [String] {
            guard case .array(let items)? = v[k] else { return [] }
            return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        func time(_ k: String) throws -> EventTime {
            guard let t = Timestamp.parse(try string(k)) else { throw DecodeError(description: "stored alert: '\(k)' is not a time") }
            return t
        }
        id = try string("id")
        rule = try string("rule")
        guard let sev = Severity(rawValue: try string("severity")) else { throw DecodeError(description: "stored alert: bad severity") }
        severity = sev
        action = try string("action")
        description = optional("description") ?? ""
        eventTime = try time("event_time")
        detectedAt = try time("detected_at")
        groupKey = strings("group_key")
        groupValue = try string("group_value")
        userID = optional("user_id")
        sessionID = optional("session_id")
        eventID = try string("event_id")
        eventIDs = strings("event_ids")
        values = v["values"] ?? .object([])
        condition = optional("condition") ?? ""
        recommendedAction = optional("recommended_action") ?? ""
        if case .int(let n)? = v["suppressed_since_previous"] { suppressedSincePrevious = n } else { suppressedSincePrevious = 0 }
        tags = strings("tags")
        // Alerts stored before the window was written carry the default.
        dedupWindow = optional("dedup_window").flatMap(EventTime.Duration.init(parsing:)) ?? .minutes(15)
        if case .object(let members)? = v["episode"] {
            let e = Dictionary(members, uniquingKeysWith: { a, _ in a })
            func t(_ k: String) -> EventTime? { if case .string(let s)? = e[k] { return Timestamp.parse(s) } else { return nil } }
            episode = Episode(quiet: dedupWindow, events: 1, lastEventTime: t("last_event_time") ?? eventTime, closedAt: t("closed_at"))
        }
        self.suppressed = suppressed
        episode?.events = suppressed + 1
        self.seq = seq
    }

    /// The group as `key=value` pairs (`user_id=u-1`), for readable renderings.
    public var groupPairs: [(String, String)] {
        if groupKey.count == 1 { return [(groupKey[0], groupValue)] }
        let parts = groupValue.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == groupKey.count else { return groupKey.isEmpty ? [] : [(groupKey.joined(separator: ","), groupValue)] }
        return Array(zip(groupKey, parts))
    }

    /// The evidence members that are plain values (baseline details and other objects left out).
    public var flatValues: [(String, JSONValue)] {
        guard case .object(let members) = values else { return [] }
        return members.filter { if case .object = $0.1 { return false } else { return true } }
    }

    /// The one-line readable form (a terminal's stdout, `alerts list`), computed when printed:
    /// `TIME SEVERITY rule key=value | values | recommended action [id]`.
    /// The group and the evidence in one line, without time, severity or rule (the dashboard's
    /// alert table).
    public var brief: String {
        var parts = groupPairs.map { "\($0)=\($1)" }
        if let sessionID, !groupKey.contains("session_id") { parts.append("session_id=\(sessionID)") }
        parts += flatValues.map { "\($0)=\($1.serialized())" }
        return parts.joined(separator: " ")
    }

    public var summaryLine: String {
        var s = "\(eventTime) \(severity.rawValue.uppercased()) \(rule) " + groupPairs.map { "\($0)=\($1)" }.joined(separator: " ")
        if let sessionID, !groupKey.contains("session_id") { s += " session_id=\(sessionID)" }
        s += " | " + flatValues.map { "\($0)=\($1.serialized())" }.joined(separator: " ")
        if suppressedSincePrevious > 0 { s += " | \(suppressedSincePrevious) repeats suppressed before" }
        if let e = episode, e.events > 1 || e.closedAt != nil {
            s += " | episode: \(e.events) detection(s) to \(e.lastEventTime), " + (e.closedAt.map { "closed \($0)" } ?? "open")
        }
        s += " | \(recommendedAction) [\(id)]"
        return s
    }
}
