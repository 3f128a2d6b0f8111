import Alerts
import Foundation
import IWDetectCore
import Logging
import Synchronization

/// The export workers: one per target, each with its own database connection, backoff and
/// circuit breaker, so a receiver that is slow or down never delays detection, alert delivery or
/// another target. A batch leaves when it holds `batch_size` events or its oldest chunk has
/// waited `flush_interval`; it leaves the spool only once the receiver took it.
public final class ExportService: Sendable {
    let databasePath: String
    let targets: [(ExportTargetConfig, any EventShipper)]
    let policy: DeliveryPolicy
    let logger: Logger
    private let stopped = Mutex(false)
    private let draining = Mutex(false)
    private let counters = Mutex([String: Stats]())

    /// What a target's worker did since start.
    public struct Stats: Sendable, Equatable {
        public var sent: Int64 = 0
        public var requests: Int64 = 0
        public var failures: Int64 = 0
        /// Events dead-lettered: refused for good by the receiver.
        public var dead: Int64 = 0
        public var lastError: String?
        public init() {}
    }

    public init(databasePath: String, targets: [(ExportTargetConfig, any EventShipper)], policy: DeliveryPolicy,
                logger: Logger = Logger(label: "iw-detect.export")) {
        self.databasePath = databasePath
        self.targets = targets
        self.policy = policy
        self.logger = logger
    }

    public var names: [String] { targets.map(\.0.name) }

    /// Asks the workers to end after the request each has in flight.
    public func stop() { stopped.withLock { $0 = true } }
    var isStopped: Bool { stopped.withLock { $0 } }
    var isDraining: Bool { draining.withLock { $0 } }

    public func stats() -> [String: Stats] { counters.withLock { $0 } }

    func update(_ name: String, _ change: (inout Stats) -> Void) {
        counters.withLock { change(&$0[name, default: Stats()]) }
    }

    /// Runs every target's worker until ``stop()``.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for (config, shipper) in targets {
                group.addTask { await self.work(config, shipper) }
            }
        }
    }

    func work(_ config: ExportTargetConfig, _ shipper: any EventShipper) async {
        var log = logger
        log[metadataKey: "export"] = .string(config.name)
        let db: Database
        do { db = try Database(path: databasePath) } catch {
            log.error("export worker cannot open the database: \(error)")
            update(config.name) { $0.lastError = "cannot open the database" }
            return
        }
        var breaker = CircuitBreaker()
        var attempt: Int64 = 0
        /// Refusals that cannot be retried (an HEC 400), of the batch at the head of the spool.
        var refusals: Int64 = 0
        var notBefore = 0.0
        var idle = 0.05
        while !isStopped {
            let now = Date().timeIntervalSince1970
            if now < notBefore || !breaker.allows(now: now) {
                await sleep(min(max(max(notBefore, breaker.state == .open ? breaker.openUntil : 0) - now, 0.01), 0.25))
                continue
            }
            let batch: [ExportStore.Queued]
            do {
                batch = try ExportStore.next(db, target: config.name, maxEvents: config.batchSize, maxBytes: shipper.maxBodyBytes ?? .max)
            } catch {
                log.error("export spool read failed: \(error)")
                await sleep(1)
                continue
            }
            guard let oldest = batch.first else {
                await sleep(idle)
                idle = min(idle * 2, 0.5)
                continue
            }
            idle = 0.05
            let events = batch.reduce(0) { $0 + $1.events }
            let waited = now - oldest.queuedAt
            if events < config.batchSize && waited < config.flushInterval && !isDraining {
                await sleep(min(config.flushInterval - waited, 0.1))
                continue
            }
            do throws(SinkError) {
                try await shipper.ship(batch.map(\.body))
            } catch {
                attempt += 1
                if !error.isRetryable && !error.isUnreachable {
                    refusals += 1
                    if refusals >= policy.maxAttempts {
                        // Refused max_attempts times: set aside (kept, counted), so one bad
                        // event does not hold up the whole stream.
                        do {
                            try ExportStore.deadLetter(batch, target: config.name, error: error.message, now: now, in: db)
                            log.error("export dead-lettered \(events) events the receiver refused \(refusals) times: \(error.message)")
                            update(config.name) {
                                $0.dead += Int64(events)
                                $0.failures += 1
                                $0.lastError = error.message
                            }
                            refusals = 0
                            attempt = 0
                            continue
                        } catch {
                            log.error("export bookkeeping failed: \(error)")
                        }
                    }
                }
                let opened = breaker.failed(now: now, policy: policy)
                notBefore = now + max(error.retryAfter ?? 0, policy.backoff(attempt: attempt))
                log.info("export failed: \(error.message)", metadata: ["events": .stringConvertible(events), "attempt": .stringConvertible(attempt)])
                update(config.name) {
                    $0.failures += 1
                    $0.lastError = error.message
                }
                do { try ExportStore.recordFailure(error.message, target: config.name, now: now, in: db) } catch {
                    log.error("export bookkeeping failed: \(error)")
                }
                if opened { log.info("circuit open: no request for \(Int((breaker.openUntil - now).rounded())) s, then one probe") }
                continue
            }
            breaker.succeeded()
            attempt = 0
            refusals = 0
            do {
                try ExportStore.acknowledge(batch, target: config.name, now: Date().timeIntervalSince1970, in: db)
            } catch {
                // Sent but not recorded: sent again later (at least once).
                log.error("export bookkeeping failed: \(error)")
                await sleep(1)
                continue
            }
            update(config.name) {
                $0.sent += Int64(events)
                $0.requests += 1
            }
        }
    }

    func sleep(_ seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(max(seconds, 0) * 1e9))
    }

    /// Sends partial batches at once and waits until every target's spool is empty, or `timeout`
    /// seconds; returns the events left queued, by target.
    public func drain(timeout: Double) async -> [String: Int64] {
        draining.withLock { $0 = true }
        guard let db = try? Database(path: databasePath) else { return [:] }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = ((try? ExportStore.status(db, targets: names)) ?? []).filter { $0.pending > 0 }
            if left.isEmpty || Date() >= deadline { return Dictionary(uniqueKeysWithValues: left.map { ($0.name, $0.pending) }) }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
