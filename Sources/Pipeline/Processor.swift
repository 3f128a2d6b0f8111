import Alerts
import Baseline
import Foundation
import IWDetectCore
import Rules

/// The pipeline's processing stage: events in, alerts and state changes out, no I/O.
///
/// A value owned by the one task that runs the pipeline. Per event, in order: the baseline's
/// schedule follows the stream clock, every rule is evaluated, the event trains the baseline
/// unless it alerted or was blocked, and each detection goes through dedup and routing. Alerts
/// wait in ``alerts`` until the committer writes them with the state that produced them.
public struct Processor<Baseline: TrainableBaseline> {
    public var baseline: Baseline
    public var rules: RuleEngine
    public var suppressor: Suppressor
    let router: AlertRouter
    /// The configured sink names, and those that receive every alert (stdout in a zero-config
    /// run): fixed at start, so routing does not rebuild them per detection.
    let sinkNames: Set<String>
    let everywhere: [String]
    let excludeAlerting: Bool
    /// The wall clock for `detected_at` (reported, never part of an alert's identity).
    let now: @Sendable () -> EventTime
    /// What the rules found in the last processed event (for the export stage's enrichment and
    /// the security log). Their baseline evidence is left out (``Detection/deferredBaselines``):
    /// only alerts get it, before the baseline takes the event.
    public private(set) var detections: [Detection] = []

    /// Alerts raised since the last ``takeAlerts()``, with the channels they are routed to.
    public private(set) var alerts: [(AlertRecord, channels: [String])] = []
    public private(set) var counts = Counts()

    /// What the processor did, for the summary.
    public struct Counts: Sendable {
        public var events: Int64 = 0
        public var detections: Int64 = 0
        public var recomputes: Int64 = 0
        /// Alerts raised, by "rule\tseverity".
        public var alerts: [String: Int64] = [:]
        /// Detections folded into an open alert, by rule.
        public var suppressed: [String: Int64] = [:]
    }

    public init(baseline: Baseline, rules: RuleEngine, suppressor: Suppressor = Suppressor(), router: AlertRouter,
                sinkNames: Set<String>, everywhere: [String], excludeAlerting: Bool,
                now: @escaping @Sendable () -> EventTime = { EventTime(seconds: Date().timeIntervalSince1970) }) {
        self.baseline = baseline
        self.rules = rules
        // A detection's baseline evidence is built only when it raises an alert.
        self.rules.deferBaselineEvidence = true
        self.suppressor = suppressor
        self.router = router
        self.sinkNames = sinkNames
        self.everywhere = everywhere
        self.excludeAlerting = excludeAlerting
        self.now = now
    }

    /// Processes one event.
    @inline(__always)
    public mutating func process(_ event: Event) {
        counts.events += 1
        let clock = max(rules.clock, event.time)
        if baseline.advance(to: clock) {
            counts.recomputes += 1
            for shift in baseline.takeShifts() { raise(shift.detection) }
        }
        detections.removeAll(keepingCapacity: true)
        rules.evaluate(event, baseline: baseline, into: &detections)
        let training = training(event)
        // Raised before the baseline takes the event: an alert's evidence is what the rules saw.
        for d in detections { raise(d) }
        baseline.observe(event, training: training)
    }

    /// What the event does to the baseline: with `exclude_alerting`, an event a guardrail blocked
    /// or that fired a rule not reading a baseline is kept out, one that fired only statistical
    /// rules is quarantined.
    @inline(__always)
    func training(_ event: Event) -> Training {
        guard excludeAlerting else { return .train }
        if event.values[FieldTable.guardrailAction].string == "block" || event.values[FieldTable.decision].string == "block" { return .exclude }
        if detections.isEmpty { return .train }
        return detections.allSatisfy(\.rule.readsBaseline) ? .quarantine : .exclude
    }

    @inline(__always)
    mutating func raise(_ d: Detection) {
        counts.detections += 1
        switch suppressor.decide(d) {
        case .suppress:
            counts.suppressed[d.rule.name, default: 0] += 1
        case .alert(let suppressedBefore):
            var d = d
            RuleEngine.completeEvidence(&d, baseline: baseline)
            let channels = router.channels(for: d.rule, available: sinkNames, everywhere: everywhere)
            let alert = AlertRecord(detection: d, suppressedBefore: suppressedBefore, detectedAt: now())
            suppressor.opened(d, alertID: alert.id)
            alerts.append((alert, channels))
            counts.alerts["\(d.rule.name)\t\(d.rule.severity.rawValue)", default: 0] += 1
        }
    }

    /// The alerts raised since the last call, handed to the committer.
    public mutating func takeAlerts() -> [(AlertRecord, channels: [String])] {
        defer { alerts.removeAll(keepingCapacity: true) }
        return alerts
    }

    /// Forgets window entries and dedup groups that can no longer matter (before a commit).
    public mutating func sweep() {
        rules.sweep()
        suppressor.sweep(clock: rules.clock)
    }
}

extension BaselineModel: TrainableBaseline {}

extension BaselineShift {
    /// The rule of the alerts raised when a shift is admitted out of quarantine.
    public static let rule = RuleInfo(
        name: "baseline_shift_accepted",
        description: "A sustained, broad shift of a baseline was admitted as the new normal: the metrics named now have baselines that start at the shift.",
        severity: .low, action: "alert",
        recommendedAction: "Check that the change is expected (a model, prompt or client release); if it is an attack, restore the baseline from an exported snapshot.",
        condition: "quarantine admitted", dedupKey: ["segment"], dedupWindow: .minutes(1), channels: nil, tags: [])

    var detection: Detection {
        let metrics: [JSONValue] = moved.map {
            .object([("metric", .string($0.metric)), ("old_median", .number($0.oldMedian)), ("new_median", .number($0.newMedian))])
        }
        return Detection(rule: BaselineShift.rule, eventTime: admittedAt, eventID: "baseline-shift:\(segment):\(since.micros)", eventIDs: [],
                         groupValues: [segment], userID: nil, sessionID: nil,
                         evidence: [("segment", .string(segment)), ("metrics", .array(metrics)), ("since", .string(since.description)),
                                    ("users", .int(Int64(users))), ("sessions", .int(Int64(sessions))),
                                    ("quarantined_events", .int(events)), ("share", .number(share))])
    }
}
