/// What a rule reports when its condition holds for an event: the input to the Alerts stage.
public struct Detection: Sendable {
    public var rule: RuleInfo
    public var eventTime: EventTime
    /// The id of the event that made the rule fire.
    public var eventID: String
    /// The ids of the events that made it fire (for window rules, those in the window; capped).
    public var eventIDs: [String]
    /// The dedup key fields and their values, in key order, for this event.
    public var groupValues: [String]
    public var userID: String?
    public var sessionID: String?
    /// The values that made the rule fire: fields, window counts, baseline statistics.
    public var evidence: [(String, JSONValue)]
    /// The baseline statistics still to be added to ``evidence`` (metric index, metric, value
    /// slot) with the event they are for: set when the rule engine defers them until a
    /// detection is known to raise an alert (most of a storm's detections are duplicates).
    public var deferredBaselines: (metrics: [(Int, MetricDefinition, Int)], event: Event)?

    public init(rule: RuleInfo, eventTime: EventTime, eventID: String, eventIDs: [String], groupValues: [String],
                userID: String?, sessionID: String?, evidence: [(String, JSONValue)]) {
        self.rule = rule
        self.eventTime = eventTime
        self.eventID = eventID
        self.eventIDs = eventIDs
        self.groupValues = groupValues
        self.userID = userID
        self.sessionID = sessionID
        self.evidence = evidence
    }

    /// The dedup group's value as one string (`u-1`, or `u-1|s-9` for a compound key).
    public var groupValue: String { groupValues.joined(separator: "|") }
}

/// A rule's metadata, shared by all its detections.
public struct RuleInfo: Sendable, Hashable {
    public var name: String
    public var description: String
    public var severity: Severity
    public var action: String
    public var recommendedAction: String
    public var condition: String
    /// The fields whose values group alerts for dedup (`[]`: one group for the whole rule).
    public var dedupKey: [String]
    public var dedupWindow: EventTime.Duration
    /// Channels that replace the severity's default route, when set.
    public var channels: [String]?
    public var tags: [String]
    /// Episode dedup (`mode: episode`): a detection within ``dedupWindow`` (the quiet time) of the
    /// group's previous one extends its alert's episode, which closes after that long without one.
    public var episode: Bool
    /// Whether the condition reads a baseline (`baseline.*`, `z`, `rz`, `above`, `below`,
    /// `outside`, `cusum`): a statistical rule, whose events are quarantined rather than kept out of the
    /// baseline for good.
    public var readsBaseline: Bool

    public init(name: String, description: String, severity: Severity, action: String, recommendedAction: String,
                condition: String, dedupKey: [String], dedupWindow: EventTime.Duration, channels: [String]?,
                tags: [String], episode: Bool = false, readsBaseline: Bool = false) {
        self.episode = episode
        self.readsBaseline = readsBaseline
        self.name = name
        self.description = description
        self.severity = severity
        self.action = action
        self.recommendedAction = recommendedAction
        self.condition = condition
        self.dedupKey = dedupKey
        self.dedupWindow = dedupWindow
        self.channels = channels
        self.tags = tags
    }
}
