/// A field computed from other fields of an event instead of read from its JSON, so that rules can
/// name a fact the producer only writes implicitly (README, "The condition language").
///
/// A derived field costs nothing unless something references it: the ``FieldTable`` registers it,
/// with the paths it is computed from, when a rule first names it, and the decoder computes it
/// after extracting those paths. It is then an ordinary slot, usable in conditions, as a window or
/// dedup key and in evidence. A derived name takes precedence over a JSON member of the same name.
public enum DerivedField: String, Sendable, CaseIterable {
    /// Whether the event was blocked: `decision == 'block'` (InferenceWall) or
    /// `guardrail_action == 'block'` (the inference log). False when either field says something
    /// else; missing when the event has neither (an audit event).
    case blocked
    /// Whether any InferenceWall match is an injection signature (`signature_id` starting with
    /// `INJ-`). False when there are no matches; missing without a `matches` field.
    case injectionMatch = "injection_match"
    /// Whether any match is a data-leak signature (`DL-`); as ``injectionMatch``.
    case dataLeakMatch = "data_leak_match"
    /// The `signature_id` of the highest-scoring match, the first listed on a tie: one value per
    /// event (unlike the list `signature_ids`), so it can key a window or a dedup group. Missing
    /// when there are no matches.
    case topSignature = "top_signature"

    /// The field paths the value is computed from, in the order ``value(_:inputs:)`` reads them.
    public var inputs: [String] {
        switch self {
        case .blocked: return ["decision", "guardrail_action"]
        case .injectionMatch, .dataLeakMatch: return ["matches.signature_id"]
        case .topSignature: return ["matches.signature_id", "matches.score"]
        }
    }

    /// The field's value for an event whose slots `inputs` (those of ``inputs``) hold `values`.
    public func value(_ values: [FieldValue], inputs: [Int]) -> FieldValue {
        switch self {
        case .blocked:
            let decision = values[inputs[0]], action = values[inputs[1]]
            if decision == .string("block") || action == .string("block") { return .bool(true) }
            return decision == .missing && action == .missing ? .missing : .bool(false)
        case .injectionMatch:
            return Self.anyID(values[inputs[0]], startingWith: "INJ-")
        case .dataLeakMatch:
            return Self.anyID(values[inputs[0]], startingWith: "DL-")
        case .topSignature:
            guard let ids = Self.elements(values[inputs[0]]), let first = ids.first else { return .missing }
            // The projections skip a match without the member, so the two lists pair up only when
            // they are as long; otherwise which score is whose is unknown and the first id stands.
            guard let scores = Self.elements(values[inputs[1]]), scores.count == ids.count else { return first }
            var best = 0
            for i in scores.indices.dropFirst() {
                if let s = scores[i].number, s > (scores[best].number ?? -.infinity) { best = i }
            }
            return ids[best]
        }
    }

    /// The values of a projected path as a list: a JSON `null` is none, a single value one.
    static func elements(_ v: FieldValue) -> [FieldValue]? {
        switch v {
        case .list(let items): return items
        case .null: return []
        case .missing: return nil
        default: return [v]
        }
    }

    /// Whether any of the ids starts with `prefix`, byte for byte.
    static func anyID(_ v: FieldValue, startingWith prefix: String) -> FieldValue {
        guard let ids = elements(v) else { return .missing }
        return .bool(ids.contains { $0.string?.utf8.starts(with: prefix.utf8) == true })
    }
}
