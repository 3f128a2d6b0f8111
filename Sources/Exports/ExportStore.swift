import IWDetectCore

/// The export spool and each target's position in the state database. All export SQL is here.
///
/// The pipeline inserts a target's rendered events (a chunk of at most a request's worth) in the
/// transaction that commits the batch they came from, with the input's checkpoint; a target's
/// worker deletes the chunks its receiver acknowledged, in the transaction that advances the
/// target's counters. So the spool holds exactly the events that are processed and not yet
/// acknowledged: a crash or `kill -9` anywhere loses none, and at most re-sends the batch that
/// was in flight.
public enum ExportStore {
    public static let migrations: [Migration] = [
        Migration("exports-1", """
            CREATE TABLE export_spool (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                target TEXT NOT NULL, events INTEGER NOT NULL, bytes INTEGER NOT NULL,
                first_time INTEGER NOT NULL, last_time INTEGER NOT NULL,
                queued_at REAL NOT NULL, body BLOB NOT NULL
            );
            CREATE INDEX export_spool_target ON export_spool(target, id);
            CREATE TABLE export_dead (
                id INTEGER PRIMARY KEY, target TEXT NOT NULL, events INTEGER NOT NULL,
                first_time INTEGER NOT NULL, last_time INTEGER NOT NULL, queued_at REAL NOT NULL,
                body BLOB NOT NULL, error TEXT NOT NULL, dead_at REAL NOT NULL
            );
            CREATE TABLE export_targets (
                name TEXT PRIMARY KEY NOT NULL,
                sent INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,
                failures INTEGER NOT NULL DEFAULT 0,
                skipped INTEGER NOT NULL DEFAULT 0, skipped_first INTEGER, skipped_last INTEGER,
                last_sent_at REAL, last_sent_event_time INTEGER,
                last_error TEXT, last_error_at REAL,
                stalled INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID;
            """),
    ]

    /// A target's rendered events, ready to be sent as (part of) one request.
    public struct Chunk: Sendable {
        public var target: String
        public var events: Int
        /// The items, joined by the receiver's separator.
        public var body: [UInt8]
        public var firstTime: EventTime
        public var lastTime: EventTime
    }

    /// Events a stalled target did not queue, for its row.
    public struct Skipped: Sendable {
        public var target: String
        public var count: Int64
        public var first: EventTime
        public var last: EventTime
    }

    /// Queues chunks and counts skipped events (inside the batch's transaction).
    public static func insert(_ chunks: [Chunk], skipped: [Skipped], now: Double, into db: Database) throws {
        for c in chunks {
            try db.run("INSERT INTO export_spool(target, events, bytes, first_time, last_time, queued_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [.text(c.target), .int(Int64(c.events)), .int(Int64(c.body.count)), .int(c.firstTime.micros), .int(c.lastTime.micros),
                        .double(now), .blob(c.body)])
        }
        for s in skipped {
            try ensure(s.target, in: db)
            try db.run("""
                UPDATE export_targets SET skipped = skipped + ?, skipped_first = coalesce(skipped_first, ?), skipped_last = ? WHERE name = ?
                """, [.int(s.count), .int(s.first.micros), .int(s.last.micros), .text(s.target)])
        }
    }

    static func ensure(_ target: String, in db: Database) throws {
        try db.run("INSERT OR IGNORE INTO export_targets(name) VALUES (?)", [.text(target)])
    }

    /// When (wall clock, Unix seconds) the target's oldest queued chunk was queued.
    public static func oldestQueuedAt(_ db: Database, target: String) throws -> Double? {
        try db.query("SELECT queued_at FROM export_spool WHERE target = ? ORDER BY id LIMIT 1", [.text(target)]) { $0.double(0) }.first
    }

    /// A queued chunk, as the worker reads it.
    public struct Queued: Sendable {
        public var id: Int64
        public var events: Int
        public var bytes: Int
        public var queuedAt: Double
        public var lastTime: EventTime
        public var body: [UInt8]
    }

    /// The target's oldest chunks, up to `maxEvents` events and `maxBytes` bytes (at least one).
    /// Every statement runs to its end, so the connection holds no read transaction afterwards
    /// (one left open would make the acknowledgement's write fail at once with SQLITE_BUSY).
    public static func next(_ db: Database, target: String, maxEvents: Int, maxBytes: Int) throws -> [Queued] {
        let heads = try db.query("SELECT id, events, bytes, queued_at, last_time FROM export_spool WHERE target = ? ORDER BY id LIMIT ?",
                                 [.text(target), .int(Int64(min(maxEvents, 1000)))]) {
            Queued(id: $0.int(0), events: Int($0.int(1)), bytes: Int($0.int(2)), queuedAt: $0.double(3), lastTime: EventTime(micros: $0.int(4)), body: [])
        }
        var out: [Queued] = []
        var events = 0, bytes = 0
        for q in heads {
            // A body is the chunks joined by one separator byte (and, for arrays, wrapped in two).
            if !out.isEmpty && (events + q.events > maxEvents || bytes + q.bytes + 2 > maxBytes) { break }
            out.append(q)
            events += q.events
            bytes += q.bytes + 1
        }
        guard let first = out.first, let last = out.last else { return [] }
        let bodies = try db.query("SELECT body FROM export_spool WHERE target = ? AND id BETWEEN ? AND ? ORDER BY id",
                                  [.text(target), .int(first.id), .int(last.id)]) { $0.blob(0) }
        guard bodies.count == out.count else { return [] }  // changed meanwhile: read again
        for i in out.indices { out[i].body = bodies[i] }
        return out
    }

    /// The receiver took `chunks`: they leave the spool and the target's counters advance.
    public static func acknowledge(_ chunks: [Queued], target: String, now: Double, in db: Database) throws {
        guard let last = chunks.last else { return }
        try db.transaction {
            try ensure(target, in: db)
            try db.run("DELETE FROM export_spool WHERE target = ? AND id <= ?", [.text(target), .int(last.id)])
            try db.run("""
                UPDATE export_targets SET sent = sent + ?, requests = requests + 1, last_sent_at = ?,
                    last_sent_event_time = max(coalesce(last_sent_event_time, ?), ?) WHERE name = ?
                """, [.int(Int64(chunks.reduce(0) { $0 + $1.events })), .double(now), .int(last.lastTime.micros), .int(last.lastTime.micros), .text(target)])
            // Nothing left behind: no longer stalled (the pipeline sees it at its next commit).
            try db.run("UPDATE export_targets SET stalled = 0 WHERE name = ? AND NOT EXISTS (SELECT 1 FROM export_spool WHERE target = ?)",
                       [.text(target), .text(target)])
        }
    }

    /// The receiver refused `chunks` for good (`max_attempts` times, not retryable): they move
    /// from the spool to `export_dead`, with the error.
    public static func deadLetter(_ chunks: [Queued], target: String, error: String, now: Double, in db: Database) throws {
        guard let first = chunks.first, let last = chunks.last else { return }
        try db.transaction {
            try ensure(target, in: db)
            try db.run("""
                INSERT INTO export_dead(id, target, events, first_time, last_time, queued_at, body, error, dead_at)
                SELECT id, target, events, first_time, last_time, queued_at, body, ?, ? FROM export_spool WHERE target = ? AND id BETWEEN ? AND ?
                """, [.text(error), .double(now), .text(target), .int(first.id), .int(last.id)])
            try db.run("DELETE FROM export_spool WHERE target = ? AND id BETWEEN ? AND ?", [.text(target), .int(first.id), .int(last.id)])
            try db.run("UPDATE export_targets SET last_error = ?, last_error_at = ? WHERE name = ?", [.text(error), .double(now), .text(target)])
        }
    }

    /// Puts a target's dead-lettered batches back at the head of its spool (`exports redeliver`),
    /// under their first ids, so they go out first and in their order. Returns the events requeued.
    public static func requeueDead(_ db: Database, target: String) throws -> Int64 {
        try db.transaction {
            let n = try db.query("SELECT coalesce(sum(events), 0) FROM export_dead WHERE target = ?", [.text(target)]) { $0.int(0) }.first ?? 0
            try db.run("""
                INSERT INTO export_spool(id, target, events, bytes, first_time, last_time, queued_at, body)
                SELECT id, target, events, length(body), first_time, last_time, queued_at, body FROM export_dead WHERE target = ?
                """, [.text(target)])
            try db.run("DELETE FROM export_dead WHERE target = ?", [.text(target)])
            return n
        }
    }

    /// A request failed; `error` has no secret in it (sinks scrub them).
    public static func recordFailure(_ error: String, target: String, now: Double, in db: Database) throws {
        try db.transaction {
            try ensure(target, in: db)
            try db.run("UPDATE export_targets SET failures = failures + 1, last_error = ?, last_error_at = ? WHERE name = ?",
                       [.text(error), .double(now), .text(target)])
        }
    }

    /// Records that the pipeline stalled the target (past max_lag) or resumed it.
    public static func setStalled(_ stalled: Bool, target: String, in db: Database) throws {
        try db.atomically {
            try ensure(target, in: db)
            try db.run("UPDATE export_targets SET stalled = ? WHERE name = ?", [.int(stalled ? 1 : 0), .text(target)])
        }
    }

    /// A target's position and lag, for `exports list` and `/metrics`.
    public struct Status: Sendable, Equatable {
        public var name: String
        public var sent: Int64 = 0
        public var requests: Int64 = 0
        public var failures: Int64 = 0
        public var skipped: Int64 = 0
        public var skippedFirst: EventTime?
        public var skippedLast: EventTime?
        public var lastSentAt: Double?
        public var lastSentEventTime: EventTime?
        public var lastError: String?
        public var lastErrorAt: Double?
        /// Whether the pipeline stalled it: new events are skipped until it is within max_lag.
        public var stalled = false
        /// Events the receiver refused for good, kept in `export_dead` (until `exports redeliver`).
        public var dead: Int64 = 0
        /// Events queued and not yet acknowledged.
        public var pending: Int64 = 0
        /// The event time of the oldest of them.
        public var oldestPending: EventTime?
        /// When the oldest of them was queued (wall clock, Unix seconds).
        public var oldestQueuedAt: Double?

        public init(name: String) { self.name = name }

        /// Seconds the oldest queued event has waited (0 when nothing is queued).
        public func lag(now: Double) -> Double { oldestQueuedAt.map { max(0, now - $0) } ?? 0 }
    }

    /// The status of each of `targets` (in that order), including ones never used.
    public static func status(_ db: Database, targets: [String]) throws -> [Status] {
        var byName: [String: Status] = [:]
        for st in try db.query("""
            SELECT name, sent, requests, failures, skipped, skipped_first, skipped_last, last_sent_at, last_sent_event_time, last_error, last_error_at,
                stalled
            FROM export_targets
            """, [], { s -> Status in
                var st = Status(name: s.text(0))
                st.sent = s.int(1); st.requests = s.int(2); st.failures = s.int(3); st.skipped = s.int(4)
                st.skippedFirst = s.isNull(5) ? nil : EventTime(micros: s.int(5))
                st.skippedLast = s.isNull(6) ? nil : EventTime(micros: s.int(6))
                st.lastSentAt = s.isNull(7) ? nil : s.double(7)
                st.lastSentEventTime = s.isNull(8) ? nil : EventTime(micros: s.int(8))
                st.lastError = s.optionalText(9)
                st.lastErrorAt = s.isNull(10) ? nil : s.double(10)
                st.stalled = s.int(11) != 0
                return st
            }) {
            byName[st.name] = st
        }
        for (name, pending, oldest, newest) in try db.query(
            "SELECT target, sum(events), min(first_time), min(queued_at) FROM export_spool GROUP BY target", [], {
                ($0.text(0), $0.int(1), EventTime(micros: $0.int(2)), $0.double(3))
            }) {
            byName[name, default: Status(name: name)].pending = pending
            byName[name, default: Status(name: name)].oldestPending = oldest
            byName[name, default: Status(name: name)].oldestQueuedAt = newest
        }
        for (name, dead) in try db.query("SELECT target, sum(events) FROM export_dead GROUP BY target", [], { ($0.text(0), $0.int(1)) }) {
            byName[name, default: Status(name: name)].dead = dead
        }
        return targets.map { byName[$0] ?? Status(name: $0) }
    }
}
