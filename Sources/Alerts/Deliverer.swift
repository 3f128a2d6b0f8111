import Foundation
import IWDetectCore

/// Retry policy of the outbox.
public struct DeliverySettings: Sendable {
    /// Attempts before an outbox row is dead-lettered.
    public var maxAttempts: Int64 = 8
    /// The first retry waits this long; each further one twice as long, up to `maxBackoff`.
    public var baseBackoff: Double = 1
    public var maxBackoff: Double = 300
    public init() {}
}

/// Delivers pending outbox rows to sinks, with exponential backoff, jitter and a dead-letter state.
public struct Deliverer: Sendable {
    public let sinks: [String: any AlertSink]
    public let settings: DeliverySettings

    public init(sinks: [any AlertSink], settings: DeliverySettings = DeliverySettings()) {
        self.sinks = Dictionary(sinks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.settings = settings
    }

    /// The outcome of one pass.
    public struct Pass: Sendable, Equatable {
        public var delivered = 0
        public var failed = 0
        public var dead = 0
        public var errors: [String] = []
        /// Outbox rows read (delivered, failed or dead, or skipped for an unknown sink).
        public var rows = 0
        public init() {}
    }

    /// Rows read per page of a delivery pass.
    public static let pageSize = 1000

    /// Delivers every due pending row of the local sinks (stdout, files), page after page, until
    /// none is due: every alert committed so far is written before this returns, whatever the
    /// count. A row whose write failed is rescheduled (or dead-lettered) and not retried in this
    /// call, so it always ends. Each page's outbox updates are one transaction.
    public func deliverLocal(_ db: Database, now: Double) async throws -> Pass {
        var total = Pass()
        while true {
            try db.execute("BEGIN IMMEDIATE")
            let page: Pass
            do {
                page = try await deliverDue(db, local: true, now: now)
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
            total.delivered += page.delivered
            total.failed += page.failed
            total.dead += page.dead
            total.errors += page.errors
            if page.rows < Deliverer.pageSize { return total }
        }
    }

    /// Delivers one page (at most ``pageSize`` rows, oldest alert first) of the due pending rows
    /// of the sinks `local` selects. Wall-clock seconds `now`.
    public func deliverDue(_ db: Database, local: Bool, now: Double) async throws -> Pass {
        let names = sinks.values.filter { $0.isLocal == local }.map(\.name).sorted()
        var pass = Pass()
        guard !names.isEmpty else { return pass }
        let placeholders = names.map { _ in "?" }.joined(separator: ",")
        let rows = try db.query("""
            SELECT o.sink, o.attempts, \(StoredAlert.columns.split(separator: ",").map { "a." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM outbox o JOIN alerts a ON a.id = o.alert_id
            WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND o.sink IN (\(placeholders))
            ORDER BY a.seq LIMIT \(Deliverer.pageSize)
            """, [.int(Int64(now * 1000))] + names.map { .text($0) }) { ($0.text(0), $0.int(1), StoredAlert($0, offset: 2)) }
        pass.rows = rows.count
        for (sinkName, attempts, alert) in rows {
            guard let sink = sinks[sinkName] else { continue }
            let failure: SinkError?
            do throws(SinkError) {
                try await sink.deliver(alert)
                failure = nil
            } catch {
                failure = error
            }
            guard let error = failure else {
                try db.run("UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE alert_id = ? AND sink = ?",
                           [.text(alert.id), .text(sinkName)])
                pass.delivered += 1
                continue
            }
            let tries = attempts + 1
            if !error.isRetryable || tries >= settings.maxAttempts {
                try db.run("UPDATE outbox SET status = 'dead', attempts = ?, last_error = ? WHERE alert_id = ? AND sink = ?",
                           [.int(tries), .text(error.message), .text(alert.id), .text(sinkName)])
                pass.dead += 1
            } else {
                let wait = error.retryAfter ?? backoff(attempt: tries)
                try db.run("UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE alert_id = ? AND sink = ?",
                           [.int(tries), .text(error.message), .int(Int64((now + wait) * 1000)), .text(alert.id), .text(sinkName)])
                pass.failed += 1
            }
            pass.errors.append(error.message)
        }
        return pass
    }

    /// Seconds to wait before attempt `attempt + 1`: exponential with ±20 % jitter.
    public func backoff(attempt: Int64) -> Double {
        let exp = min(settings.baseBackoff * Double(1 << min(attempt - 1, 30)), settings.maxBackoff)
        return exp * Double.random(in: 0.8...1.2)
    }

    /// Puts rows back to pending for immediate delivery (`alerts redeliver`); returns how many.
    public static func requeue(_ db: Database, alertID: String?, deadOnly: Bool) throws -> Int {
        var sql = "UPDATE outbox SET status = 'pending', next_attempt_at = 0, attempts = 0 WHERE status \(deadOnly ? "= 'dead'" : "IN ('dead', 'delivered', 'pending')")"
        var args: [SQLValue] = []
        if let alertID {
            sql += " AND alert_id = ?"
            args.append(.text(alertID))
        }
        try db.run(sql, args)
        return db.changes
    }

    /// Rows still pending for the given sinks.
    public static func pendingCount(_ db: Database, sinks: [String]) throws -> Int64 {
        guard !sinks.isEmpty else { return 0 }
        let placeholders = sinks.map { _ in "?" }.joined(separator: ",")
        return try db.query("SELECT count(*) FROM outbox WHERE status = 'pending' AND sink IN (\(placeholders))", sinks.map { .text($0) }) { $0.int(0) }.first ?? 0
    }
}
