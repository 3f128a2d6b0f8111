@testable import Baseline
import Foundation
import IWDetectCore
import Testing

/// The recompute keeps folds between snapshots (``WindowFolds``); its snapshots must be those of
/// the same fold tree computed from scratch, to the bit, and must cover exactly the window's hours.
@Suite struct BaselineModelRecomputeTests {
    /// The snapshot as the fold tree gives it computed from nothing: the head (the hours from the
    /// window's first to the end of its day, folded from the right), the whole days (each the left
    /// fold of its hours, folded from the left) and the clock's day (from the left), merged in that
    /// order; with `plain`, the window's hours simply folded from the left (or, with
    /// `descending`, from the newest), which must give the same counts, extremes and quantiles.
    static func reference(_ model: BaselineModel, at clock: EventTime, plain: Bool = false, descending: Bool = false) -> [[MetricStats?]] {
        let e = clock.hour
        let windowStart = e - model.settings.windowHours + 1
        func hour(_ h: Int64, _ s: Int, _ m: Int) -> DailyBucket? { model.bucket(hour: h, segment: s, metric: m) }
        func leftFold(_ range: ClosedRange<Int64>, _ s: Int, _ m: Int) -> DailyBucket {
            var r = DailyBucket()
            for h in range { if let b = hour(h, s, m) { r.merge(b) } }
            return r
        }
        func start(_ s: Int, _ m: Int) -> Int64 {
            guard let samples = model.settings.windowSamples else { return windowStart }
            var total: Int64 = 0
            for h in stride(from: e, through: windowStart, by: -1) {
                total += hour(h, s, m)?.stats.count ?? 0
                if total >= samples { return h }
            }
            return windowStart
        }
        func floorDay(_ h: Int64) -> Int64 { h >= 0 ? h / 24 : (h + 1) / 24 - 1 }
        return model.segments.indices.map { s in
            model.metrics.indices.map { m in
                let a = start(s, m)
                var r = DailyBucket()
                let (da, de) = (floorDay(a), floorDay(e))
                if plain || da == de {
                    for h in descending ? Array((a...e).reversed()) : Array(a...e) { if let b = hour(h, s, m) { r.merge(b) } }
                } else {
                    var middleStart = da
                    if a != da * 24 {
                        for h in stride(from: da * 24 + 23, through: a, by: -1) {
                            if var b = hour(h, s, m) { b.merge(r); r = b }
                        }
                        middleStart = da + 1
                    }
                    var middle = DailyBucket()
                    for d in middleStart..<de { middle.merge(leftFold(d * 24...(d * 24 + 23), s, m)) }
                    r.merge(middle)
                    r.merge(leftFold(de * 24...e, s, m))
                }
                let withData = (a...e).filter { hour($0, s, m) != nil }
                guard let first = withData.first, let last = withData.last else { return nil }
                return BaselineModel.stats(r, id: model.snapshotID, settings: model.settings, segment: model.segments[s], span: Int(last - first + 1))
            }
        }
    }

    /// Every number of a snapshot as bits, so that equal means bit for bit.
    static func bits(_ snapshot: [[MetricStats?]]) -> [[[UInt64]]] {
        snapshot.map { $0.map { st in
            guard let st else { return [] }
            return [UInt64(st.n), st.mean.bitPattern, st.std.bitPattern, st.p95.bitPattern, st.p99.bitPattern,
                    st.min.bitPattern, st.max.bitPattern, UInt64(st.span), st.ready ? 1 : 0]
        } }
    }

    /// What does not depend on the order of merges: counts, extremes, quantiles (integer bins).
    static func exact(_ snapshot: [[MetricStats?]]) -> [[[Double]]] {
        snapshot.map { $0.map { st in
            guard let st else { return [] }
            return [Double(st.n), st.min, st.max, st.p95, st.p99, st.robust.median, Double(st.span)]
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

    static let windows: [(window: EventTime.Duration, samples: Int64?)] = [
        (.hours(24), nil), (.hours(30), nil), (.days(4), nil), (.days(7), nil), (.days(4), 150), (.hours(30), 40),
    ]

    /// Days of recomputes every other hour, with late events into closed hours of the window (and
    /// before it), a segment that appears midway, some recomputes twice at the same clock and one
    /// at an earlier clock: every snapshot equals the tree computed from scratch, and covers the
    /// window's hours exactly.
    @Test(arguments: 0..<BaselineModelRecomputeTests.windows.count)
    func everySnapshotIsTheTreeFromScratchToTheBit(case index: Int) {
        let (window, samples) = BaselineModelRecomputeTests.windows[index]
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.window = window
        settings.windowSamples = samples
        settings.minSamples = 20
        let windowDays = settings.windowDays
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        var rng = SplitMix64(seed: UInt64(index + 1))
        let hour: Int64 = 3_600_000_000
        let day: Int64 = 24 * hour
        var recomputes = 0
        func check(at clock: EventTime) {
            model.recompute(at: clock)
            recomputes += 1
            let expected = BaselineModelRecomputeTests.reference(model, at: clock)
            let (got, want) = (BaselineModelRecomputeTests.bits(model.snapshot), BaselineModelRecomputeTests.bits(expected))
            let differing = zip(got.joined(), want.joined()).filter { $0 != $1 }.count
            #expect(got == want, "snapshot \(model.snapshotID) at \(clock): \(differing) of \(want.joined().count) entries differ")
            #expect(model.snapshot == expected)
            #expect(BaselineModelRecomputeTests.exact(model.snapshot)
                        == BaselineModelRecomputeTests.exact(BaselineModelRecomputeTests.reference(model, at: clock, plain: true)))
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
                    // A late event: into a closed hour of the window, or one before it.
                    let late = now - hour * Int64(1 + rng.next() % UInt64(min(d * 24, (windowDays + 3) * 24)))
                    model.observe(BaselineModelRecomputeTests.event(at: late, segment: "a", rng: &rng, fields: fields),
                                  training: .train)
                }
                guard h % 2 == 1 else { continue }
                check(at: EventTime(micros: now + 30 * 60_000_000))
                if rng.unit() < 0.1 { check(at: EventTime(micros: now + 40 * 60_000_000)) }
            }
            if d == windowDays + 2 { check(at: EventTime(micros: (d - 2) * day + 5 * hour)) }  // a clock from the past
        }
        #expect(recomputes > 12 * Int(days))
        let last = EventTime(micros: days * day - 1)
        model.recompute(at: last)
        #expect(BaselineModelRecomputeTests.bits(BaselineModelRecomputeTests.reference(model, at: last, plain: true, descending: true))
                    != BaselineModelRecomputeTests.bits(model.snapshot),
                "the data is such that another order of merges gives other bits")
    }

    /// An admission folds quarantined values into some hours and empties a shifted metric's older
    /// ones: the folds it leaves are still those of the tree from scratch, before and after.
    @Test func anAdmissionKeepsOnlyTheFoldsItLeavesValid() {
        var fields = FieldTable()
        var settings = BaselineSettings()
        settings.window = .days(4)
        settings.minSamples = 20
        settings.quarantine.persist = .hours(6)
        settings.quarantine.minUsers = 3
        settings.quarantine.minSessions = 3
        settings.quarantine.minShare = 0.05
        var model = BaselineModel(settings: settings, metrics: MetricDefinition.defaults, fields: &fields)
        var rng = SplitMix64(seed: 77)
        let hour: Int64 = 3_600_000_000
        var shifts: [BaselineShift] = []
        for h in Int64(0)..<(8 * 24) {
            for k in Int64(0)..<10 {
                var e = BaselineModelRecomputeTests.event(at: h * hour + k * 300_000_000, segment: k % 2 == 0 ? "a" : "b", rng: &rng, fields: fields)
                e.values[FieldTable.userID] = .string("u\(k)")
                e.values[FieldTable.sessionID] = .string("s\(k)")
                // From day 5, segment a's outputs triple: quarantined until admitted.
                let shifted = h >= 5 * 24 && k % 2 == 0 && shifts.isEmpty
                if shifted, let slot = fields.existingSlot(for: "output_tokens"), case .number(let x) = e.values[slot] { e.values[slot] = .number(3 * x) }
                model.observe(e, training: shifted ? .quarantine : .train)
            }
            model.recompute(at: EventTime(micros: h * hour + 59 * 60_000_000))
            shifts += model.takeShifts()
            #expect(BaselineModelRecomputeTests.bits(model.snapshot) == BaselineModelRecomputeTests.bits(BaselineModelRecomputeTests.reference(model, at: EventTime(micros: h * hour + 59 * 60_000_000))),
                    "hour \(h)")
        }
        #expect(shifts.count == 1 && shifts.first?.moved.map(\.metric) == ["output_tokens"], "\(shifts)")
    }
}
