import Alerts
import Baseline
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Ingest
import Pipeline
import Rules
import Testing

/// The processing stage alone: events in, alerts out, no database, no files.
@Suite struct ProcessorTests {
    func processor(_ yaml: String) throws -> (Processor<BaselineModel>, JSONLineDecoder) {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 5
        settings.segmentField = nil
        let baseline = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let loaded = RuleLoader.load(sources: [("r.yaml", yaml)], metrics: MetricDefinition.defaults, fields: fields)
        let set = try #require(loaded.ruleSet, "\(loaded.diagnostics)")
        let p = Processor(baseline: baseline, rules: RuleEngine(ruleSet: set), router: AlertRouter(routes: AlertRouter.defaultRoutes),
                          sinkNames: ["siem", "stdout"], everywhere: ["stdout"], excludeAlerting: true,
                          now: { EventTime(micros: 42) })
        return (p, JSONLineDecoder(fields: loaded.fields, maxLineBytes: 1 << 16))
    }

    func events(_ lines: [String], _ decoder: JSONLineDecoder) -> [Event] {
        lines.enumerated().compactMap { i, line in
            var text = line
            guard case .event(let e) = text.withUTF8({ decoder.decode(UnsafeRawBufferPointer($0), origin: .init(source: "t", line: Int64(i + 1))) }) else { return nil }
            return e
        }
    }

    @Test func alertsAreRoutedDedupedAndHeldUntilTaken() throws {
        var (p, decoder) = try processor("- {name: inj, severity: high, condition: 'injection_score > 0.7 AND count(session_id, 5m) > 1'}")
        for e in events((0..<4).map { logLine(time: at($0 * 10), user: "a", session: "s", injection: 0.9) }, decoder) { p.process(e) }
        #expect(p.counts.events == 4 && p.counts.detections == 3)
        #expect(p.counts.alerts == ["inj\thigh": 1] && p.counts.suppressed == ["inj": 2])
        let taken = p.takeAlerts()
        #expect(taken.map(\.channels) == [["siem", "stdout"]], "high → slack and siem (slack not configured), stdout everywhere")
        #expect(taken.first?.0.json.serialized().contains("\"detected_at\":\"1970-01-01T00:00:00.000Z\"") == true, "the injected clock")
        #expect(p.takeAlerts().isEmpty)
    }

    @Test func eventsThatAlertDoNotTrainTheBaseline() throws {
        var (p, decoder) = try processor("- {name: big, severity: low, condition: 'output_tokens > 1000'}")
        let lines = (0..<6).map { logLine(time: at($0), outputTokens: 100) } + [logLine(time: at(7), outputTokens: 5000)]
        for e in events(lines, decoder) { p.process(e) }
        #expect(p.baseline.excluded == 1)
        p.baseline.recompute(at: p.rules.clock)
        let m = try #require(p.baseline.metrics.firstIndex { $0.name == "output_tokens" })
        #expect(p.baseline.globalStats(metric: m)?.max == 100, "the alerting event stayed out")
    }
}
