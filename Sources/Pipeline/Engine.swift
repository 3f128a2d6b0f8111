#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Alerts
import Baseline
import Exports
import Foundation
import IWDetectCore
import Ingest
import Logging
import Rules

/// All migrations of the state database, in order.
public let allMigrations: [Migration] = IngestStore.migrations + BaselineStore.migrations + RuleStateStore.migrations + AlertStore.migrations + ExportStore.migrations + Rollups.migrations + Forensics.migrations

/// Opens the state database and brings its schema up to date.
public func openStateDatabase(_ path: String) throws -> Database {
    let db = try Database(path: path)
    try Migrator.migrate(db, allMigrations)
    return db
}

/// Rules failed to load; carries every diagnostic.
public struct RuleLoadError: Error, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n") + "\nthe rule set has \(diagnostics.filter { $0.level == .error }.count) error(s); nothing was ingested"
    }
}

/// The state database refused a batch (disk full, an I/O error): the ingest stops; the batch is
/// rolled back and everything before it stays committed.
public struct CommitError: Error, CustomStringConvertible {
    public var databasePath: String
    public var source: String
    /// The first line that is not committed.
    public var committedBefore: Int64
    /// Whether the same command resumes there (a file), or the lines are gone with the pipe.
    public var resumable: Bool
    public var underlying: DatabaseError

    public var description: String {
        let cause = underlying.code == 13 ? "the disk is full" : underlying.message
        return "\(databasePath): cannot commit the next batch: \(cause) (SQLite error \(underlying.code)). " +
            "Everything before \(source):\(committedBefore) is committed and intact; that line and the ones after it are not. " +
            (resumable ? "Free space (or fix the error) and run the same command to resume there." : "Free space (or fix the error) and send them again.")
    }
}

/// Where an ingest reads from.
public enum InputSource: Sendable {
    case file(String)
    case standardInput

    var name: String {
        switch self {
        case .file(let p): return p
        case .standardInput: return "stdin"
        }
    }
}

/// The ingest pipeline, wired: source → decoder → processor → committer → delivery
/// (DESIGN §1, §7).
///
/// Each stage is its own type: a ``LineSource`` yields owned batches of lines with their
/// checkpoint, ``JSONLineDecoder`` turns them into events and rejects, the ``Processor``
/// evaluates (no I/O), the ``StateCommitter`` writes a batch's state with its checkpoints in one
/// transaction, and local sinks are written right after. One instance runs one ingest; the
/// per-event loop is synchronous on values, and only the commit and local delivery are awaited.
public final class Engine {
    public let config: EngineConfig
    let db: Database
    public private(set) var ruleSet: RuleSet
    public let warnings: [Diagnostic]
    let sinks: [any AlertSink]
    let deliverer: Deliverer
    var decoder: JSONLineDecoder
    /// The fields the baseline reads, before any rule's: what a reloaded rule set extends.
    let baseFields: FieldTable
    /// Logs reloads (and, for `tail`, the followed files); the executable sets its handler.
    public var logger = Logger(label: "iw-detect")
    /// Reload the rule set on SIGHUP (``Interruption``) and, when set, when a rule file changes.
    public var reloadOnSignal = false
    var ruleWatcher: RuleWatcher?
    let committer: StateCommitter
    var processor: Processor<BaselineModel>
    /// The export stage (`exports:`), when targets are configured.
    var exporter: Exporter?
    /// The dashboard's rollups, committed with each batch (nil with `rollups: false`).
    var rollups: Rollups?
    /// The forensic index, the security log and retention, committed with each batch.
    var forensics: Forensics
    /// The recompute count the rollups' baseline band was taken at.
    var rollupBand: Int64 = -1
    /// A local sink's write failed: the next commit delivers from the outbox (its retries).
    var localBacklog = false
    /// Called with the summary every second or so on long work (for a terminal's progress line).
    public var progress: ((IngestSummary) -> Void)?
    /// Called before alerts are written to local sinks (to clear a terminal's progress line).
    public var beforeLocalOutput: (() -> Void)?
    /// Called after each commit with the summary so far and how long the commit (state, then
    /// local sinks) took: what `serve` turns into metrics.
    public var afterCommit: ((IngestSummary, Duration) -> Void)?
    public private(set) var summary = IngestSummary()

    public init(config: EngineConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.config = config
        var fields = FieldTable()
        var baseline = BaselineModel(settings: config.baseline, metrics: config.metrics, fields: &fields)
        baseFields = fields
        let loaded = RuleLoader.load(paths: config.rulePaths, metrics: config.metrics, fields: fields, extraFields: config.fields)
        guard let ruleSet = loaded.ruleSet else { throw RuleLoadError(diagnostics: loaded.diagnostics) }
        self.ruleSet = ruleSet
        self.sinks = try config.makeSinks(environment: environment)
        self.deliverer = Deliverer(sinks: sinks, policy: config.delivery)
        var table = loaded.fields
        var warnings = loaded.diagnostics
        if !config.exports.isEmpty {
            do {
                exporter = try Exporter(config.exports, metrics: config.metrics, lists: ruleSet.lists, fields: &table, known: Engine.knownFields(config),
                                        environment: environment, warnings: &warnings)
            } catch {
                throw error.diagnostics.isEmpty ? ConfigError(error.description) : ConfigError(diagnostics: error.diagnostics)
            }
        }
        self.warnings = warnings
        let db = try openStateDatabase(config.databasePath)
        self.db = db
        rollups = config.rollups ? try Rollups(db: db, metrics: config.metrics, fields: &table) : nil
        forensics = try Forensics(db: db, settings: config.retention, fields: &table)
        self.decoder = JSONLineDecoder(fields: table, maxLineBytes: config.maxLineBytes)
        self.committer = StateCommitter(db: db)
        try exporter?.loadStalls(db)
        var rules = RuleEngine(ruleSet: ruleSet, settings: config.evaluation)
        var suppressor = Suppressor()
        try BaselineStore.load(&baseline, from: db)
        try RuleStateStore.load(&rules, from: db)
        try AlertStore.load(&suppressor, from: db)
        let names = Set(sinks.map(\.name))
        processor = Processor(baseline: baseline, rules: rules, suppressor: suppressor, router: AlertRouter(routes: config.routes),
                              sinkNames: names,
                              everywhere: sinks.filter { $0.name == "stdout" && (config.stdout ?? config.sinks.isEmpty) }.map(\.name),
                              excludeAlerting: config.baseline.excludeAlerting)
        try noteStalls()
    }

    /// The fields rules and filters may use without an `unknown_field` warning.
    static func knownFields(_ config: EngineConfig) -> KnownFields {
        KnownFields(extra: config.fields + config.metrics.flatMap { [$0.name, $0.path] })
    }

    /// Watch the rule files and reload when they change (`--watch-rules`).
    public func watchRules() { ruleWatcher = RuleWatcher(paths: config.rulePaths) }

    /// Loads the rule set again. On any error every diagnostic is logged and the engine keeps the
    /// rules it has (DESIGN §5). Otherwise the new set takes over from the next batch: windows and
    /// dedup state carry over for rules whose name and condition are unchanged, a changed rule
    /// starts fresh, a removed rule's state is dropped, new fields are extracted from the next
    /// batch on. Call between batches (nothing pending).
    @discardableResult
    public func reloadRules() -> Bool {
        let loaded = RuleLoader.load(paths: config.rulePaths, metrics: config.metrics, fields: baseFields, extraFields: config.fields)
        guard let next = loaded.ruleSet else {
            for d in loaded.diagnostics { logger.error("\(d.description)") }
            logger.error("rule reload refused: \(loaded.errors.count) error(s); still running the previous \(ruleSet.rules.count) rule(s)")
            summary.reloadsRefused += 1
            return false
        }
        var table = loaded.fields
        var exporter = self.exporter
        do {
            try exporter?.recompile(lists: next.lists, fields: &table, known: Engine.knownFields(config))
        } catch {
            for line in error.description.split(separator: "\n") { logger.error("\(line)") }
            logger.error("rule reload refused: an export filter does not compile with the new rules; still running the previous \(ruleSet.rules.count) rule(s)")
            summary.reloadsRefused += 1
            return false
        }
        self.exporter = exporter
        rollups?.register(metrics: config.metrics, fields: &table)
        forensics.register(&table)
        for d in loaded.diagnostics { logger.warning("\(d.description)") }
        let (rules, outcome) = processor.rules.reloaded(with: next)
        processor.rules = rules
        processor.suppressor.retain(rules: Set(outcome.kept))
        decoder = JSONLineDecoder(fields: table, maxLineBytes: config.maxLineBytes)
        ruleSet = next
        do {
            try db.transaction { try RuleStateStore.prune(rules, in: db) }
        } catch {
            logger.error("rule reload: could not drop the stored windows of removed rules: \(error)")
        }
        summary.reloads += 1
        logger.info("rules reloaded: \(next.rules.count) rule(s); \(outcome.kept.count) unchanged, \(outcome.changed.count) changed, \(outcome.added.count) added, \(outcome.removed.count) removed",
                    metadata: ["changed": .array(outcome.changed.map { .string($0) }), "added": .array(outcome.added.map { .string($0) }),
                               "removed": .array(outcome.removed.map { .string($0) })])
        return true
    }

    /// Between batches: a pending SIGHUP, or changed rule files, reload the rules.
    func reloadIfAsked() {
        let signalled = reloadOnSignal && Interruption.takeReloadRequest()
        let changed = ruleWatcher?.changed() ?? false
        if signalled || changed {
            ruleWatcher?.resync()
            logger.info("reloading the rules (\(signalled ? "SIGHUP" : "a rule file changed"))")
            reloadRules()
        }
    }

    var localSinkNames: [String] { sinks.filter(\.isLocal).map(\.name) }

    /// Sinks delivered by the background worker (network sinks).
    public var remoteSinks: [any AlertSink] { sinks.filter { !$0.isLocal } }

    public var baselineModel: BaselineModel { processor.baseline }

    /// Follows files (`tail`) until SIGINT or SIGTERM; `notice` hears of new, rotated and
    /// truncated files as they happen.
    public func follow(_ options: FollowSource.Options, notice: @escaping (String, String) -> Void) async throws -> IngestSummary {
        try await run(followSource(options, notice: notice))
    }

    /// A source following files, resuming from this engine's checkpoints (for ``run(_:firstLine:)``).
    public func followSource(_ options: FollowSource.Options, notice: @escaping (String, String) -> Void) -> any LineSource {
        NoticingSource(FollowSource(options: options, db: db), notice: notice)
    }

    /// The stream clock: the newest event time seen.
    public var streamClock: EventTime { processor.rules.clock }

    /// Whether each metric's global baseline is ready, in metric order.
    public var baselineReadiness: [(String, Bool)] {
        let model = processor.baseline
        return model.metrics.indices.map { (model.metrics[$0].name, model.globalStats(metric: $0)?.ready ?? false) }
    }

    /// The quarantine's counts since the database began (events quarantined, shifts admitted,
    /// quarantines refused) and the quarantines open now.
    public var baselineQuarantine: (events: Int64, admitted: Int64, refused: Int64, open: Int) {
        let c = processor.baseline.quarantineCounts
        return (c.events, c.admitted, c.refused, processor.baseline.quarantineSummary.count)
    }

    /// Every sink's name.
    public var sinkNames: [String] { sinks.map(\.name) }

    // MARK: - Ingest

    /// Reads a file or standard input to its end (or, for a live pipe, until it closes).
    /// - Parameter reingest: read a file from its first line even when it, or a file with the same
    ///   first bytes under another path, was ingested before.
    public func ingest(_ input: InputSource, reingest: Bool = false) async throws -> IngestSummary {
        switch input {
        case .standardInput:
            return try await run(StandardInputSource(maxLineBytes: config.maxLineBytes), decodeAhead: config.threads >= 2)
        case .file(let path):
            let source = try FileSource(path: path, maxLineBytes: config.maxLineBytes, db: db, reingest: reingest)
            summary.totalBytes = source.size
            summary.startOffset = source.resume.offset
            if source.resume.offset > 0 { summary.resumedAtLine = source.resume.line }
            summary.sameContentAs = source.resume.sameContentAs.map { ($0, source.resume.line) }
            summary.replacedFile = source.resume.replaced
            return try await run(source, firstLine: source.resume.line, decodeAhead: config.threads >= 2)
        }
    }

    /// Runs `source` through the pipeline until it ends or a signal interrupts it, committing a
    /// batch every `batch_lines` lines and whenever the source is caught up.
    /// - Parameter decodeAhead: read and decode on a thread of its own (``DecodeAhead``): only
    ///   for a file or standard input, with no rule reload.
    public func run(_ source: any LineSource, firstLine: Int64 = 1, decodeAhead: Bool = false) async throws -> IngestSummary {
        // Counters kept in the database across runs; the summary reports this run's share.
        let baselineAtStart = (skipped: processor.baseline.skipped, excluded: processor.baseline.excluded,
                               quarantined: processor.baseline.quarantineCounts.events)
        let (lateAtStart, overflowAtStart) = (processor.rules.lateEvents, processor.rules.keyOverflow)
        let began = Date()
        var lastProgress = began
        var decoded = DecodedBatch()
        var rejects: [Reject] = []
        var checkpoints: [String: SourceCheckpoint] = [:]
        var batchLines = 0
        var nextLine = firstLine, committedLine = firstLine
        // Only where committing a checkpoint may run beside a read (a file, standard input), and
        // with a decoder of its own (the thread can outlive this run by one read).
        let readsAhead = decodeAhead && !reloadOnSignal && ruleWatcher == nil && (source is FileSource || source is StandardInputSource)
        let ahead = readsAhead ? DecodeAhead(source: source, decoder: {
            let own = JSONLineDecoder(fields: decoder.fields, maxLineBytes: config.maxLineBytes)
            own.stampMissingTime = decoder.stampMissingTime
            return own
        }()) : nil
        defer { ahead?.stop() }
        while true {
            let batch: LineBatch, status: LineReader.Status
            if let ahead {
                let item = try ahead.next()
                (batch, status, decoded) = (item.batch, item.status, item.decoded)
            } else {
                (batch, status) = try source.next()
                decoded.removeAll()
                decoder.decode(batch, into: &decoded)
            }
            if !decoded.events.isEmpty { try forensics.use(Engine.sourceIdentity(batch)) }
            for event in decoded.events {
                processor.process(event)
                forensics.observe(event, detections: processor.detections)
                if rollups != nil {
                    if processor.counts.recomputes != rollupBand {
                        rollupBand = processor.counts.recomputes
                        rollups!.baselineChanged(processor.baseline)
                    }
                    rollups!.observe(event)
                }
                if exporter != nil { exporter!.observe(event, detections: processor.detections, baseline: processor.baseline) }
            }
            var batchRejects = decoded.rejects
            if !batch.rejects.isEmpty { batchRejects = (batch.rejects + batchRejects).sorted { $0.line < $1.line } }
            Reject.annotate(&batchRejects, from: batch.origins)
            let input = batch.source == "http" && batch.path == nil ? "http" : batch.source == "stdin" ? "stdin" : "file"
            summary.linesRead += decoded.lines + Int64(batch.rejects.count)
            summary.blankLines += decoded.blank
            summary.accepted += Int64(decoded.events.count)
            if !batch.lines.isEmpty || !batch.rejects.isEmpty {
                summary.inputs[input, default: IngestSummary.InputCounts()].add(read: decoded.lines + Int64(batch.rejects.count),
                                                                              accepted: Int64(decoded.events.count), rejects: batchRejects)
            }
            for r in batchRejects { summary.rejected[r.reason.rawValue, default: 0] += 1 }
            rejects += batchRejects
            if let last = batch.lines.last { nextLine = last.number + 1 }
            if let c = batch.checkpoint {
                checkpoints[c.key] = c
                summary.bytes = c.offset - summary.startOffset
            } else {
                summary.bytes += Int64(batch.bytes.count - (batch.bytes.isEmpty ? 0 : LineReader.padding) + batch.lines.count)
            }
            batchLines += batch.lines.count + batch.rejects.count
            let done = status == .endOfInput || status == .interrupted
            // Due at the end, every batch_lines lines, and when the source is caught up; an idle
            // follower's "caught up" with nothing read since the last commit writes nothing.
            let due = done || batchLines >= config.batchLines || batch.caughtUp
            if due && (batchLines > 0 || !checkpoints.isEmpty || summary.commits == 0 || done) {
                do {
                    try await commit(rejects: rejects, checkpoints: checkpoints.values)
                } catch let error as DatabaseError {
                    throw CommitError(databasePath: config.databasePath, source: source.name, committedBefore: committedLine,
                                      resumable: batch.checkpoint != nil, underlying: error)
                }
                for c in checkpoints.values { source.committed(c) }
                rejects.removeAll(keepingCapacity: true)
                checkpoints.removeAll(keepingCapacity: true)
                committedLine = nextLine
                batchLines = 0
                if let progress, Date().timeIntervalSince(lastProgress) >= 1 {
                    lastProgress = Date()
                    summary.seconds = lastProgress.timeIntervalSince(began)
                    takeCounts()
                    progress(summary)
                }
            }
            if status == .interrupted { summary.interrupted = (Interruption.signal, nextLine) }
            if done { break }
            if batchLines == 0 { reloadIfAsked() }
        }
        summary.seconds = Date().timeIntervalSince(began)
        takeCounts()
        summary.lateEvents = processor.rules.lateEvents - lateAtStart
        summary.keyOverflow = processor.rules.keyOverflow - overflowAtStart
        summary.baselineExcluded = processor.baseline.excluded - baselineAtStart.excluded
        summary.baselineQuarantined = processor.baseline.quarantineCounts.events - baselineAtStart.quarantined
        let metrics = processor.baseline.metrics.map(\.name)
        summary.baselineSkipped = metrics.indices.map { (metrics[$0], processor.baseline.skipped[$0] - baselineAtStart.skipped[$0]) }
        return summary
    }

    /// Where a batch's events are, for the forensic index: a file by resolved path and
    /// fingerprint, the input journal by its id, standard input.
    static func sourceIdentity(_ batch: LineBatch) -> (kind: String, name: String, path: String, fingerprint: String) {
        guard let c = batch.checkpoint else { return ("stdin", batch.source, "stdin", "") }
        if c.key == JournalSource.checkpointKey { return ("journal", batch.source, c.key, c.fingerprint) }
        return ("file", batch.source, batch.path ?? c.key, c.fingerprint)
    }

    /// The processor's counts into the summary.
    func takeCounts() {
        summary.detections = processor.counts.detections
        summary.recomputes = processor.counts.recomputes
        summary.alerts = processor.counts.alerts
        summary.suppressed = processor.counts.suppressed
    }

    /// Commits the batch (state, rejects, alerts, checkpoints) in one transaction, then delivers
    /// the local sinks.
    func commit(rejects: [Reject], checkpoints: some Sequence<SourceCheckpoint>) async throws {
        let began = ContinuousClock.now
        let alerts = processor.takeAlerts()
        let exports = exporter?.take()
        let (queued, pruned) = try committer.commit(rejects: rejects, alerts: alerts, processor: &processor, rollups: &rollups, forensics: &forensics,
                                                    checkpoints: checkpoints,
                                          exports: exports.map { ($0.chunks, $0.skipped) })
        summary.duplicateAlerts += Int64(queued.filter { !$0 }.count)
        if pruned {
            do { try Forensics.freeSpace(db) } catch { logger.warning("retention: could not free the pruned pages: \(error)") }
        }
        if let exports { try noteExports(exports) }
        if !alerts.isEmpty || summary.commits == 0 {
            if !alerts.isEmpty { beforeLocalOutput?() }
            let now = Date().timeIntervalSince1970
            // The first commit, or after a failed local write: every due row, read from the
            // outbox (what an earlier run left pending too). Otherwise the batch's alerts, written
            // from memory.
            let pass = summary.commits == 0 || localBacklog
                ? try await deliverer.deliverLocal(db, now: now)
                : try await deliverer.deliverLocal(zip(alerts, queued).filter(\.1).map(\.0), db, now: now)
            // Until nothing of the local sinks is pending (a failed write waits for its backoff).
            let stillPending = localBacklog ? try Outbox.pendingCount(db, sinks: localSinkNames) > 0 : false
            localBacklog = pass.failed + pass.dead > 0 || stillPending
            summary.localDeliveryErrors += pass.failed + pass.dead
        }
        summary.commits += 1
        if let afterCommit {
            takeCounts()
            afterCommit(summary, ContinuousClock.now - began)
        }
    }

    /// Counts what the batch queued for export; logs oversize events; stalls or resumes targets.
    func noteExports(_ e: (chunks: [ExportStore.Chunk], skipped: [ExportStore.Skipped], oversize: [(String, Int)])) throws {
        for c in e.chunks { summary.exports[c.target, default: (0, 0)].queued += Int64(c.events) }
        for s in e.skipped { summary.exports[s.target, default: (0, 0)].skipped += s.count }
        for (name, n) in e.oversize {
            logger.warning("export \(name): \(n) event(s) larger than the receiver takes in one request were skipped (counted in iw-detect exports list)")
        }
        try noteStalls()
    }

    /// Stalls or resumes export targets by how long their oldest queued event has waited.
    func noteStalls() throws {
        guard exporter != nil else { return }
        for (name, stalled) in try exporter!.updateStalls(db, now: Date().timeIntervalSince1970) {
            if stalled {
                logger.error("export \(name): stalled: its oldest unsent event has waited more than max_lag; new events are skipped (and counted) until it catches up")
            } else {
                logger.notice("export \(name): caught up within max_lag; events are queued again")
            }
        }
    }

    /// The export targets and their receivers, for the export workers.
    public var exportTargets: [(ExportTargetConfig, any EventShipper)] { exporter?.shippers ?? [] }

    /// Makes every commit of the state database fsync (`serve` with `journal_sync: full`).
    public func useFullSync() throws { try db.execute("PRAGMA synchronous=FULL") }
}

/// A follower that reports its notices after each read.
final class NoticingSource: LineSource {
    let inner: FollowSource
    let notice: (String, String) -> Void
    var name: String { inner.name }

    init(_ inner: FollowSource, notice: @escaping (String, String) -> Void) {
        self.inner = inner
        self.notice = notice
    }

    func next() throws -> (LineBatch, LineReader.Status) {
        let result = try inner.next()
        for (path, what) in inner.takeNotices() { notice(path, what) }
        return result
    }
}
