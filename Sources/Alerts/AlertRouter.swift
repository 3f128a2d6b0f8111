import IWDetectCore

/// Routes alerts to channels by severity (DESIGN §6); a rule's own `channels` replace the route.
public struct AlertRouter: Sendable {
    public var routes: [Severity: [String]]

    /// critical → pager, Slack and SIEM; high → Slack and SIEM; medium and low → SIEM.
    public static let defaultRoutes: [Severity: [String]] = [
        .critical: ["pager", "slack", "siem"],
        .high: ["slack", "siem"],
        .medium: ["siem"],
        .low: ["siem"],
    ]

    public init(routes: [Severity: [String]] = AlertRouter.defaultRoutes) { self.routes = routes }

    /// The channels for a detection, restricted to `available` sinks, plus `everywhere` (sinks that
    /// receive every alert, such as stdout in a zero-configuration run).
    public func channels(for rule: RuleInfo, available: Set<String>, everywhere: [String]) -> [String] {
        var out: [String] = []
        for c in (rule.channels ?? routes[rule.severity] ?? []) + everywhere where available.contains(c) && !out.contains(c) {
            out.append(c)
        }
        return out
    }
}
