import IWDetectCore

extension DDSketch {
    /// The sketch as JSON (the dashboard's rollups): alpha, the zero count, and each side's first
    /// key and dense counts. Exact: ``init(json:)`` gives back an equal sketch.
    public var json: JSONValue {
        func side(_ b: Bins) -> JSONValue { .array([.int(Int64(b.offset)), .array(b.counts.map { .int($0) })]) }
        return .object([("a", .number(alpha)), ("z", .int(zeroCount)), ("p", side(positive)), ("n", side(negative))])
    }

    /// Writes ``json`` as compact JSON text without building the value.
    public func writeJSON(to out: inout [UInt8]) {
        func side(_ b: Bins) {
            out.append(UInt8(ascii: "["))
            JSONValue.int(Int64(b.offset)).write(to: &out)
            out.append(contentsOf: ",[".utf8)
            for (i, c) in b.counts.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.int(c).write(to: &out)
            }
            out.append(contentsOf: "]]".utf8)
        }
        out.append(contentsOf: #"{"a":"#.utf8)
        JSONValue.number(alpha).write(to: &out)
        out.append(contentsOf: #","z":"#.utf8)
        JSONValue.int(zeroCount).write(to: &out)
        out.append(contentsOf: #","p":"#.utf8)
        side(positive)
        out.append(contentsOf: #","n":"#.utf8)
        side(negative)
        out.append(UInt8(ascii: "}"))
    }

    /// Reads what ``json`` wrote; nil when it is not that shape.
    public init?(json: JSONValue) {
        guard let a = json["a"]?.double, a > 0, a < 1, let z = json["z"]?.integer else { return nil }
        self.init(alpha: a)
        func side(_ v: JSONValue?) -> Bins? {
            guard case .array(let parts)? = v, parts.count == 2, let offset = parts[0].integer, case .array(let items) = parts[1] else { return nil }
            var b = Bins()
            for (i, item) in items.enumerated() {
                guard let c = item.integer, c >= 0 else { return nil }
                if c > 0 { b.add(Int(offset) + i, c) }
            }
            return b
        }
        guard let p = side(json["p"]), let n = side(json["n"]), z >= 0 else { return nil }
        positive = p
        negative = n
        zeroCount = z
    }
}

extension DDSketch {
    /// The bin of a positive value (nil for zero, negative or tiny values): computed once, it can
    /// be added to several sketches of the same alpha with ``add(bin:)``.
    @inline(__always)
    public func bin(of x: Double) -> Int? { x >= DDSketch.minIndexable ? key(x) : nil }

    /// Adds one value whose ``bin(of:)`` is `k`.
    @inline(__always)
    public mutating func add(bin k: Int) { positive.add(k, 1) }
}
