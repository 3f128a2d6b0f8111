import Baseline
import Foundation
import IWDetectCore

/// Five minutes or one hour of the dashboard's panels (the monitoring guide's Step 6), as counters
/// and sketches that add up: a range is the sum of its buckets.
///
/// Cardinality is bounded: at most ``maxUsers`` attacking users, ``maxTools`` tool names and
/// ``maxModels`` models per bucket; later newcomers are counted under ``other``.
public struct RollupBucket: Sendable {
    public static let maxUsers = 100
    public static let maxTools = 50
    public static let maxModels = 20
    public static let other = "(other)"
    /// Guardrail outcomes: the inference log's `guardrail_action`, InferenceWall's `decision`.
    public static let guardKeys = ["log_blocked", "log_allowed", "iw_blocked", "iw_allowed", "iw_flagged"]
    /// The latency sketches' accuracy: about 4 % relative error, a few hundred bytes per model.
    public static let latencyAlpha = 0.02

    public var events: Int64 = 0
    /// Injection attempts: `input_injection_score > 0.7`, or an InferenceWall `INJ-` match.
    public var injection: Int64 = 0
    /// PII leaks: `output_pii_detected`, or an InferenceWall `DL-` match.
    public var pii: Int64 = 0
    /// By ``guardKeys``.
    public var guardrail = [Int64](repeating: 0, count: 5)
    /// `risk_score` in ten bins of 0.1 (the last one holds 1.0).
    public var risk = [Int64](repeating: 0, count: 10)
    /// Injection attempts by `user_id`.
    public var attackers: [String: Int64] = [:]
    /// Calls by tool name (`tool_calls.name`).
    public var tools: [String: Int64] = [:]
    /// `inference_latency_ms` by `model_id` (hour buckets only).
    public var latency: [String: DDSketch] = [:]
    /// Per baselined metric: the values' sum (in millionths, "s") and count, and the global baseline's mean and std when
    /// the bucket opened (the behavioural drift panel).
    public var metrics: [MetricCell] = []

    public struct MetricCell: Sendable {
        public var name: String
        /// The sum in millionths, an integer: the same values give the same sum in any grouping
        /// (a restart folds them at other points than one pass does).
        public var sumMicros: Int64 = 0
        public var sum: Double { Double(sumMicros) / 1e6 }
        public var n: Int64 = 0
        public var baseMean: Double?
        public var baseStd: Double?
        public init(name: String) { self.name = name }
    }

    public init(metrics: [String] = []) { self.metrics = metrics.map(MetricCell.init) }

    static func add(_ key: String, _ n: Int64, to map: inout [String: Int64], cap: Int) {
        if map[key] != nil || map.count < cap { map[key, default: 0] += n } else { map[other, default: 0] += n }
    }

    /// Adds another bucket's counts (a range's total).
    public mutating func merge(_ o: RollupBucket) {
        events += o.events
        injection += o.injection
        pii += o.pii
        for i in guardrail.indices { guardrail[i] += o.guardrail[i] }
        for i in risk.indices { risk[i] += o.risk[i] }
        for (k, v) in o.attackers { attackers[k, default: 0] += v }
        for (k, v) in o.tools { tools[k, default: 0] += v }
        for (k, s) in o.latency {
            if latency[k] == nil { latency[k] = s } else { latency[k]!.merge(s) }
        }
        for m in o.metrics {
            if let i = metrics.firstIndex(where: { $0.name == m.name }) {
                metrics[i].sumMicros &+= m.sumMicros
                metrics[i].n += m.n
                if metrics[i].baseMean == nil { metrics[i].baseMean = m.baseMean; metrics[i].baseStd = m.baseStd }
            } else {
                metrics.append(m)
            }
        }
    }

    // MARK: - Stored form

    /// The bucket as JSON text, keys sorted (the same counts give the same bytes), written
    /// directly (a commit writes thousands of buckets when traffic is sparse), with the tools and
    /// latency sketches given apart in name order (the bucket's own are not written: an
    /// accumulator keeps them by id).
    func write(tools: [(String, Int64)], latency: [(String, DDSketch)], to out: inout [UInt8]) {
        func key(_ k: String) { JSONValue.quote(k, into: &out); out.append(UInt8(ascii: ":")) }
        func ints(_ a: [Int64]) {
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.appendInteger(v, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(contentsOf: #"{"events":"#.utf8); JSONValue.appendInteger(events, to: &out)
        out.append(contentsOf: #","injection":"#.utf8); JSONValue.appendInteger(injection, to: &out)
        out.append(contentsOf: #","pii":"#.utf8); JSONValue.appendInteger(pii, to: &out)
        out.append(contentsOf: #","guardrail":"#.utf8); ints(guardrail)
        out.append(contentsOf: #","risk":"#.utf8); ints(risk)
        out.append(contentsOf: #","attackers":{"#.utf8)
        if !attackers.isEmpty {
            for (i, k) in attackers.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                key(k)
                JSONValue.appendInteger(attackers[k]!, to: &out)
            }
        }
        out.append(contentsOf: #"},"tools":{"#.utf8)
        for (i, (name, n)) in tools.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            key(name)
            JSONValue.appendInteger(n, to: &out)
        }
        out.append(contentsOf: #"},"latency":{"#.utf8)
        for (i, (name, sketch)) in latency.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            key(name)
            sketch.writeJSON(to: &out)
        }
        out.append(contentsOf: #"},"metrics":["#.utf8)
        var first = true
        for c in metrics where c.n > 0 || c.baseMean != nil {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: #"{"m":"#.utf8); JSONValue.quote(c.name, into: &out)
            out.append(contentsOf: #","s":"#.utf8); JSONValue.appendInteger(c.sumMicros, to: &out)
            out.append(contentsOf: #","n":"#.utf8); JSONValue.appendInteger(c.n, to: &out)
            if let m = c.baseMean, let s = c.baseStd {
                out.append(contentsOf: #","bm":"#.utf8); JSONValue.number(m).write(to: &out)
                out.append(contentsOf: #","bs":"#.utf8); JSONValue.number(s).write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
    }

    /// Reads what ``write(tools:latency:to:)`` wrote; nil for anything else.
    public init?(json: JSONValue) {
        guard let e = json["events"]?.integer, let i = json["injection"]?.integer, let p = json["pii"]?.integer,
              case .array(let g)? = json["guardrail"], g.count == 5, case .array(let r)? = json["risk"], r.count == 10,
              case .object(let a)? = json["attackers"], case .object(let t)? = json["tools"],
              case .object(let l)? = json["latency"], case .array(let cells)? = json["metrics"] else { return nil }
        events = e
        injection = i
        pii = p
        guardrail = g.map { $0.integer ?? 0 }
        risk = r.map { $0.integer ?? 0 }
        for (k, v) in a { attackers[k] = v.integer ?? 0 }
        for (k, v) in t { tools[k] = v.integer ?? 0 }
        for (k, v) in l {
            guard let s = DDSketch(json: v) else { return nil }
            latency[k] = s
        }
        for c in cells {
            guard let name = c["m"]?.stringValue else { return nil }
            var cell = MetricCell(name: name)
            cell.sumMicros = c["s"]?.integer ?? 0
            cell.n = c["n"]?.integer ?? 0
            cell.baseMean = c["bm"]?.double
            cell.baseStd = c["bs"]?.double
            metrics.append(cell)
        }
    }
}

/// Keeps the dashboard's rollups as the pipeline runs: each event adds to its five minutes and its hour
/// (by event time), and every commit writes the buckets the batch touched in the same
/// transaction as the rest of the state, so a crash neither loses nor repeats a count.
///
/// Five-minute buckets are kept for ``fineRetention`` of stream time (the 1 h and 24 h ranges); hour
/// buckets until pruned by retention. Only the newest bucket of each resolution stays in memory
/// between commits; an event for an older one (late, or after a restart) reads it back first.
public struct Rollups {
    public static let migrations: [Migration] = [
        Migration("rollups-1", """
            CREATE TABLE rollups (
                res INTEGER NOT NULL, bucket INTEGER NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (res, bucket)
            ) WITHOUT ROWID;
            """),
    ]

    /// Resolutions in seconds.
    /// Five minutes: fine enough for the 1 h range, coarse enough that sparse traffic (a few
    /// hundred events an hour) does not pay a bucket per handful of events.
    public static let fine: Int64 = 300
    public static let hour: Int64 = 3600
    public static let fineRetention = EventTime.Duration.hours(48)

    let db: Database
    let metricNames: [String]
    var slots = Slots()
    /// Per resolution (0: five minutes, 1: hour): the bucket of the latest event, and earlier ones
    /// touched since the last commit (written then, and let go).
    var currentKey: [Int64] = [.min, .min]
    var current = [Accumulator(), Accumulator()]
    var currentDirty = [false, false]
    var parked: [[Int64: Accumulator]] = [[:], [:]]
    /// The newest bucket stored per resolution: a newer one is known to be new.
    var newestStored: [Int64] = [.min, .min]
    var prunedBefore: Int64 = .min
    /// Tool names and models as small integers, so that an event's tools and model are hashed
    /// once, not once per bucket. Id 0 is ``RollupBucket/other`` (also past the caps).
    var tools = Interner(cap: 4096)
    var models = Interner(cap: 256)
    var toolIDs: [Int] = []
    /// The newest event time not more than a day past the wall clock: what five-minute buckets
    /// are kept against (one event dated in the future must not drop them).
    var clock = EventTime.unset
    var wallLimit = EventTime(seconds: Date().timeIntervalSince1970) + .hours(24)
    /// A stored bucket that could not be read back (the next commit fails with it).
    var failure: RollupError?
    /// What the events of the latest five minutes added since the last fold (their latencies apart,
    /// as (model, bin), added to the hour's sketches at the fold).
    var delta = Accumulator()
    var deltaLatency: [(model: Int, bin: Int)] = []
    var deltaKey: Int64 = .min
    /// The baseline band when the delta's first event came: what an hour it opens records.
    var deltaBand: [(Double, Double)?] = []

    struct Slots {
        var injectionScore = 0, injectionMatch = 0, pii = 0, dataLeakMatch = 0, risk = 0, tools = 0, latency = 0
        var metrics: [Int] = []
        var metricDefinitions: [MetricDefinition] = []
    }

    struct Interner {
        var ids: [String: Int] = [:]
        var names = [RollupBucket.other]
        let cap: Int

        init(cap: Int) { self.cap = cap }

        @inline(__always)
        mutating func id(_ s: String) -> Int {
            // A handful of names (the usual tools and models) are found by comparison, which is
            // cheaper than hashing the string.
            if names.count <= 16 {
                for i in 1..<names.count where names[i] == s { return i }
            } else if let i = ids[s] {
                return i
            }
            guard names.count < cap else { return 0 }
            names.append(s)
            ids[s] = names.count - 1
            return names.count - 1
        }
    }

    /// A bucket being filled: the counters of a ``RollupBucket``, with tools and models by id.
    struct Accumulator {
        var bucket = RollupBucket()
        var tools: [Int64] = []
        var latency: [DDSketch?] = []

        /// Empties the counts in place (the delta is refilled every five minutes).
        mutating func reset() {
            bucket.events = 0
            bucket.injection = 0
            bucket.pii = 0
            for i in bucket.guardrail.indices { bucket.guardrail[i] = 0 }
            for i in bucket.risk.indices { bucket.risk[i] = 0 }
            if !bucket.attackers.isEmpty { bucket.attackers.removeAll(keepingCapacity: true) }
            for i in bucket.metrics.indices {
                bucket.metrics[i].sumMicros = 0
                bucket.metrics[i].n = 0
            }
            for i in tools.indices { tools[i] = 0 }
            if !latency.isEmpty { latency.removeAll(keepingCapacity: true) }
        }

        /// Adds another accumulator's counts (`metrics`: the drift sums too).
        mutating func merge(_ o: Accumulator, metrics: Bool) {
            bucket.events += o.bucket.events
            bucket.injection += o.bucket.injection
            bucket.pii += o.bucket.pii
            for i in bucket.guardrail.indices { bucket.guardrail[i] += o.bucket.guardrail[i] }
            for i in bucket.risk.indices { bucket.risk[i] += o.bucket.risk[i] }
            if !o.bucket.attackers.isEmpty {
                for (user, n) in o.bucket.attackers.sorted(by: { $0.key < $1.key }) {
                    RollupBucket.add(user, n, to: &bucket.attackers, cap: RollupBucket.maxUsers)
                }
            }
            if tools.count < o.tools.count { tools += repeatElement(0, count: o.tools.count - tools.count) }
            for i in o.tools.indices { tools[i] += o.tools[i] }
            if latency.count < o.latency.count { latency += repeatElement(nil, count: o.latency.count - latency.count) }
            for i in o.latency.indices {
                guard let s = o.latency[i] else { continue }
                if latency[i] == nil { latency[i] = s } else { latency[i]!.merge(s) }
            }
            if metrics {
                for m in o.bucket.metrics.indices where m < bucket.metrics.count {
                    bucket.metrics[m].sumMicros &+= o.bucket.metrics[m].sumMicros
                    bucket.metrics[m].n += o.bucket.metrics[m].n
                }
            }
        }

        /// Writes the bucket as stored: names for ids, the caps applied (the most frequent names
        /// kept, the rest under ``RollupBucket/other``), in name order.
        func write(tools toolNames: [String], models modelNames: [String], to out: inout [UInt8]) {
            var named: [(String, Int64)] = []
            for i in tools.indices where tools[i] > 0 { named.append((toolNames[i], tools[i])) }
            if named.count > RollupBucket.maxTools {
                named.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                let rest = named[RollupBucket.maxTools...].reduce(Int64(0)) { $0 + $1.1 }
                named = Array(named.prefix(RollupBucket.maxTools)) + [(RollupBucket.other, rest)]
            }
            named.sort { $0.0 < $1.0 }
            // Id 0 and the cap's remainder are both `(other)`: one entry.
            var k = 1
            while k < named.count {
                if named[k].0 == named[k - 1].0 { named[k - 1].1 += named[k].1; named.remove(at: k) } else { k += 1 }
            }
            var sketches: [(String, DDSketch)] = []
            for i in latency.indices { if let s = latency[i] { sketches.append((modelNames[i], s)) } }
            if sketches.count > RollupBucket.maxModels {
                sketches.sort { $0.1.count != $1.1.count ? $0.1.count > $1.1.count : $0.0 < $1.0 }
                var other = DDSketch(alpha: RollupBucket.latencyAlpha)
                for (_, s) in sketches[RollupBucket.maxModels...] { other.merge(s) }
                sketches = Array(sketches.prefix(RollupBucket.maxModels)) + [(RollupBucket.other, other)]
            }
            sketches.sort { $0.0 < $1.0 }
            k = 1
            while k < sketches.count {
                if sketches[k].0 == sketches[k - 1].0 { sketches[k - 1].1.merge(sketches[k].1); sketches.remove(at: k) } else { k += 1 }
            }
            bucket.write(tools: named, latency: sketches, to: &out)
        }
    }

    public init(db: Database, metrics: [MetricDefinition], fields: inout FieldTable) throws {
        self.db = db
        metricNames = metrics.map(\.name)
        register(metrics: metrics, fields: &fields)
        delta.bucket = RollupBucket(metrics: metricNames)
        for (i, res) in [Rollups.fine, Rollups.hour].enumerated() {
            newestStored[i] = try db.query("SELECT max(bucket) FROM rollups WHERE res = ?", [.int(res)]) { $0.isNull(0) ? Int64.min : $0.int(0) }.first ?? .min
        }
    }

    /// Asks the decoder for the fields the panels read (again after a rule reload rebuilt the table).
    public mutating func register(metrics: [MetricDefinition], fields: inout FieldTable) {
        slots.injectionScore = fields.slot(for: "input_injection_score")
        slots.injectionMatch = fields.slot(for: DerivedField.injectionMatch.rawValue)
        slots.pii = fields.slot(for: "output_pii_detected")
        slots.dataLeakMatch = fields.slot(for: DerivedField.dataLeakMatch.rawValue)
        slots.risk = fields.slot(for: "risk_score")
        slots.tools = fields.slot(for: "tool_calls.name")
        slots.latency = fields.slot(for: "inference_latency_ms")
        slots.metricDefinitions = metrics
        slots.metrics = metrics.map { fields.slot(for: $0.path) }
    }

    /// What an event adds to a bucket, worked out once for its five minutes and its hour.
    struct Facts {
        var injection = false
        var attacker: String?
        var pii = false
        var guardrail: (log: Int, iw: Int) = (-1, -1)
        var riskBin = -1
        var latencyBin: Int?
        var model = 0
    }

    /// Adds an event to its five minutes and its hour.
    public mutating func observe(_ event: Event) {
        if event.time > clock && event.time <= wallLimit { clock = event.time }
        var f = Facts()
        toolIDs.removeAll(keepingCapacity: true)
        event.values.withUnsafeBufferPointer { v in
            if case .number(let x) = v[slots.injectionScore], x > 0.7 { f.injection = true }
            if case .bool(true) = v[slots.injectionMatch] { f.injection = true }
            if f.injection, case .string(let user) = v[FieldTable.userID], !user.isEmpty { f.attacker = Rollups.key(user) }
            if case .bool(true) = v[slots.pii] { f.pii = true }
            if case .bool(true) = v[slots.dataLeakMatch] { f.pii = true }
            if case .string(let action) = v[FieldTable.guardrailAction] {
                if action == "block" { f.guardrail.log = 0 } else if action == "allow" { f.guardrail.log = 1 }
            }
            if case .string(let decision) = v[FieldTable.decision] {
                switch decision {
                case "block": f.guardrail.iw = 2
                case "allow": f.guardrail.iw = 3
                case "flag": f.guardrail.iw = 4
                default: break
                }
            }
            if case .number(let r) = v[slots.risk], r.isFinite { f.riskBin = min(9, Int(min(max(r, 0), 1) * 10)) }
            // Latencies past a day are counted as a day (the sketch stays small whatever a log says).
            if case .number(let ms) = v[slots.latency], ms.isFinite, let bin = latencyProbe.bin(of: min(ms, 86_400_000)) {
                f.latencyBin = bin
                if case .string(let model) = v[FieldTable.modelID] {
                    f.model = models.id(Rollups.key(model))
                } else {
                    f.model = models.id("(none)")
                }
            }
            switch v[slots.tools] {
            case .list(let names):
                for case .string(let n) in names { toolIDs.append(tools.id(Rollups.key(n))) }
            case .string(let n): toolIDs.append(tools.id(Rollups.key(n)))
            default: break
            }
        }
        let b = event.time.bucket(Rollups.fine * 1_000_000)
        if b != deltaKey {
            fold()
            deltaKey = b
            deltaBand = band
        }
        Rollups.add(f, event, to: &delta, toolIDs: toolIDs, slots: slots, metrics: true)
        if let bin = f.latencyBin { deltaLatency.append((f.model, bin)) }
    }

    /// Adds what the events since the last fold added (all in one five minutes) to their five
    /// minutes and their hour: each event is added once, to the delta, and the delta to both.
    mutating func fold() {
        guard deltaKey != .min, delta.bucket.events > 0 else { return }
        let hourKey = EventTime(micros: deltaKey * Rollups.fine * 1_000_000).hour
        for (r, key) in [(0, deltaKey), (1, hourKey)] {
            if key != currentKey[r] {
                if currentKey[r] != .min && currentDirty[r] { parked[r][currentKey[r]] = current[r] }
                current[r] = parked[r].removeValue(forKey: key) ?? opened(r, res: r == 0 ? Rollups.fine : Rollups.hour, bucket: key)
                currentKey[r] = key
            }
            current[r].merge(delta, metrics: r == 1)
            currentDirty[r] = true
        }
        // Latency sketches are kept per hour only (the bulk of a sparse five-minute row).
        for (model, bin) in deltaLatency {
            if current[1].latency.count <= model { current[1].latency += repeatElement(nil, count: model + 1 - current[1].latency.count) }
            if current[1].latency[model] == nil { current[1].latency[model] = DDSketch(alpha: RollupBucket.latencyAlpha) }
            current[1].latency[model]!.add(bin: bin)
        }
        deltaLatency.removeAll(keepingCapacity: true)
        delta.reset()
    }

    /// Past half their cap, the interners start over with the names the buckets in memory use
    /// (so that a long run does not end with every new name under `(other)`).
    mutating func compactInterners() {
        guard tools.names.count > tools.cap / 2 || models.names.count > models.cap / 2 else { return }
        let oldTools = tools.names, oldModels = models.names
        tools = Interner(cap: tools.cap)
        models = Interner(cap: models.cap)
        func remap(_ a: inout Accumulator) {
            var t: [Int64] = []
            for (i, n) in a.tools.enumerated() where n > 0 {
                let id = tools.id(oldTools[i])
                if t.count <= id { t += repeatElement(0, count: id + 1 - t.count) }
                t[id] += n
            }
            a.tools = t
            var l: [DDSketch?] = []
            for (i, s) in a.latency.enumerated() {
                guard let s else { continue }
                let id = models.id(oldModels[i])
                if l.count <= id { l += repeatElement(nil, count: id + 1 - l.count) }
                if l[id] == nil { l[id] = s } else { l[id]!.merge(s) }
            }
            a.latency = l
        }
        remap(&current[0])
        remap(&current[1])
        remap(&delta)
    }

    /// A name as a bucket keeps it: at most 128 characters (a log cannot make rows huge).
    @inline(__always)
    static func key(_ s: String) -> String { s.utf8.count <= 128 ? s : String(s.prefix(128)) }

    /// The global baseline's mean and std per metric (nil: not ready), as of its last recompute:
    /// what a new hour bucket records.
    var band: [(Double, Double)?] = []

    /// Takes the baseline's current snapshot (call after each recompute; the per-event path then
    /// never touches the baseline).
    public mutating func baselineChanged(_ baseline: BaselineModel) {
        band = metricNames.indices.map { m in baseline.globalStats(metric: m).flatMap { $0.ready ? ($0.mean, $0.std) : nil } }
    }

    /// Computes latency bins (every rollup sketch has the same alpha).
    let latencyProbe = DDSketch(alpha: RollupBucket.latencyAlpha)

    /// The stored bucket (its names interned again), or a new one that records the baseline it
    /// opened against.
    mutating func opened(_ r: Int, res: Int64, bucket: Int64) -> Accumulator {
        var stored: RollupBucket?
        if bucket <= newestStored[r] {
            do {
                if let text = try db.query("SELECT data FROM rollups WHERE res = ? AND bucket = ?", [.int(res), .int(bucket)], { $0.text(0) }).first {
                    guard let b = RollupBucket(json: try JSONValue.parse(text)) else { throw RollupError(res: res, bucket: bucket, detail: "not a rollup bucket") }
                    stored = b
                }
            } catch {
                // Counted afresh, the bucket would overwrite what is stored: the commit fails instead.
                failure = failure ?? RollupError(res: res, bucket: bucket, detail: String(describing: error))
            }
        }
        if var stored {
            // Metrics in this run's order (a metric added since starts empty).
            if r == 1 {
                stored.metrics = metricNames.map { name in stored.metrics.first { $0.name == name } ?? RollupBucket.MetricCell(name: name) }
            }
            var acc = Accumulator()
            for (name, n) in stored.tools {
                let id = tools.id(name)
                if acc.tools.count <= id { acc.tools += repeatElement(0, count: id + 1 - acc.tools.count) }
                acc.tools[id] += n
            }
            for (name, sketch) in stored.latency {
                let id = models.id(name)
                if acc.latency.count <= id { acc.latency += repeatElement(nil, count: id + 1 - acc.latency.count) }
                if acc.latency[id] == nil { acc.latency[id] = sketch } else { acc.latency[id]!.merge(sketch) }
            }
            stored.tools = [:]
            stored.latency = [:]
            acc.bucket = stored
            return acc
        }
        // Five-minute buckets carry no metrics (drift is hourly).
        var fresh = Accumulator()
        fresh.bucket = RollupBucket(metrics: r == 1 ? metricNames : [])
        if r == 1 {
            for m in fresh.bucket.metrics.indices where m < deltaBand.count {
                if let (mean, std) = deltaBand[m] {
                    fresh.bucket.metrics[m].baseMean = mean
                    fresh.bucket.metrics[m].baseStd = std
                }
            }
        }
        return fresh
    }

    /// Static, so that the bucket is updated in place (a method of `self` would copy the open
    /// buckets on every event).
    @inline(__always)
    static func add(_ f: Facts, _ event: Event, to acc: inout Accumulator, toolIDs: [Int], slots: Slots, metrics: Bool) {
        acc.bucket.events += 1
        if f.injection {
            acc.bucket.injection += 1
            if let user = f.attacker { RollupBucket.add(user, 1, to: &acc.bucket.attackers, cap: RollupBucket.maxUsers) }
        }
        if f.pii { acc.bucket.pii += 1 }
        if f.guardrail.log >= 0 { acc.bucket.guardrail[f.guardrail.log] += 1 }
        if f.guardrail.iw >= 0 { acc.bucket.guardrail[f.guardrail.iw] += 1 }
        if f.riskBin >= 0 { acc.bucket.risk[f.riskBin] += 1 }
        for id in toolIDs {
            if acc.tools.count <= id { acc.tools += repeatElement(0, count: id + 1 - acc.tools.count) }
            acc.tools[id] += 1
        }
        if metrics {
            event.values.withUnsafeBufferPointer { v in
                slots.metricDefinitions.withUnsafeBufferPointer { defs in
                    slots.metrics.withUnsafeBufferPointer { at in
                        acc.bucket.metrics.withUnsafeMutableBufferPointer { cells in
                            for m in 0..<min(defs.count, at.count, cells.count) {
                                if let x = defs[m].read(v[at[m]]) {
                                    cells[m].sumMicros &+= Int64(max(-9e12, min(9e12, x * 1e6)).rounded())
                                    cells[m].n += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes the buckets touched since the last commit (inside the commit's transaction), drops
    /// five-minute buckets past their retention, and keeps only the latest event's bucket of each
    /// resolution in memory.
    public mutating func save() throws {
        fold()
        if let failure { throw failure }
        let upsert = "INSERT INTO rollups (res, bucket, data) VALUES (?, ?, ?) ON CONFLICT (res, bucket) DO UPDATE SET data = excluded.data"
        var text: [UInt8] = []
        // Five minutes already past their retention are not written (a replay of old logs would
        // write each one and delete it at once).
        let fineCutoff = clock.isUnset ? Int64.min : (clock - Rollups.fineRetention).micros / (Rollups.fine * 1_000_000)
        for r in 0..<2 {
            let res = r == 0 ? Rollups.fine : Rollups.hour
            var touched = parked[r].sorted { $0.key < $1.key }
            if currentDirty[r] { touched.append((currentKey[r], current[r])) }
            for (b, acc) in touched where r == 1 || b >= fineCutoff {
                text.removeAll(keepingCapacity: true)
                acc.write(tools: tools.names, models: models.names, to: &text)
                try db.run(upsert, [.int(res), .int(b), .text(String(decoding: text, as: UTF8.self))])
                newestStored[r] = max(newestStored[r], b)
            }
            parked[r].removeAll()
            currentDirty[r] = false
        }
        compactInterners()
        wallLimit = EventTime(seconds: Date().timeIntervalSince1970) + .hours(24)
        guard !clock.isUnset else { return }
        if fineCutoff > prunedBefore + 12 {
            try db.run("DELETE FROM rollups WHERE res = ? AND bucket < ?", [.int(Rollups.fine), .int(fineCutoff)])
            prunedBefore = fineCutoff
        }
    }
}

/// A stored rollup bucket could not be read back to add to it.
public struct RollupError: Error, CustomStringConvertible {
    public var res: Int64
    public var bucket: Int64
    public var detail: String
    public var description: String { "rollups: the stored bucket \(res) s × \(bucket) cannot be read: \(detail)" }
}
