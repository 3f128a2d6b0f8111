/// A 64-bit FNV-1a hash: stable across runs and platforms, unlike `Hasher`.
public struct StableHash: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ s: String) {
        for byte in s.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        value = (value ^ 0xff) &* 0x100_0000_01b3  // separator, so ("ab","c") != ("a","bc")
    }

    public mutating func combine(_ i: Int64) { combine(String(i)) }

    /// The hash as 16 lowercase hex digits.
    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
