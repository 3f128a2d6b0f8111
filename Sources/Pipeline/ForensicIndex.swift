import IWDetectCore

/// Where each event of a session or user is, so that `iw-detect session` and `iw-detect user`
/// read the events back from the original log (or the input journal) instead of a copy
/// (the monitoring guide's `query_session` and `query_user_history`).
///
/// Each event is indexed under its session (or, without a `session_id`, its user): a posting
/// (source, line, byte offset, event second). Keys are 64-bit hashes of the ids, so no id is
/// stored; each key falls in one of ``buckets`` buckets with a 24-bit tag (its ``Slot``). A
/// bucket's postings are appended, tagged, to its open chunk as varint deltas from the previous
/// posting, and a chunk is closed past ``chunkBytes``: a commit updates at most one row per
/// bucket, however many sessions the batch had, and a posting takes about ten bytes whether its
/// session has one event or thousands. Users are paired with their sessions the same way, in
/// chunks of their own (again at most once an hour of stream time per pair). A query reads its
/// bucket and checks each line it reads against the id asked for: a line of another id that
/// shares the slot is a neighbour, not a gap. Written with each batch's commit, like the rest
/// of the state.
///
/// Databases indexed before the buckets (`forensic_postings`, `forensic_user_sessions`, one
/// row per key) are still read and pruned; new postings go to `forensic_chunks`.
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
        // A rowid table: its rows (up to a kilobyte) stay out of the interior pages, which a
        // WITHOUT ROWID table would fill with copies of them.
        Migration("forensic-2-buckets", """
            CREATE TABLE forensic_chunks (
                chunk INTEGER PRIMARY KEY, kind INTEGER NOT NULL, bucket INTEGER NOT NULL,
                first_time INTEGER NOT NULL, last_time INTEGER NOT NULL, data BLOB NOT NULL
            );
            CREATE INDEX forensic_chunks_bucket ON forensic_chunks(kind, bucket);
            """),
    ]

    /// Buckets per kind of chunk.
    public static let buckets = 1024
    /// A chunk is closed, and its bucket's next entry starts a new one, past this size.
    public static let chunkBytes = 900
    /// A commit's entries that would take a chunk past this start a new one instead: a row stays
    /// under SQLite's overflow threshold for a 4 KiB page (about 1,000 bytes).
    public static let rowBytes = 990
    /// Pairs not seen for this long (stream time) leave memory.
    static let idle: Int64 = 1800
    /// A pair is written again once its last written second is this far behind (a user query
    /// for events since T reads pairs written since T minus this).
    public static let pairRefresh: Int64 = 3600

    /// The posting key of a session, or of a user's events without a session.
    public static func sessionKey(_ session: String) -> Int64 { key("s", session) }
    public static func userKey(_ user: String) -> Int64 { key("u", user) }
    static func key(_ kind: String, _ id: String) -> Int64 {
        var h = StableHash()
        h.combine(kind)
        h.combine(id)
        return Int64(bitPattern: h.value)
    }

    /// A key's bucket and tag (from the key mixed again: FNV's low bits alone are weak).
    public struct Slot: Hashable, Sendable {
        public var bucket: Int
        /// 24 bits.
        public var tag: UInt32
        public init(_ key: Int64) {
            var z = UInt64(bitPattern: key)
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            bucket = Int(z % UInt64(ForensicIndex.buckets))
            tag = UInt32(truncatingIfNeeded: z >> 32) & 0xFF_FFFF
        }
        init(bucket: Int, tag: UInt32) {
            self.bucket = bucket
            self.tag = tag
        }
    }

    enum Kind: Int {
        case postings = 0, pairs = 1
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
        public static let zero = Posting(source: 0, line: 0, offset: 0, second: 0)
    }

    /// A user seen in a session (by the session's slot) at a second.
    public struct Pair: Sendable, Equatable {
        public var session: Slot
        public var second: Int64
    }

    /// A bucket's open chunk: its id (0: none), the entries encoded since the last commit, the
    /// bytes stored, the entry the pending bytes start after, the last one, and the span of
    /// its entries' seconds.
    struct OpenChunk {
        var chunk: Int64 = 0
        var pending: [UInt8] = []
        var stored = 0
        var storedBase = Posting.zero
        var base = Posting.zero
        var firstSecond: Int64 = .max
        var lastSecond: Int64 = .min
    }

    let db: Database
    /// A chunk is also closed once its entries span this many seconds, so that pruning by a
    /// chunk's last second drops old entries even where traffic is sparse.
    let maxSpan: Int64
    /// Per kind and bucket (`kind * buckets + bucket`).
    var open = [OpenChunk](repeating: OpenChunk(), count: 2 * ForensicIndex.buckets)
    var dirty: [Int] = []
    var pairs: [PairKey: Int64] = [:]
    var nextChunk: Int64
    var sources: [String: Int64] = [:]
    /// The source of the events being observed (set per batch).
    public private(set) var currentSource: Int64 = 0
    var clock: Int64 = .min

    struct PairKey: Hashable { var user: Int64, session: Int64 }

    /// - Parameter hotDays: the index's retention: a chunk spans at most a tenth of it.
    public init(db: Database, hotDays: Int) throws {
        self.db = db
        maxSpan = max(3600, Int64(hotDays) * 86_400 / 10)
        nextChunk = (try db.query("SELECT max(chunk) FROM forensic_chunks") { $0.isNull(0) ? 0 : $0.int(0) }.first ?? 0) + 1
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
        let sessionKey = session.map(ForensicIndex.sessionKey)
        let userKey = user.map(ForensicIndex.userKey)
        let slot = Slot(sessionKey ?? userKey!)
        let p = Posting(source: currentSource, line: event.origin.line, offset: event.origin.offset, second: second)
        append(.postings, slot.bucket, second: second) { c in
            ForensicIndex.tag(slot.tag, into: &c.pending)
            ForensicIndex.append(p, after: c.base, to: &c.pending)
            c.base = p
        }
        if let sessionKey, let userKey {
            let pk = PairKey(user: userKey, session: sessionKey)
            if let written = pairs[pk], second >= written, second < written + ForensicIndex.pairRefresh { return }
            pairs[pk] = second
            let user = Slot(userKey), s = Slot(sessionKey)
            append(.pairs, user.bucket, second: second) { c in
                ForensicIndex.tag(user.tag, into: &c.pending)
                ForensicIndex.varint(UInt64(s.bucket) << 24 | UInt64(s.tag), into: &c.pending)
                ForensicIndex.varint(ForensicIndex.zigzag(second &- c.base.second), into: &c.pending)
                c.base.second = second
            }
        }
    }

    /// Encodes an entry into the open chunk of `bucket` (opened when none is).
    @inline(__always)
    mutating func append(_ kind: Kind, _ bucket: Int, second: Int64, _ encode: (inout OpenChunk) -> Void) {
        let i = kind.rawValue * ForensicIndex.buckets + bucket
        if open[i].chunk == 0 {
            open[i] = OpenChunk(chunk: nextChunk)
            nextChunk += 1
        }
        if open[i].pending.isEmpty { dirty.append(i) }
        encode(&open[i])
        open[i].firstSecond = min(open[i].firstSecond, second)
        open[i].lastSecond = max(open[i].lastSecond, second)
    }

    /// Writes the batch's entries (inside the commit's transaction): at most one row per bucket.
    public mutating func save() throws {
        dirty.sort()
        for i in dirty {
            var c = open[i]
            guard !c.pending.isEmpty else { continue }
            let kind = Int64(i / ForensicIndex.buckets), bucket = Int64(i % ForensicIndex.buckets)
            // Full, or gone (pruned while open): these entries start a new chunk, from zero.
            func restart() {
                (c.pending, c.firstSecond, c.lastSecond) = ForensicIndex.rebase(c.pending, kind: Kind(rawValue: Int(kind))!, after: c.storedBase)
                c.stored = 0
                c.chunk = nextChunk
                nextChunk += 1
            }
            if c.stored > 0 && c.stored + c.pending.count > ForensicIndex.rowBytes { restart() }
            if c.stored > 0 {
                try db.run("UPDATE forensic_chunks SET data = CAST(data || ? AS BLOB), first_time = min(first_time, ?), last_time = max(last_time, ?) WHERE chunk = ?",
                           [.blob(c.pending), .int(c.firstSecond), .int(c.lastSecond), .int(c.chunk)])
                if try db.query("SELECT changes()") { $0.int(0) }.first == 0 { restart() }
            }
            if c.stored == 0 {
                try db.run("INSERT INTO forensic_chunks (kind, bucket, chunk, first_time, last_time, data) VALUES (?, ?, ?, ?, ?, ?)",
                           [.int(kind), .int(bucket), .int(c.chunk), .int(c.firstSecond), .int(c.lastSecond), .blob(c.pending)])
            }
            c.stored += c.pending.count
            c.pending.removeAll(keepingCapacity: true)
            c.storedBase = c.base
            open[i] = c.stored >= ForensicIndex.chunkBytes || c.lastSecond - c.firstSecond >= maxSpan ? OpenChunk() : c
        }
        dirty.removeAll(keepingCapacity: true)
        // Memory stays bounded by the pairs active in the last half hour of stream time.
        if pairs.count > 50_000 {
            let cutoff = clock - ForensicIndex.idle
            pairs = pairs.filter { $0.value >= cutoff }
        }
    }

    /// Lets go of open chunks whose entries are all before `second` (a prune deletes them).
    public mutating func forget(before second: Int64) {
        for i in open.indices where open[i].chunk != 0 && open[i].pending.isEmpty && open[i].lastSecond < second {
            open[i] = OpenChunk()
        }
    }

    // MARK: - Reading

    /// The second before which the index was pruned (`retention.hot_days` at the last prune):
    /// entries before it that share a chunk with newer ones are not shown. Nil before any prune.
    public static func cutoff(_ db: Database) throws -> Int64? {
        try db.query("SELECT value FROM retention_state WHERE key = 'index_cutoff'") { $0.int(0) }.first
    }

    /// Records that the index holds nothing before `second` (a prune's hot cutoff).
    public static func setCutoff(_ db: Database, _ second: Int64) throws {
        try db.run("INSERT INTO retention_state (key, value) VALUES ('index_cutoff', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                   [.int(second)])
    }

    /// The postings indexed under `key`'s slot (its own, and any other key's that shares it),
    /// and those of the unbucketed index under exactly `key`, at or after `since`.
    public static func postings(_ db: Database, key: Int64, since: Int64 = .min) throws -> [Posting] {
        try postings(db, slots: [Slot(key)], legacyKeys: [key], since: since)
    }

    /// The postings under any of `slots` (each bucket read once), and those of the unbucketed
    /// index under `legacyKeys`, at or after `since` and the cutoff.
    public static func postings(_ db: Database, slots: Set<Slot>, legacyKeys: [Int64], since: Int64 = .min) throws -> [Posting] {
        let since = max(since, try cutoff(db) ?? .min)
        var out: [Posting] = []
        for key in legacyKeys {
            out += try db.query("SELECT data FROM forensic_postings WHERE key = ? ORDER BY chunk", [.int(key)]) { $0.blob(0) }
                .flatMap { ForensicIndex.decodeLegacy($0) ?? [] }.filter { $0.second >= since }
        }
        for (bucket, members) in Dictionary(grouping: slots, by: \.bucket).sorted(by: { $0.key < $1.key }) {
            let tags = Set(members.map(\.tag))
            let chunks = try db.query("SELECT data FROM forensic_chunks WHERE kind = 0 AND bucket = ? AND last_time >= ? ORDER BY chunk",
                                      [.int(Int64(bucket)), .int(since)]) { $0.blob(0) }
            for data in chunks {
                for (tag, p) in decodePostings(data) ?? [] where tags.contains(tag) && p.second >= since { out.append(p) }
            }
        }
        return out
    }

    /// The slots of the sessions user `key` was seen in at or after `since` (give or take
    /// ``pairRefresh``), and the exact keys of the unbucketed index's pairs.
    public static func sessions(_ db: Database, user key: Int64, since: Int64) throws -> (slots: Set<Slot>, keys: [Int64]) {
        let user = Slot(key)
        var slots = Set<Slot>()
        // A pair covers the pair refresh after it: a chunk that ended before `since` may hold one.
        let chunks = try db.query("SELECT data FROM forensic_chunks WHERE kind = 1 AND bucket = ? AND last_time >= ? ORDER BY chunk",
                                  [.int(Int64(user.bucket)), .int(since == .min ? since : since - pairRefresh)]) { $0.blob(0) }
        for data in chunks {
            for (tag, pair) in decodePairs(data) ?? [] where tag == user.tag && pair.second >= since - pairRefresh { slots.insert(pair.session) }
        }
        let keys = try db.query("SELECT session FROM forensic_user_sessions WHERE user = ? AND last_time >= ?", [.int(key), .int(since)]) { $0.int(0) }
        return (slots, keys)
    }

    /// Every posting and every pair, with its bucket and tag (for checks and benchmarks).
    public static func entries(_ db: Database) throws -> (postings: [(Slot, Posting)], pairs: [(user: Slot, Pair)]) {
        var postings: [(Slot, Posting)] = [], pairs: [(user: Slot, Pair)] = []
        for (kind, bucket, data) in try db.query("SELECT kind, bucket, data FROM forensic_chunks ORDER BY kind, bucket, chunk", [], { ($0.int(0), Int($0.int(1)), $0.blob(2)) }) {
            if kind == 0 {
                for (tag, p) in decodePostings(data) ?? [] { postings.append((Slot(bucket: bucket, tag: tag), p)) }
            } else {
                for (tag, pair) in decodePairs(data) ?? [] { pairs.append((Slot(bucket: bucket, tag: tag), pair)) }
            }
        }
        return (postings, pairs)
    }

    /// The newest and oldest second the index covers (nil when empty), both layouts.
    public static func span(_ db: Database) throws -> (oldest: Int64, newest: Int64)? {
        let rows = try db.query("""
            SELECT min(first_time), max(last_time) FROM forensic_chunks
            UNION ALL SELECT min(last_time), max(last_time) FROM forensic_postings
            """) { $0.isNull(0) ? nil : ($0.int(0), $0.int(1)) }.compactMap { $0 }
        guard let oldest = rows.map(\.0).min(), let newest = rows.map(\.1).max() else { return nil }
        return (oldest, newest)
    }

    // MARK: - Encoding

    static func zigzag(_ v: Int64) -> UInt64 { Varint.zigzag(v) }
    static func unzigzag(_ u: UInt64) -> Int64 { Varint.unzigzag(u) }
    static func varint(_ v: UInt64, into out: inout [UInt8]) { Varint.append(v, to: &out) }

    @inline(__always)
    static func tag(_ t: UInt32, into out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: t))
        out.append(UInt8(truncatingIfNeeded: t >> 8))
        out.append(UInt8(truncatingIfNeeded: t >> 16))
    }

    /// A posting as four zigzag varints of its differences from the previous one (from zero at
    /// a chunk's start).
    static func append(_ p: Posting, after last: Posting, to out: inout [UInt8]) {
        varint(zigzag(p.source &- last.source), into: &out)
        varint(zigzag(p.line &- last.line), into: &out)
        varint(zigzag(p.offset &- last.offset), into: &out)
        varint(zigzag(p.second &- last.second), into: &out)
    }

    /// Reads a chunk's bytes.
    struct Reader {
        let bytes: [UInt8]
        var i = 0
        var atEnd: Bool { i >= bytes.count }

        mutating func varint() -> UInt64? { Varint.read(bytes, at: &i) }
        mutating func signed() -> Int64? { varint().map(ForensicIndex.unzigzag) }
        mutating func tag() -> UInt32? {
            guard i + 3 <= bytes.count else { return nil }
            defer { i += 3 }
            return UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16
        }
        mutating func posting(after last: Posting) -> Posting? {
            guard let s = signed(), let l = signed(), let o = signed(), let t = signed() else { return nil }
            return Posting(source: last.source &+ s, line: last.line &+ l, offset: last.offset &+ o, second: last.second &+ t)
        }
    }

    /// The tagged postings of one chunk (`base`: what the first is a delta from); nil when the
    /// bytes are not a whole number of them.
    public static func decodePostings(_ bytes: [UInt8], after base: Posting = .zero) -> [(UInt32, Posting)]? {
        var r = Reader(bytes: bytes)
        var last = base
        var out: [(UInt32, Posting)] = []
        while !r.atEnd {
            guard let tag = r.tag(), let p = r.posting(after: last) else { return nil }
            out.append((tag, p))
            last = p
        }
        return out
    }

    /// The tagged pairs of one chunk; nil when the bytes are not a whole number of them.
    public static func decodePairs(_ bytes: [UInt8], after base: Int64 = 0) -> [(UInt32, Pair)]? {
        var r = Reader(bytes: bytes)
        var second = base
        var out: [(UInt32, Pair)] = []
        while !r.atEnd {
            guard let tag = r.tag(), let slot = r.varint(), slot >> 24 < UInt64(ForensicIndex.buckets), let d = r.signed() else { return nil }
            second &+= d
            out.append((tag, Pair(session: Slot(bucket: Int(slot >> 24), tag: UInt32(truncatingIfNeeded: slot) & 0xFF_FFFF), second: second)))
        }
        return out
    }

    /// Pending entries encoded after `base`, encoded again from zero (a chunk's start), with the
    /// span of their seconds.
    static func rebase(_ bytes: [UInt8], kind: Kind, after base: Posting) -> (bytes: [UInt8], first: Int64, last: Int64) {
        var out: [UInt8] = []
        var first = Int64.max, lastSecond = Int64.min
        switch kind {
        case .postings:
            var last = Posting.zero
            for (tag, p) in decodePostings(bytes, after: base) ?? [] {
                ForensicIndex.tag(tag, into: &out)
                append(p, after: last, to: &out)
                last = p
                first = min(first, p.second)
                lastSecond = max(lastSecond, p.second)
            }
        case .pairs:
            var last: Int64 = 0
            for (tag, pair) in decodePairs(bytes, after: base.second) ?? [] {
                ForensicIndex.tag(tag, into: &out)
                varint(UInt64(pair.session.bucket) << 24 | UInt64(pair.session.tag), into: &out)
                varint(zigzag(pair.second &- last), into: &out)
                last = pair.second
                first = min(first, pair.second)
                lastSecond = max(lastSecond, pair.second)
            }
        }
        return (out, first, lastSecond)
    }

    /// The postings of one chunk of the unbucketed index (`forensic_postings`, untagged); nil
    /// when the bytes are not a whole number of postings.
    public static func decodeLegacy(_ bytes: [UInt8]) -> [Posting]? {
        var r = Reader(bytes: bytes)
        var last = Posting.zero
        var out: [Posting] = []
        while !r.atEnd {
            guard let p = r.posting(after: last) else { return nil }
            out.append(p)
            last = p
        }
        return out
    }
}
