import Foundation
import IWDetectCore
import Logging
import Synchronization

/// The delivery workers of the network sinks: one per sink, each with its own database
/// connection, due-query, batch size and circuit breaker, so a sink that hangs or is down never
/// delays another sink or ingestion (DESIGN §6).
public final class DeliveryService: Sendable {
    let databasePath: String
    let deliveries: [SinkDelivery]
    let logger: Logger
    /// Set by ``stop()``; each worker checks it between batches. (Task cancellation is not used:
    /// cancelling inside FoundationNetworking's async API was seen to deadlock.)
    private let stopped = Mutex(false)
    private let counters = Mutex([String: SinkStats]())

    /// What a sink's worker did since start.
    public struct SinkStats: Sendable, Equatable {
        public var delivered = 0
        public var failed = 0
        public var dead = 0
        /// Times the circuit opened.
        public var circuitOpened = 0
        public var circuit = CircuitBreaker.State.closed
        public var lastError: String?
        public init() {}
    }

    public init(databasePath: String, sinks: [any AlertSink], policy: DeliveryPolicy, logger: Logger = Logger(label: "iw-detect.delivery")) {
        self.databasePath = databasePath
        self.deliveries = sinks.filter { !$0.isLocal }.map { SinkDelivery(sink: $0, policy: policy) }
        self.logger = logger
    }

    public var sinkNames: [String] { deliveries.map(\.sink.name) }

    /// Asks the workers to end after the batch each has in flight.
    public func stop() { stopped.withLock { $0 = true } }

    var isStopped: Bool { stopped.withLock { $0 } }

    /// Each sink's figures so far.
    public func stats() -> [String: SinkStats] { counters.withLock { $0 } }

    /// Runs every sink's worker until ``stop()``.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for delivery in deliveries {
                group.addTask { await self.work(delivery) }
            }
        }
    }

    func update(_ sink: String, _ change: (inout SinkStats) -> Void) {
        counters.withLock { change(&$0[sink, default: SinkStats()]) }
    }

    /// One sink's loop: a batch when one is due and the circuit allows; otherwise a short sleep
    /// (50 ms after work, growing to 500 ms when idle, so a new alert leaves within half a second).
    func work(_ delivery: SinkDelivery) async {
        let name = delivery.sink.name
        var log = logger
        log[metadataKey: "sink"] = .string(name)
        let db: Database
        do { db = try Database(path: databasePath) } catch {
            log.error("delivery worker cannot open the database: \(error)")
            update(name) { $0.lastError = "cannot open the database" }
            return
        }
        var breaker = CircuitBreaker()
        var idle = 0.05
        while !isStopped {
            let now = Date().timeIntervalSince1970
            guard breaker.allows(now: now) else {
                await sleep(min(max(breaker.openUntil - now, 0.01), 0.25))
                continue
            }
            let outcome: SinkDelivery.Outcome
            do {
                outcome = try await delivery.deliverBatch(db, now: now)
            } catch {
                log.error("delivery bookkeeping failed: \(error)")
                update(name) { $0.lastError = "\(error)" }
                await sleep(1)
                continue
            }
            switch outcome {
            case .idle:
                await sleep(idle)
                idle = min(idle * 2, 0.5)
            case .delivered(let n):
                breaker.succeeded()
                idle = 0.05
                update(name) {
                    $0.delivered += n
                    $0.circuit = breaker.state
                }
            case .failed(let n, let dead, let message):
                let opened = breaker.failed(now: now, policy: delivery.policy)
                log.info("delivery failed: \(message)", metadata: ["alerts": .stringConvertible(n), "dead_lettered": .stringConvertible(dead)])
                if opened { log.info("circuit open: no request for \(Int((breaker.openUntil - now).rounded())) s, then one probe") }
                update(name) {
                    $0.failed += n - dead
                    $0.dead += dead
                    $0.lastError = message
                    $0.circuit = breaker.state
                    if opened { $0.circuitOpened += 1 }
                }
            }
        }
    }

    func sleep(_ seconds: Double) async {
        try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }

    /// Waits until nothing is pending for these sinks, or `timeout` seconds; returns what is left.
    public func drain(timeout: Double) async -> Int64 {
        guard let db = try? Database(path: databasePath) else { return -1 }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = (try? Outbox.pendingCount(db, sinks: sinkNames)) ?? 0
            if left == 0 || Date() >= deadline { return left }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
