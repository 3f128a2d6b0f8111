import IWDetectCore

/// Settings of the behavioural baseline (DESIGN §4).
public struct BaselineSettings: Sendable, Hashable {
    /// Days of buckets a snapshot merges (the monitoring guide's 14).
    public var windowDays: Int64 = 14
    /// Samples below which a metric's baseline is "not ready" and conditions using it are false.
    public var minSamples: Int64 = 100
    /// Stream time between scheduled recomputes.
    public var recomputeEvery: EventTime.Duration = .hours(1)
    /// Whether events that fired a rule or were blocked by a guardrail are kept out of the baseline.
    public var excludeAlerting = true

    public init() {}
}

/// One metric's numbers in a snapshot.
public struct SnapshotEntry: Sendable, Hashable {
    public var metric: String
    public var segment: String
    public var stats: MetricStats
}

/// The baseline state of the engine: daily buckets in memory, the current snapshot, the schedule.
///
/// The ingest loop calls ``observe(_:trains:)`` per event and ``advance(to:)`` when the stream clock
/// moves; rules read ``snapshot`` through ``BaselineLookup``. Buckets touched since the last save
/// are tracked so a batch writes only those.
public struct BaselineModel: BaselineLookup, Sendable {
    public let settings: BaselineSettings
    public let metrics: [MetricDefinition]
    /// The event slot each metric reads.
    public let slots: [Int]

    /// Buckets by day, then by metric index.
    var days: [Int64: [DailyBucket]] = [:]
    var dirtyDays: Set<Int64> = []
    /// The day most events go to, kept out of `days` while open (see ``open(_:)``).
    var openDay: Int64?
    var openBuckets: [DailyBucket] = []
    /// The current snapshot, by metric index.
    public internal(set) var snapshot: [MetricStats?]
    public internal(set) var snapshotID: Int64 = 0
    public internal(set) var snapshotWindow: ClosedRange<Int64>?
    var snapshotDirty = false
    /// The stream-time slot (hours since epoch, by default) of the last recompute.
    public internal(set) var lastRecomputeSlot: Int64 = .min
    /// Events kept out of the baseline by the anti-poisoning rule.
    public internal(set) var excluded: Int64 = 0
    /// Metric values that were missing or not numeric, by metric index (never zero-filled).
    public private(set) var skipped: [Int64]

    public init(settings: BaselineSettings, metrics: [MetricDefinition], fields: inout FieldTable) {
        self.settings = settings
        self.metrics = metrics
        self.slots = metrics.map { fields.slot(for: $0.path) }
        self.snapshot = Array(repeating: nil, count: metrics.count)
        self.skipped = Array(repeating: 0, count: metrics.count)
    }

    /// Adds an event's metrics to its day's bucket, unless it must not train the baseline.
    @inline(__always)
    public mutating func observe(_ event: Event, trains: Bool) {
        guard trains else { excluded += 1; return }
        let day = event.time.day
        if day != openDay { open(day) }
        for m in 0..<metrics.count {
            if let x = metrics[m].read(event.values[slots[m]]) {
                openBuckets[m].add(x)
            } else {
                skipped[m] += 1
            }
        }
    }

    /// Makes `day` the open day: its buckets move out of the dictionary, so the per-event path
    /// does no hashing. The previous open day goes back.
    mutating func open(_ day: Int64) {
        closeOpenDay()
        openBuckets = days.removeValue(forKey: day) ?? Array(repeating: DailyBucket(), count: metrics.count)
        openDay = day
        dirtyDays.insert(day)
    }

    /// Puts the open day's buckets back into `days` (before anything reads `days`).
    mutating func closeOpenDay() {
        guard let d = openDay else { return }
        days[d] = openBuckets
        openBuckets = []
        openDay = nil
    }

    /// Recomputes the snapshot when the stream clock enters a new schedule slot. Returns true when
    /// it did.
    @discardableResult
    public mutating func advance(to clock: EventTime) -> Bool {
        let slot = clock.micros / settings.recomputeEvery.micros
        guard slot > lastRecomputeSlot else { return false }
        lastRecomputeSlot = slot
        recompute(at: clock)
        return true
    }

    /// Merges the buckets of the last `windowDays` days (ending with the clock's day) into a new
    /// snapshot, and drops buckets that have left the window.
    public mutating func recompute(at clock: EventTime) {
        closeOpenDay()
        let end = clock.day
        let start = end - settings.windowDays + 1
        var merged = Array(repeating: DailyBucket(), count: metrics.count)
        for day in days.keys.sorted() where day >= start && day <= end {
            for m in 0..<metrics.count { merged[m].merge(days[day]![m]) }
        }
        snapshotID += 1
        snapshotWindow = start...end
        snapshot = merged.map { bucket in
            let s = bucket.stats
            guard s.count > 0 else { return nil }
            let clamp = { (x: Double?) in Swift.min(Swift.max(x ?? s.mean, s.min), s.max) }
            return MetricStats(n: s.count, mean: s.mean, std: s.std,
                               p95: clamp(bucket.sketch.quantile(0.95)), p99: clamp(bucket.sketch.quantile(0.99)),
                               min: s.min, max: s.max, snapshotID: snapshotID, ready: s.count >= settings.minSamples)
        }
        snapshotDirty = true
        // Keep two days of margin for late events before dropping a bucket.
        for day in days.keys where day < start - 2 { days[day] = nil }
    }

    public func stats(metric: Int, for event: Event) -> MetricStats? { snapshot[metric] }

    /// The snapshot's entries, for `baseline show` and export.
    public var entries: [SnapshotEntry] {
        metrics.indices.compactMap { m in snapshot[m].map { SnapshotEntry(metric: metrics[m].name, segment: "", stats: $0) } }
    }
}
