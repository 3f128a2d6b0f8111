/// A number taken from each event and baselined (DESIGN §4).
public struct MetricDefinition: Sendable, Hashable {
    /// How the number is obtained from the field.
    public enum Kind: String, Sendable, Hashable {
        /// The field's numeric value.
        case value
        /// The number of elements of a list-valued field (`tool_call_count` = count of `tool_calls`).
        case count
        /// The UTF-8 length of a text field (`model_output` size); O(1) on Swift strings.
        case bytes
    }

    /// The metric's name, as rules and `baseline show` refer to it.
    public var name: String
    /// The dotted field path it is read from.
    public var path: String
    public var kind: Kind

    public init(name: String, path: String, kind: Kind = .value) {
        self.name = name
        self.path = path
        self.kind = kind
    }

    /// The monitoring guide's metrics.
    public static let defaults: [MetricDefinition] = [
        MetricDefinition(name: "input_tokens", path: "input_tokens"),
        MetricDefinition(name: "output_tokens", path: "output_tokens"),
        MetricDefinition(name: "inference_latency_ms", path: "inference_latency_ms"),
        MetricDefinition(name: "total_latency_ms", path: "total_latency_ms"),
        MetricDefinition(name: "input_injection_score", path: "input_injection_score"),
        MetricDefinition(name: "risk_score", path: "risk_score"),
        MetricDefinition(name: "tool_call_count", path: "tool_calls", kind: .count),
    ]

    /// Reads the metric from a field value; nil when missing or not numeric (never zero-filled).
    @inlinable public func read(_ value: FieldValue) -> Double? {
        switch kind {
        case .value:
            if case .number(let n) = value, n.isFinite { return n }
            return nil
        case .count:
            switch value {
            case .list(let items): return Double(items.count)
            case .null: return 0
            default: return nil
            }
        case .bytes:
            if case .string(let s) = value { return Double(s.utf8.count) }
            return nil
        }
    }
}

/// Baseline statistics of one metric, as read by detection.
public struct MetricStats: Sendable, Hashable {
    public var n: Int64
    public var mean: Double
    public var std: Double
    public var p95: Double
    public var p99: Double
    public var min: Double
    public var max: Double
    /// The snapshot these numbers come from.
    public var snapshotID: Int64
    /// Whether the baseline has enough samples for conditions to use it.
    public var ready: Bool
    /// The segment these numbers describe (`""`: the global baseline).
    public var segment: String
    /// Hours from the window's first hour with samples to its last, both included.
    public var span: Int
    /// The other quantiles, the median and the MAD.
    public var robust: RobustStats
    /// For a seasonal metric, the event's season (hour of day or of week) these numbers are
    /// pooled for, and that season's own sample count; -1 and 0 otherwise.
    public var season = -1
    public var seasonSamples: Int64 = 0

    /// Without `robust`, the quantiles, median and MAD of a normal distribution with this mean and
    /// std stand in (``RobustStats/normal(mean:std:min:max:)``).
    public init(n: Int64, mean: Double, std: Double, p95: Double, p99: Double, min: Double, max: Double,
                snapshotID: Int64, ready: Bool, segment: String = "", span: Int = 0, robust: RobustStats? = nil) {
        self.n = n; self.mean = mean; self.std = std; self.p95 = p95; self.p99 = p99
        self.min = min; self.max = max; self.snapshotID = snapshotID; self.ready = ready; self.segment = segment
        self.span = span
        if let robust {
            self.robust = robust
        } else {
            // The normal approximation, kept in order around the real p95 and p99 (skewed data
            // would put its p90 above the p95).
            var r = RobustStats.normal(mean: mean, std: std, min: min, max: max)
            r.p90 = Swift.min(r.p90, p95); r.p75 = Swift.min(r.p75, r.p90); r.median = Swift.min(r.median, r.p75)
            r.p25 = Swift.min(r.p25, r.median); r.p10 = Swift.min(r.p10, r.p25); r.p05 = Swift.min(r.p05, r.p10)
            r.p01 = Swift.min(r.p01, r.p05); r.p999 = Swift.max(r.p999, p99)
            self.robust = r
        }
    }

    /// The robust z of `x`: `(x - median) / scale` (``RobustStats/scale``); nil where the scale is 0.
    @inlinable public func robustZ(_ x: Double) -> Double? {
        let scale = robust.scale
        return scale > 0 ? (x - robust.median) / scale : nil
    }
}

/// Read access to the current baseline snapshot; what the rule evaluator sees of baselines.
///
/// ## Implementation requirements
/// Must be cheap (called per event per baseline reference) and must not block; it reads an
/// in-memory snapshot, never the live buckets.
public protocol BaselineLookup {
    /// The snapshot statistics of metric `metric` (an index into the metric list) for `event`'s
    /// segment, or nil where there is no snapshot.
    func stats(metric: Int, for event: Event) -> MetricStats?
    /// The statistics of every metric for `event`, into `out` (one element per metric): what
    /// ``stats(metric:for:)`` gives, with the event's segment resolved once.
    func stats(for event: Event, into out: inout [MetricStats?])
}

extension BaselineLookup {
    public func stats(for event: Event, into out: inout [MetricStats?]) {
        for m in out.indices { out[m] = stats(metric: m, for: event) }
    }
}

/// What an event does to the baseline.
public enum Training: Sendable, Equatable {
    /// An ordinary event: its metrics train the baseline.
    case train
    /// Kept out for good: it fired a security rule or a guardrail blocked it.
    case exclude
    /// It fired statistical rules only: held in quarantine until a shift is admitted or refused.
    case quarantine
}

/// A baseline the pipeline both reads and trains: the live model, or a fixed snapshot (rule tests).
///
/// ## Implementation requirements
/// Called per event on the hot path, synchronously: no I/O, no locks.
public protocol TrainableBaseline: BaselineLookup {
    /// Moves the baseline's schedule to the stream clock; true when a snapshot was recomputed.
    mutating func advance(to clock: EventTime) -> Bool
    /// Adds the event's metrics, quarantines them, or counts the event as excluded.
    mutating func observe(_ event: Event, training: Training)
    /// Shifts admitted by the last recomputes, to be raised as alerts (each once).
    mutating func takeShifts() -> [BaselineShift]
}

/// A shift of a segment's baseline admitted out of quarantine (`baseline_shift_accepted`).
public struct BaselineShift: Sendable, Equatable {
    public struct Moved: Sendable, Equatable {
        public var metric: String
        public var oldMedian: Double
        public var newMedian: Double
        public init(metric: String, oldMedian: Double, newMedian: Double) {
            self.metric = metric; self.oldMedian = oldMedian; self.newMedian = newMedian
        }
    }
    /// The segment (`""`: the global baseline).
    public var segment: String
    /// The metrics whose baseline now starts at the shift, with their old and new medians.
    public var moved: [Moved]
    /// When the quarantine opened and when the shift was admitted (stream time).
    public var since: EventTime
    public var admittedAt: EventTime
    /// Breadth: distinct users and sessions (counted up to the thresholds), quarantined events and
    /// their share of the segment's events since the quarantine opened.
    public var users: Int
    public var sessions: Int
    public var events: Int64
    public var share: Double

    public init(segment: String, moved: [Moved], since: EventTime, admittedAt: EventTime, users: Int, sessions: Int, events: Int64, share: Double) {
        self.segment = segment; self.moved = moved; self.since = since; self.admittedAt = admittedAt
        self.users = users; self.sessions = sessions; self.events = events; self.share = share
    }
}
