/// A value taken from an event's JSON, or computed while evaluating a rule.
///
/// `missing` is distinct from `null`: a field that is absent is `missing`, one written as `null` is
/// `null`. Comparisons involving either are false, never an error.
public enum FieldValue: Sendable, Hashable {
    case missing
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    /// The elements of a JSON array, or the values a path projected over an array.
    case list([FieldValue])
    /// A JSON object, kept only as its member count.
    case object(count: Int)

    /// The value as a number, if it is one. Booleans are not numbers.
    @inlinable public var number: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The value as a string, if it is one.
    @inlinable public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

extension FieldValue {
    /// Appends the value as compact JSON: what `json.write(to:)` appends, without building it.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .missing, .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .number(let n): JSONValue.number(n).write(to: &out)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .list(let items):
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object: json.write(to: &out)
        }
    }

    /// The value as JSON, for alert evidence and exports.
    public var json: JSONValue {
        switch self {
        case .missing, .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n): return .number(n)
        case .string(let s): return .string(s)
        case .list(let items): return .array(items.map(\.json))
        case .object(let count): return .string("{object with \(count) members}")
        }
    }
}
