import Foundation
import IWDetectCore
import Testing

@Suite struct JSONValueParseTests {
    @Test func roundTripsKeepingMemberOrder() throws {
        let v = JSONValue.object([
            ("z", .int(-3)), ("a", .number(0.25)), ("s", .string("quote \" back \\ nl \n tab \t é 🎉 \u{01}")),
            ("list", .array([.null, .bool(true), .bool(false), .object([]), .array([])])), ("big", .int(Int64.max)),
        ])
        let text = v.serialized()
        #expect(try JSONValue.parse(text).serialized() == text)
        #expect(try JSONValue.parse(v.pretty()).serialized() == text)
    }

    @Test func agreesWithFoundationOnEscapesAndNumbers() throws {
        let text = #"{"a":"\u00e9\ud83c\udf89\/\b\f","n":[1e3,-0.5,12345678901234567890,0]}"#
        let v = try JSONValue.parse(text)
        #expect(v["a"] == .string("é🎉/\u{08}\u{0C}"))
        #expect(v["n"] == .array([.number(1000), .number(-0.5), .number(12345678901234567890), .int(0)]))
    }

    /// The byte writer behind `serialized()` writes what the text writer does (which `pretty()`
    /// still uses), escape for escape: every ASCII byte, the integers' edges, non-finite numbers.
    @Test func compactBytesMatchTheTextWriter() throws {
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        let v = JSONValue.object([
            ("ascii", .string(ascii)), ("uni", .string("é🎉\u{2028}")), ("", .string("")),
            ("ints", .array([.int(0), .int(-1), .int(Int64.max), .int(Int64.min), .number(-0.0), .number(1e15), .number(123456.0), .number(0.1),
                             .number(.nan), .number(.infinity), .number(-2.5e-8)])),
            ("nested", .object([("k\"ey", .array([.null, .bool(true), .object([])]))])),
        ])
        var text = ""
        // The text writer, reached through pretty(): the same tokens with whitespace between them.
        let pretty = v.pretty()
        let compact = v.serialized()
        #expect(try JSONValue.parse(pretty).serialized() == compact)
        #expect(compact.hasPrefix(#"{"ascii":"\u0000\u0001"#))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(compact.utf8)) as? [String: Any])
        #expect(parsed["ascii"] as? String == ascii, "every ASCII byte survives the escaping")
        #expect(compact.contains(#""ints":[0,-1,9223372036854775807,-9223372036854775808,0,1000000000000000.0,123456,0.1,null,null,-2.5e-08]"#), "\(compact)")
        #expect(compact.contains(#"\n"#) && compact.contains(#"\t"#) && compact.contains(#"\r"#))
        JSONValue.quote("a\"b\\c\nd\u{01}é", into: &text)
        var bytes: [UInt8] = []
        JSONValue.quote("a\"b\\c\nd\u{01}é", into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == text)
        #expect(text == #""a\"b\\c\nd\u0001é""#)
    }

    /// Numbers are written as `description` writes them, whichever path writes them.
    @Test func numbersAreWrittenAsDescriptionWritesThem() {
        var rng = SplitMix64(seed: 7)
        var values: [Double] = [0.5107, -0.001, 0.0001, 0.00009999, 1e-5, 123.456789, 123.4567891, 999_999_999.5, 1e9 + 0.5, 0.1 + 0.2,
                                -3.14159, 2.5, 1e-4 * 3, 0.3, 42.000001, -0.000123]
        for _ in 0..<20_000 {
            let k = Double(Int64(bitPattern: rng.next()) % 10_000_000_000)
            values.append(k / [1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7][Int(rng.next() % 8)])
            values.append(Double(bitPattern: rng.next() & 0x3FFF_FFFF_FFFF_FFFF | 0x3000_0000_0000_0000))
        }
        for d in values {
            var out: [UInt8] = []
            JSONValue.number(d).write(to: &out)
            #expect(String(decoding: out, as: UTF8.self) == JSONValue.format(d), "\(d)")
        }
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"\u{01}\"", "01", "1.", "-", "\"\\ud800\"", "[1] x", "\"\\q\""])
    func rejectsWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
    }

    @Test func refusesNestingBeyondTheLimit() {
        let deep = String(repeating: "[", count: JSONValue.maxDepth + 1) + String(repeating: "]", count: JSONValue.maxDepth + 1)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONValue.parse(ok) }
    }
}
