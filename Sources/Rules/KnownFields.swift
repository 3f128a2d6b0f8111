import IWDetectCore
/// The field names a rule may use without a warning, and the nearest one to a misspelt name.
///
/// A rule that names a field no producer writes is almost always a typo
/// (`output_tokns > baselin.p99 * 2`): its comparison is silently false on every event. The loader
/// warns about any field that is neither in the inference-log schema of the monitoring guide, nor
/// in InferenceWall's scan and audit events, nor a ``DerivedField``, nor declared in the config
/// (`fields:`, metrics), nor present in one of the rule's own test events.
public struct KnownFields: Sendable {
    /// The monitoring guide's inference-log schema (DESIGN §3), with the element fields of its lists.
    public static let inferenceLog: [String] = [
        "log_id", "session_id", "user_id", "source_ip", "timestamp", "user_input", "input_tokens", "input_language",
        "input_injection_score", "model_id", "system_prompt_hash", "temperature", "max_tokens", "model_output",
        "output_tokens", "output_pii_detected", "output_redactions", "tool_calls", "tool_calls.name", "tool_calls.arguments",
        "tool_results", "inference_latency_ms", "total_latency_ms", "guardrail_triggered", "guardrail_action",
        "content_policy_violations", "risk_score",
    ]

    /// InferenceWall's scan and audit events (shared/fixtures/inferwall/).
    public static let inferWall: [String] = [
        "log_type", "timestamp", "direction", "decision", "anomaly_score", "threshold", "policy", "request_id", "truncated",
        "matches", "matches.signature_id", "matches.matched_text", "matches.score", "matches.confidence", "matches.severity",
        "signature_count", "category", "action", "details", "source_ip", "key_prefix",
    ]

    /// The schemas' fields that are lists wherever they occur (arrays, and paths projected over
    /// them). Window and dedup keys need one value per event, so the loader warns about these.
    public static let lists: Set<String> = [
        "output_redactions", "tool_calls", "tool_calls.name", "tool_calls.arguments", "tool_results", "content_policy_violations",
        "matches", "matches.signature_id", "matches.matched_text", "matches.score", "matches.confidence", "matches.severity",
    ]

    /// Whether `name` (or what its alias stands for) is one of the ``lists``.
    public static func isList(_ name: String) -> Bool { lists.contains(fieldAliases[name] ?? name) }

    private var names: Set<String>

    /// The schema fields, the derived fields, the aliases, and `extra` (config fields and metric
    /// names and paths).
    public init(extra: [String] = []) {
        names = Set(KnownFields.inferenceLog + KnownFields.inferWall + DerivedField.allCases.map(\.rawValue) + fieldAliases.keys + extra)
    }

    public mutating func insert(_ name: String) { names.insert(name) }

    /// Whether `name` (or what its alias stands for) is known; a field under a known object field
    /// (`details.reason`) is known too, since those objects have no fixed members.
    public func contains(_ name: String) -> Bool {
        if names.contains(name) || names.contains(fieldAliases[name] ?? name) { return true }
        if let dot = name.firstIndex(of: "."), ["details"].contains(String(name[..<dot])) { return true }
        return false
    }

    /// The known name closest to `name` within a few edits, for "did you mean".
    public func nearest(to name: String, among more: [String] = []) -> String? {
        let target = Array(name.utf8)
        var best: (String, Int)?
        for candidate in names.union(more) {
            let d = EditDistance.between(target, Array(candidate.utf8))
            if d <= max(2, target.count / 4), d < (best?.1 ?? .max) || (d == best?.1 && candidate < best!.0) { best = (candidate, d) }
        }
        return best?.0
    }

}
