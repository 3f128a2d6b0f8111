@testable import Baseline
import Foundation
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

    @Test func aSnapshotCoversOnlyTheLastWindowOfHours() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.windowDays = 2
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        let day: Int64 = 86_400
        model.observe(outputEvent(0, output: 1000, fields: fields), training: .train)        // hour 0
        model.observe(outputEvent(day + 10, output: 10, fields: fields), training: .train)   // hour 24
        model.observe(outputEvent(2 * day + 10, output: 20, fields: fields), training: .train)  // hour 48
        model.recompute(at: EventTime(micros: (2 * day + 20) * 1_000_000))
        #expect(model.snapshot[0][m]?.n == 2)
        #expect(model.snapshot[0][m]?.max == 20)
        #expect(model.snapshotWindow == 1...48, "48 hours ending with the clock's")
        // The window slides by the hour: hour 24 stays in it until the clock's hour is 72.
        model.recompute(at: EventTime(micros: (3 * day - 1) * 1_000_000))
        #expect(model.snapshot[0][m]?.n == 2 && model.snapshotWindow == 24...71)
        model.recompute(at: EventTime(micros: 3 * day * 1_000_000))
        #expect(model.snapshot[0][m]?.n == 1 && model.snapshot[0][m]?.max == 20)
    }

    /// A window of one day used to be the clock's UTC day, empty at every midnight; now it is the
    /// last 24 hours, and a steady stream's baseline keeps its samples across midnight.
    @Test func aOneDayWindowDoesNotEmptyAtMidnight() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.windowDays = 1
        settings.minSamples = 20
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        var counts: [Int64] = []
        for minute in Int64(0)..<(48 * 60) {
            model.observe(outputEvent(minute * 60, output: 100 + Double(minute % 7), fields: fields), training: .train)
            if model.advance(to: EventTime(micros: minute * 60_000_000)), minute >= 24 * 60 { counts.append(model.snapshot[0][m]?.n ?? 0) }
        }
        #expect(counts.count == 24)
        #expect(counts.allSatisfy { $0 == 23 * 60 + 1 }, "23 full hours and the clock's first minute, at every hour: \(counts)")
        #expect(model.snapshot[0][m]?.ready == true)
    }

    /// `window_samples`: the newest hours holding at least that many samples, per metric and
    /// segment, within the window.
    @Test func aSampleWindowCoversTheNewestHoursHoldingThatManySamples() throws {
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        // Hour k (0...49) holds 10 samples of value k, except hours 3...30, which are empty.
        func filled(samples: Int64) -> BaselineModel {
            var fields = FieldTable()
            var settings = BaselineSettings()
            settings.windowSamples = samples
            settings.minSamples = 10
            var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
            for hour in Int64(0)..<50 where !(3...30).contains(hour) {
                for i in Int64(0)..<10 { model.observe(outputEvent(hour * 3600 + i * 60, output: Double(hour), model: "a", fields: fields), training: .train) }
            }
            model.recompute(at: EventTime(micros: (49 * 3600 + 1_000) * 1_000_000))
            return model
        }
        let st = try #require(filled(samples: 150).snapshot[0][m])
        #expect(st.n == 150 && st.min == 35 && st.max == 49, "hours 35...49: the newest 15 hours of 10")
        #expect(st.span == 15)
        // Fewer samples than asked in the whole window: all of it.
        let all = filled(samples: 1_000)
        #expect(all.snapshot[0][m]?.n == 220 && all.snapshot[0][m]?.min == 0 && all.snapshot[0][m]?.span == 50)
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
    @Test func readinessNeedsEnoughSamplesAndASpan() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.minSamples = 10
        settings.minSpan = .hours(6)
        settings.window = .hours(24)
        settings.segmentField = nil
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        func observe(_ seconds: Int64) { model.observe(outputEvent(seconds, output: 100, fields: fields), training: .train) }
        for i in 0..<500 { observe(22 * 3600 + Int64(i)) }  // 500 samples in one hour, 22:00
        model.recompute(at: EventTime(micros: 23 * 3_600_000_000))
        #expect(model.snapshot[0][m]?.ready == false, "however many samples, one busy hour is not a picture of normal")
        #expect(model.whyNotReady(model.snapshot[0][m]) == "500 samples over 1 h, needs a span of 6h")
        observe(27 * 3600 + 5)  // 03:00 the next day: 22:00 through 03:00 is 6 hours
        model.recompute(at: EventTime(micros: (27 * 3600 + 10) * 1_000_000))
        #expect(model.snapshot[0][m]?.ready == true, "readiness holds across midnight")
        #expect(model.snapshot[0][m]?.span == 6)
        #expect(model.whyNotReady(nil) == "no samples in the window")
    }
}

@Suite struct BaselineHourlyMigrationTests {
    /// A database written with daily buckets: after the migration each day's bucket is its day's
    /// first hour (so it leaves a 14-day window when its day would have), snapshot windows are in
    /// hours, days with samples read as 24-hour spans, and a quarantine's rows are keyed by hour
    /// (its seasonal ones stay by day).
    @Test func dailyBucketsBecomeTheirDaysFirstHour() throws {
        let path = NSTemporaryDirectory() + "iw-detect-hours-\(UUID().uuidString).db"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let db = try Database(path: path)
        try Migrator.migrate(db, Array(BaselineStore.migrations.dropLast()))
        var bucket = DailyBucket()
        for x in [100.0, 200, 300] { bucket.add(x) }
        let day: Int64 = 20_000
        try db.run("INSERT INTO baseline_buckets(metric, segment, day, count, mean, m2, min, max, sketch) VALUES ('output_tokens', '', ?, ?, ?, ?, ?, ?, ?)",
                   [.int(day)] + BaselineStore.bucketValues(bucket))
        try db.run("INSERT INTO baseline_snapshots(id, window_start_day, window_end_day, computed_at_stream) VALUES (7, ?, ?, '2024-10-04T10:00:00.000Z')",
                   [.int(day - 13), .int(day)])
        try db.run("INSERT INTO baseline_stats(snapshot_id, metric, segment, n, mean, std, p95, p99, min, max, ready, days) VALUES (7, 'output_tokens', '', 3, 200, 81, 300, 300, 100, 300, 1, 3)")
        try db.run("INSERT INTO baseline_quarantine(segment, start, last, events, seen, users, sessions) VALUES ('', ?, ?, 3, 9, '[]', '[]')",
                   [.int(day * EventTime.microsPerDay), .int(day * EventTime.microsPerDay + 1)])
        for bin: Int64 in [-1, 5] {
            try db.run("INSERT INTO baseline_quarantine_buckets(segment, day, metric, bin, count, mean, m2, min, max, sketch) VALUES ('', ?, 'output_tokens', ?, ?, ?, ?, ?, ?, ?)",
                       [.int(day), .int(bin)] + BaselineStore.bucketValues(bucket))
        }
        try Migrator.migrate(db, BaselineStore.migrations)

        var fields = FieldTable()
        var model = BaselineModel(settings: BaselineSettings(), metrics: MetricDefinition.defaults, fields: &fields)
        try BaselineStore.load(&model, from: db)
        let m = MetricDefinition.defaults.firstIndex { $0.name == "output_tokens" }!
        #expect(model.hours.keys.sorted() == [day * 24])
        #expect(model.bucket(hour: day * 24, segment: 0, metric: m) == bucket)
        #expect(model.snapshotID == 7 && model.snapshotWindow == (day - 13) * 24...(day * 24 + 23))
        #expect(model.snapshot[0][m]?.span == 72 && model.snapshot[0][m]?.n == 3)
        #expect(model.quarantines[0]?.hours.keys.sorted() == [day * 24])
        let periods = try db.query("SELECT period, bin FROM baseline_quarantine_periods ORDER BY bin") { "\($0.int(0)) \($0.int(1))" }
        #expect(periods == ["\(day * 24) -1", "\(day) 5"])

        // In the window until the clock's day is 14 days later, as the daily bucket was.
        model.recompute(at: EventTime(micros: (day + 13) * EventTime.microsPerDay + 23 * EventTime.microsPerHour))
        #expect(model.snapshot[0][m]?.n == 3, "the bucket (the quarantine's values do not train)")
        model.recompute(at: EventTime(micros: (day + 14) * EventTime.microsPerDay))
        #expect(model.snapshot[0][m] == nil)
    }

    /// A corrupt hour, season or quarantine row stops the load with an error naming it, where
    /// it would have trapped (a negative count packed) or merged nothing (another alpha).
    @Test func aCorruptBucketRowIsAnErrorNamingIt() throws {
        var good = DailyBucket()
        for x in [100.0, 200, 300] { good.add(x) }
        var otherAlpha = DailyBucket(stats: good.stats, sketch: DDSketch(alpha: 0.01))
        for x in [100.0, 200, 300] { otherAlpha.sketch.add(x) }
        var negative = good
        negative.sketch.positive.counts[negative.sketch.positive.counts.count - 1] = -1
        let rows: [(String, [UInt8])] = [("another alpha, dense", DDSketch.dense(otherAlpha.sketch)), ("another alpha, packed", otherAlpha.sketch.packed()),
                                         ("a negative count, dense", DDSketch.dense(negative.sketch)), ("garbage", [9, 9, 9])]
        for (what, sketch) in rows {
            let path = NSTemporaryDirectory() + "iw-detect-corrupt-\(UUID().uuidString).db"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let db = try Database(path: path)
            try Migrator.migrate(db, BaselineStore.migrations)
            let s = good.stats
            try db.run("INSERT INTO baseline_hour_buckets(metric, segment, hour, count, mean, m2, min, max, sketch) VALUES ('output_tokens', '', 480000, ?, ?, ?, ?, ?, ?)",
                       [.int(s.count), .double(s.mean), .double(s.m2), .double(s.min), .double(s.max), .blob(sketch)])
            var fields = FieldTable()
            var model = BaselineModel(settings: BaselineSettings(), metrics: MetricDefinition.defaults, fields: &fields)
            #expect(throws: DatabaseError.self, "\(what)") { try BaselineStore.load(&model, from: db) }
            do { try BaselineStore.load(&model, from: db) } catch {
                #expect("\(error)".contains("baseline bucket output_tokens//hour 480000 has a corrupt sketch"), "\(what): \(error)")
            }
        }
    }
}
