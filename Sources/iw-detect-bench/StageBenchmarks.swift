import Baseline
import Foundation
import IWDetectCore
import Ingest
import Pipeline
import Rules

/// Per-stage figures, each stage alone on in-memory data (release build: `scripts/bench`).
@main
struct StageBenchmarks {
    static func main() throws {
        if CommandLine.arguments.dropFirst().first == "recompute" {
            return recomputeByWindow(rounds: CommandLine.arguments.dropFirst(2).first.flatMap(Int.init) ?? 3)
        }
        if CommandLine.arguments.dropFirst().first == "rollups" {
            return try rollupsStage(rounds: CommandLine.arguments.dropFirst(2).first.flatMap(Int.init) ?? 5)
        }
        let lines = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 200_000
        let rulesDir = CommandLine.arguments.dropFirst(2).first ?? "rules"
        var options = TrafficGenerator.Options()
        options.lines = lines
        options.seed = 1
        options.interval = .seconds(1)
        var generator = TrafficGenerator(options: options)
        var text: [String] = []
        generator.generate { text.append($0) }

        var fields = FieldTable()
        var model = BaselineModel(settings: BaselineSettings(), metrics: MetricDefinition.defaults, fields: &fields)
        let loaded = RuleLoader.load(paths: [rulesDir], metrics: MetricDefinition.defaults, fields: fields)
        guard let ruleSet = loaded.ruleSet else { throw BenchError("rules did not load: \(loaded.diagnostics)") }
        let decoder = JSONLineDecoder(fields: loaded.fields, maxLineBytes: 1 << 20)

        // Decode, in place from one buffer with the reader's padding, as ingest does.
        var buffer: [UInt8] = []
        var spans: [Range<Int>] = []
        for line in text {
            let start = buffer.count
            buffer.append(contentsOf: line.utf8)
            spans.append(start..<buffer.count)
            buffer.append(0x0A)
        }
        buffer.append(contentsOf: repeatElement(0, count: LineReader.padding))
        // Timed: each event is dropped at once, as in ingest (keeping 200k events alive would
        // measure page faults of fresh memory instead).
        var accepted = 0
        var t0 = DispatchTime.now()
        buffer.withUnsafeBytes { raw in
            for (i, span) in spans.enumerated() {
                let bytes = UnsafeRawBufferPointer(rebasing: raw[span])
                if case .event = decoder.decode(bytes, origin: Event.Origin(source: "b", line: Int64(i)), padded: true) { accepted += 1 }
            }
        }
        report("decode (simdjson + field extraction + Swift values)", t0, count: lines)
        guard accepted == lines else { throw BenchError("\(lines - accepted) generated lines were rejected") }
        var events: [Event] = []
        events.reserveCapacity(lines)
        buffer.withUnsafeBytes { raw in
            for (i, span) in spans.enumerated() {
                if case .event(let e) = decoder.decode(UnsafeRawBufferPointer(rebasing: raw[span]), origin: Event.Origin(source: "b", line: Int64(i)), padded: true) {
                    events.append(e)
                }
            }
        }

        // Baseline bucket updates.
        t0 = DispatchTime.now()
        for e in events { model.observe(e, training: .train) }
        report("baseline update (7 metrics, global + segment)", t0, count: events.count)
        model.recompute(at: events.last!.time)

        // Rule evaluation of the bundled set.
        var engine = RuleEngine(ruleSet: ruleSet)
        engine.deferBaselineEvidence = true  // as the pipeline runs it
        var detections: [Detection] = []
        t0 = DispatchTime.now()
        for e in events {
            detections.removeAll(keepingCapacity: true)
            engine.evaluate(e, baseline: model, into: &detections)
        }
        report("rule evaluation (\(ruleSet.rules.count) bundled rules)", t0, count: events.count)

        // Recompute: 14 days x 10 metrics x 10 segments of full buckets, at the same clock.
        var big = RecomputeBench(windowDays: 14)
        for day in 0..<14 { big.fill(day: Int64(day), hour: 0, perSegment: 1_000) }
        let rounds = 5
        t0 = DispatchTime.now()
        for _ in 0..<rounds { big.model.recompute(at: EventTime(micros: 13 * EventTime.microsPerDay + 1)) }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 / Double(rounds)
        print(label("baseline recompute") + String(format: "%9.1f ms     (%d metrics x %d segments + global x 14 days, %lld samples)",
                                                   ms, big.metrics.count, big.model.segments.count - 1, big.model.entries.first?.stats.n ?? 0))
    }

    /// Recompute time as the window grows: a full window of closed days (1,000 events per
    /// segment and day), then a day of hourly recomputes with 40 events per segment between them,
    /// as ingest does. The day's first recompute is also shown alone: it is the one that sees a
    /// new set of whole days (and a new first day, whose right folds it tabulates).
    static func recomputeByWindow(rounds: Int) {
        print("baseline recompute by window (10 metrics x 10 segments + global; median of \(rounds) rounds):")
        for windowDays: Int64 in [7, 14, 28] {
            var perRecompute: [Double] = []
            var first: [Double] = []
            var rest: [Double] = []
            for _ in 0..<rounds {
                var bench = RecomputeBench(windowDays: windowDays)
                for day in 0..<(windowDays - 1) { bench.fill(day: day, hour: 0, perSegment: 1_000) }
                var total: UInt64 = 0
                for hour: Int64 in 0..<24 {
                    bench.fill(day: windowDays - 1, hour: hour, perSegment: 40)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    bench.model.recompute(at: EventTime(micros: (windowDays - 1) * EventTime.microsPerDay + hour * 3_600_000_000 + 1))
                    let ns = DispatchTime.now().uptimeNanoseconds - t0
                    if hour == 0 { first.append(Double(ns) / 1e6) }
                    total += ns
                }
                perRecompute.append(Double(total) / 24 / 1e6)
                rest.append((Double(total) / 1e6 - first.last!) / 23)
            }
            print(label("  window \(windowDays)d") + String(format: "%9.2f ms per recompute over a day of 24 (the day's first %.2f, the other 23 %.2f)",
                                                                 median(perRecompute), median(first), median(rest)))
        }
    }

    /// The dashboard rollups alone on the realistic profile's events (sparse traffic: about 33
    /// events per five minutes): `observe` per event, and the commit's `save` every 20,000 events
    /// into a database in a temporary directory, as ingest batches them.
    static func rollupsStage(rounds: Int) throws {
        var generator = TrafficGenerator(options: TrafficGenerator.Options(profile: .realistic))
        var text: [String] = []
        generator.generate { text.append($0) }
        var fields = FieldTable()
        let probe = try Database(path: ":memory:")
        try Migrator.migrate(probe, Rollups.migrations)
        _ = try Rollups(db: probe, metrics: MetricDefinition.defaults, fields: &fields)
        let decoder = JSONLineDecoder(fields: fields, maxLineBytes: 1 << 20)
        var events: [Event] = []
        for (i, line) in text.enumerated() {
            var bytes = Array(line.utf8)
            bytes.append(contentsOf: repeatElement(0, count: LineReader.padding))
            let decoded = bytes.withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0[0..<line.utf8.count]), origin: Event.Origin(source: "b", line: Int64(i)), padded: true) }
            if case .event(let e) = decoded { events.append(e) }
        }
        var observe: [Double] = [], save: [Double] = []
        for _ in 0..<rounds {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("iw-bench-rollups-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let db = try Database(path: dir.appendingPathComponent("r.db").path)
            try Migrator.migrate(db, Rollups.migrations)
            var f = fields
            var rollups = try Rollups(db: db, metrics: MetricDefinition.defaults, fields: &f)
            var inObserve: UInt64 = 0, inSave: UInt64 = 0
            var i = 0
            while i < events.count {
                let end = min(i + 20_000, events.count)
                var t0 = DispatchTime.now().uptimeNanoseconds
                for e in events[i..<end] { rollups.observe(e) }
                inObserve += DispatchTime.now().uptimeNanoseconds - t0
                // The commit itself is not counted: ingest commits the batch anyway.
                try db.transaction {
                    t0 = DispatchTime.now().uptimeNanoseconds
                    try rollups.save()
                    inSave += DispatchTime.now().uptimeNanoseconds - t0
                }
                i = end
            }
            observe.append(Double(inObserve) / Double(events.count))
            save.append(Double(inSave) / Double(events.count))
        }
        print(label("rollups observe (realistic, \(events.count) events)") + String(format: "%9.0f ns/event", median(observe)))
        print(label("rollups save (a batch of 20,000 events)") + String(format: "%9.0f ns/event", median(save)))
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    static func report(_ what: String, _ start: DispatchTime, count: Int) {
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / Double(max(count, 1))
        print(label(what) + String(format: "%9.0f ns/event  (%.0f events/s)", ns, 1e9 / ns))
    }

    static func label(_ s: String) -> String { s.count >= 54 ? s + " " : s + String(repeating: " ", count: 54 - s.count) }
}

/// A baseline of 10 metrics over 10 model segments, filled with synthetic log-normal values.
struct RecomputeBench {
    let metrics = MetricDefinition.defaults + ["temperature", "max_tokens", "input_language_score"].map { MetricDefinition(name: $0, path: $0) }
    var fields = FieldTable()
    var model: BaselineModel
    var rng = SplitMix64(seed: 3)

    init(windowDays: Int64) {
        var settings = BaselineSettings()
        settings.maxSegments = 10
        settings.windowDays = windowDays
        model = BaselineModel(settings: settings, metrics: metrics, fields: &fields)
    }

    /// Adds `perSegment` events to each segment, a second apart from the start of `hour` of `day`.
    mutating func fill(day: Int64, hour: Int64, perSegment: Int) {
        for segment in 0..<10 {
            for k in 0..<perSegment {
                var values = Array(repeating: FieldValue.missing, count: fields.count)
                for m in metrics where m.kind == .value {
                    values[fields.existingSlot(for: m.path)!] = .number(exp(4 + 1.5 * (rng.unit() - 0.5) * 4))
                }
                values[fields.existingSlot(for: "tool_calls")!] = .list(Array(repeating: .null, count: Int(rng.next() % 3)))
                values[FieldTable.modelID] = .string("model-\(segment)")
                let time = EventTime(micros: day * EventTime.microsPerDay + hour * 3_600_000_000 + Int64(k) * 1_000_000)
                model.observe(Event(time: time, values: values, origin: .init(source: "b", line: 0)), training: .train)
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
