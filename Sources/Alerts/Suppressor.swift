import IWDetectCore

/// Dedup: one alert per rule and group value per suppression window of event time (DESIGN §6), or
/// per episode.
///
/// The first detection of a group opens a window of the rule's length and becomes an alert; later
/// detections inside it are suppressed and counted on that alert. The next alert after the window
/// carries the count as `suppressed_since_previous`. In episode mode the window is the rule's
/// quiet time after the group's latest detection: each one inside it extends the episode, which
/// closes once the stream clock passes its end; the close (the last detection's time and the
/// end) is recorded on the alert. Whether a window is still open depends only on event times,
/// never on when state was swept, so replays in any batching agree.
public struct Suppressor: Sendable {
    public struct Entry: Sendable, Equatable {
        public var windowEnd: Int64
        public var alertID: String
        public var suppressed: Int64
        /// Episode mode: the event time of the episode's latest detection (nil in window mode).
        public var lastSeen: Int64?
        /// Whether the close was recorded on the alert (a late detection inside the quiet time
        /// can still extend the episode: it is recorded again).
        public var closeRecorded: Bool

        public init(windowEnd: Int64, alertID: String, suppressed: Int64, lastSeen: Int64? = nil, closeRecorded: Bool = false) {
            self.windowEnd = windowEnd
            self.alertID = alertID
            self.suppressed = suppressed
            self.lastSeen = lastSeen
            self.closeRecorded = closeRecorded
        }

        var closed: ClosedEpisode? {
            lastSeen.map { ClosedEpisode(alertID: alertID, suppressed: suppressed, lastSeen: $0, closedAt: windowEnd) }
        }
    }

    /// An episode that closed: its alert, its latest detection and the time it closed.
    public struct ClosedEpisode: Sendable, Equatable {
        public var alertID: String
        public var suppressed: Int64
        public var lastSeen: Int64
        public var closedAt: Int64

        public init(alertID: String, suppressed: Int64, lastSeen: Int64, closedAt: Int64) {
            self.alertID = alertID
            self.suppressed = suppressed
            self.lastSeen = lastSeen
            self.closedAt = closedAt
        }
    }

    /// How long after its window closes a group's count is remembered for the next alert.
    public static let retention = EventTime.Duration.hours(24)

    var entries: [String: Entry] = [:]
    var dirty: Set<String> = []
    /// Final suppressed counts of alerts whose window was replaced since the last save.
    var closed: [(alertID: String, suppressed: Int64)] = []
    /// Episodes closed since the last save.
    public internal(set) var closedEpisodes: [ClosedEpisode] = []
    /// Suppressed detections by rule, for the summary.
    public private(set) var suppressedByRule: [String: Int64] = [:]

    public init() {}

    /// What to do with a detection.
    public enum Decision: Equatable {
        /// Raise an alert; `suppressedBefore` repeats were folded into the previous one.
        case alert(suppressedBefore: Int64)
        /// Fold into the open alert `alertID`.
        case suppress(alertID: String)
    }

    static func key(_ d: Detection) -> String { d.rule.name + "\u{1f}" + d.groupValue }

    /// Decides, and records the decision. Call ``opened(_:alertID:)`` after raising an alert.
    public mutating func decide(_ d: Detection) -> Decision {
        let k = Suppressor.key(d)
        let t = d.eventTime.micros
        if var e = entries[k], t < e.windowEnd {
            e.suppressed += 1
            if let last = e.lastSeen, t > last {
                // Whether the close was recorded yet (batching) changes nothing: the episode goes on.
                e.lastSeen = t
                e.windowEnd = t + d.rule.dedupWindow.micros
                e.closeRecorded = false
            }
            entries[k] = e
            dirty.insert(k)
            suppressedByRule[d.rule.name, default: 0] += 1
            return .suppress(alertID: e.alertID)
        }
        if let e = entries[k], t - e.windowEnd <= Suppressor.retention.micros { return .alert(suppressedBefore: e.suppressed) }
        return .alert(suppressedBefore: 0)
    }

    /// Opens a window for the alert just raised for `d`.
    public mutating func opened(_ d: Detection, alertID: String) {
        let k = Suppressor.key(d)
        if let old = entries[k] {
            if old.suppressed > 0 { closed.append((old.alertID, old.suppressed)) }
            if !old.closeRecorded, let c = old.closed { closedEpisodes.append(c) }
        }
        let t = d.eventTime.micros
        entries[k] = Entry(windowEnd: t + d.rule.dedupWindow.micros, alertID: alertID, suppressed: 0, lastSeen: d.rule.episode ? t : nil)
        dirty.insert(k)
    }

    /// Forgets the groups of rules not in `rules` (removed or changed by a reload).
    public mutating func retain(rules: Set<String>) {
        for k in entries.keys {
            guard let sep = k.firstIndex(of: "\u{1f}"), !rules.contains(String(k[..<sep])) else { continue }
            // The rule is gone or changed: an open episode of it ends where it would have.
            if let e = entries[k], !e.closeRecorded, let c = e.closed { closedEpisodes.append(c) }
            entries[k] = nil
            dirty.insert(k)
        }
    }

    /// Records the close of episodes whose quiet time the stream clock has passed, and forgets
    /// groups whose window closed more than ``retention`` before `clock`.
    public mutating func sweep(clock: EventTime) {
        guard !clock.isUnset else { return }
        for (k, var e) in entries {
            if !e.closeRecorded, let c = e.closed, clock.micros >= e.windowEnd {
                closedEpisodes.append(c)
                e.closeRecorded = true
                entries[k] = e
                dirty.insert(k)
            }
            if clock.micros - e.windowEnd > Suppressor.retention.micros {
                entries[k] = nil
                dirty.insert(k)
            }
        }
    }
}
