@testable import Baseline
import Foundation
import IWDetectCore
import Testing

/// The recompute keeps the merge of the window's closed days; its snapshots must be those of a
/// full merge of every day, to the bit.
@Suite struct BaselineModelRecomputeTests {
    /// The snapshot as the recompute computed it before it kept the closed days' merge: every day
    /// of the window merged in `order` (ascending, as the recompute does), read after a recompute
    /// at the same clock (which put the open day back among the days).
    static func fullMerge(_ model: BaselineModel, at clock: EventTime, descending: Bool = false) -> [[MetricStats?]] {
        let end = clock.day
        let start = end - model.settings.windowDays + 1
        var merged = Array(repeating: model.emptyBuckets, count: model.segments.count)
        var daysWithData = Array(repeating: Array(repeating: 0, count: model.metrics.count), count: model.segments.count)
        let order = model.days.keys.sorted()
        for day in descending ? order.reversed() : order where day >= start && day <= end {
            for (s, buckets) in model.days[day]!.enumerated() {
                for m in 0..<model.metrics.count where buckets[m].stats.count > 0 {
                    merged[s][m].merge(buckets[m])
                    daysWithData[s][m] += 1
                }
            }
        }
        return merged.enumerated().map { s, buckets in
            buckets.enumerated().map { m, bucket in
                BaselineModel.stats(bucket, id: model.snapshotID, settings: model.settings, segment: model.segments[s], days: daysWithData[s][m])
            }
        }
    }

    /// Every number of a snapshot as bits, so that equal means bit for bit.
    static func bits(_ snapshot: [[MetricStats?]]) -> [[[UInt64]]] {
        snapshot.map { $0.map { st in
            guard let st else { return [] }
            return [UInt64(st.n), st.mean.bitPattern, st.std.bitPattern, st.p95.bitPattern, st.p99.bitPattern,
                    st.min.bitPattern, st.max.bitPattern, UInt64(st.days), st.ready ? 1 : 0]
        } }
    }

    /// An event with every default metric set to a value in 100…272 (enough for the order of
    /// Chan's merges to show in the last bits; a narrow range keeps the sketches small), in a
    /// segment or none.
    static func event(at micros: Int64, segment: String?, rng: inout SplitMix64, fields: FieldTable) -> Event {
        var values = Array(repeating: FieldValue.missing, count: fields.count)
        for m in MetricDefinition.defaults where m.kind == .value {
            values[fields.existingSlot(for: m.path)!] = .number(100 * exp(rng.unit()))
        }
        values[fields.existingSlot(for: "tool_calls")!] = .list(Array(repeating: .null, count: Int(rng.next() % 7)))
        if let segment { values[FieldTable.modelID] = .string(segment) }
        return Event(time: EventTime(micros: micros), values: values, origin: .init(source: "t", line: 1))
    }

    /// Days of recomputes every other hour, with late events into closed days of the window (and before
    /// it), a segment that appears midway, some recomputes twice at the same clock and one at an
    /// earlier clock: every snapshot equals the full merge's.
    @Test(arguments: [1, 4, 9] as [Int64])
    func everySnapshotIsTheFullMergesToTheBit(windowDays: Int64) {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.windowDays = windowDays
        settings.minSamples = 20
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        var rng = SplitMix64(seed: UInt64(windowDays))
        let hour: Int64 = 3_600_000_000
        let day: Int64 = 24 * hour
        var recomputes = 0
        func check(at clock: EventTime) {
            model.recompute(at: clock)
            recomputes += 1
            let expected = BaselineModelRecomputeTests.fullMerge(model, at: clock)
            let (got, want) = (BaselineModelRecomputeTests.bits(model.snapshot), BaselineModelRecomputeTests.bits(expected))
            let differing = zip(got.joined(), want.joined()).filter { $0 != $1 }.count
            #expect(got == want, "snapshot \(model.snapshotID) at \(clock): \(differing) of \(want.joined().count) entries differ")
            #expect(model.snapshot == expected)
        }
        let days = windowDays + 4
        for d in 0..<days {
            for h in 0..<Int64(24) {
                let now = d * day + h * hour
                let segments = d >= 4 ? ["a", "b", "new"] : ["a", "b"]
                for k in 0..<Int64(8) {
                    let segment = k == 7 ? nil : segments[Int(rng.next() % UInt64(segments.count))]
                    model.observe(BaselineModelRecomputeTests.event(at: now + k * 60_000_000, segment: segment, rng: &rng, fields: fields),
                                  training: .train)
                }
                if d > 0, rng.unit() < 0.15 {
                    // A late event: into a closed day of the window, or one before it.
                    let late = d - 1 - Int64(rng.next() % UInt64(min(d, windowDays + 3)))
                    model.observe(BaselineModelRecomputeTests.event(at: late * day + 7 * hour, segment: "a", rng: &rng, fields: fields),
                                  training: .train)
                }
                guard h % 2 == 1 else { continue }
                check(at: EventTime(micros: now + 30 * 60_000_000))
                if rng.unit() < 0.1 { check(at: EventTime(micros: now + 40 * 60_000_000)) }
            }
            if d == windowDays + 2 { check(at: EventTime(micros: (d - 2) * day + 5 * hour)) }  // a clock from the past
        }
        #expect(recomputes > 12 * Int(days))
        if windowDays > 1 {
            let last = EventTime(micros: days * day - 1)
            model.recompute(at: last)
            #expect(BaselineModelRecomputeTests.bits(BaselineModelRecomputeTests.fullMerge(model, at: last, descending: true))
                        != BaselineModelRecomputeTests.bits(model.snapshot),
                    "the data is such that another order of merges gives other bits")
        }
    }
}
