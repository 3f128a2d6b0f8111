import IWDetectCore

/// The events one window function holds for one key: times in order, running sums, and the ids of
/// the most recent events.
///
/// Entries are sorted by event time; a late event is inserted in place. `cumulative[i]` is the sum
/// of `value - anchor` over entries `0...i` since the series began, where `anchor` is the first
/// value ever inserted: sums of offsets keep constant or near-constant data exact (a mean of
/// 0.1s is 0.1, not 0.10000000000000002, so `> baseline.mean` does not fire on rounding). They are
/// never rebased, so results do not depend on when old entries were dropped.
///
/// Memory: 16 bytes per counted event in the window (24 for `max`, which keeps each value, and
/// one string per event for `count_distinct`, which keeps each label), plus the ids of the
/// ``WindowSeries/recentCapacity`` latest events (an alert carries no more than that). `max` and
/// `count_distinct` scan the events in the window; the others are O(log n).
struct WindowSeries: Sendable {
    var times: [Int64] = []
    var cumulative: [Double] = []
    /// Raw values, aligned with `times`, only for windows that need them (`max`).
    var values: [Double] = []
    /// Labels, aligned with `times`, only for `count_distinct`.
    var labels: [String] = []
    /// The latest events by time: (time, id), oldest first.
    var recent: [(time: Int64, id: String)] = []
    var anchor: Double?
    /// The running sum just before index 0: what compaction dropped. Without it a window that
    /// starts at index 0 would subtract nothing.
    var base = 0.0
    /// Index of the first live entry; entries before it are dropped lazily.
    var start = 0
    /// Whether the series changed since it was last saved (not persisted, not compared).
    var unsaved = false

    /// Event ids kept per series: the most an alert reports.
    static let recentCapacity = 20
    /// Marks the persisted layout ("WS" 2); a blob without it is refused as corrupt.
    static let formatTag: UInt64 = 0x5753_0002

    var isEmpty: Bool { start >= times.count }

    mutating func insert(time: Int64, value raw: Double, id: String, keepValue: Bool = false, label: String? = nil) {
        if anchor == nil { anchor = raw }
        let value = raw - anchor!
        var i = times.count
        while i > start, times[i - 1] > time { i -= 1 }
        if i == times.count {
            times.append(time)
            cumulative.append((cumulative.last ?? base) + value)
            if keepValue { values.append(raw) }
            if let label { labels.append(label) }
        } else {
            times.insert(time, at: i)
            let before = i > 0 ? cumulative[i - 1] : base
            cumulative.insert(before + value, at: i)
            for j in (i + 1)..<cumulative.count { cumulative[j] += value }
            if keepValue { values.insert(raw, at: i) }
            if let label { labels.insert(label, at: i) }
        }
        if recent.count < WindowSeries.recentCapacity || time >= recent[0].time {
            var k = recent.count
            while k > 0, recent[k - 1].time > time { k -= 1 }
            recent.insert((time, id), at: k)
            if recent.count > WindowSeries.recentCapacity { recent.removeFirst() }
        }
    }

    /// First index ≥ start whose time is > t.
    func upperBound(_ t: Int64) -> Int {
        var lo = start, hi = times.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// What the window functions read of the entries in a window.
    struct Summary: Equatable {
        var count = 0
        var sum = 0.0
        /// `anchor + offsets / count`: exact for constant data (unlike `sum / count`).
        var mean = 0.0
        var max = -Double.infinity
        var distinct = 0
    }

    /// Entries with time in (t - window, t].
    func range(at t: Int64, window: Int64) -> Summary {
        let upper = upperBound(t)
        let lower = upperBound(t - window)
        guard upper > lower else { return Summary() }
        let n = upper - lower
        let offsets = cumulative[upper - 1] - (lower > 0 ? cumulative[lower - 1] : base)
        let a = anchor ?? 0
        var s = Summary(count: n, sum: a * Double(n) + offsets, mean: a + offsets / Double(n))
        if values.count == times.count { s.max = values[lower..<upper].max() ?? -.infinity }
        if labels.count == times.count { s.distinct = Set(labels[lower..<upper]).count }
        return s
    }

    /// The kept values (``insert(time:value:id:keepValue:label:)`` with `keepValue`) with time in
    /// (t - window, t], with their times, oldest first.
    func kept(at t: Int64, window: Int64) -> (times: ArraySlice<Int64>, values: ArraySlice<Double>) {
        let upper = upperBound(t), lower = upperBound(t - window)
        guard upper > lower, values.count == times.count else { return ([], []) }
        return (times[lower..<upper], values[lower..<upper])
    }

    /// The ids of the recent events with time in (t - window, t], oldest first.
    func ids(at t: Int64, window: Int64) -> [String] {
        recent.filter { $0.time > t - window && $0.time <= t }.map(\.id)
    }

    /// Drops entries at or before `horizon`; compacts storage when half of it is dead.
    mutating func evict(before horizon: Int64) {
        while start < times.count, times[start] <= horizon { start += 1 }
        if start > 32 && start * 2 > times.count {
            base = cumulative[start - 1]
            times.removeFirst(start)
            cumulative.removeFirst(start)
            if !values.isEmpty { values.removeFirst(start) }
            if !labels.isEmpty { labels.removeFirst(start) }
            start = 0
        }
        if let first = recent.first, first.time <= horizon { recent.removeAll { $0.time <= horizon } }
    }

    // MARK: - Persistence

    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        let live = times.count - start
        out.reserveCapacity(24 + live * 16 + recent.count * 32)
        func put(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(WindowSeries.formatTag)
        put((anchor ?? 0).bitPattern)
        put(sumBeforeStart.bitPattern)
        put(UInt64(live))
        let hasValues = values.count == times.count && live > 0, hasLabels = labels.count == times.count && live > 0
        put((hasValues ? 1 : 0) | (hasLabels ? 2 : 0))
        for i in start..<times.count {
            put(UInt64(bitPattern: times[i]))
            put(cumulative[i].bitPattern)
            if hasValues { put(values[i].bitPattern) }
            if hasLabels {
                let bytes = Array(labels[i].utf8)
                put(UInt64(bytes.count))
                out.append(contentsOf: bytes)
            }
        }
        put(UInt64(recent.count))
        for (t, id) in recent {
            let bytes = Array(id.utf8)
            put(UInt64(bitPattern: t))
            put(UInt64(bytes.count))
            out.append(contentsOf: bytes)
        }
        return out
    }

    init() {}

    init?(serialized bytes: [UInt8]) {
        var pos = 0
        func get() -> UInt64? {
            guard pos + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes[pos..<pos + 8]) }
            pos += 8
            return UInt64(littleEndian: v)
        }
        guard get() == WindowSeries.formatTag, let a = get(), let b = get(), let n = get(), n < 100_000_000, let flags = get() else { return nil }
        anchor = n > 0 ? Double(bitPattern: a) : nil
        base = Double(bitPattern: b)
        times.reserveCapacity(Int(n))
        cumulative.reserveCapacity(Int(n))
        for _ in 0..<n {
            guard let t = get(), let c = get() else { return nil }
            times.append(Int64(bitPattern: t))
            cumulative.append(Double(bitPattern: c))
            if flags & 1 != 0 {
                guard let v = get() else { return nil }
                values.append(Double(bitPattern: v))
            }
            if flags & 2 != 0 {
                guard let len = get(), pos + Int(len) <= bytes.count else { return nil }
                labels.append(String(decoding: bytes[pos..<pos + Int(len)], as: UTF8.self))
                pos += Int(len)
            }
        }
        guard let r = get(), r <= 1000 else { return nil }
        for _ in 0..<r {
            guard let t = get(), let len = get(), pos + Int(len) <= bytes.count else { return nil }
            recent.append((Int64(bitPattern: t), String(decoding: bytes[pos..<pos + Int(len)], as: UTF8.self)))
            pos += Int(len)
        }
        guard pos == bytes.count else { return nil }
    }
}

extension WindowSeries: Equatable {
    /// The running sum before the first live entry: what a window starting there subtracts.
    var sumBeforeStart: Double { start > 0 ? cumulative[start - 1] : base }

    /// The same live entries, sums (from the same starting sum), raw values, labels and recent ids.
    static func == (a: WindowSeries, b: WindowSeries) -> Bool {
        a.sumBeforeStart == b.sumBeforeStart
            && a.times[a.start...] == b.times[b.start...] && a.cumulative[a.start...] == b.cumulative[b.start...]
            && a.values.suffix(a.values.count - min(a.start, a.values.count)) == b.values.suffix(b.values.count - min(b.start, b.values.count))
            && a.labels.suffix(a.labels.count - min(a.start, a.labels.count)) == b.labels.suffix(b.labels.count - min(b.start, b.labels.count))
            && a.anchor == b.anchor && a.recent.map(\.time) == b.recent.map(\.time) && a.recent.map(\.id) == b.recent.map(\.id)
    }
}

extension WindowSeries {
    /// `rolling_std`, `ewma` or `cusum` over the kept values of a window (oldest first), at time `t`.
    ///
    /// - `rolling_std`: the population standard deviation (two passes), missing below 2 values.
    /// - `ewma`: `sum(w_i * x_i) / sum(w_i)` with `w_i = 2^(-(t - t_i) / halflife)`.
    /// - `cusum`: `max(0, max_j sum_{i >= j} (z_i - k))`, the CUSUM recursion
    ///   `S = max(0, S + z - k)` run from the window's first event (z negated for `cusum_down`).
    static func statistic(_ kind: WindowSpec.Kind, _ kept: (times: ArraySlice<Int64>, values: ArraySlice<Double>), at t: Int64) -> FieldValue {
        let xs = kept.values
        switch kind {
        case .rollingStd:
            guard xs.count >= 2 else { return .missing }
            let mean = xs.reduce(0, +) / Double(xs.count)
            let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
            return .number(variance.squareRoot())
        case .ewma(_, _, let halflife):
            guard !xs.isEmpty else { return .missing }
            var num = 0.0, den = 0.0
            for (time, x) in zip(kept.times, xs) {
                let w = pow2(-Double(t - time) / Double(halflife))
                num += w * x
                den += w
            }
            return den > 0 ? .number(num / den) : .missing
        case .cusum(_, _, _, let k, _):
            guard !xs.isEmpty else { return .missing }
            var s = 0.0
            for z in xs { s = Swift.max(0, s + z - k) }
            return .number(s)
        case .count, .rollingMean, .sum, .max, .countDistinct:
            return .missing
        }
    }

    @inline(__always) static func pow2(_ x: Double) -> Double { _exp2(x) }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _exp2(_ x: Double) -> Double { Glibc.exp2(x) }
#else
import Darwin
@usableFromInline func _exp2(_ x: Double) -> Double { Darwin.exp2(x) }
#endif
