import IWDetectCore

/// Settings of the behavioural baseline (DESIGN §4).
public struct BaselineSettings: Sendable, Hashable {
    /// The stream time a snapshot covers, ending with the clock's hour (the monitoring guide's 14
    /// days); whole hours, rounded up.
    public var window: EventTime.Duration = .days(14)
    /// When set, a snapshot covers only the newest hours of the window that hold at least this
    /// many samples (per metric and segment); `window` still bounds what is kept.
    public var windowSamples: Int64?
    /// Samples below which a metric's baseline is "not ready" and conditions using it are false.
    public var minSamples: Int64 = 100
    /// The span of stream time the samples must cover (from the window's first hour with samples
    /// to its last, both included) before a baseline is ready: one busy hour is not a picture of
    /// normal. 0 by default, so a new deployment is not blind.
    public var minSpan: EventTime.Duration = .seconds(0)
    /// Stream time between scheduled recomputes.
    public var recomputeEvery: EventTime.Duration = .hours(1)
    /// Whether events that fired a rule or were blocked by a guardrail are kept out of the baseline.
    public var excludeAlerting = true
    /// The field whose values get baselines of their own (models differ: a long answer from one
    /// is normal from another); nil for the global baseline only.
    public var segmentField: String? = "model_id"
    /// Segments tracked at most; events of further segment values train the global baseline only.
    public var maxSegments = 1_000
    /// When the metrics of events that fired only statistical rules are admitted as a new normal.
    public var quarantine = QuarantineSettings()
    /// Seasonal baselines (hour of day or of week), or nil.
    public var seasonality: Seasonality?

    public init() {}

    /// Hours of buckets a snapshot covers (at least 1).
    public var windowHours: Int64 { Swift.max(1, (window.micros + EventTime.microsPerHour - 1) / EventTime.microsPerHour) }
    /// The window in whole days, rounded up: the days of buckets a seasonal snapshot merges.
    public var windowDays: Int64 {
        get { (windowHours + 23) / 24 }
        set { window = .days(newValue) }
    }
}

/// Admission of a shift out of quarantine (see ``Quarantine``).
public struct QuarantineSettings: Sendable, Hashable {
    /// Stream time from a quarantine's first event to its latest before it can be admitted.
    public var persist: EventTime.Duration = .hours(24)
    /// Distinct users and sessions the quarantined events must come from.
    public var minUsers = 20
    public var minSessions = 20
    /// The share of the segment's events since the quarantine opened that it must hold; below it,
    /// at a scheduled recompute, the quarantine is refused (its events never train).
    public var minShare = 0.1
    /// How far, in robust standard deviations of the old baseline, a metric's quarantined median
    /// must be from the old median for the admission to restart that metric's baseline at the
    /// shift (closer metrics only get the quarantined values added).
    public var moveThreshold = 1.0

    public init() {}
}

/// Seasonal buckets of consecutive days merged per segment and bin, in the order they were added.
struct ClosedDaysMerge: Sendable {
    let days: Range<Int64>
    var merged: [[DailyBucket]]

    init(days: Range<Int64>, segments: Int, metrics: Int) {
        self.days = days
        merged = Array(repeating: Array(repeating: DailyBucket(), count: metrics), count: segments)
    }

    /// Room for segments added since.
    mutating func pad(segments: Int, metrics: Int) {
        while merged.count < segments { merged.append(Array(repeating: DailyBucket(), count: metrics)) }
    }

    /// Merges one day's buckets (by segment, then metric).
    mutating func add(_ day: [[DailyBucket]]) {
        for (s, buckets) in day.enumerated() {
            for m in buckets.indices where buckets[m].stats.count > 0 { merged[s][m].merge(buckets[m]) }
        }
    }
}

/// One metric's numbers in a snapshot.
public struct SnapshotEntry: Sendable, Hashable {
    public var metric: String
    public var segment: String
    public var stats: MetricStats
}

/// The baseline state of the engine: hourly buckets in memory, the current snapshot, the schedule.
///
/// Buckets are kept per hour of event time, per segment (index 0 is the global baseline, which
/// every event trains) and per metric. The ingest loop calls ``observe(_:training:)`` per event
/// and ``advance(to:)`` when the stream clock moves; rules read the snapshot through
/// ``BaselineLookup``: the event's segment while it is ready, else the global one. Buckets touched
/// since the last save are tracked so a batch writes only those. Seasonal buckets are kept per
/// UTC day (a season gains one hour of samples a day).
public struct BaselineModel: BaselineLookup, Sendable {
    public let settings: BaselineSettings
    public let metrics: [MetricDefinition]
    /// The event slot each metric reads.
    public let slots: [Int]
    let segmentSlot: Int?

    /// Segment names by index; 0 is `""`, the global baseline.
    public internal(set) var segments: [String] = [""]
    var segmentIndex: [String: Int] = ["": 0]
    /// Events whose segment was not tracked because ``BaselineSettings/maxSegments`` was reached.
    public internal(set) var segmentOverflow: Int64 = 0

    /// Closed hours' buckets, packed, by hour since the epoch, then segment, then metric.
    var hours: [Int64: [[PackedBucket]]] = [:]
    var dirtyHours: Set<Int64> = []
    /// The hour most events go to, kept out of `hours` while open (see ``open(_:)``).
    var openHour: Int64?
    var openBuckets: [[DailyBucket]] = []
    /// What the recompute keeps between snapshots (see ``WindowFolds``).
    var folds = WindowFolds()
    /// Seasonal buckets by day, then segment, then `position * bins + bin` (position in
    /// ``seasonalMetrics``); the open day's are in `openSeason`, like `openBuckets`.
    var seasonDays: [Int64: [[DailyBucket]]] = [:]
    var dirtySeasonDays: Set<Int64> = []
    var openSeasonDay: Int64?
    var openSeason: [[DailyBucket]] = []
    var closedSeasonDays: ClosedDaysMerge?
    /// The metrics with seasonal baselines, and each metric's position among them.
    public let seasonalMetrics: [Int]
    let seasonPosition: [Int?]
    /// Seasons per seasonal metric (24 or 168; 0 without seasonality).
    let seasonBins: Int
    /// The seasonal snapshot, by segment, then `position * bins + bin`: already pooled.
    public internal(set) var seasonSnapshot: [[MetricStats?]] = []
    /// Whether the seasonal snapshot changed since the last save; whether stored seasonal rows
    /// were made under another seasonality and must go.
    var seasonSnapshotUnsaved = false
    var seasonReset = false
    /// The current snapshot, by segment, then metric.
    public internal(set) var snapshot: [[MetricStats?]]
    public internal(set) var snapshotID: Int64 = 0
    /// The hours (since the epoch) the current snapshot's window covers, both included.
    public internal(set) var snapshotWindow: ClosedRange<Int64>?
    /// The stream time of the recompute that made the current snapshot.
    public internal(set) var snapshotComputedAt: EventTime?
    /// Snapshots computed since the last save, oldest first: every one is persisted, however
    /// many recomputes fall within one batch, so the history does not depend on batch size.
    var unsavedSnapshots: [(id: Int64, window: ClosedRange<Int64>, computedAt: EventTime, entries: [SnapshotEntry])] = []
    /// The stream-time slot (hours since epoch, by default) of the last recompute.
    public internal(set) var lastRecomputeSlot: Int64 = .min
    /// Events kept out of the baseline by the anti-poisoning rule.
    public internal(set) var excluded: Int64 = 0
    /// Metric values that were missing or not numeric, by metric index (never zero-filled).
    public internal(set) var skipped: [Int64]
    /// Open quarantines, by segment index (0: events without a tracked segment).
    var quarantines: [Int: Quarantine] = [:]
    /// Quarantines closed (admitted or refused) since the last save; open ones are always saved.
    var dirtyQuarantines: Set<Int> = []
    /// Hours and (seasonal) days of quarantines changed since the last save.
    var dirtyQuarantineHours: Set<QuarantinePeriod> = []
    var dirtyQuarantineSeasonDays: Set<QuarantinePeriod> = []
    /// Buckets emptied by an admission (a metric's baseline restarted), to delete when saving.
    var clearedBuckets: [(hour: Int64, segment: Int, metric: Int)] = []
    /// Shifts admitted and not yet taken by the processor.
    var admitted: [BaselineShift] = []
    /// Events quarantined, shifts admitted and quarantines refused, since the database began.
    public internal(set) var quarantineCounts = (events: Int64(0), admitted: Int64(0), refused: Int64(0))
    /// An imported snapshot (`baseline import`), by segment name, then metric: used only where the
    /// deployment's own baseline is not ready yet. Its stats carry snapshot id 0.
    public internal(set) var seed: [String: [MetricStats?]] = [:]

    public init(settings: BaselineSettings, metrics: [MetricDefinition], fields: inout FieldTable) {
        self.settings = settings
        self.metrics = metrics
        self.slots = metrics.map { fields.slot(for: $0.path) }
        self.segmentSlot = settings.segmentField.map { fields.slot(for: $0) }
        self.snapshot = [Array(repeating: nil, count: metrics.count)]
        self.skipped = Array(repeating: 0, count: metrics.count)
        let seasonal = settings.seasonality.map { season in
            metrics.indices.filter { season.metrics?.contains(metrics[$0].name) ?? (metrics[$0].kind != .count) }
        } ?? []
        self.seasonalMetrics = seasonal
        self.seasonPosition = metrics.indices.map { seasonal.firstIndex(of: $0) }
        self.seasonBins = settings.seasonality?.bins ?? 0
        if !seasonal.isEmpty { seasonSnapshot = [Array(repeating: nil, count: seasonWidth)] }
    }

    /// Width of a segment's row of seasonal buckets.
    var seasonWidth: Int { seasonalMetrics.count * seasonBins }
    var emptySeason: [DailyBucket] { Array(repeating: DailyBucket(), count: seasonWidth) }

    var emptyBuckets: [DailyBucket] { Array(repeating: DailyBucket(), count: metrics.count) }
    var emptyPacked: [PackedBucket] { Array(repeating: PackedBucket(), count: metrics.count) }

    /// The index of a segment name, adding it while under the cap.
    mutating func segment(named name: String) -> Int? {
        if let s = segmentIndex[name] { return s }
        guard segments.count < settings.maxSegments + 1 else { return nil }
        segments.append(name)
        segmentIndex[name] = segments.count - 1
        snapshot.append(Array(repeating: nil, count: metrics.count))
        if !seasonalMetrics.isEmpty { seasonSnapshot.append(Array(repeating: nil, count: seasonWidth)) }
        return segments.count - 1
    }

    /// The segment name of an event, if it has one.
    @inline(__always)
    func segmentName(of event: Event) -> String? {
        guard let slot = segmentSlot, case .string(let s) = event.values[slot], !s.isEmpty else { return nil }
        return s
    }

    /// Adds an event's metrics to its hour's global and segment buckets, or to its segment's
    /// quarantine, or counts it as excluded.
    @inline(__always)
    public mutating func observe(_ event: Event, training: Training) {
        if training == .exclude { excluded += 1; return }
        var s = 0
        if let name = segmentName(of: event) {
            if let index = segment(named: name) { s = index } else { segmentOverflow += 1 }
        }
        if !quarantines.isEmpty || training == .quarantine {
            guard noteForQuarantine(event, segment: s, quarantined: training == .quarantine) else { return }
        }
        let hour = event.time.hour
        if hour != openHour { open(hour) }
        while openBuckets.count <= s { openBuckets.append(emptyBuckets) }
        for m in 0..<metrics.count {
            if let x = metrics[m].read(event.values[slots[m]]) {
                openBuckets[0][m].add(x)
                if s != 0 { openBuckets[s][m].add(x) }
            } else {
                skipped[m] += 1
            }
        }
        if !seasonalMetrics.isEmpty, let season = settings.seasonality { observeSeason(event, segment: s, bin: season.bin(event.time), bins: season.bins) }
    }

    mutating func observeSeason(_ event: Event, segment s: Int, bin: Int, bins: Int) {
        let day = event.time.day
        if day != openSeasonDay { openSeason(day) }
        while openSeason.count <= s { openSeason.append(emptySeason) }
        for (p, m) in seasonalMetrics.enumerated() {
            guard let x = metrics[m].read(event.values[slots[m]]) else { continue }
            openSeason[0][p * bins + bin].add(x)
            if s != 0 { openSeason[s][p * bins + bin].add(x) }
        }
    }

    /// Makes `hour` the open hour: its buckets move out of the dictionary, unpacked, so the
    /// per-event path does no hashing. The previous open hour goes back, packed, and what the
    /// recompute kept of `hour` is dropped (it is about to change).
    mutating func open(_ hour: Int64) {
        closeOpenHour()
        folds.invalidate(hour: hour)
        openBuckets = hours.removeValue(forKey: hour).map { $0.map { $0.map(\.unpacked) } } ?? [emptyBuckets]
        openHour = hour
        dirtyHours.insert(hour)
    }

    mutating func closeOpenHour() {
        guard let h = openHour else { return }
        hours[h] = openBuckets.map { $0.map(PackedBucket.init) }
        openBuckets = []
        openHour = nil
    }

    /// Makes `day` the open day of the seasonal buckets, as ``open(_:)`` does for the hours.
    mutating func openSeason(_ day: Int64) {
        if let d = openSeasonDay {
            seasonDays[d] = openSeason
            openSeason = []
        }
        if closedSeasonDays?.days.contains(day) == true { closedSeasonDays = nil }  // a late event changes a merged day
        openSeason = seasonDays.removeValue(forKey: day) ?? [emptySeason]
        openSeasonDay = day
        dirtySeasonDays.insert(day)
    }

    /// Puts the open hour's (and seasonal day's) buckets back (before anything reads `hours`).
    mutating func closeOpen() {
        closeOpenHour()
        if let d = openSeasonDay {
            seasonDays[d] = openSeason
            openSeason = []
            openSeasonDay = nil
        }
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

    /// Folds the hourly buckets of the window ending with the clock's hour into a new snapshot
    /// per segment and metric, and drops buckets that have left it.
    ///
    /// The window is the last ``BaselineSettings/windowHours`` hours, the clock's included, or,
    /// with ``BaselineSettings/windowSamples``, the newest of them that hold that many samples.
    /// Each cell's fold follows one fixed tree (``WindowFolds``), so a snapshot is bit for bit the
    /// same whatever recomputes came before it, and costs a few merges per metric and segment,
    /// not one per hour.
    public mutating func recompute(at clock: EventTime, admitting: Bool = true) {
        closeOpen()
        if admitting { reviewQuarantines(at: clock) }
        let end = clock.hour
        let start = end - settings.windowHours + 1
        prepareTail(day: BaselineModel.day(ofHour: end), through: end - 1)
        snapshotID += 1
        snapshotWindow = start...end
        var next: [[MetricStats?]] = []
        next.reserveCapacity(segments.count)
        for s in segments.indices {
            var row: [MetricStats?] = []
            row.reserveCapacity(metrics.count)
            for m in metrics.indices {
                let from = settings.windowSamples.map { samplesStart(segment: s, metric: m, window: start...end, samples: $0) } ?? start
                let bucket = fold(segment: s, metric: m, from: from, to: end)
                guard bucket.stats.count > 0, let span = span(segment: s, metric: m, window: from...end) else { row.append(nil); continue }
                row.append(BaselineModel.stats(bucket, id: snapshotID, settings: settings, segment: segments[s], span: span))
            }
            next.append(row)
        }
        snapshot = next
        snapshotComputedAt = clock
        unsavedSnapshots.append((snapshotID, start...end, clock, entries))
        let endDay = BaselineModel.day(ofHour: end)
        let startDay = endDay - settings.windowDays + 1
        if let season = settings.seasonality, !seasonalMetrics.isEmpty {
            recomputeSeasons(season, closed: startDay..<max(startDay, endDay), end: endDay)
        }
        // Keep two whole days of margin for late events before dropping a bucket; hours and
        // their day folds go together, so no fold outlives an hour it was made from.
        let keep = BaselineModel.firstKeptHour(windowStart: start)
        for hour in hours.keys where hour < keep { hours[hour] = nil }
        for day in seasonDays.keys where day < startDay - 2 { seasonDays[day] = nil }
        folds.drop(before: BaselineModel.day(ofHour: keep))
    }

    /// The oldest hour kept for a window starting at `start`: the first of the day two days
    /// before the window's first day.
    static func firstKeptHour(windowStart start: Int64) -> Int64 { (day(ofHour: start) - 2) * 24 }

    /// The UTC day of an hour since the epoch (rounding down, before 1970 too).
    @inline(__always)
    static func day(ofHour hour: Int64) -> Int64 { hour >= 0 ? hour / 24 : (hour + 1) / 24 - 1 }

    /// The first day of the seasonal window (whole UTC days ending with the clock's), for pruning.
    var seasonWindowStartDay: Int64? {
        snapshotWindow.map { BaselineModel.day(ofHour: $0.upperBound) - settings.windowDays + 1 }
    }

    /// The window's merge of a store of day buckets: the days in `closed` (kept in `cache` while
    /// they do not change), then the clock's day `end` merged into a copy.
    static func merge(_ store: [Int64: [[DailyBucket]]], cache: inout ClosedDaysMerge?, closed: Range<Int64>, end: Int64,
                      segments: Int, width: Int) -> ClosedDaysMerge {
        if cache?.days != closed {
            var merge = ClosedDaysMerge(days: closed, segments: segments, metrics: width)
            for day in store.keys.sorted() where closed.contains(day) { merge.add(store[day]!) }
            cache = merge
        }
        var window = cache!
        window.pad(segments: segments, metrics: width)
        if end >= closed.lowerBound, let buckets = store[end] { window.add(buckets) }
        return window
    }

    /// The seasonal snapshot, merged the way the overall one is (closed days kept between
    /// recomputes, the clock's day merged into a copy), each bin pooled toward the new overall
    /// snapshot of its segment.
    mutating func recomputeSeasons(_ season: Seasonality, closed: Range<Int64>, end: Int64) {
        let window = BaselineModel.merge(seasonDays, cache: &closedSeasonDays, closed: closed, end: end, segments: segments.count, width: seasonWidth)
        let bins = season.bins
        seasonSnapshot = window.merged.enumerated().map { s, buckets in
            buckets.enumerated().map { flat, bucket in
                let m = seasonalMetrics[flat / bins]
                let own = BaselineModel.stats(bucket, id: snapshotID, settings: settings, segment: segments[s], span: 0)
                return season.pooled(own, snapshot[s][m], bin: flat % bins)
            }
        }
        seasonSnapshotUnsaved = true
    }

    /// The seasonal version of `st` (segment `s`'s or the global snapshot of metric `m`) for the
    /// event's season, or `st` itself for a metric without seasons.
    @inline(__always)
    func seasonal(_ st: MetricStats?, metric m: Int, segment s: Int, bin: Int?) -> MetricStats? {
        guard let bin, let p = seasonPosition[m], s < seasonSnapshot.count, st != nil else { return st }
        return seasonSnapshot[s][p * seasonBins + bin] ?? st
    }

    /// The event's season, or nil without seasonal baselines.
    @inline(__always)
    func seasonBin(of event: Event) -> Int? {
        guard !seasonalMetrics.isEmpty, let season = settings.seasonality else { return nil }
        return season.bin(event.time)
    }

    /// The quantiles a snapshot keeps: p01, p05, p10, p25, p75, p90, p95, p99, p999.
    static let quantiles = [0.01, 0.05, 0.10, 0.25, 0.75, 0.90, 0.95, 0.99, 0.999]

    /// The statistics of a window's fold whose samples span `span` hours.
    static func stats(_ bucket: DailyBucket, id: Int64, settings: BaselineSettings, segment: String, span: Int) -> MetricStats? {
        let s = bucket.stats
        guard s.count > 0 else { return nil }
        let clamp = { (x: Double) in Swift.min(Swift.max(x, s.min), s.max) }
        guard let sk = bucket.sketch.summary(quantiles: BaselineModel.quantiles) else { return nil }
        let q = sk.quantiles.map(clamp)
        let robust = RobustStats(p01: q[0], p05: q[1], p10: q[2], p25: q[3], median: clamp(sk.median), p75: q[4], p90: q[5], p999: q[8],
                                 mad: sk.mad, meanAbsoluteDeviation: sk.meanAbsoluteDeviation)
        return MetricStats(n: s.count, mean: s.mean, std: s.std, p95: q[6], p99: q[7], min: s.min, max: s.max, snapshotID: id,
                           ready: s.count >= settings.minSamples && Int64(span) * EventTime.microsPerHour >= settings.minSpan.micros,
                           segment: segment, span: span,
                           robust: robust)
    }

    /// Why a baseline is not ready, or nil when it is.
    public func whyNotReady(_ st: MetricStats?) -> String? {
        guard let st else { return "no samples in the window" }
        if st.ready { return nil }
        var needs: [String] = []
        if st.n < settings.minSamples { needs.append("\(settings.minSamples) samples") }
        if Int64(st.span) * EventTime.microsPerHour < settings.minSpan.micros { needs.append("a span of \(settings.minSpan)") }
        return "\(st.n) samples over \(st.span) h, needs " + needs.joined(separator: " and ")
    }

    /// The event's segment baseline while it is ready, else the global one; where neither is
    /// ready, an imported seed (segment, then global) stands in.
    public func stats(metric: Int, for event: Event) -> MetricStats? {
        let name = segmentName(of: event)
        if let name, let s = segmentIndex[name], let st = snapshot[s][metric], st.ready { return seasonal(st, metric: metric, segment: s, bin: seasonBin(of: event)) }
        let global = snapshot[0][metric]
        if global?.ready == true || seed.isEmpty { return seasonal(global, metric: metric, segment: 0, bin: seasonBin(of: event)) }
        if let name, let st = seed[name]?[metric] { return st }
        return seed[""]?[metric] ?? global
    }

    /// Every metric's statistics for the event, as ``stats(metric:for:)`` gives them, with the
    /// segment looked up once.
    public func stats(for event: Event, into out: inout [MetricStats?]) {
        let segment = segmentName(of: event).flatMap { segmentIndex[$0] }
        let bin = seasonBin(of: event)
        for m in out.indices {
            if let segment, let st = snapshot[segment][m], st.ready {
                out[m] = seasonal(st, metric: m, segment: segment, bin: bin)
                continue
            }
            let global = snapshot[0][m]
            if global?.ready == true || seed.isEmpty {
                out[m] = seasonal(global, metric: m, segment: 0, bin: bin)
                continue
            }
            out[m] = stats(metric: m, for: event)
        }
    }

    /// The global snapshot of a metric.
    public func globalStats(metric: Int) -> MetricStats? { snapshot[0][metric] }

    /// The snapshot's entries, global first, for `baseline show` and export.
    public var entries: [SnapshotEntry] {
        segments.indices.flatMap { s in
            metrics.indices.compactMap { m in snapshot[s][m].map { SnapshotEntry(metric: metrics[m].name, segment: segments[s], stats: $0) } }
        }
    }
}
