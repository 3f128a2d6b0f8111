/// Count, mean, M2 (sum of squared deviations), min and max of a stream of numbers.
///
/// Values are added with Welford's update and summaries are merged with Chan et al.'s parallel
/// formula, so hourly buckets can be combined in any grouping with the same result up to rounding.
public struct RunningStats: Sendable, Hashable {
    public var count: Int64 = 0
    public var mean: Double = 0
    public var m2: Double = 0
    public var min: Double = .infinity
    public var max: Double = -.infinity

    public init() {}

    public init(count: Int64, mean: Double, m2: Double, min: Double, max: Double) {
        self.count = count; self.mean = mean; self.m2 = m2; self.min = min; self.max = max
    }

    @inlinable public mutating func add(_ x: Double) {
        count += 1
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
        if x < min { min = x }
        if x > max { max = x }
    }

    /// Folds `other` into `self` (Chan's parallel algorithm).
    public mutating func merge(_ other: RunningStats) {
        guard other.count > 0 else { return }
        guard count > 0 else { self = other; return }
        let n = Double(count + other.count)
        let delta = other.mean - mean
        mean += delta * Double(other.count) / n
        m2 += other.m2 + delta * delta * Double(count) * Double(other.count) / n
        count += other.count
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }

    /// Population variance (as numpy's default `np.std`), 0 for fewer than two values.
    public var variance: Double { count > 1 ? Swift.max(m2 / Double(count), 0) : 0 }
    public var std: Double { variance.squareRoot() }
}
