import Foundation
import IWDetectCore

/// Seasonal baselines: per metric, a baseline for each hour of the day or of the week (in a time
/// zone), pooled toward the metric's overall baseline while the hour has few samples.
///
/// A metric whose normal is a daily cycle has a global range that hides anomalies inside it: a
/// missing afternoon peak, a flat stretch where the cycle should be. Rules see the event's season
/// through the same `baseline.<stat>`, `z`, `rz` and helpers: for a seasonal metric, each location
/// statistic (mean, median) is `w * hour's + (1 - w) * overall` (a quantile q weighs only the
/// `n * 2 * min(q, 1 - q)` samples beyond it, so p999 pools far longer), and each scale (std,
/// MAD, mean absolute deviation) is `w * hour's + (1 - w) * sqrt(overall² + gap²)`, the gap being
/// the distance between the hour's location and the overall one, with `w = n_hour / (n_hour +
/// prior)`: an hour with few samples reads as the overall baseline, widened so that its own level
/// is not an anomaly, and one with many as itself.
public struct Seasonality: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case hourOfDay = "hour_of_day"
        case hourOfWeek = "hour_of_week"
    }

    public var mode: Mode
    /// An IANA time zone name (`UTC`, `Europe/Paris`): hours are local, across daylight saving.
    public let timeZone: String
    /// The metrics that get seasonal baselines; nil for every metric but counts (a count's
    /// per-hour quantiles are noise).
    public var metrics: [String]?
    /// The pooling strength, in samples: an hour with this many samples weighs half.
    public var prior: Double = 10
    /// UTC instants (microseconds) from which `offsets` (seconds east of UTC) apply, ascending.
    let transitions: [Int64]
    let offsets: [Int64]

    /// Nil when the time zone is unknown.
    public init?(mode: Mode, timeZone: String = "UTC", metrics: [String]? = nil, prior: Double = 10) {
        guard let tz = TimeZone(identifier: timeZone) else { return nil }
        self.mode = mode
        self.timeZone = timeZone
        self.metrics = metrics
        self.prior = prior
        var date = Date(timeIntervalSince1970: 0)
        var transitions: [Int64] = [.min], offsets: [Int64] = [Int64(tz.secondsFromGMT(for: date))]
        let end = Date(timeIntervalSince1970: 4_102_444_800)  // 2100-01-01
        while let next = tz.nextDaylightSavingTimeTransition(after: date), next < end {
            transitions.append(Int64((next.timeIntervalSince1970 * 1_000_000).rounded()))
            offsets.append(Int64(tz.secondsFromGMT(for: next)))
            date = next
        }
        self.transitions = transitions
        self.offsets = offsets
    }

    public var bins: Int { mode == .hourOfDay ? 24 : 168 }

    /// The event time's season: the local hour of the day (0–23), or of the week from Monday 00:00
    /// (0–167).
    @inline(__always)
    public func bin(_ t: EventTime) -> Int {
        var lo = 0, hi = transitions.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if transitions[mid] <= t.micros { lo = mid } else { hi = mid }
        }
        let local = Seasonality.floorDiv(t.micros, 1_000_000) + offsets[lo]
        let hour = Seasonality.floorDiv(local, 3600)
        let hourOfDay = Int(hour - Seasonality.floorDiv(hour, 24) * 24)
        guard mode == .hourOfWeek else { return hourOfDay }
        let day = Seasonality.floorDiv(local, 86_400)
        let weekday = Int((day + 3) - Seasonality.floorDiv(day + 3, 7) * 7)  // 1970-01-01 was a Thursday; Monday is 0
        return weekday * 24 + hourOfDay
    }

    @inline(__always)
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// A season's statistics pooled toward the overall ones (see ``Seasonality``); count,
    /// readiness, min and max are the overall baseline's.
    public func pooled(_ season: MetricStats?, _ overall: MetricStats?, bin: Int) -> MetricStats? {
        guard var st = overall else { return nil }
        st.season = bin
        guard let season else { return st }
        let n = Double(season.n)
        let w = n / (n + prior)
        func mix(_ a: Double, _ b: Double) -> Double { w * a + (1 - w) * b }
        // A tail quantile is known from the few samples beyond it: its weight counts those,
        // `n * 2 * min(q, 1 - q)` (all of them for the median, 0.2 % for p999).
        func mix(_ a: Double, _ b: Double, q: Double) -> Double {
            let tail = n * 2 * Swift.min(q, 1 - q)
            let wq = tail / (tail + prior)
            return wq * a + (1 - wq) * b
        }
        // A scale pools toward the overall one widened by how far the season's location is from
        // the overall location: while the season is little known, a value at its own level is
        // not far out; once it is well known, its own scale rules.
        func scale(_ a: Double, _ b: Double, gap: Double) -> Double { w * a + (1 - w) * (b * b + gap * gap).squareRoot() }
        let a = season.robust, b = st.robust
        let meanGap = season.mean - st.mean, medianGap = a.median - b.median
        st.mean = mix(season.mean, st.mean)
        st.std = scale(season.std, st.std, gap: meanGap)
        st.p95 = mix(season.p95, st.p95, q: 0.95)
        st.p99 = mix(season.p99, st.p99, q: 0.99)
        st.robust = RobustStats(p01: mix(a.p01, b.p01, q: 0.01), p05: mix(a.p05, b.p05, q: 0.05), p10: mix(a.p10, b.p10, q: 0.10),
                                p25: mix(a.p25, b.p25, q: 0.25), median: mix(a.median, b.median), p75: mix(a.p75, b.p75, q: 0.75),
                                p90: mix(a.p90, b.p90, q: 0.90), p999: mix(a.p999, b.p999, q: 0.999),
                                mad: scale(a.mad, b.mad, gap: medianGap / 1.4826),
                                meanAbsoluteDeviation: scale(a.meanAbsoluteDeviation, b.meanAbsoluteDeviation, gap: medianGap * 0.797885))
        st.seasonSamples = season.n
        return st
    }

    /// A stable fingerprint of what the stored seasonal buckets mean (mode, zone, metrics).
    func fingerprint(metrics: [String]) -> Int64 {
        var h = StableHash()
        h.combine(mode.rawValue)
        h.combine(timeZone)
        for m in metrics { h.combine(m) }
        return Int64(bitPattern: h.value)
    }
}
