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
        for e in events { model.observe(e, trains: true) }
        report("baseline update (7 metrics, global + segment)", t0, count: events.count)
        model.recompute(at: events.last!.time)

        // Rule evaluation of the bundled set.
        var engine = RuleEngine(ruleSet: ruleSet)
        var detections: [Detection] = []
        t0 = DispatchTime.now()
        for e in events {
            detections.removeAll(keepingCapacity: true)
            engine.evaluate(e, baseline: model, into: &detections)
        }
        report("rule evaluation (\(ruleSet.rules.count) bundled rules)", t0, count: events.count)

        // Recompute: 14 days x 10 metrics x 10 segments of full buckets.
        let metrics = MetricDefinition.defaults + ["temperature", "max_tokens", "input_language_score"].map { MetricDefinition(name: $0, path: $0) }
        var bigFields = FieldTable()
        var settings = BaselineSettings()
        settings.maxSegments = 10
        var big = BaselineModel(settings: settings, metrics: metrics, fields: &bigFields)
        var rng = SplitMix64(seed: 3)
        let dayMicros = EventTime.microsPerDay
        for day in 0..<14 {
            for segment in 0..<10 {
                for k in 0..<1_000 {
                    var values = Array(repeating: FieldValue.missing, count: bigFields.count)
                    for m in metrics where m.kind == .value {
                        values[bigFields.existingSlot(for: m.path)!] = .number(exp(4 + 1.5 * (rng.unit() - 0.5) * 4))
                    }
                    values[bigFields.existingSlot(for: "tool_calls")!] = .list(Array(repeating: .null, count: Int(rng.next() % 3)))
                    values[FieldTable.modelID] = .string("model-\(segment)")
                    big.observe(Event(time: EventTime(micros: Int64(day) * dayMicros + Int64(k) * 1_000_000), values: values,
                                      origin: .init(source: "b", line: 0)), trains: true)
                }
            }
        }
        let rounds = 5
        t0 = DispatchTime.now()
        for _ in 0..<rounds { big.recompute(at: EventTime(micros: 13 * dayMicros + 1)) }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 / Double(rounds)
        print(label("baseline recompute") + String(format: "%9.1f ms     (%d metrics x %d segments + global x 14 days, %lld samples)",
                                                   ms, metrics.count, big.segments.count - 1, big.entries.first?.stats.n ?? 0))
    }

    static func report(_ what: String, _ start: DispatchTime, count: Int) {
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / Double(max(count, 1))
        print(label(what) + String(format: "%9.0f ns/event  (%.0f events/s)", ns, 1e9 / ns))
    }

    static func label(_ s: String) -> String { s.count >= 54 ? s + " " : s + String(repeating: " ", count: 54 - s.count) }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
