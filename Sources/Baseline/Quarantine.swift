import IWDetectCore

/// The metrics of a segment's events that fired only statistical rules, held apart until they
/// prove to be a new normal or are refused.
///
/// Anti-poisoning without lock-out: an event that fired a security rule, or that a guardrail
/// blocked, never trains (``Training/exclude``). An event that fired only rules reading a baseline
/// (``Training/quarantine``) may be the first of a legitimate shift, a model upgrade that doubles
/// output lengths, say; if it never trained, every later event would alert for ever. So its
/// metrics wait here, per segment (the event's `segment_by` value, or the global baseline), with
/// the distinct users and sessions they came from (counting only events with a metric outside
/// the baseline's p01…p99) and the share of the segment's events they are. At each scheduled recompute:
/// - a quarantine whose share of the segment's events since it opened is below `min_share` is
///   refused: its values are dropped (the odd outlier, or a campaign drowned in ordinary traffic);
/// - one that has lasted `persist` (first to latest event) and comes from at least `min_users`
///   users and `min_sessions` sessions is admitted: a metric whose quarantined median is more than
///   `move_threshold` robust standard deviations from the baseline's restarts at the hour the
///   quarantine opened (the old normal no longer holds); every metric's quarantined values are
///   added to their hours; a `baseline_shift_accepted` alert names what moved;
/// - one that is narrow (a campaign by a few accounts) stays, and its events keep alerting and
///   never train. Its hours older than the window are dropped, so it is bounded.
/// An hour (or, for seasonal buckets, a day) of a segment's quarantine, for saving what changed.
struct QuarantinePeriod: Hashable, Sendable {
    var segment: Int
    var period: Int64
}

struct Quarantine: Sendable, Equatable {
    var start: Int64
    var last: Int64
    /// Quarantined events, and every event of the segment since the quarantine opened.
    var events: Int64 = 0
    var seen: Int64 = 0
    /// Distinct users and sessions, kept only up to the admission thresholds.
    var users: Set<String> = []
    var sessions: Set<String> = []
    /// Quarantined values by hour, then metric; and by day, then seasonal position and bin.
    var hours: [Int64: [DailyBucket]] = [:]
    var seasonDays: [Int64: [DailyBucket]] = [:]

    var share: Double { seen > 0 ? Double(events) / Double(seen) : 0 }
}

extension BaselineModel {
    /// Counts the event for its segment's open quarantine and, when it is quarantined, holds its
    /// metrics there. Returns whether the event should train as usual.
    mutating func noteForQuarantine(_ event: Event, segment s: Int, quarantined: Bool) -> Bool {
        let t = event.time.micros
        if !quarantined {
            quarantines[s]?.seen += 1  // open quarantines are written at every save
            return true
        }
        var q = quarantines.removeValue(forKey: s) ?? Quarantine(start: t, last: t)
        q.events += 1
        q.seen += 1
        q.last = Swift.max(q.last, t)
        q.start = Swift.min(q.start, t)
        let hour = event.time.hour, day = event.time.day
        var buckets = q.hours[hour] ?? emptyBuckets
        var outside = false
        for m in 0..<metrics.count {
            guard let x = metrics[m].read(event.values[slots[m]]) else { skipped[m] += 1; continue }
            buckets[m].add(x)
            if !outside, let st = snapshot[s][m]?.ready == true ? snapshot[s][m] : snapshot[0][m], st.ready {
                outside = x < st.robust.p01 || x > st.p99
            }
        }
        // Breadth counts only users and sessions with a value outside the baseline's p01…p99: an
        // ordinary event caught by a window statistic that a campaign dragged along (an hour's
        // mean) does not make a campaign broad.
        let limits = settings.quarantine
        if outside {
            if q.users.count < limits.minUsers, case .string(let u) = event.values[FieldTable.userID] { q.users.insert(u) }
            if q.sessions.count < limits.minSessions, case .string(let v) = event.values[FieldTable.sessionID] { q.sessions.insert(v) }
        }
        q.hours[hour] = buckets
        dirtyQuarantineHours.insert(QuarantinePeriod(segment: s, period: hour))
        if let season = settings.seasonality, !seasonalMetrics.isEmpty {
            let bin = season.bin(event.time)
            var row = q.seasonDays[day] ?? emptySeason
            for (p, m) in seasonalMetrics.enumerated() {
                if let x = metrics[m].read(event.values[slots[m]]) { row[p * season.bins + bin].add(x) }
            }
            q.seasonDays[day] = row
            dirtyQuarantineSeasonDays.insert(QuarantinePeriod(segment: s, period: day))
        }
        quarantines[s] = q
        quarantineCounts.events += 1
        return false
    }

    /// Admits or refuses quarantines at a scheduled recompute (before the new snapshot is merged,
    /// against the snapshot the rules judged the events by).
    mutating func reviewQuarantines(at clock: EventTime) {
        guard !quarantines.isEmpty else { return }
        let limits = settings.quarantine
        // In segment-name order: admissions fold into the global buckets, and floating-point
        // merges depend on their order; segment indexes differ between a run and a restart.
        for s in quarantines.keys.sorted(by: { segments[$0] < segments[$1] }) {
            let q = quarantines[s]!
            // A closed quarantine's rows go (a new one may open in the segment before the save).
            func close() {
                quarantines[s] = nil
                dirtyQuarantines.insert(s)
                for hour in q.hours.keys { dirtyQuarantineHours.insert(QuarantinePeriod(segment: s, period: hour)) }
                for day in q.seasonDays.keys { dirtyQuarantineSeasonDays.insert(QuarantinePeriod(segment: s, period: day)) }
            }
            if q.share < limits.minShare {
                close()
                quarantineCounts.refused += 1
                continue
            }
            guard q.last - q.start >= limits.persist.micros, q.users.count >= limits.minUsers, q.sessions.count >= limits.minSessions else {
                // Narrow or young: it stays, bounded by the window.
                let oldest = clock.hour - settings.windowHours - 48
                for hour in q.hours.keys where hour < oldest {
                    quarantines[s]!.hours[hour] = nil
                    dirtyQuarantineHours.insert(QuarantinePeriod(segment: s, period: hour))
                }
                for day in q.seasonDays.keys where day < clock.day - settings.windowDays - 2 {
                    quarantines[s]!.seasonDays[day] = nil
                    dirtyQuarantineSeasonDays.insert(QuarantinePeriod(segment: s, period: day))
                }
                continue
            }
            admit(q, segment: s, at: clock)
            close()
            quarantineCounts.admitted += 1
        }
    }

    /// Folds an admitted quarantine into the buckets, restarting the metrics that moved.
    mutating func admit(_ q: Quarantine, segment s: Int, at clock: EventTime) {
        let startHour = EventTime(micros: q.start).hour, startDay = EventTime(micros: q.start).day
        var merged = emptyBuckets
        for hour in q.hours.keys.sorted() { for m in merged.indices { merged[m].merge(q.hours[hour]![m]) } }
        var moved: [BaselineShift.Moved] = []
        for m in metrics.indices {
            guard let old = snapshot[s][m], old.ready, let median = merged[m].sketch.summary(quantiles: [])?.median else { continue }
            let new = Swift.min(Swift.max(median, merged[m].stats.min), merged[m].stats.max)  // as snapshots clamp
            let scale = old.robust.scale
            let distance = Swift.abs(new - old.robust.median)
            guard scale > 0 ? distance > settings.quarantine.moveThreshold * scale : distance > 0 else { continue }
            moved.append(.init(metric: metrics[m].name, oldMedian: old.robust.median, newMedian: new))
            for hour in hours.keys where hour < startHour {
                guard s < hours[hour]!.count, hours[hour]![s][m].stats.count > 0 else { continue }
                hours[hour]![s][m] = PackedBucket()
                clearedBuckets.append((hour, s, m))
            }
            if let season = settings.seasonality, let p = seasonPosition[m] {
                // The metric's seasons restart too (the save rewrites each dirty day's seasons).
                for day in seasonDays.keys where day < startDay && s < seasonDays[day]!.count {
                    for b in 0..<season.bins { seasonDays[day]![s][p * season.bins + b] = DailyBucket() }
                    dirtySeasonDays.insert(day)
                }
            }
        }
        BaselineModel.fold(q.hours, into: &hours, segment: s, empty: emptyPacked)
        BaselineModel.fold(q.seasonDays, into: &seasonDays, segment: s, empty: emptySeason)
        dirtyHours.formUnion(q.hours.keys)
        dirtySeasonDays.formUnion(q.seasonDays.keys)
        closedSeasonDays = nil
        folds.admitted(hours: q.hours.keys, restarted: moved.compactMap { m in metrics.firstIndex { $0.name == m.metric } },
                       segment: s, before: startHour)
        admitted.append(BaselineShift(segment: segments[s], moved: moved, since: EventTime(micros: q.start), admittedAt: clock,
                                      users: q.users.count, sessions: q.sessions.count, events: q.events, share: q.share))
    }

    /// Merges quarantined rows (by hour) into the packed hours' segment `s` and, for a segment,
    /// into the global baseline too.
    static func fold(_ rows: [Int64: [DailyBucket]], into store: inout [Int64: [[PackedBucket]]], segment s: Int, empty: [PackedBucket]) {
        for (period, row) in rows {
            var target = store[period] ?? []
            while target.count <= s { target.append(empty) }
            for i in row.indices where row[i].stats.count > 0 {
                for t in s == 0 ? [0] : [s, 0] {
                    var b = target[t][i].unpacked
                    b.merge(row[i])
                    target[t][i] = PackedBucket(b)
                }
            }
            store[period] = target
        }
    }

    /// Merges quarantined rows (by day) into a store's segment `s` and, for a segment, into the
    /// global baseline too.
    static func fold(_ rows: [Int64: [DailyBucket]], into store: inout [Int64: [[DailyBucket]]], segment s: Int, empty: [DailyBucket]) {
        for (period, row) in rows {
            var target = store[period] ?? []
            while target.count <= s { target.append(empty) }
            for i in row.indices where row[i].stats.count > 0 {
                target[s][i].merge(row[i])
                if s != 0 { target[0][i].merge(row[i]) }
            }
            store[period] = target
        }
    }

    /// The open quarantines, for `baseline show`.
    public var quarantineSummary: [(segment: String, since: EventTime, events: Int64, share: Double, users: Int, sessions: Int)] {
        quarantines.keys.sorted().map { s in
            let q = quarantines[s]!
            return (segments[s], EventTime(micros: q.start), q.events, q.share, q.users.count, q.sessions.count)
        }
    }

    public mutating func takeShifts() -> [BaselineShift] {
        defer { admitted.removeAll() }
        return admitted.filter { !$0.moved.isEmpty }
    }
}
