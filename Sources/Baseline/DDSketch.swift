import IWDetectCore

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
/// 1,200 bins for the 1e-9…1e12 range at alpha = 1 %; at rest (``packed()``) only the non-empty
/// bins, a few bytes each.
public struct DDSketch: Sendable, Hashable {
    public let alpha: Double
    private let logGamma: Double
    var positive = Bins()
    var negative = Bins()
    public internal(set) var zeroCount: Int64 = 0

    /// Magnitudes below this are counted as zero.
    public static let minIndexable = 1e-9

    /// The alpha of every sketch the baseline keeps (buckets of different alphas cannot merge).
    public static let defaultAlpha = 0.004

    /// The most samples a sketch read from bytes may hold (a trillion; far beyond an hour's, yet
    /// small enough that no sum of a window's buckets can overflow).
    public static let maxStoredCount: Int64 = 1 << 40

    public init(alpha: Double = DDSketch.defaultAlpha) {
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

    /// The exact binary form for the database: the packed form (``packed()``).
    public func serialized() -> [UInt8] { packed() }

    /// Reads what ``serialized()`` wrote, or the dense form of earlier versions (alpha, zero
    /// count, then per store its offset, length and every bin as little-endian Int64s); nil for
    /// malformed bytes.
    public init?(serialized bytes: [UInt8]) {
        if bytes.starts(with: DDSketch.packedTag) {
            self.init(packed: bytes)
            return
        }
        var pos = 0
        func get() -> Int64? {
            guard pos + 8 <= bytes.count else { return nil }
            var v: Int64 = 0
            withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes[pos..<pos + 8]) }
            pos += 8
            return Int64(littleEndian: v)
        }
        guard let a = get(), let z = get(), z >= 0, z <= DDSketch.maxStoredCount else { return nil }
        let alpha = Double(bitPattern: UInt64(bitPattern: a))
        guard alpha > 0, alpha < 1 else { return nil }
        self.init(alpha: alpha)
        zeroCount = z
        var total = z
        var stores: [Bins] = []
        for _ in 0..<2 {
            // Keys bounded as the packed decoder bounds them.
            guard let off = get(), let n = get(), n >= 0, n < 1 << 21, off > -(1 << 20), off + n <= 1 << 20 else { return nil }
            var b = Bins()
            b.offset = Int(off)
            for _ in 0..<n {
                guard let c = get(), c >= 0, c <= DDSketch.maxStoredCount - total else { return nil }
                b.counts.append(c)
                b.total += c
                total += c
            }
            stores.append(b)
        }
        positive = stores[0]
        negative = stores[1]
    }

    // MARK: - Packed form

    /// The first bytes of the packed form (no dense form starts so: its first 8 bytes are alpha).
    static let packedTag: [UInt8] = [0, 0x44, 0x44, 2]

    /// The sparse form of a sketch at rest (closed hours in memory, rows in the database): the
    /// tag, alpha (8 bytes), then as LEB128 varints the zero count and, per store (positive, then
    /// negative), its number of non-empty bins and, when there are any, the first key
    /// (zigzag), the last key's distance from it, and for each non-empty bin its distance from
    /// the previous one (0 for the first) and its count. An hour of 400 samples over 600 bins
    /// takes about 500 bytes, where the dense form takes 4.8 KB.
    public func packed() -> [UInt8] {
        var out = DDSketch.packedTag
        withUnsafeBytes(of: alpha.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        DDSketch.putVarint(UInt64(zeroCount), &out)
        for bins in [positive, negative] {
            var nonEmpty = 0
            for c in bins.counts where c != 0 { nonEmpty += 1 }
            DDSketch.putVarint(UInt64(nonEmpty), &out)
            guard nonEmpty > 0 else { continue }
            let first = bins.counts.firstIndex { $0 != 0 }!, last = bins.counts.lastIndex { $0 != 0 }!
            let k = Int64(bins.offset + first)
            DDSketch.putVarint(Varint.zigzag(k), &out)
            DDSketch.putVarint(UInt64(last - first), &out)
            var previous = first
            for i in first...last where bins.counts[i] != 0 {
                DDSketch.putVarint(UInt64(i - previous), &out)
                DDSketch.putVarint(UInt64(bins.counts[i]), &out)
                previous = i
            }
        }
        return out
    }

    /// Reads ``packed()``; nil for malformed bytes.
    public init?(packed bytes: [UInt8]) {
        guard bytes.count >= 12, bytes.starts(with: DDSketch.packedTag) else { return nil }
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { $0.copyBytes(from: bytes[4..<12]) }
        let alpha = Double(bitPattern: UInt64(littleEndian: bits))
        guard alpha > 0, alpha < 1 else { return nil }
        self.init(alpha: alpha)
        guard merge(packed: bytes) else { return nil }
    }

    /// Adds the sketch `bytes` packs (``packed()``) without building it: the same bins as
    /// ``merge(_:)`` of the unpacked sketch. Returns false, changing nothing, for malformed bytes
    /// or another alpha.
    @discardableResult
    public mutating func merge(packed bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer -> Bool in
            var reader = DDSketch.VarintReader(bytes: buffer, position: 12)
            guard buffer.count >= 12, buffer.starts(with: DDSketch.packedTag) else { return false }
            var bits: UInt64 = 0
            for i in 0..<8 { bits |= UInt64(buffer[4 + i]) << (8 * UInt64(i)) }
            guard Double(bitPattern: bits) == alpha else { return false }
            // Checked in full before anything changes.
            var check = reader
            let most = UInt64(DDSketch.maxStoredCount)
            guard let z = check.next(), z <= most else { return false }
            var total = z
            for _ in 0..<2 {
                guard let n = check.next(), n <= 10_000_000 else { return false }
                guard n > 0 else { continue }
                // Keys of indexable magnitudes (1e-9 up to Double's largest) stay within a few
                // hundred thousand of 0: a corrupt row must not make the merge allocate without bound.
                guard let k = check.next(), let span = check.next(), span < 1 << 21 else { return false }
                let first = Varint.unzigzag(k)
                guard first > -(1 << 20), first + Int64(span) < 1 << 20 else { return false }
                var at: UInt64 = 0
                for i in 0..<n {
                    guard let d = check.next(), let c = check.next(), c > 0, c <= most - total, i == 0 ? d == 0 : d > 0, d <= span - at else { return false }
                    at += d
                    total += c
                }
                guard at == span else { return false }
            }
            guard check.position == buffer.count else { return false }
            zeroCount += Int64(reader.next()!)
            for store in 0..<2 {
                let n = reader.next()!
                guard n > 0 else { continue }
                let k = reader.next()!, span = Int(reader.next()!)
                let first = Int(Varint.unzigzag(k))
                if store == 0 {
                    positive.merge(from: &reader, count: Int(n), first: first, span: span)
                } else {
                    negative.merge(from: &reader, count: Int(n), first: first, span: span)
                }
            }
            return true
        }
    }

    @inline(__always)
    static func putVarint(_ value: UInt64, _ out: inout [UInt8]) { Varint.append(value, to: &out) }

    struct VarintReader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position: Int

        @inline(__always)
        mutating func next() -> UInt64? { Varint.read(bytes, at: &position) }
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

        /// Adds `count` packed bins whose keys run from `first` to `first + span` (read from
        /// `reader`, already checked): the range grows once, as ``merge(_:)`` does.
        mutating func merge(from reader: inout VarintReader, count: Int, first: Int, span: Int) {
            if counts.isEmpty {
                offset = first
                counts = Array(repeating: 0, count: span + 1)
            } else {
                if first < offset {
                    counts.insert(contentsOf: repeatElement(0, count: offset - first), at: 0)
                    offset = first
                }
                let end = first + span + 1
                if end > offset + counts.count { counts.append(contentsOf: repeatElement(0, count: end - offset - counts.count)) }
            }
            var i = first - offset
            var added: Int64 = 0
            counts.withUnsafeMutableBufferPointer { dst in
                for _ in 0..<count {
                    i += Int(reader.next()!)
                    let c = Int64(reader.next()!)
                    dst[i] += c
                    added += c
                }
            }
            total += added
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
