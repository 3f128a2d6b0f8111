import IWDetectCore

/// Persistence of window state, so a restarted engine continues its windows.
///
/// Series are stored by rule name and function signature (`count(session_id, 5m)`), so state
/// survives reordering rules; a rule whose condition changed starts its windows empty.
public enum RuleStateStore {
    public static let migrations: [Migration] = [
        Migration("rules-1", """
            CREATE TABLE rule_windows (
                rule TEXT NOT NULL, function TEXT NOT NULL, key TEXT NOT NULL, series BLOB NOT NULL,
                PRIMARY KEY (rule, function, key)
            ) WITHOUT ROWID;
            CREATE TABLE rule_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
            """),
    ]

    public static func load(_ engine: inout RuleEngine, from db: Database) throws {
        for (r, rule) in engine.ruleSet.rules.enumerated() {
            for (w, spec) in rule.windows.enumerated() {
                let rows = try db.query("SELECT key, series FROM rule_windows WHERE rule = ? AND function = ?",
                                        [.text(rule.info.name), .text(spec.signature)]) { ($0.text(0), $0.blob(1)) }
                for (key, blob) in rows {
                    guard let series = WindowSeries(serialized: blob) else {
                        throw DatabaseError(code: 0, message: "\(db.path): window state of \(rule.info.name) \(spec.signature) is corrupt")
                    }
                    engine.state[r][w][key] = series
                }
            }
        }
        let state = Dictionary(uniqueKeysWithValues: try db.query("SELECT key, value FROM rule_state") { ($0.text(0), $0.int(1)) })
        if let c = state["clock"] { engine.clock = EventTime(micros: c) }
        engine.lateEvents = state["late_events"] ?? 0
        engine.keyOverflow = state["key_overflow"] ?? 0
    }

    /// Deletes the stored windows of rules and functions the engine's rule set no longer has
    /// (after a reload); the rest stay.
    public static func prune(_ engine: RuleEngine, in db: Database) throws {
        let live = Set(engine.ruleSet.rules.flatMap { rule in rule.windows.map { rule.info.name + "\u{1f}" + $0.signature } })
        let stored = try db.query("SELECT DISTINCT rule, function FROM rule_windows") { ($0.text(0), $0.text(1)) }
        for (rule, function) in stored where !live.contains(rule + "\u{1f}" + function) {
            try db.run("DELETE FROM rule_windows WHERE rule = ? AND function = ?", [.text(rule), .text(function)])
        }
    }

    /// The stream clock as last committed (``EventTime/unset`` before the first event).
    public static func clock(in db: Database) throws -> EventTime {
        try db.query("SELECT value FROM rule_state WHERE key = 'clock'") { EventTime(micros: $0.int(0)) }.first ?? .unset
    }

    /// Writes the series changed since the last save (after ``RuleEngine/sweep()``, so keys whose
    /// windows emptied are deleted); call inside the batch's transaction.
    public static func save(_ engine: inout RuleEngine, to db: Database) throws {
        for d in engine.dirty {
            let rule = engine.ruleSet.rules[d.rule]
            let spec = rule.windows[d.fn]
            engine.state[d.rule][d.fn][d.key]?.unsaved = false
            if let series = engine.state[d.rule][d.fn][d.key], !series.isEmpty {
                try db.run("INSERT OR REPLACE INTO rule_windows(rule, function, key, series) VALUES (?, ?, ?, ?)",
                           [.text(rule.info.name), .text(spec.signature), .text(d.key), .blob(series.serialized())])
            } else {
                try db.run("DELETE FROM rule_windows WHERE rule = ? AND function = ? AND key = ?",
                           [.text(rule.info.name), .text(spec.signature), .text(d.key)])
            }
        }
        engine.dirty.removeAll(keepingCapacity: true)
        try db.run("INSERT OR REPLACE INTO rule_state(key, value) VALUES ('clock', ?), ('late_events', ?), ('key_overflow', ?)",
                   [.int(engine.clock.micros), .int(engine.lateEvents), .int(engine.keyOverflow)])
    }
}
