import IWDetectCore

/// The syntax tree of a condition, before names are resolved.
indirect enum Expr: Sendable, Equatable {
    case number(Double, at: Int)
    case duration(Int64, at: Int)
    case string(String, at: Int)
    case bool(Bool, at: Int)
    case null(at: Int)
    case list([Expr], at: Int)
    /// A field path or a named list, resolved by the compiler.
    case name(String, at: Int)
    case call(String, [Expr], at: Int)
    /// `baseline.p99` (metric nil: the other side's) or `baseline(metric).p99`.
    case baseline(metric: Expr?, stat: String, at: Int)
    case unary(String, Expr, at: Int)  // "-" or "not"
    case binary(String, Expr, Expr, at: Int)  // and or + - * / == != < <= > >= in "not in" contains matches

    var offset: Int {
        switch self {
        case .number(_, let at), .duration(_, let at), .string(_, let at), .bool(_, let at), .null(let at),
             .list(_, let at), .name(_, let at), .call(_, _, let at), .baseline(_, _, let at),
             .unary(_, _, let at), .binary(_, _, _, let at):
            return at
        }
    }
}

extension Expr {
    /// The text of a name, or nil.
    var nameText: String? { if case .name(let n, _) = self { return n } else { return nil } }
}
