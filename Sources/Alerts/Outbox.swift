import IWDetectCore

/// The durable delivery queue: one row per alert and sink, `pending` until the sink took it,
/// `delivered` after, `dead` when it was given up (see ``DeliveryPolicy``). All outbox SQL is here.
///
/// Times are wall-clock milliseconds (delivery is the one thing that runs on the wall clock).
public enum Outbox {
    static let migrations: [Migration] = [
        // When the first attempt was made, for dead-lettering after max_age.
        Migration("outbox-2-first-attempt", """
            ALTER TABLE outbox ADD COLUMN first_attempt_at INTEGER;
            CREATE INDEX outbox_sink_due ON outbox(sink, status, next_attempt_at);
            """),
    ]

    /// One row waiting for a sink.
    public struct Row: Sendable {
        public var alert: AlertRecord
        public var sink: String
        public var attempts: Int64
        /// Wall-clock milliseconds of the first attempt, if one was made.
        public var firstAttemptAt: Int64?
    }

    /// A row's state, for `alerts show`.
    public struct Entry: Sendable {
        public var alertID: String
        public var sink: String
        public var status: String
        public var attempts: Int64
        public var lastError: String?
        public var nextAttemptAt: Int64
    }

    static func millis(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }

    /// Queues `alertID` for each sink (in the alert's own transaction).
    public static func enqueue(alertID: String, sinks: [String], into db: Database) throws {
        for sink in sinks {
            try db.run("INSERT INTO outbox(alert_id, sink) VALUES (?, ?)", [.text(alertID), .text(sink)])
        }
    }

    /// Up to `limit` rows of `sink` due at `now`, oldest alert first.
    public static func due(_ db: Database, sink: String, now: Double, limit: Int) throws -> [Row] {
        try db.query("""
            SELECT \(AlertStore.columns), o.attempts, o.first_attempt_at
            FROM outbox o JOIN alerts a ON a.id = o.alert_id
            WHERE o.sink = ? AND o.status = 'pending' AND o.next_attempt_at <= ?
            ORDER BY a.seq LIMIT ?
            """, [.text(sink), .int(millis(now)), .int(Int64(limit))]) { s in
            let n = AlertStore.columnCount
            return Row(alert: try AlertStore.record(s), sink: sink, attempts: s.int(n), firstAttemptAt: s.isNull(n + 1) ? nil : s.int(n + 1))
        }
    }

    /// The wall-clock second the next pending row of `sink` is due, if any.
    public static func nextDue(_ db: Database, sink: String) throws -> Double? {
        try db.query("SELECT min(next_attempt_at) FROM outbox WHERE sink = ? AND status = 'pending'", [.text(sink)]) {
            $0.isNull(0) ? nil : Double($0.int(0)) / 1000
        }.first ?? nil
    }

    /// Marks rows delivered.
    public static func delivered(_ rows: [Row], now: Double, in db: Database) throws {
        for r in rows {
            try db.run("""
                UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL,
                    first_attempt_at = coalesce(first_attempt_at, ?), delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                WHERE alert_id = ? AND sink = ?
                """, [.int(millis(now)), .text(r.alert.id), .text(r.sink)])
        }
    }

    /// Records a failed attempt: retried at `retryAt` (wall-clock seconds), or dead when nil.
    public static func failed(_ rows: [Row], error: String, retryAt: Double?, now: Double, in db: Database) throws {
        for r in rows {
            if let retryAt {
                try db.run("""
                    UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
                        first_attempt_at = coalesce(first_attempt_at, ?)
                    WHERE alert_id = ? AND sink = ?
                    """, [.text(error), .int(millis(retryAt)), .int(millis(now)), .text(r.alert.id), .text(r.sink)])
            } else {
                try db.run("""
                    UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?,
                        first_attempt_at = coalesce(first_attempt_at, ?)
                    WHERE alert_id = ? AND sink = ?
                    """, [.text(error), .int(millis(now)), .text(r.alert.id), .text(r.sink)])
            }
        }
    }

    /// Puts rows back to pending, due now (`alerts redeliver`): dead ones; with `waiting` also
    /// pending ones waiting on backoff; with `all` delivered ones too. Returns how many.
    public static func requeue(_ db: Database, alertID: String?, waiting: Bool, all: Bool) throws -> Int {
        let statuses = all ? "('dead', 'delivered', 'pending')" : waiting ? "('dead', 'pending')" : "('dead')"
        var sql = "UPDATE outbox SET status = 'pending', next_attempt_at = 0, attempts = 0, first_attempt_at = NULL WHERE status IN \(statuses)"
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

    /// The rows of one alert, by sink.
    public static func entries(_ db: Database, alertID: String) throws -> [Entry] {
        try db.query("SELECT alert_id, sink, status, attempts, last_error, next_attempt_at FROM outbox WHERE alert_id = ? ORDER BY sink", [.text(alertID)]) {
            Entry(alertID: $0.text(0), sink: $0.text(1), status: $0.text(2), attempts: $0.int(3), lastError: $0.optionalText(4), nextAttemptAt: $0.int(5))
        }
    }

    /// Counts of pending and dead-lettered rows by sink and status: read through the status index,
    /// so its cost follows what is waiting, not every delivery ever made (for `/metrics`).
    public static func openCounts(_ db: Database) throws -> [(sink: String, status: String, count: Int64)] {
        try db.query("SELECT sink, status, count(*) FROM outbox WHERE status IN ('pending', 'dead') GROUP BY sink, status") {
            ($0.text(0), $0.text(1), $0.int(2))
        }
    }

    /// Counts by sink and status.
    public static func counts(_ db: Database) throws -> [(sink: String, status: String, count: Int64)] {
        try db.query("SELECT sink, status, count(*) FROM outbox GROUP BY sink, status ORDER BY sink, status") { ($0.text(0), $0.text(1), $0.int(2)) }
    }
}
