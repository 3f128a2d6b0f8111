import Foundation
import IWDetectCore
import IWDetectTestSupport
import Ingest
import Testing

@Suite struct JSONLineDecoderTests {
    struct Rejected: Error { var line: Int; var decoded: String }

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

    /// The lines of the events captured from a real InferenceWall (Tests/Fixtures).
    static let capturedLines: [String] = {
        let path = packageRoot + "/Tests/Fixtures/inferwall_scan_and_audit_events.jsonl"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }()

    @Test func derivedFieldsOnTheCapturedInferenceWallEvents() throws {
        let (d, fields) = decoder(["blocked", "injection_match", "data_leak_match", "top_signature"])
        #expect(Self.capturedLines.count == 33)
        func event(_ line: Int) throws -> Event {
            let decoded = decode(d, Self.capturedLines[line - 1])
            guard case .event(let e) = decoded else { throw Rejected(line: line, decoded: "\(decoded)") }
            return e
        }
        func derived(_ line: Int) throws -> [FieldValue] {
            let e = try event(line)
            return ["blocked", "injection_match", "data_leak_match", "top_signature"].map { e[fields.existingSlot(for: $0)!] }
        }
        let no = FieldValue.bool(false), yes = FieldValue.bool(true)
        #expect(try derived(1) == [no, no, no, .missing], "an allowed scan without matches")
        #expect(try derived(4) == [yes, yes, no, .string("INJ-D-002")], "INJ-D-002 and INJ-D-008 tie at 10.8: the first listed")
        #expect(try derived(5) == [yes, yes, no, .string("INJ-D-002")], "INJ-D-018 ties with it, listed later")
        #expect(try derived(6) == [no, yes, no, .string("INJ-O-010")], "allowed, one low match")
        #expect(try derived(8) == [yes, yes, no, .string("INJ-D-016")])
        #expect(try derived(14) == [no, no, yes, .string("DL-P-001")], "a flagged output")
        #expect(try derived(20) == [yes, no, yes, .string("DL-S-004")])
        #expect(try derived(30) == [.missing, .missing, .missing, .missing], "an audit event has no decision and no matches")

        // Over the whole capture: the blocks the baseline excludes, and the families of the matches.
        var blocked = 0, injection = 0, leak = 0
        for line in 1...33 {
            let v = try derived(line)
            blocked += v[0] == yes ? 1 : 0
            injection += v[1] == yes ? 1 : 0
            leak += v[2] == yes ? 1 : 0
        }
        #expect((blocked, injection, leak) == (11, 8, 8))
    }

    @Test func derivedFieldsAreComputedNotReadAndCoverTheInferenceLog() throws {
        let (d, fields) = decoder(["blocked", "top_signature"])
        #expect(!fields.paths.contains("matches") && fields.paths.contains("matches.score"), "only the paths they need")
        let line = #"{"timestamp":"2026-11-21T10:40:17Z","log_id":"l1","guardrail_action":"allow","blocked":true,"top_signature":"FAKE"}"#
        guard case .event(let e) = decode(d, line) else { Issue.record("rejected"); return }
        #expect(e[fields.existingSlot(for: "blocked")!] == .bool(false), "the inference log's guardrail_action decides, not a member named blocked")
        #expect(e[fields.existingSlot(for: "top_signature")!] == .missing)
        let block = #"{"timestamp":"2026-11-21T10:40:17Z","guardrail_action":"block"}"#
        guard case .event(let b) = decode(d, block) else { Issue.record("rejected"); return }
        #expect(b[fields.existingSlot(for: "blocked")!] == .bool(true))
    }

    @Test func anEmptyRequestIDIsNoID() throws {
        let (d, _) = decoder()
        // Line 23 of the capture: `"request_id": ""`.
        var text = Self.capturedLines[22]
        let decoded = text.withUTF8 { d.decode(UnsafeRawBufferPointer($0), origin: Event.Origin(source: "capture.jsonl", line: 23)) }
        guard case .event(let e) = decoded else { Issue.record("rejected"); return }
        #expect(e[FieldTable.requestID] == .string(""))
        #expect(e.id == "capture.jsonl:23")
    }
}
