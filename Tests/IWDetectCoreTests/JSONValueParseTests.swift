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
