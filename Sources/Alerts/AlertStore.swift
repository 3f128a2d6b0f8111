import IWDetectCore

/// Alerts and the dedup state in the state database.
///
/// An alert and one outbox row per channel are inserted in the same transaction as the state that
/// produced them (DESIGN §6), so a crash can neither lose an alert nor raise it twice; delivery then
/// works from the outbox (``Outbox``).
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
    ] + Outbox.migrations + [
        Migration("alerts-3-episodes", """
            ALTER TABLE dedup_state ADD COLUMN last_seen INTEGER;
            ALTER TABLE dedup_state ADD COLUMN close_recorded INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE alerts ADD COLUMN episode_last INTEGER;
            ALTER TABLE alerts ADD COLUMN episode_closed INTEGER;
            """),
    ]

    /// Inserts an alert with an outbox row per channel. Returns false when an alert with that id
    /// already exists (the same input raised again): nothing is queued twice.
    @discardableResult
    public static func insert(_ alert: AlertRecord, channels: [String], into db: Database) throws -> Bool {
        // The readable line is computed when printed (`summary` stays empty).
        try db.run("INSERT OR IGNORE INTO alerts(id, rule, severity, event_time, group_value, json, summary) VALUES (?, ?, ?, ?, ?, ?, '')",
                   [.text(alert.id), .text(alert.rule), .text(alert.severity.rawValue), .int(alert.eventTime.micros),
                    .text(alert.groupValue), .text(alert.json.serialized())])
        guard db.changes > 0 else { return false }
        try Outbox.enqueue(alertID: alert.id, sinks: channels, into: db)
        return true
    }

    public static func load(_ s: inout Suppressor, from db: Database) throws {
        for (k, e) in try db.query("SELECT key, window_end, alert_id, suppressed, last_seen, close_recorded FROM dedup_state", [], {
            ($0.text(0), Suppressor.Entry(windowEnd: $0.int(1), alertID: $0.text(2), suppressed: $0.int(3), lastSeen: $0.isNull(4) ? nil : $0.int(4),
                                          closeRecorded: $0.int(5) != 0))
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
        for c in s.closedEpisodes {
            try db.run("UPDATE alerts SET suppressed = ?, episode_last = ?, episode_closed = ? WHERE id = ?",
                       [.int(c.suppressed), .int(c.lastSeen), .int(c.closedAt), .text(c.alertID)])
        }
        s.closedEpisodes.removeAll(keepingCapacity: true)
        for k in s.dirty {
            if let e = s.entries[k] {
                try db.run("INSERT OR REPLACE INTO dedup_state(key, window_end, alert_id, suppressed, last_seen, close_recorded) VALUES (?, ?, ?, ?, ?, ?)",
                           [.text(k), .int(e.windowEnd), .text(e.alertID), .int(e.suppressed), e.lastSeen.map { .int($0) } ?? .null,
                            .int(e.closeRecorded ? 1 : 0)])
                if let last = e.lastSeen {
                    // An episode a late detection extended is open again until its next close.
                    try db.run("UPDATE alerts SET suppressed = ?, episode_last = ?, episode_closed = ? WHERE id = ?",
                               [.int(e.suppressed), .int(last), e.closeRecorded ? .int(e.windowEnd) : .null, .text(e.alertID)])
                } else {
                    try db.run("UPDATE alerts SET suppressed = ? WHERE id = ?", [.int(e.suppressed), .text(e.alertID)])
                }
            } else {
                try db.run("DELETE FROM dedup_state WHERE key = ?", [.text(k)])
            }
        }
        s.dirty.removeAll(keepingCapacity: true)
    }

    // MARK: - Reading

    static let columns = "a.seq, a.json, a.suppressed, a.episode_last, a.episode_closed"
    static let columnCount: Int32 = 5

    /// An alert read from a row of `columns` starting at `offset`.
    static func record(_ s: Statement, offset: Int32 = 0) throws -> AlertRecord {
        var a = try AlertRecord(json: s.text(offset + 1), suppressed: s.int(offset + 2), seq: s.int(offset))
        if a.episode != nil {
            if !s.isNull(offset + 3) { a.episode?.lastEventTime = EventTime(micros: s.int(offset + 3)) }
            a.episode?.closedAt = s.isNull(offset + 4) ? nil : EventTime(micros: s.int(offset + 4))
        }
        return a
    }

    /// Which alerts `alerts list` shows.
    public struct Filter: Sendable {
        public var rule: String?
        public var severity: Severity?
        /// Event time bounds, `since` inclusive, `until` exclusive.
        public var since: EventTime?
        public var until: EventTime?
        public var user: String?
        /// Only alerts with an outbox row in this status (for `sink`, when set).
        public var delivery: String?
        public var sink: String?
        public init() {}

        func sql() -> (String, [SQLValue]) {
            var parts: [String] = []
            var args: [SQLValue] = []
            if let rule { parts.append("a.rule = ?"); args.append(.text(rule)) }
            if let severity { parts.append("a.severity = ?"); args.append(.text(severity.rawValue)) }
            if let since { parts.append("a.event_time >= ?"); args.append(.int(since.micros)) }
            if let until { parts.append("a.event_time < ?"); args.append(.int(until.micros)) }
            if let user { parts.append("json_extract(a.json, '$.user_id') = ?"); args.append(.text(user)) }
            if delivery != nil || sink != nil {
                var sub = "EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id"
                if let delivery { sub += " AND o.status = ?"; args.append(.text(delivery)) }
                if let sink { sub += " AND o.sink = ?"; args.append(.text(sink)) }
                parts.append(sub + ")")
            }
            return (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND "), args)
        }
    }

    /// Alerts in raise order.
    public static func list(_ db: Database, _ filter: Filter = Filter(), limit: Int = Int.max) throws -> [AlertRecord] {
        let (whereSQL, args) = filter.sql()
        return try db.query("SELECT \(columns) FROM alerts a\(whereSQL) ORDER BY a.seq LIMIT ?", args + [.int(Int64(min(limit, Int(Int64.max))))]) {
            try record($0)
        }
    }

    /// The number of alerts ``list(_:_:limit:)`` would give without a limit.
    public static func count(_ db: Database, _ filter: Filter = Filter()) throws -> Int64 {
        let (whereSQL, args) = filter.sql()
        return try db.query("SELECT count(*) FROM alerts a\(whereSQL)", args) { $0.int(0) }.first ?? 0
    }

    /// The alert with id `id`, else the alerts whose id starts with it (at most `limit`, oldest
    /// first): one for an unambiguous prefix.
    public static func matching(_ db: Database, id: String, limit: Int = 20) throws -> [AlertRecord] {
        let exact = try db.query("SELECT \(columns) FROM alerts a WHERE a.id = ?", [.text(id)]) { try record($0) }
        if !exact.isEmpty { return exact }
        // Ids are hex; a prefix with LIKE's wildcards in it matches nothing rather than everything.
        guard !id.isEmpty, id.allSatisfy(\.isHexDigit) else { return [] }
        return try db.query("SELECT \(columns) FROM alerts a WHERE a.id LIKE ? ORDER BY a.seq LIMIT ?", [.text(id + "%"), .int(Int64(limit))]) {
            try record($0)
        }
    }
}
