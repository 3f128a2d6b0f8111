#if canImport(Glibc)
import Glibc
#endif
import Alerts
import Exports
import Foundation
import Hummingbird
import IWDetectCore
import Ingest
import Logging
import NIOCore
import Pipeline
import Rules
import ServiceLifecycle
import UnixSignals

/// `iw-detect serve`, wired: the HTTP input and endpoints (Hummingbird), the pipeline on a thread
/// of its own reading the input journal (and followed files), and the delivery workers, run as
/// one service group.
///
/// SIGTERM or SIGINT shut it down in order: the HTTP server stops taking connections and
/// answers the requests in flight; the journal closes, the pipeline processes every record in it
/// and commits; the delivery workers get up to `serve.shutdown_timeout` to deliver what is
/// pending (what is left stays in the outbox for the next start). SIGHUP reloads the rules.
public final class Daemon: @unchecked Sendable {
    public let engine: Engine
    public let journal: InputJournal
    let journalSource: JournalSource
    let source: any LineSource
    let settings: ServeSettings
    let token: String?
    let logger: Logger
    let metrics: ServeMetrics
    let worker: DeliveryService?
    let exports: ExportService?
    let statusDB: Database
    let lineRate = LineRate()
    let executor = ThreadExecutor(name: "iw-detect pipeline")
    /// Set once the pipeline has started reading (what `/readyz` waits for).
    let started = NSLock()
    var pipelineRunning = false
    /// The rule count, as the pipeline's thread last saw it (a reload changes it there).
    var ruleCount: Int
    public private(set) var summary = IngestSummary()

    /// - Parameters:
    ///   - follow: files to follow beside the HTTP input, or nil.
    ///   - token: the bearer token requests must carry (already resolved), or nil.
    public init(engine: Engine, settings: ServeSettings, token: String?, follow: FollowSource.Options?, logger: Logger) throws {
        self.engine = engine
        self.settings = settings
        self.token = token
        self.logger = logger
        let config = engine.config
        var options = InputJournal.Options(path: settings.journalPath(forDatabase: config.databasePath))
        options.maxRecords = settings.maxJournalRecords
        options.maxBytes = settings.maxJournalBytes
        options.sync = settings.journalSync
        options.keep = settings.journalKeep(config.retention)
        options.keepBytes = settings.journalKeepBytes
        journal = try InputJournal(options: options)
        statusDB = try Database(path: config.databasePath)
        journalSource = try JournalSource(journal: journal, db: statusDB, maxLineBytes: config.maxLineBytes)
        if let follow {
            source = MergedSource([journalSource, engine.followSource(follow) { path, what in
                logger.info("\(path): \(what)", metadata: ["file": .string(path)])
            }])
        } else {
            source = journalSource
        }
        metrics = ServeMetrics()
        journal.onCommit = { [metrics] duration, requests in metrics.journalCommit(duration: duration, requests: requests) }
        ruleCount = engine.ruleSet.rules.count
        // With an fsynced journal the state database must be fsynced too: the journal deletes what
        // the state database says it has processed.
        if settings.journalSync == .full { try engine.useFullSync() }
        worker = engine.remoteSinks.isEmpty ? nil : DeliveryService(databasePath: config.databasePath, sinks: engine.remoteSinks, policy: config.delivery)
        exports = engine.exportTargets.isEmpty ? nil : ExportService(databasePath: config.databasePath, targets: engine.exportTargets, policy: config.delivery)
    }

    /// Runs until SIGTERM or SIGINT; returns the pipeline's summary. `onListening` hears the
    /// address the server is bound to (the port, when 0 was asked for).
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws -> IngestSummary {
        metrics.bootstrap()
        guard let (host, port) = ServeSettings.parseListen(settings.listen) else {
            throw ConfigError("serve.listen must be HOST:PORT, got '\(settings.listen)'")
        }
        let input = HTTPInput(
            settings: .init(maxBodyBytes: settings.maxBodyBytes, maxRecordBytes: engine.config.maxLineBytes, token: token, retryAfter: settings.retryAfter),
            journal: journal, metrics: metrics,
            readiness: { [unowned self] in self.readiness() },
            scrape: { [unowned self] in self.scrape() },
            dashboard: DashboardRoutes(databasePath: engine.config.databasePath, journalPath: journal.path, token: token, liveRate: { [lineRate] in lineRate.rate() }))
        var httpLogger = logger
        httpLogger.logLevel = max(logger.logLevel, .notice)
        let listen = settings.listen
        let app = Application(
            router: input.router(),
            // A client that sends nothing for a minute is let go (it would hold a shutdown).
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: .init(address: .hostname(host, port: port), serverName: "iw-detect/\(IWDetectVersion.current)"),
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? listen
                onListening(address)
            },
            logger: httpLogger)
        engine.afterCommit = { [unowned self] summary, duration in
            self.lineRate.record(lines: summary.linesRead)
            self.metrics.committed(summary, duration: duration, streamClock: self.engine.streamClock,
                                   baseline: self.engine.baselineReadiness, quarantine: self.engine.baselineQuarantine)
            let rules = self.engine.ruleSet.rules.count
            self.started.withLock { self.ruleCount = rules }
        }
        if let note = journalSource.note { logger.warning("\(note)") }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let worker { services.append(.init(service: DeliveryWorkerService(worker: worker, timeout: settings.shutdownTimeout, logger: logger))) }
        if let exports { services.append(.init(service: ExportWorkerService(service: exports, timeout: settings.shutdownTimeout, logger: logger))) }
        services.append(.init(service: PipelineService(daemon: self)))
        services.append(.init(service: app))
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      cancellationSignals: [], logger: httpLogger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.shutdownTimeout + 30)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
        journal.stop()
        return summary
    }

    /// Runs the pipeline on its own thread until the journal is drained after a shutdown began.
    func runPipeline() async throws {
        try await withTaskExecutorPreference(executor) {
            started.withLock { pipelineRunning = true }
            defer { started.withLock { pipelineRunning = false } }
            summary = try await engine.run(source)
        }
    }

    /// A shutdown began and the HTTP server has stopped: take no more records, read the rest.
    func beginDrain() {
        journal.close()
        journalSource.finish()
        Interruption.requestStop(SIGTERM)
    }

    func readiness() -> HTTPInput.Readiness {
        let (running, rules) = started.withLock { (pipelineRunning, ruleCount) }
        let depth = journal.depth
        return HTTPInput.Readiness(checks: [
            ("database", running, running ? engine.config.databasePath : "the pipeline is not running"),
            ("rules", rules > 0, "\(rules) rule(s) loaded"),
            ("journal", depth < journal.maxRecords, "\(depth) of \(journal.maxRecords) records waiting"),
        ])
    }

    let scrapeLock = NSLock()

    func scrape() -> [UInt8] {
        scrapeLock.withLock {
            var outbox: [String: (pending: Int64, dead: Int64)] = [:]
            for sink in engine.sinkNames { outbox[sink] = (0, 0) }
            for row in (try? Outbox.openCounts(statusDB)) ?? [] {
                if row.status == "pending" { outbox[row.sink, default: (0, 0)].pending += row.count }
                if row.status == "dead" { outbox[row.sink, default: (0, 0)].dead += row.count }
            }
            metrics.refresh(deliveries: worker?.stats() ?? [:], outbox: outbox.sorted { $0.key < $1.key }.map { ($0.key, $0.value.pending, $0.value.dead) },
                            journal: journal)
            if let exports {
                let targets = engine.config.exports
                let statuses = (try? ExportStore.status(statusDB, targets: targets.map(\.name))) ?? targets.map { ExportStore.Status(name: $0.name) }
                metrics.refresh(exports: exports.stats(), targets: statuses)
            }
            return metrics.render()
        }
    }
}

/// The pipeline as a service: runs until the group shuts down, then drains the journal.
struct PipelineService: Service {
    let daemon: Daemon

    func run() async throws {
        // Cancelled (another service failed, or the shutdown took too long): stop the same way,
        // so the group can end.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await daemon.runPipeline()
            } onGracefulShutdown: {
                daemon.beginDrain()
            }
        } onCancel: {
            daemon.beginDrain()
        }
    }
}

/// The delivery workers of the network sinks: on shutdown (the last service to stop, after the
/// pipeline's final commit) they get `timeout` seconds to deliver what is pending.
struct DeliveryWorkerService: Service {
    let worker: DeliveryService
    let timeout: Double
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await worker.run()
        } onGracefulShutdown: {
            Task {
                let left = await worker.drain(timeout: timeout)
                if left > 0 { logger.warning("delivery: \(left) alert deliveries still pending; they stay in the outbox and are sent by the next run") }
                worker.stop()
            }
        }
    }
}

/// The export workers: on shutdown (after the pipeline's final commit) they get `timeout` seconds
/// to send what is queued; the rest stays in the spool for the next start.
struct ExportWorkerService: Service {
    let service: ExportService
    let timeout: Double
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await service.run()
        } onGracefulShutdown: {
            Task {
                let left = await service.drain(timeout: timeout)
                for (name, n) in left.sorted(by: { $0.key < $1.key }) {
                    logger.warning("export \(name): \(n) events still queued; they stay in the spool and are sent after the next start")
                }
                service.stop()
            }
        }
    }
}
