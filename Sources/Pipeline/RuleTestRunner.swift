import Alerts
import IWDetectCore
import Ingest
import Rules

/// The outcome of one embedded rule test.
public struct RuleTestResult: Sendable {
    public var test: RuleTestCase
    public var alerts: Int
    /// Problems that make the test fail regardless of the count (an event that did not decode).
    public var problems: [String]
    public var passed: Bool { problems.isEmpty && alerts == test.expectedAlerts }

    /// `file:line: PASS|FAIL rule: name (expected N alerts, got M)`.
    public var description: String {
        let verdict = passed ? "PASS" : "FAIL"
        var s = "\(test.file):\(test.line): \(verdict) \(test.rule): \(test.name)"
        if !passed { s += " (expected \(test.expectedAlerts) alert(s), got \(alerts))" }
        for p in problems { s += "\n    \(p)" }
        return s
    }
}

/// Runs the examples embedded in rule files through the real decoder, evaluator and dedup, one
/// rule at a time, each test from empty state, with the test's fixed baseline.
public enum RuleTestRunner {
    public static func run(_ loaded: RuleLoadResult, metrics: [MetricDefinition] = MetricDefinition.defaults) -> [RuleTestResult] {
        guard let set = loaded.ruleSet else { return [] }
        let decoder = JSONLineDecoder(fields: loaded.fields, maxLineBytes: 1 << 20)
        return loaded.tests.map { test in
            guard let rule = (set.rules + set.disabledRules).first(where: { $0.info.name == test.rule }) else {
                return RuleTestResult(test: test, alerts: 0, problems: ["the rule was not compiled"])
            }
            // The pipeline's own processor, on the test's fixed baseline, with no sinks.
            var processor = Processor(baseline: FixedSnapshot(metrics: metrics, stats: test.baseline),
                                      rules: RuleEngine(ruleSet: RuleSet(rules: [rule], lists: set.lists)),
                                      router: AlertRouter(routes: [:]), sinkNames: [], everywhere: [], excludeAlerting: true,
                                      now: { RuleTestCase.epoch })
            var problems: [String] = []
            for (i, line) in test.events.enumerated() {
                var text = line
                let decoded = text.withUTF8 { decoder.decode(UnsafeRawBufferPointer($0), origin: Event.Origin(source: test.name, line: Int64(i + 1))) }
                switch decoded {
                case .event(let event): processor.process(event)
                case .reject(let reason, let detail): problems.append("event \(i + 1) was rejected: \(reason.rawValue): \(detail)")
                }
            }
            let alerts = Int(processor.counts.alerts.values.reduce(0, +))
            return RuleTestResult(test: test, alerts: alerts, problems: problems)
        }
    }
}

/// A ready snapshot with fixed numbers, by metric name (or the field a metric reads); events do
/// not change it.
struct FixedSnapshot: TrainableBaseline {
    var byIndex: [Int: MetricStats] = [:]

    init(metrics: [MetricDefinition], stats: [String: MetricStats]) {
        for (name, s) in stats {
            let canonical = fieldAliases[name] ?? name
            if let m = metrics.firstIndex(where: { $0.name == name || $0.name == canonical || $0.path == canonical }) { byIndex[m] = s }
        }
    }

    func stats(metric: Int, for event: Event) -> MetricStats? { byIndex[metric] }
    mutating func advance(to clock: EventTime) -> Bool { false }
    mutating func observe(_ event: Event, training: Training) {}
    mutating func takeShifts() -> [BaselineShift] { [] }
}
