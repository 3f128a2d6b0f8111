/// A precedence-climbing parser for conditions.
///
/// Precedence, loosest first: `OR`; `AND`; `NOT`; comparisons (`== != < <= > >=`, `in`,
/// `not in`, `contains`, `matches`), which do not chain; `+ -`; `* /`; unary `-`; primaries.
struct Parser {
    var tokens: [Token]
    var pos = 0

    static func parse(_ text: String) throws(ConditionError) -> Expr {
        var lexer = Lexer(text)
        var p = Parser(tokens: try lexer.tokenize())
        let e = try p.parseOr()
        guard case .end = p.peek.kind else {
            throw ConditionError(code: "syntax_error", message: "unexpected \(p.describe(p.peek)) after a complete condition", offset: p.peek.offset)
        }
        return e
    }

    var peek: Token { tokens[pos] }

    mutating func advance() -> Token {
        let t = tokens[pos]
        if pos < tokens.count - 1 { pos += 1 }
        return t
    }

    func isKeyword(_ k: Token.Keyword) -> Bool {
        if case .keyword(k) = peek.kind { return true }
        return false
    }

    func isOp(_ s: String) -> Bool {
        if case .op(s) = peek.kind { return true }
        return false
    }

    func describe(_ t: Token) -> String {
        switch t.kind {
        case .number(let n): return "number \(n)"
        case .duration: return "duration"
        case .string(let s): return "string \"\(s)\""
        case .identifier(let s): return "'\(s)'"
        case .keyword(let k): return "'\(k.rawValue.uppercased())'"
        case .op(let o): return "'\(o)'"
        case .end: return "end of condition"
        }
    }

    mutating func expect(_ op: String) throws(ConditionError) {
        guard isOp(op) else {
            throw ConditionError(code: "syntax_error", message: "expected '\(op)' but found \(describe(peek))", offset: peek.offset)
        }
        _ = advance()
    }

    mutating func parseOr() throws(ConditionError) -> Expr {
        var lhs = try parseAnd()
        while isKeyword(.or) {
            let t = advance()
            lhs = .binary("or", lhs, try parseAnd(), at: t.offset)
        }
        return lhs
    }

    mutating func parseAnd() throws(ConditionError) -> Expr {
        var lhs = try parseNot()
        while isKeyword(.and) {
            let t = advance()
            lhs = .binary("and", lhs, try parseNot(), at: t.offset)
        }
        return lhs
    }

    mutating func parseNot() throws(ConditionError) -> Expr {
        if isKeyword(.not) {
            let t = advance()
            return .unary("not", try parseNot(), at: t.offset)
        }
        return try parseComparison()
    }

    mutating func parseComparison() throws(ConditionError) -> Expr {
        let lhs = try parseAdditive()
        let t = peek
        let op: String
        switch t.kind {
        case .op(let o) where ["==", "!=", "<", "<=", ">", ">="].contains(o): op = o
        case .keyword(.in): op = "in"
        case .keyword(.contains): op = "contains"
        case .keyword(.matches): op = "matches"
        case .keyword(.not):
            // `x not in list`
            guard case .keyword(.in) = tokens[min(pos + 1, tokens.count - 1)].kind else { return lhs }
            _ = advance()
            op = "not in"
        default: return lhs
        }
        _ = advance()
        let rhs = try parseAdditive()
        switch peek.kind {
        case .op(let o) where ["==", "!=", "<", "<=", ">", ">="].contains(o):
            throw ConditionError(code: "syntax_error", message: "comparisons do not chain; join them with AND", offset: peek.offset)
        default: break
        }
        return .binary(op, lhs, rhs, at: t.offset)
    }

    mutating func parseAdditive() throws(ConditionError) -> Expr {
        var lhs = try parseMultiplicative()
        while isOp("+") || isOp("-") {
            let t = advance()
            guard case .op(let o) = t.kind else { break }
            lhs = .binary(o, lhs, try parseMultiplicative(), at: t.offset)
        }
        return lhs
    }

    mutating func parseMultiplicative() throws(ConditionError) -> Expr {
        var lhs = try parseUnary()
        while isOp("*") || isOp("/") {
            let t = advance()
            guard case .op(let o) = t.kind else { break }
            lhs = .binary(o, lhs, try parseUnary(), at: t.offset)
        }
        return lhs
    }

    mutating func parseUnary() throws(ConditionError) -> Expr {
        if isOp("-") {
            let t = advance()
            return .unary("-", try parseUnary(), at: t.offset)
        }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws(ConditionError) -> Expr {
        let t = advance()
        switch t.kind {
        case .number(let n): return .number(n, at: t.offset)
        case .duration(let d): return .duration(d, at: t.offset)
        case .string(let s): return .string(s, at: t.offset)
        case .keyword(.true): return .bool(true, at: t.offset)
        case .keyword(.false): return .bool(false, at: t.offset)
        case .keyword(.null): return .null(at: t.offset)
        case .op("("):
            let e = try parseOr()
            try expect(")")
            return e
        case .op("["):
            var items: [Expr] = []
            if !isOp("]") {
                repeat {
                    if isOp(",") { _ = advance() }
                    items.append(try parseAdditive())
                } while isOp(",")
            }
            try expect("]")
            return .list(items, at: t.offset)
        case .identifier(let name):
            if name.lowercased().hasPrefix("baseline.") {
                return .baseline(metric: nil, stat: String(name.dropFirst("baseline.".count)), at: t.offset)
            }
            guard isOp("(") else { return .name(name, at: t.offset) }
            _ = advance()
            var args: [Expr] = []
            if !isOp(")") {
                repeat {
                    if isOp(",") { _ = advance() }
                    args.append(try parseAdditive())
                } while isOp(",")
            }
            try expect(")")
            if name.lowercased() == "baseline" {
                return try baselineCall(args, at: t.offset)
            }
            return .call(name, args, at: t.offset)
        case .end:
            throw ConditionError(code: "syntax_error", message: "the condition ends where a value was expected", offset: t.offset)
        default:
            throw ConditionError(code: "syntax_error", message: "expected a value but found \(describe(t))", offset: t.offset)
        }
    }

    /// `baseline(metric).stat`, after the closing parenthesis.
    mutating func baselineCall(_ args: [Expr], at offset: Int) throws(ConditionError) -> Expr {
        guard args.count == 1 else {
            throw ConditionError(code: "bad_arity", message: "baseline(metric) takes one metric", offset: offset)
        }
        guard isOp("."), case .identifier(let stat) = tokens[min(pos + 1, tokens.count - 1)].kind else {
            throw ConditionError(code: "syntax_error", message: "expected '.stat' after baseline(metric), e.g. baseline(output_tokens).p99", offset: peek.offset)
        }
        _ = advance()
        _ = advance()
        return .baseline(metric: args[0], stat: stat, at: offset)
    }
}
