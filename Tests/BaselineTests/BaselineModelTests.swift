import Baseline
import IWDetectCore
import Testing

@Suite struct BaselineModelTests {
    func event(_ seconds: Int64, output: Double?, fields: FieldTable) -> Event {
        var values = Array(repeating: FieldValue.missing, count: fields.count)
        if let output { values[fields.existingSlot(for: "output_tokens")!] = .number(output) }
        return Event(time: EventTime(micros: seconds * 1_000_000), values: values, origin: .init(source: "t", line: 1))
    }

    @Test func recomputesHourlyInStreamTimeAndReportsReadiness() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 10
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        let first = model.advance(to: EventTime(micros: 0))
        #expect(first)
        for i in 0..<9 { model.observe(event(Int64(i) * 60, output: 100, fields: fields), trains: true) }
        let sameHour = model.advance(to: EventTime(micros: 3_599_000_000))
        #expect(!sameHour, "still the same hour")
        let nextHour = model.advance(to: EventTime(micros: 3_600_000_000))
        #expect(nextHour)
        #expect(model.snapshot[m]?.n == 9)
        #expect(model.snapshot[m]?.ready == false, "9 samples, 10 needed")
        model.observe(event(3700, output: 100, fields: fields), trains: true)
        model.observe(event(3800, output: nil, fields: fields), trains: true)
        model.observe(event(3900, output: 1e6, fields: fields), trains: false)
        let later = model.advance(to: EventTime(micros: 7_200_000_000))
        #expect(later)
        #expect(model.snapshot[m]?.n == 10)
        #expect(model.snapshot[m]?.ready == true)
        #expect(model.snapshot[m]?.max == 100, "the excluded event did not train the baseline")
        #expect(model.excluded == 1)
        #expect(model.skipped[m] == 1, "a missing value is skipped and counted, never zero")
    }

    @Test func aSnapshotCoversOnlyTheLastWindowDays() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.windowDays = 2
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        let day: Int64 = 86_400
        model.observe(event(0, output: 1000, fields: fields), trains: true)        // day 0
        model.observe(event(day + 10, output: 10, fields: fields), trains: true)   // day 1
        model.observe(event(2 * day + 10, output: 20, fields: fields), trains: true)  // day 2
        model.recompute(at: EventTime(micros: (2 * day + 20) * 1_000_000))
        #expect(model.snapshot[m]?.n == 2)
        #expect(model.snapshot[m]?.max == 20)
        #expect(model.snapshotWindow == 1...2)
    }
}
