import Alerts
import Foundation
import IWDetectCore
import Synchronization

/// Delivers the outbox rows of network sinks in the background, on its own database connection,
/// so a slow or dead receiver never stalls ingestion (DESIGN §6).
public final class DeliveryWorker: Sendable {
    let databasePath: String
    let deliverer: Deliverer
    let sinkNames: [String]
    /// Set by ``stop()``; the loop checks it between deliveries. (Task cancellation is not used:
    /// see ``WebhookSink/deliver(_:)``.)
    private let stopped = Mutex(false)

    public init(databasePath: String, sinks: [any AlertSink], settings: DeliverySettings) {
        self.databasePath = databasePath
        self.deliverer = Deliverer(sinks: sinks, settings: settings)
        self.sinkNames = sinks.map(\.name)
    }

    /// Asks ``run()`` to return after the delivery in progress.
    public func stop() { stopped.withLock { $0 = true } }

    /// Delivers due rows until ``stop()``, polling every 100 ms when idle.
    public func run() async {
        guard let db = try? openStateDatabase(databasePath) else { return }
        while !stopped.withLock({ $0 }) {
            let pass = try? await deliverer.deliverDue(db, local: false, now: Date().timeIntervalSince1970)
            if (pass?.delivered ?? 0) + (pass?.failed ?? 0) + (pass?.dead ?? 0) == 0 {
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    /// Waits until nothing is pending for these sinks, or `timeout` seconds; returns what is left.
    public func drain(timeout: Double) async -> Int64 {
        guard let db = try? Database(path: databasePath) else { return -1 }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = (try? Deliverer.pendingCount(db, sinks: sinkNames)) ?? 0
            if left == 0 || Date() >= deadline { return left }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
