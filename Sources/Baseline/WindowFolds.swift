import IWDetectCore

/// What a recompute keeps between snapshots so that folding a sliding window of hourly buckets
/// costs a few merges per metric and segment, not one per hour.
///
/// A cell's (segment, metric) window is the hours `a...e`, `e` the clock's hour. Its fold follows
/// one fixed tree:
/// - the head: when `a` does not start a UTC day, the hours from `a` to the end of its day, folded
///   from the right (`h[a] ⊕ (h[a+1] ⊕ (… ⊕ h[23]))`), so that one table per day serves every
///   `a` in it as the window slides;
/// - the middle: the whole days after the head and before the clock's day, each the left fold of
///   its 24 hours, folded from the left;
/// - the tail: the clock's day from its first hour through `e`, folded from the left;
///
/// merged as `(head ⊕ middle) ⊕ tail`; a window inside one day is the left fold of its hours.
/// Chan's merge is not associative in floating point, so the tree is what makes snapshots
/// deterministic: it depends only on `a`, `e` and the buckets, never on which recomputes came
/// before, and every cache here (each day's fold, each cell's middle, the head tables, the tail
/// through the last closed hour) is a shortcut to the same bits. An hour that changes drops what
/// holds it (``invalidate(hour:)``).
struct WindowFolds: Sendable {
    /// Left folds of whole days, by day, then segment, then metric.
    var days: [Int64: [[DailyBucket]]] = [:]
    /// Right folds of a day's hours, by day, then segment, then metric, then hour of the day.
    var heads: [Int64: [[[DailyBucket]]]] = [:]
    /// Per segment and metric, the middle of the last fold.
    var middles: [[Middle?]] = []
    /// The latest day any middle holds.
    var middleLast: Int64 = .min
    /// The left fold of a day's hours from its first through `through`, by segment, then metric.
    var tail: Tail?

    struct Middle: Sendable {
        var days: Range<Int64>
        var fold: DailyBucket
    }

    struct Tail: Sendable {
        var day: Int64
        var through: Int64
        var fold: [[DailyBucket]]
    }

    /// Drops what the hour's change makes stale.
    mutating func invalidate(hour: Int64) {
        let day = BaselineModel.day(ofHour: hour)
        if let t = tail, t.day == day, hour <= t.through { tail = nil }
        if days.isEmpty && heads.isEmpty && day > middleLast { return }
        invalidate(day: day)
    }

    /// Keeps what an admission leaves valid: the quarantined values went into `hours` (of
    /// segment `s` and the global baseline), and the `restarted` metrics of segment `s` lost every
    /// hour before `before`. A day holding a changed hour is dropped; a restarted metric's folds
    /// of the days before are now empty; the head tables and the tail are built again.
    mutating func admitted<H: Sequence<Int64>>(hours changed: H, restarted: [Int], segment s: Int, before: Int64) {
        var changedDays = Set(changed.map { BaselineModel.day(ofHour: $0) })
        changedDays.insert(BaselineModel.day(ofHour: before))
        for day in changedDays { invalidate(day: day) }
        heads = [:]
        tail = nil
        guard !restarted.isEmpty else { return }
        let beforeDay = BaselineModel.day(ofHour: before)  // dropped above
        for (day, fold) in days where day < beforeDay && s < fold.count {
            var f = fold
            for m in restarted { f[s][m] = DailyBucket() }
            days[day] = f
        }
        for m in restarted where s < middles.count { middles[s][m] = nil }
    }

    /// Drops a day's fold and every middle that holds it.
    mutating func invalidate(day: Int64) {
        days[day] = nil
        heads[day] = nil
        guard day <= middleLast else { return }
        for s in middles.indices {
            for m in middles[s].indices where middles[s][m]?.days.contains(day) == true { middles[s][m] = nil }
        }
    }

    /// Forgets days before `day` (out of the window).
    mutating func drop(before day: Int64) {
        for d in days.keys where d < day { days[d] = nil }
        for d in heads.keys where d < day { heads[d] = nil }
    }
}

extension BaselineModel {
    /// The cell's bucket for an hour, if it has samples.
    @inline(__always)
    public func bucket(hour: Int64, segment s: Int, metric m: Int) -> DailyBucket? {
        guard let row = hours[hour], s < row.count, row[s][m].stats.count > 0 else { return nil }
        return row[s][m].unpacked
    }

    @inline(__always)
    func count(hour: Int64, segment s: Int, metric m: Int) -> Int64 {
        guard let row = hours[hour], s < row.count else { return 0 }
        return row[s][m].stats.count
    }

    /// The left fold of a whole day's hours, every cell (kept until one of its hours changes).
    mutating func dayFold(_ day: Int64) -> [[DailyBucket]] {
        if let f = folds.days[day] { return f }
        var f = Array(repeating: emptyBuckets, count: segments.count)
        for hour in day * 24..<(day * 24 + 24) {
            guard let row = hours[hour] else { continue }
            for s in row.indices where s < f.count {
                for m in row[s].indices where row[s][m].stats.count > 0 { f[s][m].merge(row[s][m]) }
            }
        }
        folds.days[day] = f
        return f
    }

    /// The right folds of a day's hours, every cell: `[s][m][i]` is the fold from hour `i` of the
    /// day to its last.
    mutating func headTable(_ day: Int64) -> [[[DailyBucket]]] {
        if let t = folds.heads[day] { return t }
        var table = Array(repeating: Array(repeating: [DailyBucket](), count: metrics.count), count: segments.count)
        for s in segments.indices {
            for m in metrics.indices {
                var suffix = Array(repeating: DailyBucket(), count: 24)
                var acc = DailyBucket()
                for i in stride(from: 23, through: 0, by: -1) {
                    if var b = bucket(hour: day * 24 + Int64(i), segment: s, metric: m) {
                        b.merge(acc)
                        acc = b
                    }
                    suffix[i] = acc
                }
                table[s][m] = suffix
            }
        }
        folds.heads[day] = table
        return table
    }

    /// Makes the kept tail the left fold of `day`'s hours from its first through `through` (none
    /// when `through` is before the day): extended hour by hour as the clock moves on.
    mutating func prepareTail(day: Int64, through: Int64) {
        var tail: WindowFolds.Tail
        if let t = folds.tail, t.day == day, t.through <= through {
            tail = t
        } else {
            tail = .init(day: day, through: day * 24 - 1, fold: [])
        }
        folds.tail = nil
        while tail.fold.count < segments.count { tail.fold.append(emptyBuckets) }
        if tail.through < through {
            for hour in (tail.through + 1)...through {
                guard let row = hours[hour] else { continue }
                for s in row.indices {
                    for m in row[s].indices where row[s][m].stats.count > 0 { tail.fold[s][m].merge(row[s][m]) }
                }
            }
            tail.through = through
        }
        folds.tail = tail
    }

    /// The cell's fold of the hours `a...e` in the tree of ``WindowFolds`` (``prepareTail(day:through:)``
    /// must have run for `e`'s day through `e - 1`).
    mutating func fold(segment s: Int, metric m: Int, from a: Int64, to e: Int64) -> DailyBucket {
        let firstDay = BaselineModel.day(ofHour: a), lastDay = BaselineModel.day(ofHour: e)
        var result = DailyBucket()
        guard firstDay < lastDay else {
            for hour in a...e { if let b = bucket(hour: hour, segment: s, metric: m) { result.merge(b) } }
            return result
        }
        var middleStart = firstDay
        if a != firstDay * 24 {
            // A segment newer than a kept table has no samples in its day (they would have dropped it).
            let table = headTable(firstDay)
            if s < table.count { result = table[s][m][Int(a - firstDay * 24)] }
            middleStart = firstDay + 1
        }
        if middleStart < lastDay { result.merge(middle(segment: s, metric: m, days: middleStart..<lastDay)) }
        var tail = s < (folds.tail?.fold.count ?? 0) ? folds.tail!.fold[s][m] : DailyBucket()
        if let b = bucket(hour: e, segment: s, metric: m) { tail.merge(b) }
        result.merge(tail)
        return result
    }

    /// The cell's left fold of whole days' folds.
    mutating func middle(segment s: Int, metric m: Int, days: Range<Int64>) -> DailyBucket {
        while folds.middles.count < segments.count { folds.middles.append(Array(repeating: nil, count: metrics.count)) }
        if let c = folds.middles[s][m], c.days == days { return c.fold }
        var result = DailyBucket()
        for day in days {
            let f = dayFold(day)
            if s < f.count, f[s][m].stats.count > 0 { result.merge(f[s][m]) }
        }
        folds.middles[s][m] = .init(days: days, fold: result)
        folds.middleLast = Swift.max(folds.middleLast, days.upperBound - 1)
        return result
    }

    /// With `window_samples`, the cell's first hour: the latest hour of the window from which the
    /// hours through its end hold at least `samples` samples (the window's first when they never do).
    mutating func samplesStart(segment s: Int, metric m: Int, window: ClosedRange<Int64>, samples: Int64) -> Int64 {
        let lastDay = BaselineModel.day(ofHour: window.upperBound)
        var total: Int64 = 0
        var hour = window.upperBound
        while hour >= window.lowerBound {
            let day = BaselineModel.day(ofHour: hour)
            if hour == day * 24 + 23, day < lastDay, day * 24 >= window.lowerBound {
                // A whole day: skip it at once while it does not reach the count.
                let f = dayFold(day)
                let n = s < f.count ? f[s][m].stats.count : 0
                if total + n < samples {
                    total += n
                    hour -= 24
                    continue
                }
            }
            total += count(hour: hour, segment: s, metric: m)
            if total >= samples { return hour }
            hour -= 1
        }
        return window.lowerBound
    }

    /// Hours from the cell's first hour with samples in the window to its last, both included;
    /// nil without samples. Whole days known empty (a kept day fold) are skipped at once.
    func span(segment s: Int, metric m: Int, window: ClosedRange<Int64>) -> Int? {
        func emptyDay(_ hour: Int64) -> Bool {
            let day = BaselineModel.day(ofHour: hour)
            guard let f = folds.days[day] else { return false }
            return s >= f.count || f[s][m].stats.count == 0
        }
        var first = window.lowerBound
        while first <= window.upperBound {
            if first % 24 == 0, first + 23 <= window.upperBound, emptyDay(first) { first += 24; continue }
            if count(hour: first, segment: s, metric: m) > 0 { break }
            first += 1
        }
        guard first <= window.upperBound else { return nil }
        var last = window.upperBound
        while last > first {
            if (last + 1) % 24 == 0, last - 23 >= first, emptyDay(last) { last -= 24; continue }
            if count(hour: last, segment: s, metric: m) > 0 { break }
            last -= 1
        }
        return Int(last - first + 1)
    }
}
