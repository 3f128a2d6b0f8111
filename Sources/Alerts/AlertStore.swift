import IWDetectCore

/// Alerts, their outbox rows and the dedup state, in the state database.
///
/// An alert and one outbox row per channel are inserted in the same transaction as the state that
/// produced them (DESIGN §6), so a crash can neither lose an alert nor raise it twice; delivery then
/// works from the outbox.
public enum AlertStore {
    public static let migrations: [Migration] = [
        Migration("alerts-1", """
            CREATE TABLE alerts (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                rule TEXT NOT NULL, severity TEXT NOT NULL, event_time INTEGER NOT NULL, group_value TEXT NOT NULL,
                json TEXT NOT NULL, summary TEXT NOT NULL,
                suppressed INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            );
            CREATE INDEX alerts_rule ON alerts(rule, event_time);
            CREATE TABLE outbox (
                alert_id TEXT NOT NULL REFERENCES alerts(id), sink TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
                attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0,
                last_error TEXT, delivered_at TEXT,
                PRIMARY KEY (alert_id, sink)
            ) WITHOUT ROWID;
            CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
            CREATE TABLE dedup_state (
                key TEXT PRIMARY KEY NOT NULL, window_end INTEGER NOT NULL, alert_id TEXT NOT NULL, suppressed INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
    ]

    /// Inserts an alert with its outbox rows. Returns false when an alert with that id already
    /// exists (the same input raised again): nothing is queued twice.
    @discardableResult
    public static func insert(_ alert: Alert, summary: String, into db: Database) throws -> Bool {
        try db.run("INSERT OR IGNORE INTO alerts(id, rule, severity, event_time, group_value, json, summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [.text(alert.id), .text(alert.rule), .text(alert.severity.rawValue), .int(alert.eventTime.micros),
                    .text(alert.groupValue), .text(alert.json.serialized()), .text(summary)])
        guard db.changes > 0 else { return false }
        for channel in alert.channels {
            try db.run("INSERT INTO outbox(alert_id, sink) VALUES (?, ?)", [.text(alert.id), .text(channel)])
        }
        return true
    }

    public static func load(_ s: inout Suppressor, from db: Database) throws {
        for (k, e) in try db.query("SELECT key, window_end, alert_id, suppressed FROM dedup_state", [], {
            ($0.text(0), Suppressor.Entry(windowEnd: $0.int(1), alertID: $0.text(2), suppressed: $0.int(3)))
        }) {
            s.entries[k] = e
        }
    }

    /// Writes changed dedup entries and the suppressed counts of their alerts.
    public static func save(_ s: inout Suppressor, to db: Database) throws {
        for (id, n) in s.closed {
            try db.run("UPDATE alerts SET suppressed = ? WHERE id = ?", [.int(n), .text(id)])
        }
        s.closed.removeAll(keepingCapacity: true)
        for k in s.dirty {
            if let e = s.entries[k] {
                try db.run("INSERT OR REPLACE INTO dedup_state(key, window_end, alert_id, suppressed) VALUES (?, ?, ?, ?)",
                           [.text(k), .int(e.windowEnd), .text(e.alertID), .int(e.suppressed)])
                try db.run("UPDATE alerts SET suppressed = ? WHERE id = ?", [.int(e.suppressed), .text(e.alertID)])
            } else {
                try db.run("DELETE FROM dedup_state WHERE key = ?", [.text(k)])
            }
        }
        s.dirty.removeAll(keepingCapacity: true)
    }
}

/// An alert as read back from the database.
public struct StoredAlert: Sendable {
    public var seq: Int64
    public var id: String
    public var rule: String
    public var severity: String
    public var eventTime: EventTime
    public var groupValue: String
    public var json: String
    public var summary: String
    public var suppressed: Int64

    static let columns = "seq, id, rule, severity, event_time, group_value, json, summary, suppressed"

    init(_ s: Statement, offset: Int32 = 0) {
        seq = s.int(offset)
        id = s.text(offset + 1)
        rule = s.text(offset + 2)
        severity = s.text(offset + 3)
        eventTime = EventTime(micros: s.int(offset + 4))
        groupValue = s.text(offset + 5)
        json = s.text(offset + 6)
        summary = s.text(offset + 7)
        suppressed = s.int(offset + 8)
    }

    /// Alerts in raise order, optionally of one rule.
    public static func list(_ db: Database, rule: String? = nil, limit: Int = Int.max) throws -> [StoredAlert] {
        if let rule {
            return try db.query("SELECT \(columns) FROM alerts WHERE rule = ? ORDER BY seq LIMIT ?", [.text(rule), .int(Int64(min(limit, Int(Int64.max))))]) { StoredAlert($0) }
        }
        return try db.query("SELECT \(columns) FROM alerts ORDER BY seq LIMIT ?", [.int(Int64(min(limit, Int(Int64.max))))]) { StoredAlert($0) }
    }

    /// The number of alerts, optionally of one rule.
    public static func count(_ db: Database, rule: String? = nil) throws -> Int64 {
        if let rule { return try db.query("SELECT count(*) FROM alerts WHERE rule = ?", [.text(rule)]) { $0.int(0) }.first ?? 0 }
        return try db.query("SELECT count(*) FROM alerts") { $0.int(0) }.first ?? 0
    }

    /// The alert with id `id`, else the alerts whose id starts with it (at most `limit`, oldest
    /// first): one for an unambiguous prefix.
    public static func matching(_ db: Database, id: String, limit: Int = 20) throws -> [StoredAlert] {
        let exact = try db.query("SELECT \(columns) FROM alerts WHERE id = ?", [.text(id)]) { StoredAlert($0) }
        if !exact.isEmpty { return exact }
        // Ids are hex; a prefix with LIKE's wildcards in it matches nothing rather than everything.
        guard !id.isEmpty, id.allSatisfy(\.isHexDigit) else { return [] }
        return try db.query("SELECT \(columns) FROM alerts WHERE id LIKE ? ORDER BY seq LIMIT ?", [.text(id + "%"), .int(Int64(limit))]) { StoredAlert($0) }
    }
}

/// An outbox row.
public struct OutboxEntry: Sendable {
    public var alertID: String
    public var sink: String
    public var status: String
    public var attempts: Int64
    public var lastError: String?

    public static func forAlert(_ db: Database, id: String) throws -> [OutboxEntry] {
        try db.query("SELECT alert_id, sink, status, attempts, last_error FROM outbox WHERE alert_id = ? ORDER BY sink", [.text(id)]) {
            OutboxEntry(alertID: $0.text(0), sink: $0.text(1), status: $0.text(2), attempts: $0.int(3), lastError: $0.optionalText(4))
        }
    }

    /// Counts by sink and status.
    public static func counts(_ db: Database) throws -> [(sink: String, status: String, count: Int64)] {
        try db.query("SELECT sink, status, count(*) FROM outbox GROUP BY sink, status ORDER BY sink, status") { ($0.text(0), $0.text(1), $0.int(2)) }
    }
}
