/// A mergeable quantile sketch with a relative-error guarantee (DDSketch, Masson et al. 2019).
///
/// Values are mapped to logarithmic bins `ceil(log_gamma |x|)` with `gamma = (1+alpha)/(1-alpha)`;
/// a quantile is reported as the upper edge of its bin, `gamma^k`, so it is never below the true
/// order statistic (integer data such as a tool-call count of 2 reads back as 2 after clamping to
/// the exact max, not 1.99) and at most `gamma - 1` (about `2 * alpha`) above it. The default
/// alpha of 0.4 % therefore guarantees a relative error below 0.81 %, inside the 1 % target.
/// positive and negative values have their own dense bin arrays and values with magnitude below
/// ``DDSketch/minIndexable`` count as zero. Merging adds bin counts, so it is exact and
/// order-independent. Memory: one Int64 per bin between the smallest and largest magnitude, about
/// 1,200 bins for the 1e-9…1e12 range at alpha = 1 %.
public struct DDSketch: Sendable, Hashable {
    public let alpha: Double
    private let logGamma: Double
    var positive = Bins()
    var negative = Bins()
    public internal(set) var zeroCount: Int64 = 0

    /// Magnitudes below this are counted as zero.
    public static let minIndexable = 1e-9

    public init(alpha: Double = 0.004) {
        self.alpha = alpha
        let gamma = (1 + alpha) / (1 - alpha)
        self.logGamma = _log(gamma)
    }

    public var count: Int64 { positive.total + negative.total + zeroCount }

    @inline(__always)
    func key(_ magnitude: Double) -> Int { Int((_log(magnitude) / logGamma).rounded(.up)) }

    /// The upper edge of bin `k`: every value in the bin is in (gamma^(k-1), gamma^k].
    func value(_ k: Int) -> Double { _exp(Double(k) * logGamma) }

    /// The guaranteed bound on relative error of ``quantile(_:)``: gamma - 1.
    public var relativeErrorBound: Double { (1 + alpha) / (1 - alpha) - 1 }

    public mutating func add(_ x: Double) {
        if x >= DDSketch.minIndexable {
            positive.add(key(x), 1)
        } else if x <= -DDSketch.minIndexable {
            negative.add(key(-x), 1)
        } else {
            zeroCount += 1
        }
    }

    public mutating func merge(_ other: DDSketch) {
        precondition(alpha == other.alpha, "sketches with different alpha cannot be merged")
        positive.merge(other.positive)
        negative.merge(other.negative)
        zeroCount += other.zeroCount
    }

    /// The q-quantile (0…1) of the values added, or nil when empty. Uses the lower rank
    /// `floor(q * (n - 1))`, the order statistic a sort-based percentile starts from.
    public func quantile(_ q: Double) -> Double? {
        let n = count
        guard n > 0 else { return nil }
        let rank = Int64((q * Double(n - 1)).rounded(.down))
        var seen: Int64 = 0
        // Most negative first: the highest negative key.
        if negative.total > 0 {
            for i in stride(from: negative.counts.count - 1, through: 0, by: -1) where negative.counts[i] > 0 {
                seen += negative.counts[i]
                // For negatives the bin edge nearest zero is the upper one: -gamma^(k-1).
                if seen > rank { return -value(negative.offset + i - 1) }
            }
        }
        seen += zeroCount
        if seen > rank { return 0 }
        for i in 0..<positive.counts.count where positive.counts[i] > 0 {
            seen += positive.counts[i]
            if seen > rank { return value(positive.offset + i) }
        }
        return value(positive.offset + positive.counts.count - 1)
    }

    // MARK: - Serialization

    /// A compact, exact binary form for the database.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func put(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Int64(alpha.bitPattern))
        put(zeroCount)
        for bins in [positive, negative] {
            put(Int64(bins.offset))
            put(Int64(bins.counts.count))
            for c in bins.counts { put(c) }
        }
        return out
    }

    /// Reads what ``serialized()`` wrote; nil for malformed bytes.
    public init?(serialized bytes: [UInt8]) {
        var pos = 0
        func get() -> Int64? {
            guard pos + 8 <= bytes.count else { return nil }
            var v: Int64 = 0
            withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes[pos..<pos + 8]) }
            pos += 8
            return Int64(littleEndian: v)
        }
        guard let a = get(), let z = get() else { return nil }
        self.init(alpha: Double(bitPattern: UInt64(bitPattern: a)))
        zeroCount = z
        var stores: [Bins] = []
        for _ in 0..<2 {
            guard let off = get(), let n = get(), n >= 0, n < 1_000_000 else { return nil }
            var b = Bins()
            b.offset = Int(off)
            for _ in 0..<n { guard let c = get() else { return nil }; b.counts.append(c); b.total += c }
            stores.append(b)
        }
        positive = stores[0]
        negative = stores[1]
    }

    /// Dense counts for consecutive keys starting at `offset`.
    struct Bins: Sendable, Hashable {
        var offset = 0
        var counts: [Int64] = []
        var total: Int64 = 0

        @inline(__always)
        mutating func add(_ key: Int, _ n: Int64) {
            if counts.isEmpty {
                offset = key
                counts = [n]
            } else if key < offset {
                counts.insert(contentsOf: repeatElement(0, count: offset - key), at: 0)
                offset = key
                counts[0] += n
            } else if key >= offset + counts.count {
                counts.append(contentsOf: repeatElement(0, count: key - offset - counts.count + 1))
                counts[key - offset] += n
            } else {
                counts[key - offset] += n
            }
            total += n
        }

        /// Adds another store's counts: the key range grows to cover both (the first and last
        /// bins of a store are never empty, so this is what adding each bin in turn would give),
        /// then the counts are added in one pass.
        mutating func merge(_ other: Bins) {
            guard !other.counts.isEmpty else { return }
            guard !counts.isEmpty else { self = other; return }
            if other.offset < offset {
                counts.insert(contentsOf: repeatElement(0, count: offset - other.offset), at: 0)
                offset = other.offset
            }
            let end = other.offset + other.counts.count
            if end > offset + counts.count { counts.append(contentsOf: repeatElement(0, count: end - offset - counts.count)) }
            let shift = other.offset - offset
            counts.withUnsafeMutableBufferPointer { dst in
                other.counts.withUnsafeBufferPointer { src in
                    for i in 0..<src.count { dst[shift + i] += src[i] }
                }
            }
            total += other.total
        }
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _exp(_ x: Double) -> Double { Glibc.exp(x) }
#else
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _exp(_ x: Double) -> Double { Darwin.exp(x) }
#endif
