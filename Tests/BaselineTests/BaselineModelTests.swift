import Baseline
import IWDetectCore
import Testing

/// An event at `seconds` with an output-token count and optionally a model.
func outputEvent(_ seconds: Int64, output: Double?, model: String? = nil, fields: FieldTable) -> Event {
    var values = Array(repeating: FieldValue.missing, count: fields.count)
    if let output { values[fields.existingSlot(for: "output_tokens")!] = .number(output) }
    if let model { values[FieldTable.modelID] = .string(model) }
    return Event(time: EventTime(micros: seconds * 1_000_000), values: values, origin: .init(source: "t", line: 1))
}

@Suite struct BaselineModelTests {
    @Test func recomputesHourlyInStreamTimeAndReportsReadiness() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 10
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        let first = model.advance(to: EventTime(micros: 0))
        #expect(first)
        for i in 0..<9 { model.observe(outputEvent(Int64(i) * 60, output: 100, fields: fields), training: .train) }
        let sameHour = model.advance(to: EventTime(micros: 3_599_000_000))
        #expect(!sameHour, "still the same hour")
        let nextHour = model.advance(to: EventTime(micros: 3_600_000_000))
        #expect(nextHour)
        #expect(model.snapshot[0][m]?.n == 9)
        #expect(model.snapshot[0][m]?.ready == false, "9 samples, 10 needed")
        model.observe(outputEvent(3700, output: 100, fields: fields), training: .train)
        model.observe(outputEvent(3800, output: nil, fields: fields), training: .train)
        model.observe(outputEvent(3900, output: 1e6, fields: fields), training: .exclude)
        let later = model.advance(to: EventTime(micros: 7_200_000_000))
        #expect(later)
        #expect(model.snapshot[0][m]?.n == 10)
        #expect(model.snapshot[0][m]?.ready == true)
        #expect(model.snapshot[0][m]?.max == 100, "the excluded event did not train the baseline")
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
        model.observe(outputEvent(0, output: 1000, fields: fields), training: .train)        // day 0
        model.observe(outputEvent(day + 10, output: 10, fields: fields), training: .train)   // day 1
        model.observe(outputEvent(2 * day + 10, output: 20, fields: fields), training: .train)  // day 2
        model.recompute(at: EventTime(micros: (2 * day + 20) * 1_000_000))
        #expect(model.snapshot[0][m]?.n == 2)
        #expect(model.snapshot[0][m]?.max == 20)
        #expect(model.snapshotWindow == 1...2)
    }
}

@Suite struct BaselineSegmentTests {
    @Test func aReadySegmentIsUsedAndAnUnreadyOneFallsBackToTheGlobalBaseline() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 50
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        // A verbose model (answers around 2000 tokens) and a terse one (around 100), few samples of a third.
        for i in 0..<100 {
            model.observe(outputEvent(Int64(i), output: 2000 + Double(i % 10), model: "verbose", fields: fields), training: .train)
            model.observe(outputEvent(Int64(i), output: 100 + Double(i % 10), model: "terse", fields: fields), training: .train)
        }
        for i in 0..<10 { model.observe(outputEvent(Int64(i), output: 5000, model: "new", fields: fields), training: .train) }
        model.recompute(at: EventTime(micros: 200_000_000))
        let verbose = model.stats(metric: m, for: outputEvent(300, output: 0, model: "verbose", fields: fields))
        let terse = model.stats(metric: m, for: outputEvent(300, output: 0, model: "terse", fields: fields))
        let new = model.stats(metric: m, for: outputEvent(300, output: 0, model: "new", fields: fields))
        let none = model.stats(metric: m, for: outputEvent(300, output: 0, model: nil, fields: fields))
        #expect(verbose?.segment == "verbose" && verbose?.n == 100 && verbose?.max == 2009)
        #expect(terse?.segment == "terse" && terse?.max == 109)
        #expect(new?.segment == "" && new?.n == 210, "10 samples are not ready: the global baseline is used")
        #expect(none?.segment == "" && none?.n == 210)
        #expect(model.entries.filter { $0.segment == "new" }.first?.stats.ready == false)
    }

    @Test func segmentsBeyondTheCapTrainOnlyTheGlobalBaseline() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.maxSegments = 2
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        for (i, name) in ["a", "b", "c", "a"].enumerated() { model.observe(outputEvent(Int64(i), output: 1, model: name, fields: fields), training: .train) }
        #expect(model.segments == ["", "a", "b"])
        #expect(model.segmentOverflow == 1)
    }
}

@Suite struct BaselineReadinessTests {
    @Test func readinessNeedsEnoughSamplesAndEnoughDays() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 10
        settings.minDays = 2
        settings.segmentField = nil
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        func observe(_ seconds: Int64) { model.observe(outputEvent(seconds, output: 100, fields: fields), training: .train) }
        for i in 0..<50 { observe(Int64(i)) }  // 50 samples, one day
        model.recompute(at: EventTime(micros: 100_000_000))
        #expect(model.snapshot[0][m]?.ready == false)
        #expect(model.whyNotReady(model.snapshot[0][m]) == "50 samples over 1 day(s), needs 2 days")
        observe(86_400 + 5)  // a second day
        model.recompute(at: EventTime(micros: 86_500 * 1_000_000))
        #expect(model.snapshot[0][m]?.ready == true)
        #expect(model.snapshot[0][m]?.days == 2)
        #expect(model.whyNotReady(nil) == "no samples in the window")
    }
}
