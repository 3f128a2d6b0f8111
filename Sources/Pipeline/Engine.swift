#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Alerts
import Baseline
import Foundation
import IWDetectCore
import Ingest
import Rules

/// All migrations of the state database, in order.
public let allMigrations: [Migration] = IngestStore.migrations + BaselineStore.migrations + RuleStateStore.migrations + AlertStore.migrations

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

/// The ingest pipeline: source → decode → rules → baseline → dedup → route → outbox → sinks,
/// committed in batches with the source offset (DESIGN §1, §7).
///
/// One instance runs one ingest. The per-event loop is synchronous and works on values; only the
/// commit and the delivery of local sinks are awaited, once per batch.
public final class Engine {
    public let config: EngineConfig
    let db: Database
    public let ruleSet: RuleSet
    public let warnings: [Diagnostic]
    let fields: FieldTable
    var baseline: BaselineModel
    var rules: RuleEngine
    var suppressor = Suppressor()
    let router: AlertRouter
    let sinks: [any AlertSink]
    /// The configured sink names, and those that receive every alert (stdout in a zero-config run):
    /// fixed at start, so routing does not rebuild them per detection.
    let sinkNames: Set<String>
    let everywhereSinks: [String]
    let deliverer: Deliverer
    let decoder: JSONLineDecoder
    /// Called with the summary every second or so on long work (for a terminal's progress line).
    public var progress: ((IngestSummary) -> Void)?
    /// Called before alerts are written to local sinks (to clear a terminal's progress line).
    public var beforeLocalOutput: (() -> Void)?

    // Per-batch pending writes.
    var pendingRejects: [Reject] = []
    var pendingAlerts: [(Alert, String)] = []
    var detections: [Detection] = []
    public private(set) var summary = IngestSummary()
    /// The resolved path of the file being ingested (nil for standard input), kept with its rejects.
    var sourcePath: String?

    public init(config: EngineConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.config = config
        var fields = FieldTable()
        var baseline = BaselineModel(settings: config.baseline, metrics: config.metrics, fields: &fields)
        let loaded = RuleLoader.load(paths: config.rulePaths, metrics: config.metrics, fields: fields, extraFields: config.fields)
        guard let ruleSet = loaded.ruleSet else { throw RuleLoadError(diagnostics: loaded.diagnostics) }
        self.ruleSet = ruleSet
        self.warnings = loaded.diagnostics
        fields = loaded.fields
        self.fields = fields
        self.sinks = try config.makeSinks(environment: environment)
        self.sinkNames = Set(sinks.map(\.name))
        self.everywhereSinks = sinks.filter { $0.name == "stdout" && (config.stdout ?? config.sinks.isEmpty) }.map(\.name)
        self.router = AlertRouter(routes: config.routes)
        self.deliverer = Deliverer(sinks: sinks, settings: config.delivery)
        self.decoder = JSONLineDecoder(fields: fields, maxLineBytes: config.maxLineBytes)
        self.db = try openStateDatabase(config.databasePath)
        var rules = RuleEngine(ruleSet: ruleSet, settings: config.evaluation)
        try BaselineStore.load(&baseline, from: db)
        try RuleStateStore.load(&rules, from: db)
        try AlertStore.load(&suppressor, from: db)
        self.baseline = baseline
        self.rules = rules
    }

    /// Sinks delivered by the background worker (network sinks).
    public var remoteSinks: [any AlertSink] { sinks.filter { !$0.isLocal } }

    // MARK: - Ingest

    /// Reads `source` to its end (or, for a live pipe, until it closes), committing as it goes.
    /// - Parameter reingest: read a file from its first line even when it, or a file with the same
    ///   first bytes under another path, was ingested before.
    public func ingest(_ source: InputSource, reingest: Bool = false) async throws -> IngestSummary {
        let fd: Int32
        var checkpointKey: String?
        var start = IngestStore.Checkpoint(offset: 0, line: 1, fingerprint: "")
        switch source {
        case .standardInput:
            fd = STDIN_FILENO
        case .file(let path):
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw IngestError.open(path: path, errno: errno) }
            let key = IngestStore.fileKey(path)
            checkpointKey = key
            sourcePath = IngestStore.resolvedPath(path)
            start = try resumePoint(fd, key: key, reingest: reingest)
            if start.offset > 0 { summary.resumedAtLine = start.line }
            lseek(fd, off_t(start.offset), SEEK_SET)
        }
        defer { if case .file = source { close(fd) } }
        let reader = LineReader(fd: fd, maxLineBytes: config.maxLineBytes, offset: start.offset, line: start.line)
        if case .file = source {
            summary.totalBytes = fileSize(fd)
            summary.startOffset = start.offset
        }
        // Counters kept in the database across runs; the summary reports this run's share.
        let skippedAtStart = Dictionary(uniqueKeysWithValues: zip(baseline.metrics.map(\.name), baseline.skipped))
        let (lateAtStart, overflowAtStart, excludedAtStart) = (rules.lateEvents, rules.keyOverflow, baseline.excluded)
        let sourceName = source.name
        let began = Date()
        var lastProgress = began
        var batchLines = 0
        var committedLine = start.line
        while true {
            let status = try reader.read { line in
                batchLines += 1
                process(line, source: sourceName)
            }
            let done = status == .endOfInput || status == .interrupted
            if done || batchLines >= config.batchLines || status == .data(caughtUp: true) {
                do {
                    try await commit(checkpoint: checkpointKey.map {
                        ($0, IngestStore.Checkpoint(offset: reader.committedOffset, line: reader.nextLine, fingerprint: start.fingerprint))
                    })
                } catch let error as DatabaseError {
                    throw CommitError(databasePath: config.databasePath, source: sourceName, committedBefore: committedLine,
                                      resumable: checkpointKey != nil, underlying: error)
                }
                committedLine = reader.nextLine
                batchLines = 0
                summary.bytes = reader.committedOffset - start.offset
                if let progress, Date().timeIntervalSince(lastProgress) >= 1 {
                    lastProgress = Date()
                    summary.seconds = lastProgress.timeIntervalSince(began)
                    progress(summary)
                }
            }
            if status == .interrupted { summary.interrupted = (Interruption.signal, reader.nextLine) }
            if done { break }
        }
        summary.seconds = Date().timeIntervalSince(began)
        summary.lateEvents = rules.lateEvents - lateAtStart
        summary.keyOverflow = rules.keyOverflow - overflowAtStart
        summary.baselineExcluded = baseline.excluded - excludedAtStart
        summary.baselineSkipped = zip(baseline.metrics.map(\.name), baseline.skipped).map { ($0, $1 - skippedAtStart[$0, default: 0]) }
        return summary
    }

    func process(_ framed: FramedLine, source: String) {
        summary.linesRead += 1
        switch framed {
        case .tooLong(let prefix, let number, let offset, let length):
            reject(Reject(source: source, line: number, offset: offset, reason: .lineTooLong,
                          detail: "\(length) bytes, the cap is \(config.maxLineBytes) (max_line_bytes)", bytes: prefix))
        case .line(let bytes, let number, let offset):
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                summary.blankLines += 1
                return
            }
            switch decoder.decode(bytes, origin: Event.Origin(source: source, line: number), padded: true) {
            case .reject(let reason, let detail):
                reject(Reject(source: source, line: number, offset: offset, reason: reason, detail: detail, bytes: bytes))
            case .event(let event):
                summary.accepted += 1
                handle(event)
            }
        }
    }

    func reject(_ r: Reject) {
        summary.rejected[r.reason.rawValue, default: 0] += 1
        pendingRejects.append(r)
    }

    /// The per-event path: schedule, rules, baseline, dedup, route.
    @inline(__always)
    func handle(_ event: Event) {
        let clock = max(rules.clock, event.time)
        if baseline.advance(to: clock) { summary.recomputes += 1 }
        detections.removeAll(keepingCapacity: true)
        rules.evaluate(event, baseline: baseline, into: &detections)
        let blocked = event.values[FieldTable.guardrailAction].string == "block" || event.values[FieldTable.decision].string == "block"
        baseline.observe(event, trains: !(config.baseline.excludeAlerting && (blocked || !detections.isEmpty)))
        guard !detections.isEmpty else { return }
        for d in detections {
            summary.detections += 1
            switch suppressor.decide(d) {
            case .suppress:
                summary.suppressed[d.rule.name, default: 0] += 1
            case .alert(let suppressedBefore):
                let channels = router.channels(for: d.rule, available: sinkNames, everywhere: everywhereSinks)
                let alert = Alert(detection: d, suppressedBefore: suppressedBefore, detectedAt: EventTime(seconds: Date().timeIntervalSince1970), channels: channels)
                suppressor.opened(d, alertID: alert.id)
                pendingAlerts.append((alert, AlertSummary.line(d, alertID: alert.id, suppressedBefore: suppressedBefore)))
                summary.alerts["\(d.rule.name)\t\(d.rule.severity.rawValue)", default: 0] += 1
            }
        }
    }

    /// Commits the batch (state, rejects, alerts, checkpoint) in one transaction, then delivers
    /// the local sinks.
    func commit(checkpoint: (String, IngestStore.Checkpoint)?) async throws {
        suppressor.sweep(clock: rules.clock)
        try db.transaction {
            try IngestStore.insert(pendingRejects, sourcePath: sourcePath, into: db)
            for (alert, line) in pendingAlerts {
                if try !AlertStore.insert(alert, summary: line, into: db) { summary.duplicateAlerts += 1 }
            }
            try BaselineStore.save(&baseline, to: db)
            try RuleStateStore.save(&rules, to: db)
            try AlertStore.save(&suppressor, to: db)
            if let (key, c) = checkpoint { try IngestStore.save(c, source: key, into: db) }
        }
        pendingRejects.removeAll(keepingCapacity: true)
        let hadAlerts = !pendingAlerts.isEmpty
        pendingAlerts.removeAll(keepingCapacity: true)
        if hadAlerts || summary.commits == 0 {
            if hadAlerts { beforeLocalOutput?() }
            let pass = try await deliverer.deliverLocal(db, now: Date().timeIntervalSince1970)
            summary.localDeliveryErrors += pass.failed + pass.dead
        }
        summary.commits += 1
    }

    public var baselineModel: BaselineModel { baseline }

    /// Where to start reading the open file `fd`: its own checkpoint while the file still starts
    /// with the bytes it had then; else the checkpoint of another path whose file started with the
    /// same bytes (a renamed or copied file, whose events must not train the baseline twice);
    /// else the beginning. The returned fingerprint is the file's as it is now.
    func resumePoint(_ fd: Int32, key: String, reingest: Bool) throws -> IngestStore.Checkpoint {
        let size = fileSize(fd)
        let now = FileFingerprint(fd: fd).stored
        let fresh = IngestStore.Checkpoint(offset: 0, line: 1, fingerprint: now)
        if reingest { return fresh }
        func usable(_ c: IngestStore.Checkpoint) -> Bool {
            c.offset <= size && (FileFingerprint(stored: c.fingerprint)?.matches(fd: fd) ?? false)
        }
        if let saved = try IngestStore.checkpoint(db, source: key) {
            if usable(saved) { return IngestStore.Checkpoint(offset: saved.offset, line: saved.line, fingerprint: now) }
            summary.replacedFile = true
        }
        for (other, c) in try IngestStore.fileCheckpoints(db) where other != key && c.line > 1 && usable(c) {
            summary.sameContentAs = (String(other.dropFirst(IngestStore.filePrefix.count)), c.line)
            return IngestStore.Checkpoint(offset: c.offset, line: c.line, fingerprint: now)
        }
        return fresh
    }

    func fileSize(_ fd: Int32) -> Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }
}
