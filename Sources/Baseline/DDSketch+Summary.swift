extension DDSketch {
    /// The values the sketch reports, ascending, with their counts: each non-empty bin's
    /// representative (the value ``quantile(_:)`` returns for it) and the zero count.
    func distribution() -> [(value: Double, count: Int64)] {
        var out: [(value: Double, count: Int64)] = []
        out.reserveCapacity(negative.counts.count + positive.counts.count + 1)
        for i in stride(from: negative.counts.count - 1, through: 0, by: -1) where negative.counts[i] > 0 {
            out.append((-value(negative.offset + i - 1), negative.counts[i]))
        }
        if zeroCount > 0 { out.append((0, zeroCount)) }
        for i in 0..<positive.counts.count where positive.counts[i] > 0 {
            out.append((value(positive.offset + i), positive.counts[i]))
        }
        return out
    }

    /// Quantiles, the median absolute deviation and the mean absolute deviation from the median,
    /// in one pass over the bins; nil when empty.
    ///
    /// Quantiles use the lower rank `floor(q * (n - 1))`, as ``quantile(_:)``. The MAD is the
    /// lower median of `|x - median|` over the bins' representatives: each value is off by at most
    /// ``relativeErrorBound`` times its magnitude, so the MAD is within
    /// `relativeErrorBound * (2 * |median| + MAD)` of the exact one.
    public func summary(quantiles qs: [Double]) -> (quantiles: [Double], median: Double, mad: Double, meanAbsoluteDeviation: Double)? {
        let n = count
        guard n > 0 else { return nil }
        let bins = distribution()
        func index(ofRank rank: Int64) -> Int {
            var seen: Int64 = 0
            for (i, b) in bins.enumerated() {
                seen += b.count
                if seen > rank { return i }
            }
            return bins.count - 1
        }
        func rank(_ q: Double) -> Int64 { Int64((Swift.min(Swift.max(q, 0), 1) * Double(n - 1)).rounded(.down)) }
        let values = qs.map { bins[index(ofRank: rank($0))].value }
        let mi = index(ofRank: rank(0.5))
        let median = bins[mi].value
        // Deviations grow going out from the median's bin both ways: merge the two sides.
        let target = rank(0.5)
        var lo = mi, hi = mi + 1
        var seen: Int64 = 0
        var mad = 0.0
        while lo >= 0 || hi < bins.count {
            let dl = lo >= 0 ? median - bins[lo].value : .infinity
            let dh = hi < bins.count ? bins[hi].value - median : .infinity
            // Which side is still there decides first: with bins at the edge of the Double range
            // both distances can be infinite.
            if hi >= bins.count || (lo >= 0 && dl <= dh) { seen += bins[lo].count; mad = dl; lo -= 1 } else { seen += bins[hi].count; mad = dh; hi += 1 }
            if seen > target { break }
        }
        var sum = 0.0
        for b in bins { sum += Double(b.count) * Swift.abs(b.value - median) }
        return (values, median, mad, sum / Double(n))
    }
}
