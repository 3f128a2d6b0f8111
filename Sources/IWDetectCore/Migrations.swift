/// A named, never-edited schema change (GRDB's `DatabaseMigrator` discipline).
public struct Migration: Sendable {
    public var name: String
    public var sql: String
    public init(_ name: String, _ sql: String) { self.name = name; self.sql = sql }
}

/// Applies migrations in order and refuses databases written by a newer iw-detect.
public enum Migrator {
    /// Marks the file as iw-detect's (`PRAGMA application_id`), so a foreign database is refused.
    public static let applicationID: Int64 = 0x6977_6474  // "iwdt"

    /// Brings `db` up to date with `migrations`.
    /// - Throws: ``DatabaseError`` for a foreign or newer database, or a failing migration.
    public static func migrate(_ db: Database, _ migrations: [Migration]) throws {
        try db.transaction {
            let appID = try db.query("PRAGMA application_id") { $0.int(0) }.first ?? 0
            let tables = try db.query("SELECT count(*) FROM sqlite_master WHERE type = 'table'") { $0.int(0) }.first ?? 0
            if appID == 0 && tables > 0 {
                throw DatabaseError(code: 0, message: "\(db.path) is a SQLite database but not an iw-detect one; use another --db path")
            }
            if appID != 0 && appID != applicationID {
                throw DatabaseError(code: 0, message: "\(db.path) belongs to another application (application_id \(appID))")
            }
            try db.execute("PRAGMA application_id = \(applicationID)")
            try db.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name TEXT PRIMARY KEY NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                )
                """)
            let applied = Set(try db.query("SELECT name FROM schema_migrations") { $0.text(0) })
            let known = Set(migrations.map(\.name))
            if let unknown = applied.subtracting(known).sorted().first {
                throw DatabaseError(code: 0, message: "\(db.path) was written by a newer iw-detect (it has migration '\(unknown)', which this version does not know); upgrade iw-detect or use another --db")
            }
            for m in migrations where !applied.contains(m.name) {
                try db.execute(m.sql)
                try db.run("INSERT INTO schema_migrations(name) VALUES (?)", [.text(m.name)])
            }
        }
    }
}
