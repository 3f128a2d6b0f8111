import IWDetectCore
import Testing

/// The derived fields' values from their inputs, and how the field table registers them.
@Suite struct DerivedFieldTests {
    /// The value of `field` for inputs given by path; unnamed inputs are missing.
    func value(_ field: DerivedField, _ inputs: [String: FieldValue]) -> FieldValue {
        field.value(field.inputs.map { inputs[$0] ?? .missing }, inputs: Array(field.inputs.indices))
    }

    func ids(_ s: String...) -> FieldValue { .list(s.map { .string($0) }) }
    func scores(_ n: Double...) -> FieldValue { .list(n.map { .number($0) }) }

    @Test func blockedIsEitherProducersBlockAndMissingWithoutBoth() {
        #expect(value(.blocked, ["decision": .string("block")]) == .bool(true))
        #expect(value(.blocked, ["guardrail_action": .string("block")]) == .bool(true))
        #expect(value(.blocked, ["decision": .string("flag")]) == .bool(false))
        #expect(value(.blocked, ["guardrail_action": .string("allow"), "decision": .null]) == .bool(false))
        #expect(value(.blocked, ["decision": .string("BLOCK")]) == .bool(false), "byte for byte, as the baseline's exclusion")
        #expect(value(.blocked, [:]) == .missing, "an audit event is neither blocked nor let through")
    }

    @Test func signatureFamiliesByPrefix() {
        #expect(value(.injectionMatch, ["matches.signature_id": ids("DL-P-001", "INJ-O-010")]) == .bool(true))
        #expect(value(.dataLeakMatch, ["matches.signature_id": ids("DL-P-001", "INJ-O-010")]) == .bool(true))
        #expect(value(.injectionMatch, ["matches.signature_id": ids("DL-P-001")]) == .bool(false))
        #expect(value(.injectionMatch, ["matches.signature_id": ids("inj-d-002", "XINJ-1")]) == .bool(false), "a prefix, case-sensitive")
        #expect(value(.injectionMatch, ["matches.signature_id": .list([])]) == .bool(false), "no matches")
        #expect(value(.dataLeakMatch, ["matches.signature_id": .null]) == .bool(false), "matches: null")
        #expect(value(.injectionMatch, ["matches.signature_id": .string("INJ-D-002")]) == .bool(true), "matches as one object")
        #expect(value(.injectionMatch, [:]) == .missing, "no matches field: not a scan")
    }

    @Test func topSignatureIsTheHighestScoringMatchFirstListedOnATie() {
        func top(_ i: FieldValue, _ s: FieldValue) -> FieldValue { value(.topSignature, ["matches.signature_id": i, "matches.score": s]) }
        #expect(top(ids("INJ-D-001", "INJ-D-016", "INJ-O-010"), scores(3.6, 10.8, 2.8)) == .string("INJ-D-016"))
        #expect(top(ids("INJ-D-002", "INJ-D-008", "INJ-D-027"), scores(10.8, 10.8, 6.3)) == .string("INJ-D-002"))
        #expect(top(ids("A", "B"), .list([.string("high"), .number(1)])) == .string("B"), "a score that is not a number ranks last")
        #expect(top(ids("A", "B"), scores(5)) == .string("A"), "a match without a score: the lists cannot be paired, the first id stands")
        #expect(top(.list([]), .list([])) == .missing)
        #expect(top(.missing, .missing) == .missing)
    }

    @Test func aDerivedFieldIsRegisteredAfterItsInputsAndOnlyWhenAskedFor() throws {
        var table = FieldTable()
        #expect(table.derived.isEmpty && table.existingSlot(for: "matches.signature_id") == nil)
        let slot = table.slot(for: "top_signature")
        let ids = try #require(table.existingSlot(for: "matches.signature_id"))
        let scores = try #require(table.existingSlot(for: "matches.score"))
        #expect(ids < slot && scores < slot)
        #expect(table.derived.map(\.slot) == [slot] && table.derived[0].inputs == [ids, scores])
        #expect(table.isDerived(slot) && !table.isDerived(ids))
        #expect(table.slot(for: "top_signature") == slot, "once")
        let blocked = table.slot(for: "blocked")
        #expect(table.derived.last?.inputs == [FieldTable.decision, FieldTable.guardrailAction], "the fixed slots")

        var values = Array(repeating: FieldValue.missing, count: table.count)
        values[ids] = .list([.string("DL-S-001"), .string("DL-S-004")])
        values[scores] = .list([.number(10.8), .number(13.5)])
        values[FieldTable.decision] = .string("block")
        table.derive(&values)
        #expect(values[slot] == .string("DL-S-004") && values[blocked] == .bool(true))
    }
}
