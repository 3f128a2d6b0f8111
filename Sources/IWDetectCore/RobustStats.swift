/// The order statistics of a baseline besides p95 and p99, and the robust scale (issue: robust
/// statistics and the lower tail).
public struct RobustStats: Sendable, Hashable {
    public var p01: Double
    public var p05: Double
    public var p10: Double
    public var p25: Double
    public var median: Double
    public var p75: Double
    public var p90: Double
    public var p999: Double
    /// The median absolute deviation from the median.
    public var mad: Double
    /// The mean absolute deviation from the median: the scale's fallback where the MAD is 0.
    public var meanAbsoluteDeviation: Double

    public init(p01: Double, p05: Double, p10: Double, p25: Double, median: Double, p75: Double, p90: Double, p999: Double,
                mad: Double, meanAbsoluteDeviation: Double) {
        self.p01 = p01; self.p05 = p05; self.p10 = p10; self.p25 = p25; self.median = median
        self.p75 = p75; self.p90 = p90; self.p999 = p999; self.mad = mad; self.meanAbsoluteDeviation = meanAbsoluteDeviation
    }

    /// What a baseline known only by mean, std, min and max (a seed file or a snapshot stored by an
    /// earlier version) stands for: a normal distribution's quantiles clamped to the range, the
    /// median at the mean and a MAD of `std / 1.4826`, so `rz` reads as `z`.
    public static func normal(mean: Double, std: Double, min: Double, max: Double) -> RobustStats {
        func q(_ z: Double) -> Double { Swift.min(Swift.max(mean + z * std, min), max) }
        return RobustStats(p01: q(-2.326348), p05: q(-1.644854), p10: q(-1.281552), p25: q(-0.674490), median: q(0),
                           p75: q(0.674490), p90: q(1.281552), p999: q(3.090232), mad: std / 1.4826,
                           meanAbsoluteDeviation: std * 0.797885)
    }

    /// The scale of the robust z: `1.4826 * MAD` (the standard deviation, for normal data), or
    /// `1.2533 * mean absolute deviation` where more than half the values equal the median (a
    /// count that is mostly 0); 0 when every value is the same.
    public var scale: Double {
        if mad > 0 { return 1.4826 * mad }
        return 1.2533 * meanAbsoluteDeviation
    }
}
