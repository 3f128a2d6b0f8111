import Alerts
import Foundation
import IWDetectCore

/// Delivers the outbox rows of network sinks in the background, on its own database connection,
/// so a slow or dead receiver never stalls ingestion (DESIGN §6).
public final class DeliveryWorker: Sendable {
    let databasePath: String
    let deliverer: Deliverer
    let sinkNames: [String]

    public init(databasePath: String, sinks: [any AlertSink], settings: DeliverySettings) {
        self.databasePath = databasePath
        self.deliverer = Deliverer(sinks: sinks, settings: settings)
        self.sinkNames = sinks.map(\.name)
    }

    /// Delivers due rows until cancelled, polling every 100 ms when idle.
    public func run() async {
        guard let db = try? openStateDatabase(databasePath) else { return }
        while !Task.isCancelled {
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
