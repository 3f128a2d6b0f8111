import Foundation
#if canImport(Glibc)
import Glibc
#endif
import IWDetectCore

/// Settings of rule evaluation.
public struct EvaluationSettings: Sendable {
    /// How far behind the stream clock an event may be and still be counted by windows. Older
    /// events are still checked by per-event rules, but window functions see them as missing.
    public var allowedLateness: EventTime.Duration = .minutes(5)
    /// Keys each window function tracks at most; events of further keys are counted as overflow.
    public var maxKeysPerWindow = 1_000_000
    /// Event ids an alert carries at most (window series keep the ids of their latest 20 events).
    public var maxEventIDs = WindowSeries.recentCapacity
    /// Fields whose text is sensitive: alerts show their length, not their content.
    public var redactedFields: Set<String> = ["user_input", "model_output", "tool_results", "input", "output"]
    /// Characters of other string fields kept in alert evidence.
    public var excerptLength = 64

    public init() {}
}

/// Evaluates a ``RuleSet`` against events, keeping per-key window state in event time.
///
/// A value type owned by the ingest loop; no locks, no actor hops per event.
public struct RuleEngine: Sendable {
    public let ruleSet: RuleSet
    public let settings: EvaluationSettings
    /// Window state by rule, then window function, then key.
    var state: [[[String: WindowSeries]]]
    /// Keys whose series changed since the last save: (rule, function, key).
    var dirty: Set<DirtyKey> = []
    /// The largest event time seen (the stream clock).
    public internal(set) var clock = EventTime.unset
    /// Events older than the allowed lateness, which windows did not count.
    public internal(set) var lateEvents: Int64 = 0
    /// Events whose window key could not be tracked because the key cap was reached.
    public internal(set) var keyOverflow: Int64 = 0
    /// Detections leave their baseline statistics out of the evidence (``Detection/deferredBaselines``)
    /// for ``completeEvidence(_:baseline:)`` to add once the detection raises an alert.
    public var deferBaselineEvidence = false
    private var scratch: [FieldValue] = []
    private var scratchKeys: [String?] = []

    struct DirtyKey: Hashable { var rule: Int; var fn: Int; var key: String }

    /// Every baselined metric's statistics for the event being evaluated, looked up once per
    /// event (the segment resolved once) instead of once per reference; valid only inside
    /// ``evaluate(_:baseline:into:)`` (an ``EventCondition`` evaluates without it).
    private var statsCache: [MetricStats?]
    private var statsCached = false
    /// The same as plain numbers, ``BaselineStat/width`` per metric (readiness 0 where there is
    /// no baseline): what conditions read, without copying a `MetricStats` per reference.
    private var statsNumbers: [Double]

    public init(ruleSet: RuleSet, settings: EvaluationSettings = EvaluationSettings()) {
        self.ruleSet = ruleSet
        self.settings = settings
        let referenced = ruleSet.rules.flatMap { $0.evidenceMetrics.map(\.0) }
        self.statsCache = Array(repeating: nil, count: (referenced.max() ?? -1) + 1)
        self.statsNumbers = Array(repeating: 0, count: statsCache.count * BaselineStat.width)
        self.state = ruleSet.rules.map { Array(repeating: [:], count: $0.windows.count) }
    }

    /// Evaluates every enabled rule on `event`; appends a ``Detection`` for each rule that fires.
    public mutating func evaluate<B: BaselineLookup>(_ event: Event, baseline: B, into detections: inout [Detection]) {
        if event.time > clock { clock = event.time }
        if !statsCache.isEmpty {
            baseline.stats(for: event, into: &statsCache)
            for m in statsCache.indices {
                if let st = statsCache[m] {
                    BaselineStat.numbers(st, into: &statsNumbers, at: m * BaselineStat.width)
                } else {
                    statsNumbers[m * BaselineStat.width + BaselineStat.readyColumn] = 0
                }
            }
            statsCached = true
        }
        defer { statsCached = false }
        let late = event.time.micros < clock.micros - settings.allowedLateness.micros
        if late { lateEvents += 1 }
        for r in ruleSet.rules.indices {
            let rule = ruleSet.rules[r]
            scratchKeys.removeAll(keepingCapacity: true)
            if rule.windows.isEmpty {
                guard truthy(eval(rule.condition, event, baseline)) else { continue }
            } else {
                var passes = true
                if let filter = rule.filter { passes = truthy(eval(filter, event, baseline)) }
                if !passes && rule.filterGates { continue }
                scratch.removeAll(keepingCapacity: true)
                for w in rule.windows.indices {
                    scratch.append(late ? .missing : window(r, w, rule.windows[w], event, baseline, counted: passes))
                }
                guard truthy(eval(rule.condition, event, baseline)) else { continue }
            }
            detections.append(detection(rule, event, baseline, windowEventIDs(r, event)))
        }
    }

    /// The ids of the events in the windows that made rule `r` fire, oldest first, capped.
    func windowEventIDs(_ r: Int, _ event: Event) -> [String] {
        var ids: [String] = []
        for (w, key) in scratchKeys.enumerated() {
            guard let key, let series = state[r][w][key] else { continue }
            for id in series.ids(at: event.time.micros, window: ruleSet.rules[r].windows[w].window) where !ids.contains(id) {
                ids.append(id)
            }
        }
        return ids
    }

    private mutating func window<B: BaselineLookup>(_ r: Int, _ w: Int, _ spec: WindowSpec, _ event: Event, _ b: B, counted: Bool) -> FieldValue {
        scratchKeys.append(nil)
        let key: String
        if let slot = spec.keySlot {
            switch event.values[slot] {
            case .string(let s): key = s
            case .number(let n): key = JSONValue.format(n)
            case .bool(let b): key = b ? "true" : "false"
            default: return .missing
            }
        } else {
            key = ""
        }
        scratchKeys[scratchKeys.count - 1] = key
        var value = 0.0
        if let (metric, slot) = spec.kind.metric {
            guard let v = metric.read(event.values[slot]) else { return .missing }
            value = v
        }
        if case .cusum(_, _, let m, _, let down) = spec.kind {
            // The robust z against the baseline of the moment; without one the event is not counted.
            guard let st = stats(m, event, b), st.ready, let rz = st.robustZ(value) else { return .missing }
            value = down ? -rz : rz
        }
        var label: String?
        if case .countDistinct(let slot) = spec.kind {
            switch event.values[slot] {
            case .string(let s): label = s
            case .number(let n): label = JSONValue.format(n)
            case .bool(let b): label = b ? "true" : "false"
            default: return .missing  // an event without the field is not counted
            }
        }
        let summary: WindowSeries.Summary
        let t = event.time.micros
        if counted {
            if state[r][w].count >= settings.maxKeysPerWindow, state[r][w][key] == nil { keyOverflow += 1; return .missing }
            let horizon = clock.micros - spec.window - settings.allowedLateness.micros
            let id = event.id
            // One in-place access: insert, evict, read the window.
            var firstChange = false
            let keepsValue = spec.kind.keepsValues
            summary = { (series: inout WindowSeries) -> WindowSeries.Summary in
                series.insert(time: t, value: value, id: id, keepValue: keepsValue, label: label)
                series.evict(before: horizon)
                firstChange = !series.unsaved
                series.unsaved = true
                return series.range(at: t, window: spec.window)
            }(&state[r][w][key, default: WindowSeries()])
            if firstChange { dirty.insert(DirtyKey(rule: r, fn: w, key: key)) }
        } else {
            summary = state[r][w][key]?.range(at: event.time.micros, window: spec.window) ?? WindowSeries.Summary()
        }
        switch spec.kind {
        case .count: return .number(Double(summary.count))
        case .countDistinct: return .number(Double(summary.distinct))
        case .sum: return .number(summary.sum)
        case .rollingMean: return summary.count > 0 ? .number(summary.sum / Double(summary.count)) : .missing
        case .max: return summary.count > 0 ? .number(summary.max) : .missing
        case .rollingStd, .ewma, .cusum:
            guard let series = state[r][w][key] else { return .missing }
            return WindowSeries.statistic(spec.kind, series.kept(at: t, window: spec.window), at: t)
        }
    }

    /// What a rule-set reload did to the rules, by name.
    public struct Reload: Sendable, Equatable {
        /// Same name and condition: their windows carried over.
        public var kept: [String] = []
        /// Same name, another condition: their windows start empty.
        public var changed: [String] = []
        public var added: [String] = []
        public var removed: [String] = []
        public init() {}
    }

    /// An engine for `ruleSet` that continues this one: the stream clock and counters, and the
    /// windows of every rule whose name and condition are unchanged.
    public func reloaded(with ruleSet: RuleSet) -> (RuleEngine, Reload) {
        var next = RuleEngine(ruleSet: ruleSet, settings: settings)
        next.deferBaselineEvidence = deferBaselineEvidence
        next.clock = clock
        next.lateEvents = lateEvents
        next.keyOverflow = keyOverflow
        var outcome = Reload()
        let old = Dictionary(self.ruleSet.rules.enumerated().map { ($1.info.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (r, rule) in ruleSet.rules.enumerated() {
            guard let o = old[rule.info.name] else { outcome.added.append(rule.info.name); continue }
            guard self.ruleSet.rules[o].info.condition == rule.info.condition else { outcome.changed.append(rule.info.name); continue }
            next.state[r] = state[o]
            for d in dirty where d.rule == o { next.dirty.insert(DirtyKey(rule: r, fn: d.fn, key: d.key)) }
            outcome.kept.append(rule.info.name)
        }
        let now = Set(ruleSet.rules.map(\.info.name))
        outcome.removed = self.ruleSet.rules.map(\.info.name).filter { !now.contains($0) }
        return (next, outcome)
    }

    /// Drops window entries that can no longer matter and keys left empty.
    public mutating func sweep() {
        // No event has set the stream clock yet (a fresh database and a batch of rejects only):
        // there is nothing to evict, and the horizon below would overflow.
        guard !clock.isUnset else { return }
        for r in state.indices {
            for w in state[r].indices {
                let spec = ruleSet.rules[r].windows[w]
                let horizon = clock.micros - spec.window - settings.allowedLateness.micros
                for key in Array(state[r][w].keys) {
                    state[r][w][key]!.evict(before: horizon)
                    if state[r][w][key]!.isEmpty {
                        state[r][w][key] = nil
                        dirty.insert(DirtyKey(rule: r, fn: w, key: key))
                    }
                }
            }
        }
    }

    // MARK: - Evaluation

    @inline(__always)
    func truthy(_ v: FieldValue) -> Bool {
        if case .bool(true) = v { return true }
        return false
    }

    /// A metric's statistics for the event: from the per-event cache while evaluating rules.
    @inline(__always)
    func stats<B: BaselineLookup>(_ m: Int, _ e: Event, _ b: B) -> MetricStats? {
        statsCached && m < statsCache.count ? statsCache[m] : b.stats(metric: m, for: e)
    }

    func eval<B: BaselineLookup>(_ node: CompiledExpr, _ e: Event, _ b: B) -> FieldValue {
        switch node {
        case .constant(let v): return v
        case .field(let slot): return e.values[slot]
        case .listCount(let slot):
            switch e.values[slot] {
            case .list(let items): return .number(Double(items.count))
            case .null: return .number(0)
            default: return .missing
            }
        case .baseline(let m, let stat):
            if statsCached && m < statsCache.count {
                let base = m * BaselineStat.width
                guard statsNumbers[base + BaselineStat.readyColumn] != 0 else { return .missing }
                return .number(statsNumbers[base + stat.column])
            }
            guard let s = b.stats(metric: m, for: e), s.ready else { return .missing }
            return .number(stat.read(s))
        case .zscore(let m, let valueNode):
            if statsCached && m < statsCache.count {
                let base = m * BaselineStat.width
                let std = statsNumbers[base + 1]
                guard statsNumbers[base + BaselineStat.readyColumn] != 0, std > 0, let x = eval(valueNode, e, b).number else { return .missing }
                return .number((x - statsNumbers[base]) / std)
            }
            guard let s = b.stats(metric: m, for: e), s.ready, s.std > 0, let x = eval(valueNode, e, b).number else { return .missing }
            return .number((x - s.mean) / s.std)
        case .robustZ(let m, let valueNode):
            if statsCached && m < statsCache.count {
                let base = m * BaselineStat.width
                let scale = statsNumbers[base + BaselineStat.scaleColumn]
                guard statsNumbers[base + BaselineStat.readyColumn] != 0, scale > 0, let x = eval(valueNode, e, b).number else { return .missing }
                return .number((x - statsNumbers[base + 7]) / scale)
            }
            guard let s = b.stats(metric: m, for: e), s.ready, let x = eval(valueNode, e, b).number, let rz = s.robustZ(x) else { return .missing }
            return .number(rz)
        case .derived(let metric, let slot):
            return metric.read(e.values[slot]).map { .number($0) } ?? .missing
        case .window(let i): return scratch[i]
        case .negate(let a):
            guard let x = eval(a, e, b).number else { return .missing }
            return .number(-x)
        case .absolute(let a):
            guard let x = eval(a, e, b).number else { return .missing }
            return .number(Swift.abs(x))
        case .arith(let op, let l, let r):
            guard let x = eval(l, e, b).number, let y = eval(r, e, b).number else { return .missing }
            switch op {
            case .add: return .number(x + y)
            case .sub: return .number(x - y)
            case .mul: return .number(x * y)
            case .div: return y == 0 ? .missing : .number(x / y)
            }
        case .compare(let op, let l, let r):
            return .bool(compare(op, eval(l, e, b), eval(r, e, b)))
        case .and(let parts):
            for p in parts where !truthy(eval(p, e, b)) { return .bool(false) }
            return .bool(true)
        case .or(let parts):
            for p in parts where truthy(eval(p, e, b)) { return .bool(true) }
            return .bool(false)
        case .not(let a): return .bool(!truthy(eval(a, e, b)))
        case .member(let a, let set, let negated):
            switch eval(a, e, b) {
            case .missing, .null: return .bool(false)
            case .list(let items):
                // `in`: every element is listed; `not in`: some element is not (DESIGN §5).
                if negated { return .bool(items.contains { !set.contains($0) }) }
                return .bool(!items.isEmpty && items.allSatisfy { set.contains($0) })
            case let v: return .bool(set.contains(v) != negated)
            }
        case .contains(let a, let needles):
            switch eval(a, e, b) {
            case .string(let s): return .bool(needles.contains { substring($0, of: s) })
            case .list(let items): return .bool(items.contains { v in v.string.map { s in needles.contains { substring($0, of: s) } } ?? false })
            default: return .bool(false)
            }
        case .matches(let a, let re):
            guard case .string(let s) = eval(a, e, b) else { return .bool(false) }
            return .bool(re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil)
        }
    }

    /// Whether `needle` occurs in `haystack`, byte for byte in UTF-8 (Foundation's `contains` is
    /// locale-aware and was measured at three quarters of all ingest time).
    @inline(__always)
    func substring(_ needle: String, of haystack: String) -> Bool {
        var h = haystack, n = needle
        return h.withUTF8 { hb in
            n.withUTF8 { nb in
                guard nb.count > 0 else { return true }
                guard hb.count >= nb.count else { return false }
                // memchr to each candidate first byte, memcmp the rest (memmem is not exported).
                let first = Int32(nb[0])
                var p = UnsafeRawPointer(hb.baseAddress!)
                let last = p + (hb.count - nb.count)
                while p <= last, let hit = memchr(p, first, last - p + 1) {
                    if memcmp(hit, nb.baseAddress!, nb.count) == 0 { return true }
                    p = UnsafeRawPointer(hit) + 1
                }
                return false
            }
        }
    }

    func compare(_ op: CompareOp, _ l: FieldValue, _ r: FieldValue) -> Bool {
        switch (l, r) {
        case (.number(let x), .number(let y)):
            switch op {
            case .eq: return x == y
            case .ne: return x != y
            case .lt: return x < y
            case .le: return x <= y
            case .gt: return x > y
            case .ge: return x >= y
            }
        case (.string(let x), .string(let y)):
            switch op {
            case .eq: return x == y
            case .ne: return x != y
            case .lt: return x < y
            case .le: return x <= y
            case .gt: return x > y
            case .ge: return x >= y
            }
        case (.bool(let x), .bool(let y)):
            switch op {
            case .eq: return x == y
            case .ne: return x != y
            default: return false
            }
        case (.list(let items), _):
            // A list-valued field compares true when any element does.
            return items.contains { compare(op, $0, r) }
        default:
            return false
        }
    }

    // MARK: - Detections

    func detection<B: BaselineLookup>(_ rule: CompiledRule, _ e: Event, _ b: B, _ windowIDs: [String]) -> Detection {
        var evidence: [(String, JSONValue)] = []
        for (name, slot, derived) in rule.evidenceFields {
            if let derived {
                evidence.append((name, derived.read(e.values[slot]).map { JSONValue.number($0) } ?? .null))
            } else {
                evidence.append((name, excerpt(name, e.values[slot])))
            }
        }
        for (i, spec) in rule.windows.enumerated() {
            evidence.append((spec.signature, scratch[i].json))
        }
        let ids = windowIDs.isEmpty ? [e.id] : Array(windowIDs.suffix(settings.maxEventIDs))
        let group = rule.dedupSlots.map { slot -> String in
            switch e.values[slot] {
            case .string(let s): return s
            case .number(let n): return JSONValue.format(n)
            case .bool(let v): return v ? "true" : "false"
            default: return "-"
            }
        }
        var d = Detection(rule: rule.info, eventTime: e.time, eventID: e.id, eventIDs: ids, groupValues: group,
                          userID: e.values[FieldTable.userID].string, sessionID: e.values[FieldTable.sessionID].string,
                          evidence: evidence)
        if !rule.evidenceMetrics.isEmpty {
            if deferBaselineEvidence {
                d.deferredBaselines = (rule.evidenceMetrics, e)
            } else {
                RuleEngine.appendBaselines(rule.evidenceMetrics, e, b, to: &d.evidence)
            }
        }
        return d
    }

    /// Adds the baseline statistics a detection deferred (``deferBaselineEvidence``) to its
    /// evidence. Call before the baseline takes the event: the statistics are the ones the rules
    /// saw.
    public static func completeEvidence<B: BaselineLookup>(_ d: inout Detection, baseline b: B) {
        guard let (metrics, e) = d.deferredBaselines else { return }
        d.deferredBaselines = nil
        appendBaselines(metrics, e, b, to: &d.evidence)
    }

    static func appendBaselines<B: BaselineLookup>(_ metrics: [(Int, MetricDefinition, Int)], _ e: Event, _ b: B, to evidence: inout [(String, JSONValue)]) {
        for (m, metric, slot) in metrics {
            guard let s = b.stats(metric: m, for: e) else { continue }
            var fields: [(String, JSONValue)] = [
                ("snapshot_id", .int(s.snapshotID)), ("n", .int(s.n)), ("mean", .number(s.mean)), ("std", .number(s.std)),
                ("p95", .number(s.p95)), ("p99", .number(s.p99)), ("min", .number(s.min)), ("max", .number(s.max)),
                ("median", .number(s.robust.median)), ("mad", .number(s.robust.mad)),
                ("ready", .bool(s.ready)), ("segment", .string(s.segment)),
            ]
            if s.season >= 0 { fields += [("season", .int(Int64(s.season))), ("season_samples", .int(s.seasonSamples))] }
            if let x = metric.read(e.values[slot]) {
                if s.std > 0 { fields.append(("z", .number((x - s.mean) / s.std))) }
                if let rz = s.robustZ(x) { fields.append(("rz", .number(rz))) }
            }
            evidence.append(("baseline." + metric.name, .object(fields)))
        }
    }

    func excerpt(_ name: String, _ v: FieldValue) -> JSONValue {
        switch v {
        case .string(let s):
            if settings.redactedFields.contains(name) || settings.redactedFields.contains(fieldAliases[name] ?? name) {
                return .object([("redacted", .bool(true)), ("length", .int(Int64(s.count)))])
            }
            return .string(s.count > settings.excerptLength ? String(s.prefix(settings.excerptLength)) + "…" : s)
        case .list(let items):
            return .array(items.prefix(20).map { excerpt(name, $0) })
        default:
            return v.json
        }
    }
}
