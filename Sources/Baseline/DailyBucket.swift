/// The mergeable statistics of one metric over one UTC day of event time.
public struct DailyBucket: Sendable, Hashable {
    public var stats = RunningStats()
    public var sketch = DDSketch()

    public init() {}

    public init(stats: RunningStats, sketch: DDSketch) {
        self.stats = stats
        self.sketch = sketch
    }

    @inline(__always)
    public mutating func add(_ x: Double) {
        stats.add(x)
        sketch.add(x)
    }

    public mutating func merge(_ other: DailyBucket) {
        stats.merge(other.stats)
        sketch.merge(other.sketch)
    }
}
