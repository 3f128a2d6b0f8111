@testable import Baseline
import Foundation
import IWDetectCore
import Testing

extension SplitMix64 {
    /// A standard normal variate (Box-Muller).
    mutating func normal() -> Double { (-2 * log(unit())).squareRoot() * cos(2 * .pi * unit()) }
}

@Suite struct BaselineStatisticsTests {
    static func datasets() -> [(String, [Double])] {
        var r = SplitMix64(seed: 99)
        let lognormal = (0..<20_000).map { _ in exp(5 + 1.2 * r.normal()) }
        let heavy = (0..<20_000).map { _ in 10 / pow(r.unit(), 1 / 1.5) }  // Pareto, alpha 1.5
        let constant = Array(repeating: 42.0, count: 5_000)
        let mixed = (0..<20_000).map { i in i % 10 == 0 ? 0 : (r.normal() * 300).rounded() }  // negatives and zeros
        return [("lognormal", lognormal), ("pareto", heavy), ("constant", constant), ("signed", mixed)]
    }

    @Test(arguments: datasets())
    func meanAndStdMatchATwoPassComputation(name: String, values: [Double]) {
        var s = RunningStats()
        values.forEach { s.add($0) }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        #expect(abs(s.mean - mean) <= 1e-9 * max(abs(mean), 1e-300) || s.mean == mean, "\(name) mean")
        #expect(abs(s.std - variance.squareRoot()) <= 1e-9 * max(variance.squareRoot(), 1e-300) || s.std == variance.squareRoot(), "\(name) std")
        #expect(s.min == values.min() && s.max == values.max())
    }

    @Test(arguments: datasets())
    func quantilesAreWithinTheSketchBound(name: String, values: [Double]) {
        var sketch = DDSketch()
        values.forEach { sketch.add($0) }
        let sorted = values.sorted()
        for q in [0.5, 0.95, 0.99] {
            let exact = sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
            let got = min(max(sketch.quantile(q)!, sorted.first!), sorted.last!)
            #expect(abs(got - exact) <= sketch.relativeErrorBound * abs(exact) + 1e-12, "\(name) q\(q): \(got) vs \(exact)")
        }
        #expect(sketch.relativeErrorBound < 0.01)
    }

    /// The median, every kept quantile, the MAD and the mean absolute deviation against a sort.
    @Test(arguments: datasets())
    func robustStatisticsAreWithinTheSketchBound(name: String, values: [Double]) throws {
        var sketch = DDSketch()
        values.forEach { sketch.add($0) }
        let sorted = values.sorted()
        func lower(_ xs: [Double], _ q: Double) -> Double { xs[Int((q * Double(xs.count - 1)).rounded(.down))] }
        let qs = [0.01, 0.05, 0.10, 0.25, 0.75, 0.90, 0.999]
        let got = try #require(sketch.summary(quantiles: qs))
        let bound = sketch.relativeErrorBound
        for (q, x) in zip(qs, got.quantiles) {
            let exact = lower(sorted, q)
            let clamped = min(max(x, sorted.first!), sorted.last!)
            #expect(abs(clamped - exact) <= bound * abs(exact) + 1e-12, "\(name) q\(q): \(clamped) vs \(exact)")
        }
        let median = lower(sorted, 0.5)
        #expect(abs(got.median - median) <= bound * abs(median) + 1e-12, "\(name) median \(got.median) vs \(median)")
        let deviations = values.map { abs($0 - median) }.sorted()
        let mad = lower(deviations, 0.5)
        #expect(abs(got.mad - mad) <= bound * (2 * abs(median) + mad) + 1e-12, "\(name) MAD \(got.mad) vs \(mad)")
        let meanAD = deviations.reduce(0, +) / Double(deviations.count)
        #expect(abs(got.meanAbsoluteDeviation - meanAD) <= bound * (2 * abs(median) + meanAD) + 1e-9, "\(name) mean AD \(got.meanAbsoluteDeviation) vs \(meanAD)")
        #expect(DDSketch().summary(quantiles: qs) == nil)
    }

    /// A count that is mostly zero has a MAD of 0: the robust scale falls back to the mean
    /// absolute deviation, so a rare large count still reads as far out.
    @Test func aMostlyZeroCountHasAScaleFromTheMeanAbsoluteDeviation() throws {
        var sketch = DDSketch()
        for i in 0..<1000 { sketch.add(i % 10 == 0 ? 2 : 0) }
        let s = try #require(sketch.summary(quantiles: []))
        #expect(s.median == 0 && s.mad == 0)
        #expect(abs(s.meanAbsoluteDeviation - 0.2) < 0.01)
        let r = RobustStats(p01: 0, p05: 0, p10: 0, p25: 0, median: 0, p75: 0, p90: 2, p999: 2, mad: 0, meanAbsoluteDeviation: s.meanAbsoluteDeviation)
        #expect(abs(r.scale - 1.2533 * 0.2) < 0.02)
        let st = MetricStats(n: 1000, mean: 0.2, std: 0.6, p95: 2, p99: 2, min: 0, max: 2, snapshotID: 1, ready: true, robust: r)
        #expect((st.robustZ(6) ?? 0) > 20)
    }

    @Test func mergingInAnyGroupingGivesTheSameSnapshot() {
        var r = SplitMix64(seed: 5)
        let days = (0..<14).map { _ in (0..<(500 + Int(r.next() % 500))).map { _ in exp(3 + r.normal()) } }
        func bucket(_ xs: [Double]) -> DailyBucket { var b = DailyBucket(); xs.forEach { b.add($0) }; return b }
        let buckets = days.map(bucket)
        var forward = DailyBucket()
        buckets.forEach { forward.merge($0) }
        for trial in 0..<20 {
            var order = Array(buckets.indices)
            for i in order.indices.reversed() { order.swapAt(i, Int(r.next() % UInt64(i + 1))) }
            // Merge in random pairs first, then together: another grouping.
            var partial: [DailyBucket] = []
            for k in stride(from: 0, to: order.count, by: 3) {
                var b = DailyBucket()
                for i in order[k..<min(k + 3, order.count)] { b.merge(buckets[i]) }
                partial.append(b)
            }
            var merged = DailyBucket()
            partial.reversed().forEach { merged.merge($0) }
            #expect(merged.sketch == forward.sketch, "trial \(trial): sketch merge is exact")
            #expect(merged.stats.count == forward.stats.count)
            #expect(abs(merged.stats.mean - forward.stats.mean) <= 1e-12 * forward.stats.mean)
            #expect(abs(merged.stats.std - forward.stats.std) <= 1e-9 * forward.stats.std)
            #expect(merged.sketch.quantile(0.99) == forward.sketch.quantile(0.99))
        }
    }

    @Test func sketchSerializationRoundTrips() {
        var s = DDSketch()
        for x in [-5.0, 0, 0, 1e-12, 3, 3.5, 1e6] { s.add(x) }
        let back = DDSketch(serialized: s.serialized())
        #expect(back == s)
        #expect(DDSketch(serialized: [1, 2, 3]) == nil)
    }

    /// The packed form: the same sketch back, merged without unpacking into the same bins as the
    /// dense merge, an order of magnitude smaller for an hour's samples, and the dense form of
    /// earlier versions still read.
    @Test func thePackedFormRoundTripsAndMergesAsTheDenseOne() {
        var rng = SplitMix64(seed: 9)
        var hour = DDSketch(), day = DDSketch()
        for _ in 0..<400 { hour.add(80 * exp(5 * rng.unit())) }
        for x in [-7.5, -0.3, 0, 2e-10] { hour.add(x) }
        for _ in 0..<5_000 { day.add(20 * exp(3 * rng.unit())) }
        let packed = hour.packed()
        #expect(DDSketch(packed: packed) == hour)
        #expect(DDSketch(serialized: packed) == hour)
        var dense = day, fromPacked = day
        dense.merge(hour)
        let merged = fromPacked.merge(packed: packed)
        #expect(merged)
        #expect(fromPacked == dense)
        var empty = DDSketch()
        let intoEmpty = empty.merge(packed: packed)
        #expect(intoEmpty && empty == hour)
        #expect(packed.count * 5 < DDSketch.denseSize(hour), "\(packed.count) bytes against \(DDSketch.denseSize(hour)) dense")
        // The dense form of earlier versions.
        #expect(DDSketch(serialized: DDSketch.dense(hour)) == hour)
        // Malformed or foreign: refused, and a merge changes nothing.
        var untouched = day
        for bad in [Array(packed.dropLast()), packed + [0], Array(packed.prefix(12)), DDSketch(alpha: 0.01).packed()] {
            let took = untouched.merge(packed: bad)
            #expect(!took)
        }
        #expect(untouched == day)
        #expect(DDSketch(packed: Array(packed.dropLast(3))) == nil)
    }

    /// Bytes no sketch wrote (a corrupt database row) are refused without trapping: a bin distance
    /// that would overflow the key walk, counts whose sum would overflow, a dense row with a
    /// negative count, an impossible alpha or a key range no magnitude has.
    @Test func hostileBytesAreRefusedNotTrappedOn() {
        func packed(zero: UInt64 = 0, bins: [(UInt64, UInt64)], span: UInt64) -> [UInt8] {
            var out = DDSketch.packedTag
            withUnsafeBytes(of: DDSketch.defaultAlpha.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            Varint.append(zero, to: &out)
            Varint.append(UInt64(bins.count), to: &out)
            Varint.append(Varint.zigzag(100), to: &out)
            Varint.append(span, to: &out)
            for (d, c) in bins { Varint.append(d, to: &out); Varint.append(c, to: &out) }
            Varint.append(0, to: &out)
            return out
        }
        #expect(DDSketch(packed: packed(bins: [(0, 1), (1, 1), (5, 1)], span: 6)) != nil, "the well-formed control")
        #expect(DDSketch(packed: packed(bins: [(0, 1), (1, 1), (UInt64.max, 1)], span: 6)) == nil)
        let big = UInt64(Int64.max >> 8)
        #expect(DDSketch(packed: packed(bins: (0..<300).map { ($0 == 0 ? 0 : 1, big) }, span: 299)) == nil)
        #expect(DDSketch(packed: packed(zero: UInt64(Int64.max), bins: [(0, 1)], span: 0)) == nil)
        var into = DDSketch()
        into.add(3)
        let before = into
        let took = into.merge(packed: packed(bins: (0..<300).map { ($0 == 0 ? 0 : 1, big) }, span: 299))
        #expect(!took && into == before)

        var s = DDSketch()
        for x in [1.0, 2, 3] { s.add(x) }
        var negative = s
        negative.positive.counts[0] = -1
        #expect(DDSketch(serialized: DDSketch.dense(negative)) == nil)
        for alpha in [Double.nan, 2, 0, -0.5] {
            var bytes = DDSketch.dense(s)
            withUnsafeBytes(of: alpha.bitPattern.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            #expect(DDSketch(serialized: bytes) == nil, "alpha \(alpha)")
        }
        var far = s
        far.positive.offset = 1 << 40
        #expect(DDSketch(serialized: DDSketch.dense(far)) == nil)
    }

    /// A bucket read back must be one the baseline can merge: its alpha, and as many samples in
    /// the sketch as in the statistics.
    @Test func aBucketReadBackMustBelongToTheBaseline() {
        var b = DailyBucket()
        for x in [1.0, 2, 3] { b.add(x) }
        #expect(PackedBucket(stats: b.stats, packedSketch: b.sketch.packed()) != nil)
        var other = DDSketch(alpha: 0.01)
        for x in [1.0, 2, 3] { other.add(x) }
        #expect(PackedBucket(stats: b.stats, packedSketch: other.packed()) == nil, "another alpha")
        var fewer = DDSketch()
        fewer.add(1)
        #expect(PackedBucket(stats: b.stats, packedSketch: fewer.packed()) == nil, "another count")
        var negative = b.stats
        negative.count = -3
        #expect(PackedBucket(stats: negative, packedSketch: []) == nil)
    }
}

extension DDSketch {
    /// The dense form earlier versions wrote: alpha, the zero count, then per store its offset,
    /// length and every bin, as little-endian Int64s.
    static func dense(_ s: DDSketch) -> [UInt8] {
        var out: [UInt8] = []
        func put(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Int64(bitPattern: s.alpha.bitPattern))
        put(s.zeroCount)
        for bins in [s.positive, s.negative] {
            put(Int64(bins.offset))
            put(Int64(bins.counts.count))
            for c in bins.counts { put(c) }
        }
        return out
    }

    static func denseSize(_ s: DDSketch) -> Int { dense(s).count }
}
