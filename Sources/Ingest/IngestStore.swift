#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore

/// Rejected lines and source checkpoints in the state database.
public enum IngestStore {
    public static let migrations: [Migration] = [
        Migration("ingest-1", """
            CREATE TABLE rejects (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL, line INTEGER NOT NULL, offset INTEGER NOT NULL,
                reason TEXT NOT NULL, detail TEXT NOT NULL, prefix TEXT NOT NULL,
                recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            );
            CREATE INDEX rejects_source ON rejects(source, line);
            CREATE TABLE checkpoints (
                source TEXT PRIMARY KEY NOT NULL,
                offset INTEGER NOT NULL, line INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            ) WITHOUT ROWID;
            """),
        // The resolved path of a file source, so `rejects --source` finds a file however it was named.
        Migration("ingest-2", """
            ALTER TABLE rejects ADD COLUMN source_path TEXT;
            CREATE INDEX rejects_source_path ON rejects(source_path, line);
            """),
        // Where a reject of the HTTP input came from.
        Migration("ingest-3", """
            ALTER TABLE rejects ADD COLUMN remote TEXT;
            ALTER TABLE rejects ADD COLUMN request_id TEXT;
            """),
    ]

    /// Records rejects.
    public static func insert(_ rejects: [Reject], into db: Database) throws {
        for r in rejects {
            try db.run("INSERT INTO rejects(source, line, offset, reason, detail, prefix, source_path, remote, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [.text(r.source), .int(r.line), .int(r.offset), .text(r.reason.rawValue), .text(r.detail), .text(r.prefix),
                        r.sourcePath.map { .text($0) } ?? .null, r.remote.map { .text($0) } ?? .null, r.requestID.map { .text($0) } ?? .null])
        }
    }

    /// The filter of `rejects --source S`: the source as named at ingest, or the file it names now.
    static func sourceFilter(_ source: String?) -> (String, [SQLValue]) {
        guard let source else { return ("", []) }
        return (" WHERE source = ? OR source_path = ?", [.text(source), .text(resolvedPath(source))])
    }

    /// Recorded rejects, oldest first: of one source (see ``sourceFilter(_:)``) or all.
    public static func rejects(_ db: Database, source: String? = nil, limit: Int = 1000) throws -> [Reject] {
        let (filter, args) = sourceFilter(source)
        return try rejects(db, filter: filter, args, limit: limit)
    }

    /// How many rejects ``rejects(_:source:limit:)`` would list without a limit.
    public static func rejectCount(_ db: Database, source: String? = nil) throws -> Int64 {
        let (filter, args) = sourceFilter(source)
        return try db.query("SELECT count(*) FROM rejects" + filter, args) { $0.int(0) }.first ?? 0
    }

    static func rejects(_ db: Database, filter: String, _ filterArgs: [SQLValue], limit: Int) throws -> [Reject] {
        let sql = "SELECT source, line, offset, reason, detail, prefix, remote, request_id FROM rejects" + filter + " ORDER BY id LIMIT ?"
        return try db.query(sql, filterArgs + [.int(Int64(limit))]) { s in
            var r = Reject(source: s.text(0), line: s.int(1), offset: s.int(2), reason: RejectReason(rawValue: s.text(3)) ?? .invalidJSON,
                           detail: s.text(4), bytes: [UInt8]())
            r.prefix = s.text(5)
            r.remote = s.optionalText(6)
            r.requestID = s.optionalText(7)
            return r
        }
    }

    /// Counts by reason.
    public static func rejectCounts(_ db: Database) throws -> [(String, Int64)] {
        try db.query("SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY reason") { ($0.text(0), $0.int(1)) }
    }

    /// Where reading `source` stopped, if it was read before.
    public struct Checkpoint: Sendable, Equatable {
        public var offset: Int64
        public var line: Int64
        public var fingerprint: String
        public init(offset: Int64, line: Int64, fingerprint: String) {
            self.offset = offset
            self.line = line
            self.fingerprint = fingerprint
        }
    }

    public static func checkpoint(_ db: Database, source: String) throws -> Checkpoint? {
        try db.query("SELECT offset, line, fingerprint FROM checkpoints WHERE source = ?", [.text(source)]) {
            Checkpoint(offset: $0.int(0), line: $0.int(1), fingerprint: $0.text(2))
        }.first
    }

    /// Checkpoint keys of files start with this, followed by the file's resolved path.
    public static let filePrefix = "file:"

    /// The checkpoint key of a file: its absolute path with symbolic links resolved, so every
    /// spelling of one file shares a checkpoint.
    public static func fileKey(_ path: String) -> String { filePrefix + resolvedPath(path) }

    /// `path` made absolute, with `.`, `..` and symbolic links resolved (as far as it exists).
    public static func resolvedPath(_ path: String) -> String {
        if let p = realpath(path, nil) {
            defer { free(p) }
            return String(cString: p)
        }
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    /// Checkpoint keys of followed files (``FollowSource``) start with this, followed by the
    /// fingerprint of the file's first line.
    public static let identityPrefix = "first-line:"

    /// Every file checkpoint (by path, or by identity for followed files), newest first.
    public static func fileCheckpoints(_ db: Database) throws -> [(String, Checkpoint)] {
        try db.query("SELECT source, offset, line, fingerprint FROM checkpoints WHERE source LIKE 'file:%' OR source LIKE 'first-line:%' ORDER BY updated_at DESC") {
            ($0.text(0), Checkpoint(offset: $0.int(1), line: $0.int(2), fingerprint: $0.text(3)))
        }
    }

    public static func save(_ c: SourceCheckpoint, into db: Database) throws {
        try save(Checkpoint(offset: c.offset, line: c.line, fingerprint: c.fingerprint), source: c.key, into: db)
    }

    public static func save(_ c: Checkpoint, source: String, into db: Database) throws {
        try db.run("INSERT OR REPLACE INTO checkpoints(source, offset, line, fingerprint) VALUES (?, ?, ?, ?)",
                   [.text(source), .int(c.offset), .int(c.line), .text(c.fingerprint)])
    }
}
