/// LEB128 varints and zigzag signs, for the packed forms kept in the database (the forensic
/// index's postings, sketches at rest).
public enum Varint {
    @inlinable public static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    @inlinable public static func unzigzag(_ u: UInt64) -> Int64 { Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1) }

    /// Appends `v`, seven bits a byte, low bits first.
    @inlinable public static func append(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// The varint at `i` of `bytes`, moving `i` past it; nil when it is cut short or longer than
    /// 64 bits.
    @inlinable public static func read<C: RandomAccessCollection>(_ bytes: C, at i: inout C.Index) -> UInt64? where C.Element == UInt8 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while i < bytes.endIndex {
            let b = bytes[i]
            bytes.formIndex(after: &i)
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }
}
