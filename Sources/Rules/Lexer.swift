import IWDetectCore

/// A token of the condition language.
struct Token: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case number(Double)
        case duration(Int64)  // microseconds
        case string(String)
        case identifier(String)  // may contain dots: tool_calls.name, baseline.p99
        case keyword(Keyword)
        case op(String)  // + - * / == != < <= > >= ( ) [ ] ,
        case end
    }

    enum Keyword: String, Sendable, CaseIterable {
        case and, or, not, `in`, contains, matches, `true`, `false`, null
    }

    var kind: Kind
    var offset: Int
}

/// Splits a condition into tokens. Keywords are case-insensitive (`AND`, `and`, `True`).
struct Lexer {
    let chars: [Character]
    var pos = 0

    init(_ text: String) { chars = Array(text) }

    mutating func tokenize() throws(ConditionError) -> [Token] {
        var tokens: [Token] = []
        while true {
            let t = try next()
            tokens.append(t)
            if t.kind == .end { return tokens }
        }
    }

    private mutating func next() throws(ConditionError) -> Token {
        while pos < chars.count, chars[pos].isWhitespace { pos += 1 }
        let start = pos
        guard pos < chars.count else { return Token(kind: .end, offset: pos) }
        let c = chars[pos]
        if c.isNumber || (c == "." && pos + 1 < chars.count && chars[pos + 1].isNumber) {
            return try number(start)
        }
        if c.isLetter || c == "_" {
            while pos < chars.count, chars[pos].isLetter || chars[pos].isNumber || chars[pos] == "_" || chars[pos] == "." { pos += 1 }
            let word = String(chars[start..<pos])
            if let kw = Token.Keyword(rawValue: word.lowercased()) { return Token(kind: .keyword(kw), offset: start) }
            if word.hasSuffix(".") { throw ConditionError(code: "syntax_error", message: "a field path cannot end with '.'", offset: pos - 1) }
            return Token(kind: .identifier(word), offset: start)
        }
        if c == "\"" || c == "'" {
            pos += 1
            var s = ""
            while pos < chars.count, chars[pos] != c {
                if chars[pos] == "\\", pos + 1 < chars.count {
                    pos += 1
                    switch chars[pos] {
                    case "n": s.append("\n")
                    case "t": s.append("\t")
                    default: s.append(chars[pos])
                    }
                } else {
                    s.append(chars[pos])
                }
                pos += 1
            }
            guard pos < chars.count else { throw ConditionError(code: "syntax_error", message: "unterminated string", offset: start) }
            pos += 1
            return Token(kind: .string(s), offset: start)
        }
        let two = pos + 1 < chars.count ? String(chars[pos...pos + 1]) : ""
        if ["==", "!=", "<=", ">="].contains(two) {
            pos += 2
            return Token(kind: .op(two), offset: start)
        }
        if "+-*/<>()[],.".contains(c) {
            pos += 1
            return Token(kind: .op(String(c)), offset: start)
        }
        if c == "=" {
            throw ConditionError(code: "syntax_error", message: "'=' is not an operator; use '==' to compare", offset: start)
        }
        throw ConditionError(code: "syntax_error", message: "unexpected character '\(c)'", offset: start)
    }

    private mutating func number(_ start: Int) throws(ConditionError) -> Token {
        while pos < chars.count, chars[pos].isNumber || chars[pos] == "." { pos += 1 }
        // Exponent: 1e-3
        if pos < chars.count, chars[pos] == "e" || chars[pos] == "E",
           pos + 1 < chars.count, chars[pos + 1].isNumber || ((chars[pos + 1] == "-" || chars[pos + 1] == "+") && pos + 2 < chars.count && chars[pos + 2].isNumber) {
            pos += 2
            while pos < chars.count, chars[pos].isNumber { pos += 1 }
        }
        let text = String(chars[start..<pos])
        // A unit glued to an integer makes a duration: 30s 5m 1h 14d 2w.
        if pos < chars.count, chars[pos].isLetter {
            var end = pos
            while end < chars.count, chars[end].isLetter || chars[end].isNumber { end += 1 }
            let unit = String(chars[pos..<end])
            guard let d = EventTime.Duration(parsing: text + unit)?.micros else {
                throw ConditionError(code: "bad_duration", message: "'\(text + unit)' is not a duration (use a whole number and s, m, h, d or w: 30s, 5m, 1h, 14d)", offset: start)
            }
            pos = end
            return Token(kind: .duration(d), offset: start)
        }
        guard let value = Double(text) else { throw ConditionError(code: "syntax_error", message: "'\(text)' is not a number", offset: start) }
        return Token(kind: .number(value), offset: start)
    }
}
