import IWDetectCore

/// Where each event of a session or user is, so that `iw-detect session` and `iw-detect user`
/// read the events back from the original log (or the input journal) instead of a copy
/// (the monitoring guide's `query_session` and `query_user_history`).
///
/// Per session, a list of postings (source, line, byte offset, event second), delta-encoded as
/// varints in chunks closed once past ``chunkBytes`` bytes: a few bytes per event. Events without a
/// `session_id` are listed under their user. A second table pairs users with their sessions and
/// the time span they were seen together. Keys are 64-bit hashes of the ids, so no id is stored;
/// a query checks each line it reads against the id asked for. Written with each batch's commit,
/// like the rest of the state.
public struct ForensicIndex {
    public static let migrations: [Migration] = [
        Migration("forensic-1", """
            CREATE TABLE forensic_sources (
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, fingerprint TEXT NOT NULL,
                UNIQUE (path, fingerprint)
            );
            CREATE TABLE forensic_postings (
                key INTEGER NOT NULL, chunk INTEGER NOT NULL, last_time INTEGER NOT NULL, data BLOB NOT NULL,
                PRIMARY KEY (key, chunk)
            ) WITHOUT ROWID;
            CREATE TABLE forensic_user_sessions (
                user INTEGER NOT NULL, session INTEGER NOT NULL, first_time INTEGER NOT NULL, last_time INTEGER NOT NULL,
                PRIMARY KEY (user, session)
            ) WITHOUT ROWID;
            """),
    ]

    /// A chunk is closed, and the key's next posting starts a new one, past this size.
    public static let chunkBytes = 384
    /// Keys not seen for this long (stream time) leave memory; their next posting opens a chunk.
    static let idle: Int64 = 1800

    /// The posting key of a session, or of a user's events without a session.
    public static func sessionKey(_ session: String) -> Int64 { key("s", session) }
    public static func userKey(_ user: String) -> Int64 { key("u", user) }
    static func key(_ kind: String, _ id: String) -> Int64 {
        var h = StableHash()
        h.combine(kind)
        h.combine(id)
        return Int64(bitPattern: h.value)
    }

    /// One indexed event.
    public struct Posting: Sendable, Equatable {
        public var source: Int64
        public var line: Int64
        public var offset: Int64
        /// The event's time, whole seconds (the line has the exact time).
        public var second: Int64
        public init(source: Int64, line: Int64, offset: Int64, second: Int64) {
            self.source = source
            self.line = line
            self.offset = offset
            self.second = second
        }
    }

    /// What a key's open chunk holds: its id, the postings not yet written, the bytes written,
    /// and the last posting written (the base of the next delta).
    struct OpenChunk {
        var chunk: Int64
        var pending: [Posting] = []
        var stored = 0
        var base = Posting(source: 0, line: 0, offset: 0, second: 0)
        var lastSecond: Int64 = 0
    }

    let db: Database
    var open: [Int64: OpenChunk] = [:]
    var dirty: Set<Int64> = []
    var pairs: [PairKey: (first: Int64, last: Int64, stored: Bool)] = [:]
    var dirtyPairs: Set<PairKey> = []
    var nextChunk: Int64
    var sources: [String: Int64] = [:]
    /// The source of the events being observed (set per batch).
    public private(set) var currentSource: Int64 = 0
    var clock: Int64 = .min

    struct PairKey: Hashable { var user: Int64, session: Int64 }

    public init(db: Database) throws {
        self.db = db
        nextChunk = (try db.query("SELECT max(chunk) FROM forensic_postings") { $0.isNull(0) ? 0 : $0.int(0) }.first ?? 0) + 1
    }

    /// The id of a source (registered on first sight): a file by resolved path and fingerprint,
    /// the input journal by its id, standard input as one source that cannot be read again.
    public mutating func use(kind: String, name: String, path: String, fingerprint: String) throws {
        let k = path + "\u{0}" + fingerprint
        if let id = sources[k] { currentSource = id; return }
        try db.run("INSERT INTO forensic_sources (kind, name, path, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT (path, fingerprint) DO NOTHING",
                   [.text(kind), .text(name), .text(path), .text(fingerprint)])
        let id = try db.query("SELECT id FROM forensic_sources WHERE path = ? AND fingerprint = ?", [.text(path), .text(fingerprint)]) { $0.int(0) }.first ?? 0
        sources[k] = id
        currentSource = id
    }

    /// Indexes an event of the current source.
    @inline(__always)
    public mutating func observe(_ event: Event) {
        let session = event.values[FieldTable.sessionID].string.flatMap { $0.isEmpty ? nil : $0 }
        let user = event.values[FieldTable.userID].string.flatMap { $0.isEmpty ? nil : $0 }
        guard session != nil || user != nil else { return }
        let second = event.time.bucket(1_000_000)
        clock = max(clock, second)
        let key = session.map(ForensicIndex.sessionKey) ?? ForensicIndex.userKey(user!)
        let p = Posting(source: currentSource, line: event.origin.line, offset: event.origin.offset, second: second)
        if open[key] == nil {
            open[key] = OpenChunk(chunk: nextChunk)
            nextChunk += 1
        }
        open[key]!.pending.append(p)
        open[key]!.lastSecond = max(open[key]!.lastSecond, second)
        dirty.insert(key)
        if let session, let user {
            let pk = PairKey(user: ForensicIndex.userKey(user), session: ForensicIndex.sessionKey(session))
            if let known = pairs[pk] {
                if second > known.last || second < known.first {
                    pairs[pk] = (min(known.first, second), max(known.last, second), known.stored)
                    dirtyPairs.insert(pk)
                }
            } else {
                pairs[pk] = (second, second, false)
                dirtyPairs.insert(pk)
            }
        }
    }

    /// Writes the postings and pairs of the batch (inside the commit's transaction) and lets idle
    /// keys and full chunks go.
    public mutating func save() throws {
        var bytes: [UInt8] = []
        for key in dirty.sorted() {
            guard var c = open[key], !c.pending.isEmpty else { continue }
            if c.stored > 0 {
                bytes.removeAll(keepingCapacity: true)
                ForensicIndex.encode(c.pending, after: c.base, into: &bytes)
                try db.run("UPDATE forensic_postings SET data = CAST(data || ? AS BLOB), last_time = max(last_time, ?) WHERE key = ? AND chunk = ?",
                           [.blob(bytes), .int(c.lastSecond), .int(key), .int(c.chunk)])
                if try db.query("SELECT changes()") { $0.int(0) }.first == 0 {
                    // The chunk is gone (pruned while open): these postings start a new one.
                    c.stored = 0
                    c.chunk = nextChunk
                    nextChunk += 1
                }
            }
            if c.stored == 0 {
                bytes.removeAll(keepingCapacity: true)
                ForensicIndex.encode(c.pending, after: Posting(source: 0, line: 0, offset: 0, second: 0), into: &bytes)
                try db.run("INSERT INTO forensic_postings (key, chunk, last_time, data) VALUES (?, ?, ?, ?)",
                           [.int(key), .int(c.chunk), .int(c.lastSecond), .blob(bytes)])
            }
            c.stored += bytes.count
            c.base = c.pending.last!
            c.pending.removeAll()
            if c.stored >= ForensicIndex.chunkBytes { open[key] = nil } else { open[key] = c }
        }
        dirty.removeAll(keepingCapacity: true)
        for pk in dirtyPairs {
            guard let p = pairs[pk] else { continue }
            try db.run("""
                INSERT INTO forensic_user_sessions (user, session, first_time, last_time) VALUES (?, ?, ?, ?)
                ON CONFLICT (user, session) DO UPDATE SET first_time = min(first_time, excluded.first_time), last_time = max(last_time, excluded.last_time)
                """, [.int(pk.user), .int(pk.session), .int(p.first), .int(p.last)])
            pairs[pk]!.stored = true
        }
        dirtyPairs.removeAll(keepingCapacity: true)
        // Memory stays bounded by the keys active in the last half hour of stream time (every
        // pair's span is written by now).
        if open.count > 50_000 || pairs.count > 50_000 {
            let cutoff = clock - ForensicIndex.idle
            open = open.filter { $0.value.lastSecond >= cutoff }
            pairs = pairs.filter { $0.value.last >= cutoff }
        }
    }

    // MARK: - Encoding

    static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func unzigzag(_ u: UInt64) -> Int64 { Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1) }

    static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Postings, each after the previous one (the first after `base`).
    static func encode(_ postings: [Posting], after base: Posting, into out: inout [UInt8]) {
        var last = base
        for p in postings {
            append(p, after: last, to: &out)
            last = p
        }
    }

    /// Lets go of open chunks whose events are all before `second` (a prune deletes them).
    public mutating func forget(before second: Int64) {
        open = open.filter { $0.value.lastSecond >= second || !$0.value.pending.isEmpty }
    }

    /// A posting as four zigzag varints of its differences from the previous one (from zero at
    /// a chunk's start).
    static func append(_ p: Posting, after last: Posting, to out: inout [UInt8]) {
        varint(zigzag(p.source &- last.source), into: &out)
        varint(zigzag(p.line &- last.line), into: &out)
        varint(zigzag(p.offset &- last.offset), into: &out)
        varint(zigzag(p.second &- last.second), into: &out)
    }

    /// The postings of one chunk; nil when the bytes are not a whole number of postings.
    public static func decode(_ bytes: [UInt8]) -> [Posting]? {
        var out: [Posting] = []
        var i = 0
        var last = Posting(source: 0, line: 0, offset: 0, second: 0)
        func next() -> Int64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return unzigzag(v) }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
        while i < bytes.count {
            guard let s = next(), let l = next(), let o = next(), let t = next() else { return nil }
            last = Posting(source: last.source &+ s, line: last.line &+ l, offset: last.offset &+ o, second: last.second &+ t)
            out.append(last)
        }
        return out
    }
}
