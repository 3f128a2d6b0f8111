import Baseline
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
}
