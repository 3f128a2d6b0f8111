/// The mergeable statistics of one metric over a span of event time (an hour; a day for seasons).
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

    /// Whether a sketch read back belongs with `stats` in a bucket of the baseline: the
    /// baseline's alpha and the same count.
    public static func fits(_ stats: RunningStats, _ sketch: DDSketch) -> Bool {
        stats.count >= 0 && stats.count <= DDSketch.maxStoredCount && sketch.alpha == DDSketch.defaultAlpha && sketch.count == stats.count
    }

    public mutating func merge(_ other: DailyBucket) {
        stats.merge(other.stats)
        sketch.merge(other.sketch)
    }
}

/// A bucket at rest (a closed hour): its running statistics and its sketch packed
/// (``DDSketch/packed()``), a tenth of the dense sketch's size for an hour's samples. Merged into
/// a dense bucket without being unpacked.
public struct PackedBucket: Sendable, Hashable {
    public var stats = RunningStats()
    public var sketch: [UInt8] = []

    public init() {}

    public init(_ bucket: DailyBucket) {
        stats = bucket.stats
        sketch = bucket.stats.count > 0 ? bucket.sketch.packed() : []
    }

    /// Nil for a malformed sketch, or one that does not belong to `stats` (another alpha than
    /// the baseline's, another count).
    public init?(stats: RunningStats, packedSketch: [UInt8]) {
        guard stats.count >= 0, stats.count <= DDSketch.maxStoredCount else { return nil }
        if stats.count > 0 {
            guard let sketch = DDSketch(packed: packedSketch), DailyBucket.fits(stats, sketch) else { return nil }
        }
        self.stats = stats
        sketch = stats.count > 0 ? packedSketch : []
    }

    public var unpacked: DailyBucket {
        guard stats.count > 0 else { return DailyBucket() }
        return DailyBucket(stats: stats, sketch: DDSketch(packed: sketch)!)
    }
}

extension DailyBucket {
    public mutating func merge(_ other: PackedBucket) {
        guard other.stats.count > 0 else { return }
        stats.merge(other.stats)
        sketch.merge(packed: other.sketch)
    }
}
