import Alerts
import Foundation
import IWDetectCore
import Rules

/// The pipeline's export stage: per event, after detection, each target's filter, projection,
/// enrichment and rendering; per batch, the chunks to queue with the batch's commit.
///
/// A value owned by the engine, like the processor: no I/O per event. Events are rendered once,
/// in the receiver's own format, so the worker only joins and sends.
public struct Exporter {
    struct Target {
        let config: ExportTargetConfig
        let shipper: any EventShipper
        var projection: Projection
        var filter: EventCondition?
        let maxBodyBytes: Int
        /// The chunk being filled (items joined by the receiver's separator), and the ones full
        /// since the last ``take()``.
        var body: [UInt8] = []
        var items = 0
        var first = EventTime(micros: .max), last = EventTime(micros: .min)
        var chunks: [ExportStore.Chunk] = []
        /// Whether the oldest queued event has waited more than `max_lag`: then new events are
        /// skipped, and counted.
        var stalled = false
        var skipped: ExportStore.Skipped?
        /// Events that matched but were skipped as too large for any request (also in `skipped`).
        var oversize = 0
    }

    var targets: [Target]
    var scratch: [UInt8] = []
    var statsScratch: [MetricStats?]
    let metrics: [MetricDefinition]
    /// Each metric's `"name":`, rendered once.
    let metricKeys: [[UInt8]]
    var metricSlots: [Int]

    /// The receivers, for the workers.
    public var shippers: [(ExportTargetConfig, any EventShipper)] { targets.map { ($0.config, $0.shipper) } }
    public var names: [String] { targets.map(\.config.name) }

    /// Builds the targets: secrets resolved, projections and filters compiled against `fields`
    /// (extended with what they read). Throws every problem found, each with file, line and column.
    public init(_ configs: [ExportTargetConfig], metrics: [MetricDefinition], lists: [String: [FieldValue]], fields: inout FieldTable,
                known: KnownFields, environment: [String: String], warnings: inout [Diagnostic]) throws(ExportSetupError) {
        self.metrics = metrics
        statsScratch = Array(repeating: nil, count: metrics.count)
        metricKeys = metrics.map { m in
            var k: [UInt8] = []
            JSONValue.quote(m.name, into: &k)
            k.append(UInt8(ascii: ":"))
            return k
        }
        var built: [Target] = []
        var problems: [String] = []
        for c in configs {
            do throws(SinkError) {
                let shipper = try c.makeShipper(environment: environment)
                built.append(Target(config: c, shipper: shipper, projection: Projection(c.fields, metrics: metrics, fields: &fields), filter: nil,
                                    maxBodyBytes: shipper.maxBodyBytes ?? .max))
            } catch {
                problems.append(error.message.replacingOccurrences(of: "sink '\(c.name)'", with: "export '\(c.name)'"))
            }
        }
        guard problems.isEmpty else { throw ExportSetupError(messages: problems, diagnostics: []) }
        targets = built
        metricSlots = metrics.map { fields.slot(for: $0.path) }
        try compileFilters(lists: lists, fields: &fields, known: known, warnings: &warnings)
    }

    /// Compiles the filters again (after a rule reload: new lists, a new field table).
    public mutating func recompile(lists: [String: [FieldValue]], fields: inout FieldTable, known: KnownFields) throws(ExportSetupError) {
        for i in targets.indices { targets[i].projection = Projection(targets[i].config.fields, metrics: metrics, fields: &fields) }
        metricSlots = metrics.map { fields.slot(for: $0.path) }
        var ignored: [Diagnostic] = []
        try compileFilters(lists: lists, fields: &fields, known: known, warnings: &ignored)
    }

    mutating func compileFilters(lists: [String: [FieldValue]], fields: inout FieldTable, known: KnownFields,
                                 warnings: inout [Diagnostic]) throws(ExportSetupError) {
        var errors: [Diagnostic] = []
        for i in targets.indices {
            guard let f = targets[i].config.filter else { continue }
            let (condition, diagnostics) = EventCondition.compile(f.text, at: f.position, what: "export '\(targets[i].config.name)': filter",
                                                                  metrics: metrics, lists: lists, fields: &fields, known: known)
            errors += diagnostics.filter { $0.level == .error }
            warnings += diagnostics.filter { $0.level == .warning }
            targets[i].filter = condition
        }
        guard errors.isEmpty else { throw ExportSetupError(messages: [], diagnostics: errors) }
    }

    /// Takes one processed event: `detections` are what the rules found in it, `baseline` the
    /// snapshot they were checked against.
    public mutating func observe<B: BaselineLookup>(_ event: Event, detections: [Detection], baseline: B) {
        var enrichment: [UInt8]?? = nil
        for t in targets.indices {
            if let f = targets[t].filter, !f.matches(event, baseline: baseline) { continue }
            if targets[t].stalled {
                targets[t].skip(event.time)
                continue
            }
            scratch.removeAll(keepingCapacity: true)
            let user = targets[t].projection.write(event, to: &scratch)
            var e = ExportedEvent(members: scratch, time: event.time, id: event.id, userID: user)
            if targets[t].config.enrich {
                if enrichment == nil { enrichment = .some(enrich(event, detections, baseline)) }
                e.enrichment = enrichment!
            }
            targets[t].append(e, time: event.time)
        }
    }

    /// `iw_detect`: `alerts` (the rules the event fired, in rule order, including those whose
    /// alert dedup folded into an open one) and `z` (per metric with a ready baseline and a value
    /// in the event: (value - mean) / std, rounded to 3 decimals), each left out when empty.
    mutating func enrich<B: BaselineLookup>(_ event: Event, _ detections: [Detection], _ baseline: B) -> [UInt8]? {
        var out: [UInt8] = [UInt8(ascii: "{")]
        if !detections.isEmpty {
            var names: [String] = []
            for d in detections where !names.contains(d.rule.name) { names.append(d.rule.name) }
            out.append(contentsOf: #""alerts":"#.utf8)
            JSONValue.array(names.map { .string($0) }).write(to: &out)
        }
        baseline.stats(for: event, into: &statsScratch)
        var wroteZ = false
        for m in metrics.indices {
            guard let x = metrics[m].read(event.values[metricSlots[m]]), let s = statsScratch[m], s.ready, s.std > 0 else { continue }
            if !wroteZ {
                out.append(contentsOf: (out.count > 1 ? #","z":{"# : #""z":{"#).utf8)
                wroteZ = true
            } else {
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: metricKeys[m])
            JSONValue.number(((x - s.mean) / s.std * 1000).rounded() / 1000).write(to: &out)
        }
        if wroteZ { out.append(UInt8(ascii: "}")) }
        guard out.count > 1 else { return nil }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The chunks and skip counts of the batch, for its commit.
    public mutating func take() -> (chunks: [ExportStore.Chunk], skipped: [ExportStore.Skipped], oversize: [(String, Int)]) {
        var chunks: [ExportStore.Chunk] = [], skipped: [ExportStore.Skipped] = [], oversize: [(String, Int)] = []
        for t in targets.indices {
            targets[t].close()
            chunks += targets[t].chunks
            targets[t].chunks.removeAll(keepingCapacity: true)
            if let s = targets[t].skipped { skipped.append(s) }
            targets[t].skipped = nil
            if targets[t].oversize > 0 { oversize.append((targets[t].config.name, targets[t].oversize)) }
            targets[t].oversize = 0
        }
        return (chunks, skipped, oversize)
    }

    /// At start: which targets a previous run left stalled (checked again at once).
    public mutating func loadStalls(_ db: Database) throws {
        let statuses = try ExportStore.status(db, targets: names)
        for t in targets.indices { targets[t].stalled = statuses[t].stalled }
    }

    /// At start and after each commit: stalls each target whose oldest queued event has waited
    /// more than `max_lag` (wall clock, so a fast replay of old logs to a receiver that keeps up
    /// never stalls), and resumes it once it has not (recorded for `exports list`). Returns the
    /// targets that changed, with the new state.
    public mutating func updateStalls(_ db: Database, now: Double) throws -> [(String, Bool)] {
        var changed: [(String, Bool)] = []
        for t in targets.indices {
            let oldest = try ExportStore.oldestQueuedAt(db, target: targets[t].config.name)
            let stalled = oldest.map { now - $0 > Double(targets[t].config.maxLag.micros) / 1e6 } ?? false
            if stalled != targets[t].stalled {
                targets[t].stalled = stalled
                try ExportStore.setStalled(stalled, target: targets[t].config.name, in: db)
                changed.append((targets[t].config.name, stalled))
            }
        }
        return changed
    }
}

extension Exporter.Target {
    mutating func append(_ event: ExportedEvent, time: EventTime) {
        if items >= config.batchSize { close() }
        let mark = body.count
        if items > 0, let s = shipper.itemSeparator { body.append(s) }
        shipper.writeItem(event, to: &body)
        // A request is whole chunks joined by one separator byte, and Sentinel's brackets.
        if maxBodyBytes != .max && body.count + 3 > maxBodyBytes {
            let item = Array(body[(items > 0 && shipper.itemSeparator != nil ? mark + 1 : mark)...])
            body.removeSubrange(mark...)
            guard item.count + 3 <= maxBodyBytes else {
                oversize += 1
                skip(time)
                return
            }
            close()
            body = item
        }
        items += 1
        if time < first { first = time }
        if time > last { last = time }
    }

    mutating func close() {
        guard items > 0 else { return }
        chunks.append(ExportStore.Chunk(target: config.name, events: items, body: body, firstTime: first, lastTime: last))
        body = []
        body.reserveCapacity(1 << 16)
        items = 0
        first = EventTime(micros: .max)
        last = EventTime(micros: .min)
    }

    mutating func skip(_ time: EventTime) {
        if var s = skipped {
            s.count += 1
            s.last = time
            skipped = s
        } else {
            skipped = ExportStore.Skipped(target: config.name, count: 1, first: time, last: time)
        }
    }
}

/// Export targets that cannot be built: a secret that cannot be resolved, a filter that does not
/// compile.
public struct ExportSetupError: Error, CustomStringConvertible {
    public var messages: [String]
    public var diagnostics: [Diagnostic]
    public var description: String { (messages + diagnostics.map(\.description)).joined(separator: "\n") }
}
