import Alerts
import IWDetectCore
import Testing
import YAMLSupport
import Yams

/// Alerts for sink tests: a critical rapid-fire injection alert with window, field and baseline
/// evidence, as the engine raises it (prompts redacted), and variations.
enum SampleAlerts {
    static let rule = RuleInfo(
        name: "rapid_fire_injection_attempts",
        description: "Detects more than 3 high-score prompt injections in one session within 5 minutes.",
        severity: .high, action: "alert_and_rate_limit",
        recommendedAction: "Review session logs. Consider blocking the user if attacks persist.",
        condition: "injection_score > 0.7 AND count(session_id, 5m) > 3",
        dedupKey: ["user_id"], dedupWindow: .minutes(15), channels: nil, tags: ["atlas:AML.T0051"])

    /// The first sink of a config's `sinks:`, read through the registry, with its diagnostics.
    static func readSink(_ yaml: String) throws -> (config: (any SinkConfig)?, diagnostics: [Diagnostic]) {
        let root = try #require(try Yams.compose(yaml: yaml))
        let item = try #require(root["sinks"]?.sequence?.first)
        var r = ConfigReader(file: "config.yaml")
        let config = SinkRegistry.read(item, reader: &r)
        return (config, r.diagnostics)
    }

    /// 2026-11-21T10:40:17.250Z
    static let eventTime = EventTime(micros: 1_795_257_617_250_000)

    static func alert(severity: Severity = .high, rule name: String = rule.name, user: String = "attacker-7",
                      session: String? = "sess-42", event: String = "log-0042") -> AlertRecord {
        var r = rule
        r.severity = severity
        r.name = name
        let d = Detection(
            rule: r, eventTime: eventTime, eventID: event, eventIDs: ["log-0039", "log-0040", "log-0041", event],
            groupValues: [user], userID: user, sessionID: session,
            evidence: [
                ("injection_score", .number(0.91)),
                ("user_input", .object([("redacted", .bool(true)), ("length", .int(412))])),
                ("count(session_id, 5m)", .number(4)),
                ("baseline.output_tokens", .object([("snapshot_id", .int(3)), ("n", .int(5000)), ("mean", .number(212.5)),
                                                    ("p99", .number(880)), ("ready", .bool(true)), ("segment", .string(""))])),
            ])
        return AlertRecord(detection: d, suppressedBefore: 2, detectedAt: EventTime(micros: 1_795_257_618_000_000))
    }
}
