import IWDetectCore
import Ingest
import Testing

@Suite struct JSONLineDecoderTests {
    func decoder(_ extra: [String] = []) -> (JSONLineDecoder, FieldTable) {
        var fields = FieldTable()
        for p in extra { _ = fields.slot(for: p) }
        return (JSONLineDecoder(fields: fields, maxLineBytes: 4096), fields)
    }

    func decode(_ d: JSONLineDecoder, _ text: String) -> Decoded {
        var copy = text
        return copy.withUTF8 { d.decode(UnsafeRawBufferPointer($0), origin: Event.Origin(source: "t", line: 1)) }
    }

    @Test func extractsOnlyTheFieldsAskedForIncludingProjections() throws {
        let (d, fields) = decoder(["tool_calls.name", "tool_calls", "meta.region", "input_injection_score"])
        let line = #"{"log_id":"l1","user_id":"u","timestamp":"2026-11-21T10:40:17Z","input_injection_score":0.85,"tool_calls":[{"name":"a"},{"name":"b"},{"x":1}],"meta":{"region":"eu"},"ignored":[1,{"deep":true}]}"#
        guard case .event(let e) = decode(d, line) else { Issue.record("rejected"); return }
        #expect(e.time == Timestamp.parse("2026-11-21T10:40:17Z"))
        #expect(e.id == "l1")
        #expect(e[fields.existingSlot(for: "tool_calls.name")!] == .list([.string("a"), .string("b")]))
        #expect(e[fields.existingSlot(for: "tool_calls")!] == .list([.object(count: 1), .object(count: 1), .object(count: 1)]))
        #expect(e[fields.existingSlot(for: "meta.region")!] == .string("eu"))
        #expect(e[fields.existingSlot(for: "input_injection_score")!] == .number(0.85))
        #expect(e[FieldTable.sessionID] == .missing)
    }

    @Test(arguments: [
        ("not json", RejectReason.invalidJSON),
        (#"{"timestamp":"2026-11-21T10:40:17Z","a":[1,2}"#, .invalidJSON),
        (#"{"timestamp":"2026-11-21T10:40:17Z","a":1} trailing"#, .invalidJSON),
        ("[1,2]", .notAnObject),
        ("\"just a string\"", .notAnObject),
        (#"{"user_id":"u"}"#, .missingTimestamp),
        (#"{"timestamp":null}"#, .missingTimestamp),
        (#"{"timestamp":"later"}"#, .invalidTimestamp),
        (#"{"timestamp":true}"#, .invalidTimestamp),
    ])
    func rejects(line: String, reason: RejectReason) {
        let (d, _) = decoder()
        guard case .reject(let got, let detail) = decode(d, line) else { Issue.record("accepted \(line)"); return }
        #expect(got == reason)
        #expect(!detail.isEmpty)
    }

    @Test func invalidUTF8AnywhereIsARejectEvenInAFieldNobodyReads() {
        let (d, _) = decoder()
        let bytes: [UInt8] = Array(#"{"timestamp":"2026-11-21T10:40:17Z","unread":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        let result = bytes.withUnsafeBytes { d.decode($0, origin: Event.Origin(source: "t", line: 1)) }
        guard case .reject(let reason, _) = result else { Issue.record("accepted"); return }
        #expect(reason == .invalidUTF8)
    }

    @Test func inferWallScanEventsDecode() throws {
        let (d, fields) = decoder(["anomaly_score", "matches.signature_id"])
        let line = #"{"log_type":"scan","timestamp":"2026-11-21T10:40:17Z","direction":"input","decision":"block","anomaly_score":16.5,"request_id":"req-1","matches":[{"signature_id":"INJ-D-002"},{"signature_id":"INJ-D-008"}]}"#
        guard case .event(let e) = decode(d, line) else { Issue.record("rejected"); return }
        #expect(e.id == "req-1")
        #expect(e[FieldTable.decision] == .string("block"))
        #expect(e[fields.existingSlot(for: "anomaly_score")!] == .number(16.5))
        #expect(e[fields.existingSlot(for: "matches.signature_id")!] == .list([.string("INJ-D-002"), .string("INJ-D-008")]))
    }
}
