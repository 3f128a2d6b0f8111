import Alerts
import Foundation
import IWDetectCore
import Rules

/// How long what is kept (`retention:`), in days of stream time: the monitoring guide's
/// `InferenceLogStore` tiers.
public struct RetentionSettings: Sendable, Equatable {
    /// The forensic index and the hourly rollups.
    public var hotDays = 30
    /// Security events, as full (redacted) records.
    public var securityDays = 365
    /// Alerts (with their delivery rows).
    public var alertDays = 365
    /// Rejected lines (by the wall clock: a reject has no event time).
    public var rejectDays = 90
    /// Keep the forensic index at all.
    public var index = true
    public init() {}
}

/// The forensic side of a batch: the index of where events are (``ForensicIndex``), the
/// security log (events that alerted, were blocked or flagged by a guardrail, or have
/// `risk_score > 0.5`, kept as redacted records past the index's retention), and pruning on a
/// stream-time schedule. Committed with the rest of each batch.
public struct Forensics {
    public static let migrations: [Migration] = ForensicIndex.migrations + [
        Migration("security-1", """
            CREATE TABLE security_events (
                id INTEGER PRIMARY KEY, time INTEGER NOT NULL, event_id TEXT NOT NULL,
                user_id TEXT, session_id TEXT, source INTEGER NOT NULL, line INTEGER NOT NULL,
                reasons TEXT NOT NULL, record TEXT NOT NULL
            );
            CREATE INDEX security_events_session ON security_events(session_id) WHERE session_id IS NOT NULL;
            CREATE INDEX security_events_user ON security_events(user_id, time) WHERE user_id IS NOT NULL;
            CREATE TABLE retention_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX alerts_time ON alerts(event_time);
            """),
    ]

    public var index: ForensicIndex?
    let db: Database
    let settings: RetentionSettings
    var slots = Slots()
    var pending: [[SQLValue]] = []
    var clock: EventTime = .unset
    var lastPruneDay: Int64
    /// The wall clock (a test sets its own), and a day past it as of the last commit.
    var now: () -> Date = Date.init
    var wallLimit = EventTime(seconds: Date().timeIntervalSince1970) + .hours(24)

    struct Slots {
        var guardrailTriggered = 0, risk = 0, injection = 0, pii = 0, tools = 0, inputTokens = 0, outputTokens = 0
    }

    public init(db: Database, settings: RetentionSettings, fields: inout FieldTable) throws {
        self.db = db
        self.settings = settings
        index = settings.index ? try ForensicIndex(db: db, hotDays: settings.hotDays) : nil
        lastPruneDay = try db.query("SELECT value FROM retention_state WHERE key = 'last_prune_day'") { $0.int(0) }.first ?? .min
        register(&fields)
    }

    /// Asks the decoder for the fields a security record keeps (again after a rule reload).
    public mutating func register(_ fields: inout FieldTable) {
        slots.guardrailTriggered = fields.slot(for: "guardrail_triggered")
        slots.risk = fields.slot(for: "risk_score")
        slots.injection = fields.slot(for: "input_injection_score")
        slots.pii = fields.slot(for: "output_pii_detected")
        slots.tools = fields.slot(for: "tool_calls.name")
        slots.inputTokens = fields.slot(for: "input_tokens")
        slots.outputTokens = fields.slot(for: "output_tokens")
    }

    /// The source of the next events: a file by resolved path and fingerprint, the input
    /// journal, or standard input.
    public mutating func use(_ source: (kind: String, name: String, path: String, fingerprint: String)) throws {
        try index?.use(kind: source.kind, name: source.name, path: source.path, fingerprint: source.fingerprint)
    }

    /// Indexes an event and, when it is a security event, records it.
    @inline(__always)
    public mutating func observe(_ event: Event, detections: [Detection]) {
        if index != nil { index!.observe(event) }
        // The prune clock: the newest event time not more than a day past the wall clock (one
        // event dated in the future must not prune the past away).
        if event.time > clock && event.time <= wallLimit { clock = event.time }
        let v = event.values
        var reasons: [String] = []
        if !detections.isEmpty { reasons.append("alerted") }
        if v[FieldTable.guardrailAction].string == "block" || v[FieldTable.decision].string == "block" { reasons.append("blocked") }
        if v[slots.guardrailTriggered] == .bool(true) || v[FieldTable.decision].string == "flag" { reasons.append("guardrail") }
        if let r = v[slots.risk].number, r > 0.5 { reasons.append("risk") }
        guard !reasons.isEmpty else { return }
        record(event, reasons: reasons, detections: detections)
    }

    /// A security event's record: ids, scores, decisions, tool names and the rules it fired;
    /// never its prompt or output (as alerts, DESIGN §6).
    mutating func record(_ event: Event, reasons: [String], detections: [Detection]) {
        let v = event.values
        func value(_ slot: Int) -> JSONValue {
            switch v[slot] {
            case .missing, .null: return .null
            case .bool(let b): return .bool(b)
            case .number(let n): return .number(n)
            case .string(let s): return .string(s.count > 128 ? String(s.prefix(128)) + "…" : s)
            case .list(let items): return .array(items.prefix(20).compactMap { $0.string.map { .string(String($0.prefix(128))) } })
            case .object: return .null
            }
        }
        var members: [(String, JSONValue)] = [("time", .string(event.time.description)), ("event_id", .string(event.id))]
        for (name, slot) in [("user_id", FieldTable.userID), ("session_id", FieldTable.sessionID), ("model_id", FieldTable.modelID),
                             ("guardrail_action", FieldTable.guardrailAction), ("decision", FieldTable.decision),
                             ("guardrail_triggered", slots.guardrailTriggered), ("risk_score", slots.risk),
                             ("input_injection_score", slots.injection), ("output_pii_detected", slots.pii),
                             ("input_tokens", slots.inputTokens), ("output_tokens", slots.outputTokens), ("tools", slots.tools)] {
            let j = value(slot)
            if case .null = j { continue }
            members.append((name, j))
        }
        members.append(("rules", .array(detections.map { .string($0.rule.name) })))
        members.append(("source", .string(event.origin.source)))
        members.append(("line", .int(event.origin.line)))
        pending.append([.int(event.time.micros), .text(event.id),
                        v[FieldTable.userID].string.map { .text($0) } ?? .null, v[FieldTable.sessionID].string.map { .text($0) } ?? .null,
                        .int(index?.currentSource ?? 0), .int(event.origin.line), .text(reasons.joined(separator: ",")),
                        .text(JSONValue.object(members).serialized())])
    }

    /// Writes the batch's index entries and security records (inside the commit's transaction);
    /// once per day of stream time, prunes what is past its retention.
    /// - Returns: whether it pruned (the caller frees the space after the commit).
    @discardableResult
    public mutating func save() throws -> Bool {
        try index?.save()
        for row in pending {
            try db.run("INSERT INTO security_events (time, event_id, user_id, session_id, source, line, reasons, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        }
        pending.removeAll(keepingCapacity: true)
        wallLimit = EventTime(seconds: now().timeIntervalSince1970) + .hours(24)
        guard !clock.isUnset else { return false }
        let pruneClock = clock
        guard pruneClock.day > lastPruneDay else { return false }
        try Forensics.prune(db, clock: pruneClock, settings: settings)
        index?.forget(before: pruneClock.micros / 1_000_000 - Int64(settings.hotDays) * 86_400)
        lastPruneDay = pruneClock.day
        try db.run("INSERT INTO retention_state (key, value) VALUES ('last_prune_day', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [.int(lastPruneDay)])
        return true
    }

    /// What a prune removed, by table.
    public struct Pruned: Sendable, Equatable {
        public var postings: Int64 = 0, sessions: Int64 = 0, rollups: Int64 = 0, securityEvents: Int64 = 0, alerts: Int64 = 0, rejects: Int64 = 0
    }

    /// Deletes what is older than its retention at stream time `clock` (rejects by the wall clock).
    /// `clock` is capped a day past the wall clock: a future-dated event prunes nothing early.
    @discardableResult
    public static func prune(_ db: Database, clock: EventTime, settings: RetentionSettings, now: Date = Date()) throws -> Pruned {
        func run(_ sql: String, _ args: [SQLValue]) throws -> Int64 {
            try db.run(sql, args)
            return try db.query("SELECT changes()") { $0.int(0) }.first ?? 0
        }
        let second = min(clock.micros, EventTime(seconds: now.timeIntervalSince1970).micros + EventTime.microsPerDay) / 1_000_000
        let hot = second - Int64(settings.hotDays) * 86_400
        var p = Pruned()
        p.postings = try run("DELETE FROM forensic_chunks WHERE kind = 0 AND last_time < ?", [.int(hot)])
            + run("DELETE FROM forensic_postings WHERE last_time < ?", [.int(hot)])
        // A pair stands for the pair refresh after it (ForensicIndex.pairRefresh).
        p.sessions = try run("DELETE FROM forensic_chunks WHERE kind = 1 AND last_time < ?", [.int(hot - ForensicIndex.pairRefresh)])
            + run("DELETE FROM forensic_user_sessions WHERE last_time < ?", [.int(hot)])
        try ForensicIndex.setCutoff(db, hot)
        p.rollups = try run("DELETE FROM rollups WHERE res = 3600 AND bucket < ?", [.int(hot / 3600)])
        p.securityEvents = try run("DELETE FROM security_events WHERE time < ?", [.int((second - Int64(settings.securityDays) * 86_400) * 1_000_000)])
        let alertCutoff = (second - Int64(settings.alertDays) * 86_400) * 1_000_000
        // An alert with a delivery still pending stays until it is delivered or dead.
        let old = "SELECT id FROM alerts WHERE event_time < ? AND id NOT IN (SELECT alert_id FROM outbox WHERE status = 'pending')"
        try db.run("DELETE FROM outbox WHERE alert_id IN (\(old))", [.int(alertCutoff)])
        p.alerts = try run("DELETE FROM alerts WHERE id IN (\(old))", [.int(alertCutoff)])
        let rejectCutoff = Timestamp.format(EventTime(seconds: now.timeIntervalSince1970 - Double(settings.rejectDays) * 86_400))
        p.rejects = try run("DELETE FROM rejects WHERE recorded_at < ?", [.text(rejectCutoff)])
        return p
    }

    /// Returns freed pages to the file system (the database is created with incremental
    /// auto-vacuum); a database made before that is rebuilt once by `iw-detect prune`.
    public static func freeSpace(_ db: Database, rebuild: Bool = false) throws {
        let mode = try db.query("PRAGMA auto_vacuum") { $0.int(0) }.first ?? 0
        if mode == 2 {
            try db.execute("PRAGMA incremental_vacuum")
        } else if rebuild {
            try db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute("VACUUM")
        }
    }
}
