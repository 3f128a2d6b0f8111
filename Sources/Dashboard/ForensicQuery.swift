#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import IWDetectCore
import Ingest
import Pipeline

/// The monitoring guide's `query_session` and `query_user_history`: every event of a session or
/// user, in time order, read back from where the forensic index says it is (the original file,
/// or the input journal). Nothing is read from a copy; a source that is gone (rotated away,
/// replaced, deleted, or a journal record already dropped) is reported per range of lines.
public struct ForensicQuery {
    /// One event found.
    public struct Hit: Sendable {
        public var second: Int64
        /// The source's name as ingested, its path then, the file actually read (another when it
        /// was rotated), the line.
        public var source: String
        public var path: String
        public var readFrom: String
        public var line: Int64
        public var event: JSONValue
        /// The alerts this event raised or was part of: rule, severity, alert id.
        public var alerts: [(rule: String, severity: String, id: String)]
    }

    /// A range of indexed events that could not be read.
    public struct Gap: Sendable {
        public var source: String
        public var firstLine: Int64
        public var lastLine: Int64
        public var events: Int
        public var reason: String
    }

    public var hits: [Hit] = []
    public var gaps: [Gap] = []
    /// Security events of the session or user whose index entries are past `retention.hot_days`:
    /// their redacted records from the security log.
    public var securityRecords: [JSONValue] = []

    struct Source {
        var kind: String, name: String, path: String, fingerprint: String
    }

    /// What a line read back is to the query.
    enum Match {
        /// An event of the session or user asked for.
        case yes
        /// An event indexed where the query read, but not the query's: one of another session or
        /// user sharing the bucket and tag, or another user's event in a session the user took
        /// part in. Not a gap.
        case other
        /// Not an event indexed there: the source changed.
        case no
    }

    /// The slot `event` is indexed under: its session's, or without one its user's.
    static func slot(of event: JSONValue) -> ForensicIndex.Slot? {
        if let s = event["session_id"]?.stringValue, !s.isEmpty { return ForensicIndex.Slot(ForensicIndex.sessionKey(s)) }
        if let u = event["user_id"]?.stringValue, !u.isEmpty { return ForensicIndex.Slot(ForensicIndex.userKey(u)) }
        return nil
    }

    /// Every event of session `id`.
    public static func session(_ db: Database, id: String, journalPath: String) throws -> ForensicQuery {
        let key = ForensicIndex.sessionKey(id)
        let postings = try ForensicIndex.postings(db, key: key)
        let slot = ForensicIndex.Slot(key)
        var q = try resolve(db, postings, journalPath: journalPath) { event in
            if event["session_id"]?.stringValue == id { return .yes }
            return ForensicQuery.slot(of: event) == slot ? .other : .no
        }
        try q.attachAlerts(db, column: "session_id", id: id)
        if q.hits.isEmpty && q.gaps.isEmpty {
            q.securityRecords = unique(try db.query("SELECT source, line, record FROM security_events WHERE session_id = ? ORDER BY time, id", [.text(id)]) {
                ($0.int(0), $0.int(1), $0.text(2))
            })
        }
        return q
    }

    /// Every event of user `id` at or after `since` (epoch seconds).
    public static func user(_ db: Database, id: String, since: Int64, journalPath: String) throws -> ForensicQuery {
        let user = ForensicIndex.userKey(id)
        let (sessionSlots, legacyKeys) = try ForensicIndex.sessions(db, user: user, since: since)
        // The user's events without a session, and the sessions they were seen in.
        var slots = sessionSlots.union(legacyKeys.map(ForensicIndex.Slot.init))
        slots.insert(ForensicIndex.Slot(user))
        let postings = try ForensicIndex.postings(db, slots: slots, legacyKeys: legacyKeys + [user], since: since)
        var q = try resolve(db, postings, journalPath: journalPath) { event in
            if event["user_id"]?.stringValue == id { return .yes }
            // Another user's line (or one without a user) of a session the user took part in, or
            // of a key sharing a slot read.
            return ForensicQuery.slot(of: event).map(slots.contains) == true ? .other : .no
        }
        try q.attachAlerts(db, column: "user_id", id: id)
        q.securityRecords = unique(try db.query("""
            SELECT source, line, record FROM security_events WHERE user_id = ? AND time >= ? AND time < ? ORDER BY time, id
            """, [.text(id), .int(since * 1_000_000), .int(try oldestIndexed(db))]) { ($0.int(0), $0.int(1), $0.text(2)) })
        return q
    }

    /// The records, one per source line (the same input read again records an event twice).
    static func unique(_ rows: [(Int64, Int64, String)]) -> [JSONValue] {
        var seen = Set<[Int64]>()
        return rows.filter { seen.insert([$0.0, $0.1]).inserted }.compactMap { try? JSONValue.parse($0.2) }
    }

    /// The oldest time (microseconds) the index still covers: security records before it stand in.
    static func oldestIndexed(_ db: Database) throws -> Int64 {
        // Nothing indexed (or no index): the security log is all there is.
        guard let span = try ForensicIndex.span(db) else { return .max }
        // The index starts at its oldest entry, or past a prune at its cutoff (older entries of
        // a chunk kept for newer ones are not shown).
        let oldest = max(span.oldest, try ForensicIndex.cutoff(db) ?? .min)
        return oldest < Int64.max / 1_000_000 ? oldest * 1_000_000 : .max
    }

    /// Reads each posting's line; `belongs` checks that the line is the one indexed (a line of
    /// another id means the file changed under the same name and fingerprint).
    static func resolve(_ db: Database, _ postings: [ForensicIndex.Posting], journalPath: String,
                        belongs: (JSONValue) -> Match) throws -> ForensicQuery {
        var q = ForensicQuery()
        // The same line indexed twice (the same input read again with --reingest) is one event.
        var seen = Set<[Int64]>()
        let unique = postings.filter { seen.insert([$0.source, $0.line, $0.offset]).inserted }
        let bySource = Dictionary(grouping: unique, by: \.source)
        for (sourceID, list) in bySource.sorted(by: { $0.key < $1.key }) {
            let list = list.sorted { $0.offset != $1.offset ? $0.offset < $1.offset : $0.line < $1.line }
            guard let s = try db.query("SELECT kind, name, path, fingerprint FROM forensic_sources WHERE id = ?", [.int(sourceID)], {
                Source(kind: $0.text(0), name: $0.text(1), path: $0.text(2), fingerprint: $0.text(3))
            }).first else {
                q.gap(list, source: "source #\(sourceID)", reason: "the index names a source it does not list")
                continue
            }
            switch s.kind {
            case "file": q.readFile(s, list, belongs: belongs)
            case "journal": q.readJournal(s, list, journalPath: journalPath, belongs: belongs)
            default: q.gap(list, source: s.name, reason: "standard input cannot be read again")
            }
        }
        q.hits.sort { ($0.second, $0.source, $0.line) < ($1.second, $1.source, $1.line) }
        q.gaps.sort { ($0.source, $0.firstLine) < ($1.source, $1.firstLine) }
        return q
    }

    mutating func gap(_ list: [ForensicIndex.Posting], source: String, reason: String) {
        guard let first = list.map(\.line).min(), let last = list.map(\.line).max() else { return }
        gaps.append(Gap(source: source, firstLine: first, lastLine: last, events: list.count, reason: reason))
    }

    /// The file the source was: at its path if the fingerprint still matches, else a rotated
    /// sibling (`app.log.1`, `app.log-20261101`) that has it.
    static func locate(_ s: Source) -> (fd: Int32, path: String)? {
        guard let fp = FileFingerprint(stored: s.fingerprint) else { return nil }
        func matching(_ path: String) -> Int32? {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return nil }
            if fp.matches(fd: fd) { return fd }
            close(fd)
            return nil
        }
        if let fd = matching(s.path) { return (fd, s.path) }
        let dir = (s.path as NSString).deletingLastPathComponent, base = (s.path as NSString).lastPathComponent
        let siblings = ((try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? [])
            .filter { $0 != base && $0.hasPrefix(base) }.sorted()
        for name in siblings {
            let path = (dir as NSString).appendingPathComponent(name)
            if let fd = matching(path) { return (fd, path) }
        }
        return nil
    }

    mutating func readFile(_ s: Source, _ list: [ForensicIndex.Posting], belongs: (JSONValue) -> Match) {
        guard let (fd, path) = ForensicQuery.locate(s) else {
            let exists = FileManager.default.fileExists(atPath: s.path)
            gap(list, source: s.name, reason: exists ? "\(s.path) is now another file (rotated or replaced) and no file beside it has the indexed content"
                                                    : "\(s.path) is gone (rotated away or deleted) and no file beside it has the indexed content")
            return
        }
        defer { close(fd) }
        var changed: [ForensicIndex.Posting] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        for p in list {
            take(p, ForensicQuery.line(fd: fd, at: p.offset, buffer: &buffer), source: s.name, path: s.path, readFrom: path,
                 belongs: belongs, failed: &changed)
        }
        if !changed.isEmpty { gap(changed, source: s.name, reason: "\(path) no longer holds these lines where they were (the file was rewritten)") }
    }

    /// The line read back for `p`: a hit when it is the query's event, nothing when it is another
    /// user's event of a shared session, else (unreadable, or another event) one of `failed`.
    mutating func take(_ p: ForensicIndex.Posting, _ bytes: [UInt8]?, source: String, path: String, readFrom: String,
                       belongs: (JSONValue) -> Match, failed: inout [ForensicIndex.Posting]) {
        guard let bytes, let json = try? JSONValue.parse(String(decoding: bytes, as: UTF8.self)) else {
            failed.append(p)
            return
        }
        switch belongs(json) {
        case .no: failed.append(p)
        case .other: break
        case .yes: hits.append(Hit(second: p.second, source: source, path: path, readFrom: readFrom, line: p.line, event: json, alerts: []))
        }
    }

    /// The line starting at `offset` (without its newline), at most 16 MiB.
    static func line(fd: Int32, at offset: Int64, buffer: inout [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var pos = offset
        while out.count < 16 << 20 {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(pos)) }
            guard n > 0 else { return out.isEmpty ? nil : out }
            if let nl = buffer.prefix(n).firstIndex(of: 0x0A) {
                out += buffer[..<nl]
                return out
            }
            out += buffer.prefix(n)
            pos += Int64(n)
        }
        return nil
    }

    mutating func readJournal(_ s: Source, _ list: [ForensicIndex.Posting], journalPath: String, belongs: (JSONValue) -> Match) {
        guard FileManager.default.fileExists(atPath: journalPath), let journal = try? Database(path: journalPath, readOnly: true),
              (try? journal.query("SELECT value FROM journal_meta WHERE key = 'id'") { $0.text(0) }.first) == s.fingerprint else {
            gap(list, source: "http", reason: "the input journal \(journalPath) is gone or is another journal")
            return
        }
        var dropped: [ForensicIndex.Posting] = []
        for p in list {
            let body = try? journal.query("SELECT body FROM journal_records WHERE seq = ?", [.int(p.line)], { $0.blob(0) }).first
            take(p, body, source: "http", path: journalPath, readFrom: journalPath, belongs: belongs, failed: &dropped)
        }
        if !dropped.isEmpty { gap(dropped, source: "http", reason: "the input journal no longer holds these records (it drops records once they are processed)") }
    }

    /// Marks each hit with the alerts that name it (as the triggering event or in the window).
    mutating func attachAlerts(_ db: Database, column: String, id: String) throws {
        let rows = try db.query("SELECT id, rule, severity, json FROM alerts WHERE json_extract(json, '$.\(column)') = ? ORDER BY seq", [.text(id)]) {
            ($0.text(0), $0.text(1), $0.text(2), $0.text(3))
        }
        var byEvent: [String: [(String, String, String)]] = [:]
        for (alertID, rule, severity, text) in rows {
            guard let json = try? JSONValue.parse(text) else { continue }
            var ids = Set<String>()
            if let e = json["event_id"]?.stringValue { ids.insert(e) }
            if case .array(let list)? = json["event_ids"] { for case .string(let e) in list { ids.insert(e) } }
            for e in ids { byEvent[e, default: []].append((rule, severity, alertID)) }
        }
        for i in hits.indices {
            let e = hits[i].event
            let eventID = [e["log_id"]?.stringValue, e["request_id"]?.stringValue].compactMap { $0 }.first { !$0.isEmpty } ?? "\(hits[i].source):\(hits[i].line)"
            hits[i].alerts = (byEvent[eventID] ?? []).map { (rule: $0.0, severity: $0.1, id: $0.2) }
        }
    }
}
