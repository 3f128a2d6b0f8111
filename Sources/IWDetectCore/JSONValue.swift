/// A JSON document with ordered object keys, written deterministically.
///
/// Alerts, exports and machine-readable CLI output use it so that the same input gives the same
/// bytes (stable alert ids and diff-friendly files depend on that).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case int(Int64)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized() == b.serialized() }

    /// The compact JSON text.
    public func serialized() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact JSON text as UTF-8 (what ``serialized()`` returns, without a String
    /// per piece: alerts and every exported event are written this way).
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .int(let i): JSONValue.appendInteger(i, to: &out)
        case .number(let d):
            if d.isFinite, d == d.rounded(), Swift.abs(d) < 1e15 { JSONValue.appendInteger(Int64(d), to: &out) } else if !JSONValue.appendShortDecimal(d, to: &out) {
                out.append(contentsOf: JSONValue.format(d).utf8)
            }
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (k, (key, value)) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.quote(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Writes a number of at most six decimals the way `description` does (`0.5107`, `-12.25`),
    /// without formatting a String: only when those digits read back as exactly `d` (then they
    /// are its shortest representation) and `d` is in the range `description` writes without an
    /// exponent. Returns false otherwise.
    static func appendShortDecimal(_ d: Double, to out: inout [UInt8]) -> Bool {
        let magnitude = Swift.abs(d)
        guard magnitude >= 1e-4, magnitude < 1e9 else { return false }
        let scaled = (magnitude * 1e6).rounded()
        guard scaled / 1e6 == magnitude else { return false }
        var units = Int64(scaled)
        var decimals = 6
        while decimals > 0 && units % 10 == 0 {
            units /= 10
            decimals -= 1
        }
        var divisor: Int64 = 1
        for _ in 0..<decimals { divisor *= 10 }
        if d < 0 { out.append(UInt8(ascii: "-")) }
        appendInteger(units / divisor, to: &out)
        if decimals > 0 {
            out.append(UInt8(ascii: "."))
            var frac = units % divisor
            let end = out.count + decimals
            for _ in 0..<decimals { out.append(UInt8(ascii: "0")) }
            for k in stride(from: end - 1, through: end - decimals, by: -1) {
                out[k] = UInt8(ascii: "0") + UInt8(frac % 10)
                frac /= 10
            }
        }
        return true
    }

    /// Appends the decimal digits of `i`: what `.int(i)` writes.
    public static func appendInteger(_ i: Int64, to out: inout [UInt8]) {
        if i == .min { out.append(contentsOf: String(i).utf8); return }
        var v = i < 0 ? -i : i
        if i < 0 { out.append(UInt8(ascii: "-")) }
        // The digits, least significant first, then reversed in place.
        let start = out.count
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        } while v > 0
        out[start...].reverse()
    }

    /// Appends `s` as a JSON string literal, as UTF-8: the same bytes as ``quote(_:into:)-(_,inout String)``.
    public static func quote(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                if b >= 0x20 && b != 0x22 && b != 0x5C { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                escape(b, into: &out)
                start = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
        }
        if done == nil {
            for b in s.utf8 {
                if b >= 0x20 && b != 0x22 && b != 0x5C { out.append(b) } else { escape(b, into: &out) }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func escape(_ b: UInt8, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch b {
        case 0x22: out.append(UInt8(ascii: "\""))
        case 0x5C: out.append(UInt8(ascii: "\\"))
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xF)]])
        }
    }

    /// JSON text indented by two spaces, one member per line.
    public func pretty() -> String {
        var out = ""
        write(to: &out, indent: "  ", level: 0)
        return out
    }

    /// An integer value: `.int`, or a whole `.number`.
    public var integer: Int64? {
        switch self {
        case .int(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }

    /// A number, whether it was read as an integer or not.
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    /// A string value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Looks up a member of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    private func write(to out: inout String, indent: String?, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .number(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
                item.write(to: &out, indent: indent, level: level + 1)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (k, (key, value)) in members.enumerated() {
                if k > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
                JSONValue.quote(key, into: &out)
                out += indent == nil ? ":" : ": "
                value.write(to: &out, indent: indent, level: level + 1)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "}"
        }
    }

    /// Formats a double the shortest way that reads back the same; integral values without `.0`.
    public static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    /// Appends `s` as a JSON string literal.
    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most strings need no escape: appended whole (the same bytes as scalar by scalar).
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
