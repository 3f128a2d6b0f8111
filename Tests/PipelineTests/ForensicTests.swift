import Dashboard
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// The forensic index: a session's and a user's events read back from the original file,
/// exactly those lines; a rotated file found beside, a vanished one reported per range;
/// retention keeps security events past the index and frees the space.
@Suite struct ForensicTests {
    static func generated(lines: Int = 6000, start: String = "2026-11-01T00:00:00Z", interval: Int64 = 2000) -> [String] {
        var options = TrafficGenerator.Options()
        options.lines = lines
        options.start = Timestamp.parse(start)!
        options.interval = EventTime.Duration(micros: interval * 1000)
        var g = TrafficGenerator(options: options)
        var out: [String] = []
        g.generate { out.append($0) }
        return out
    }

    /// The 1-based line numbers of `lines` whose `key` is `value`.
    static func lineNumbers(_ lines: [String], _ key: String, _ value: String) -> [Int64] {
        lines.enumerated().compactMap { i, line in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return o[key] as? String == value ? Int64(i + 1) : nil
        }
    }

    /// Two ids in the same bucket with the same tag.
    static func colliding(_ key: (String) -> Int64, _ prefix: String) -> (String, String) {
        var seen: [ForensicIndex.Slot: String] = [:]
        for i in 0... {
            let id = "\(prefix)\(i)"
            let slot = ForensicIndex.Slot(key(id))
            if let other = seen[slot] { return (other, id) }
            seen[slot] = id
        }
        fatalError("unreachable")
    }

    /// Sessions (and users) that share a bucket and a tag read back only their own lines, and
    /// the neighbour's lines are not reported as gaps.
    @Test func idsSharingASlotGetOnlyTheirOwnLines() async throws {
        let (s1, s2) = Self.colliding(ForensicIndex.sessionKey, "sess-c-")
        let (u1, u2) = Self.colliding(ForensicIndex.userKey, "user-c-")
        #expect(s1 != s2 && u1 != u2)
        var lines: [String] = []
        for i in 0..<40 {
            let t = String(format: "2026-11-01T10:%02d:%02dZ", i / 2, (i % 2) * 30)
            // Alternately: a session of u1, a session of u2, and events without a session.
            let (session, user): (String?, String) = switch i % 4 {
            case 0: (s1, u1)
            case 1: (s2, u2)
            case 2: (nil, u1)
            default: (nil, u2)
            }
            let s = session.map { #","session_id":"\#($0)""# } ?? ""
            lines.append(#"{"log_id":"l-\#(i)","timestamp":"\#(t)","user_id":"\#(user)"\#(s),"input_tokens":\#(10 + i)}"#)
        }
        let dir = TempDir()
        var config = testConfig(dir)
        config.batchLines = 7
        try await ingest(lines, dir, config: config)
        let db = try openStateDatabase(dir.file("state.db"))
        let session = try ForensicQuery.session(db, id: s1, journalPath: "")
        #expect(session.hits.map(\.line) == Self.lineNumbers(lines, "session_id", s1))
        #expect(session.gaps.isEmpty, "\(session.gaps)")
        let user = try ForensicQuery.user(db, id: u1, since: 0, journalPath: "")
        #expect(user.hits.map(\.line) == Self.lineNumbers(lines, "user_id", u1))
        #expect(user.hits.count == 20)
        #expect(user.gaps.isEmpty, "\(user.gaps)")
    }

    /// A forensic index on a fresh database with one file source, fed events by hand: line N
    /// at offset `N * 150`, and committed when a test says.
    struct IndexFixture {
        let dir = TempDir()
        let db: Database
        var index: ForensicIndex
        let fields = FieldTable()
        var line: Int64 = 0

        init() throws {
            db = try openStateDatabase(dir.file("state.db"))
            var index = try ForensicIndex(db: db, hotDays: 30)
            try db.transaction { try index.use(kind: "file", name: "f", path: "/f", fingerprint: "x") }
            self.index = index
        }

        mutating func observe(user: String, session: String, at t: Double) {
            var values = [FieldValue](repeating: .missing, count: fields.count)
            values[FieldTable.sessionID] = .string(session)
            values[FieldTable.userID] = .string(user)
            line += 1
            index.observe(Event(time: EventTime(seconds: t), values: values, origin: .init(source: "f", line: line, offset: (line - 1) * 150)))
        }

        mutating func commit() throws {
            var index = self.index
            try db.transaction { try index.save() }
            self.index = index
        }
    }

    /// A long session fills chunk after chunk, none past the row size that would spill to an
    /// overflow page, and reads back whole and in order.
    @Test func aLongSessionSpansChunksUnderTheRowSize() throws {
        var f = try IndexFixture()
        // 1,000 events of one session, committed 100 at a time (about 600 bytes a commit).
        for batch in 0..<10 {
            for k in 0..<100 { f.observe(user: "u-1", session: "long", at: 1_790_000_000 + Double(batch * 100 + k)) }
            try f.commit()
        }
        let sizes = try f.db.query("SELECT length(data) FROM forensic_chunks WHERE kind = 0") { $0.int(0) }
        #expect(sizes.count >= 5)
        #expect(sizes.allSatisfy { $0 <= ForensicIndex.rowBytes }, "\(sizes)")
        let postings = try ForensicIndex.postings(f.db, key: ForensicIndex.sessionKey("long"))
        #expect(postings.map(\.line) == Array(1...1000))
        #expect(postings.map(\.offset) == (0..<1000).map { Int64($0) * 150 })
    }

    /// A pair stands for the hour after it: a user query from a time inside that hour finds the
    /// session even when the chunk holding the pair closed before that time.
    @Test func aUserQueryFindsASessionWhosePairIsInAnEarlierChunk() throws {
        var f = try IndexFixture()
        let t0 = 1_790_000_000.0
        f.observe(user: "u-target", session: "s-target", at: t0)
        try f.commit()
        // Other users in the same bucket fill the pair chunk, which closes at t0 + 20 min.
        let bucket = ForensicIndex.Slot(ForensicIndex.userKey("u-target")).bucket
        let neighbours = (0...).lazy.map { "u-n\($0)" }.filter { ForensicIndex.Slot(ForensicIndex.userKey($0)).bucket == bucket }.prefix(200)
        for (k, user) in neighbours.enumerated() { f.observe(user: user, session: "s-\(user)", at: t0 + 600 + Double(k) * 3) }
        try f.commit()
        let closed = try f.db.query("SELECT count(*) FROM forensic_chunks WHERE kind = 1 AND bucket = ?", [.int(Int64(bucket))]) { $0.int(0) }.first
        #expect(closed == 1 || closed == 2)
        // The target's session goes on from t0 + 30 min, within the hour: no new pair.
        for k in 0..<10 { f.observe(user: "u-target", session: "s-target", at: t0 + 1800 + Double(k) * 60) }
        f.observe(user: "u-other", session: "s-other", at: t0 + 3000)  // the pair chunk gets a newer entry of another user
        try f.commit()
        let since = Int64(t0) + 1800
        let (slots, _) = try ForensicIndex.sessions(f.db, user: ForensicIndex.userKey("u-target"), since: since)
        #expect(slots.contains(ForensicIndex.Slot(ForensicIndex.sessionKey("s-target"))))
        let postings = try ForensicIndex.postings(f.db, key: ForensicIndex.sessionKey("s-target"), since: since)
        #expect(postings.count == 10)
    }

    /// A database indexed before the buckets (one row per session in `forensic_postings`, pairs
    /// in `forensic_user_sessions`) is still read.
    @Test func anIndexFromBeforeTheBucketsIsStillRead() async throws {
        let dir = TempDir()
        let lines = Self.generated(lines: 1500)
        try await ingest(lines, dir, config: testConfig(dir))
        let db = try openStateDatabase(dir.file("state.db"))
        let session = "sess-attack-0"
        let before = try ForensicQuery.session(db, id: session, journalPath: "").hits.map(\.line)
        let user = try #require(lines.compactMap { line -> String? in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return o["session_id"] as? String == session ? o["user_id"] as? String : nil
        }.first)
        let userBefore = try ForensicQuery.user(db, id: user, since: 0, journalPath: "").hits.map(\.line)
        #expect(!before.isEmpty && !userBefore.isEmpty)
        // The old layout, written as the first version did: this session's postings as untagged
        // zigzag varint deltas under its exact key, and its user paired with it.
        func varint(_ v: Int64, _ out: inout [UInt8]) {
            var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
            while u >= 0x80 { out.append(UInt8(u & 0x7F) | 0x80); u >>= 7 }
            out.append(UInt8(u))
        }
        let slot = ForensicIndex.Slot(ForensicIndex.sessionKey(session))
        let mine = try ForensicIndex.entries(db).postings.filter { $0.0 == slot }.map(\.1)
        var data: [UInt8] = []
        var last = ForensicIndex.Posting.zero
        for p in mine {
            varint(p.source - last.source, &data); varint(p.line - last.line, &data)
            varint(p.offset - last.offset, &data); varint(p.second - last.second, &data)
            last = p
        }
        try db.transaction {
            try db.run("DELETE FROM forensic_chunks")
            try db.run("INSERT INTO forensic_postings (key, chunk, last_time, data) VALUES (?, 1, ?, ?)",
                       [.int(ForensicIndex.sessionKey(session)), .int(last.second), .blob(data)])
            try db.run("INSERT INTO forensic_user_sessions (user, session, first_time, last_time) VALUES (?, ?, 0, ?)",
                       [.int(ForensicIndex.userKey(user)), .int(ForensicIndex.sessionKey(session)), .int(last.second)])
        }
        let after = try ForensicQuery.session(db, id: session, journalPath: "")
        #expect(after.hits.map(\.line) == before)
        #expect(after.gaps.isEmpty)
        // The user's other sessions were in the dropped chunks: what is left is this session's.
        let userAfter = try ForensicQuery.user(db, id: user, since: 0, journalPath: "")
        #expect(userAfter.hits.map(\.line) == before.filter { userBefore.contains($0) })
        #expect(userAfter.gaps.isEmpty)
    }

    @Test func aSessionAndAUserGiveExactlyTheirLinesWithTheirAlerts() async throws {
        let dir = TempDir()
        let lines = Self.generated()
        var config = testConfig(dir)
        config.batchLines = 500
        try await ingest(lines, dir, config: config)
        let db = try openStateDatabase(dir.file("state.db"))
        let session = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: dir.file("none.db"))
        #expect(session.gaps.isEmpty)
        #expect(session.hits.map(\.line) == Self.lineNumbers(lines, "session_id", "sess-attack-0"))
        #expect(session.hits.allSatisfy { $0.readFrom == dir.file("input.jsonl") })
        #expect(session.hits.contains { $0.alerts.contains { $0.rule == "rapid_fire_injection_attempts" } }, "the attack's alert is marked inline")
        // A benign user with many sessions: every line of theirs, in time order.
        let user = "user-7"
        let expected = Self.lineNumbers(lines, "user_id", user)
        #expect(expected.count > 10)
        let q = try ForensicQuery.user(db, id: user, since: 0, journalPath: dir.file("none.db"))
        #expect(q.hits.map(\.line) == expected)
        #expect(q.hits.map(\.second) == q.hits.map(\.second).sorted())
        // --days: only the last part.
        let cut = q.hits[q.hits.count / 2].second
        let recent = try ForensicQuery.user(db, id: user, since: cut, journalPath: dir.file("none.db"))
        #expect(recent.hits.map(\.line) == q.hits.filter { $0.second >= cut }.map(\.line))
        #expect(try ForensicQuery.session(db, id: "no-such-session", journalPath: "").hits.isEmpty)
    }

    @Test func aRotatedFileIsFoundBesideAndAVanishedOneIsReportedByRange() async throws {
        let dir = TempDir()
        let lines = Self.generated()
        try await ingest(lines, dir, config: testConfig(dir))
        let db = try openStateDatabase(dir.file("state.db"))
        let expected = Self.lineNumbers(lines, "session_id", "sess-attack-0")
        // Rotated: renamed, a new file at the path.
        try FileManager.default.moveItem(atPath: dir.file("input.jsonl"), toPath: dir.file("input.jsonl.1"))
        dir.write("input.jsonl", lines[0].replacingOccurrences(of: "log-", with: "new-") + "\n")
        let rotated = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(rotated.hits.map(\.line) == expected)
        #expect(rotated.hits.allSatisfy { $0.readFrom == dir.file("input.jsonl.1") })
        // Gone: the rotated file deleted.
        try FileManager.default.removeItem(atPath: dir.file("input.jsonl.1"))
        let gone = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(gone.hits.isEmpty)
        let gap = try #require(gone.gaps.first)
        #expect(gone.gaps.count == 1 && gap.firstLine == expected.first && gap.lastLine == expected.last && gap.events == expected.count)
        #expect(gap.reason.contains("is now another file"), "\(gap.reason)")
        try FileManager.default.removeItem(atPath: dir.file("input.jsonl"))
        let deleted = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(deleted.gaps.first?.reason.contains("is gone") == true)
    }

    @Test func aRestartInTheMiddleIndexesEveryEventOnce() async throws {
        let lines = Self.generated()
        let one = TempDir(), two = TempDir()
        try await ingest(lines, one, config: testConfig(one))
        var c = testConfig(two)
        c.batchLines = 300
        try await ingest(Array(lines[..<3111]), two, config: c)
        try await ingest(lines, two, config: c)
        for dir in [one, two] {
            let db = try openStateDatabase(dir.file("state.db"))
            let q = try ForensicQuery.user(db, id: "user-3", since: 0, journalPath: "")
            #expect(q.hits.map(\.line) == Self.lineNumbers(lines, "user_id", "user-3"))
            let all = try ForensicIndex.entries(db).postings
            #expect(all.count == lines.count, "every event indexed once (no session-less event in the generator)")
        }
    }

    @Test func retentionKeepsSecurityEventsPastTheIndexAndFreesSpace() async throws {
        let dir = TempDir()
        // 40 days, an event every 10 minutes, all before today (the prune clock never runs more
        // than a day ahead of the wall clock); the attacks come early.
        let lines = Self.generated(lines: 5760, start: "2026-09-01T00:00:00Z", interval: 600_000)
        var config = testConfig(dir)
        config.retention.hotDays = 10
        config.retention.securityDays = 365
        config.retention.alertDays = 365
        config.rollups = false
        let path = dir.file("state.db")
        try await ingest(Array(lines[..<1500]), dir, config: config)
        let db = try openStateDatabase(path)
        func size() throws -> Int64 { try db.query("PRAGMA page_count") { $0.int(0) }.first! * 4096 }
        #expect(try db.query("PRAGMA auto_vacuum") { $0.int(0) }.first == 2, "new databases free pruned pages incrementally")
        let attack = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(!attack.hits.isEmpty)
        let sizeBefore = try size()
        try await ingest(lines, dir, config: config)
        // Pruned on the stream-time schedule as the ingest went on.
        let clock = Timestamp.parse((try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any])["timestamp"] as! String)!.micros / 1_000_000
        let cutoff = try #require(try ForensicIndex.cutoff(db))
        #expect(cutoff >= clock - 11 * 86_400, "the index was pruned to hot_days (and a day)")
        let stale = try db.query("SELECT count(*) FROM forensic_chunks WHERE (kind = 0 AND last_time < ?) OR (kind = 1 AND last_time < ?)",
                                 [.int(cutoff), .int(cutoff - ForensicIndex.pairRefresh)]) { $0.int(0) }.first
        #expect(stale == 0, "no chunk lies wholly before the cutoff")
        let old = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(old.hits.isEmpty && old.gaps.isEmpty)
        #expect(!old.securityRecords.isEmpty, "the attack's events are kept as security records")
        let record = try #require(old.securityRecords.first?.serialized())
        #expect(record.contains("\"session_id\":\"sess-attack-0\"") && !record.contains("user_input") && !record.contains("model_output"))
        // Pruning again with a shorter hot tier drops more and the file gets smaller.
        var shorter = RetentionSettings()
        shorter.hotDays = 1
        let grown = try size()
        let pruned = try db.transaction { try Forensics.prune(db, clock: EventTime(micros: clock * 1_000_000), settings: shorter) }
        #expect(pruned.postings > 0)
        try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try Forensics.freeSpace(db)
        let after = try size()
        #expect(after < grown, "\(sizeBefore) → \(grown) → \(after)")
    }

    @Test func aFutureDatedEventPrunesNothingEarly() async throws {
        let dir = TempDir()
        var lines = Self.generated(lines: 2000, start: "2026-09-01T00:00:00Z")
        lines.append(lines[10].replacingOccurrences(of: "2026-09-01T00:00:20", with: "9999-01-01T00:00:00").replacingOccurrences(of: "log-42-11\"", with: "log-future\""))
        lines += Self.generated(lines: 10, start: "2026-09-01T02:00:00Z").map { $0.replacingOccurrences(of: "log-42-", with: "log-later-") }
        try await ingest(lines, dir, config: testConfig(dir))
        let db = try openStateDatabase(dir.file("state.db"))
        let q = try ForensicQuery.session(db, id: "sess-attack-0", journalPath: "")
        #expect(!q.hits.isEmpty, "one event dated 9999 did not prune the index")
        #expect(try db.query("SELECT count(*) FROM rollups WHERE res = 3600") { $0.int(0) }.first! > 0)
        #expect(try db.query("SELECT count(*) FROM rollups WHERE res = 300 AND bucket < 6000000") { $0.int(0) }.first! >= 13, "the five-minute rows of September stay")
        let panels = try PanelSet.read(db, range: PanelRange("24h")!)
        #expect(panels.total.events >= 2000, "the dashboard's ranges end at the real data, not at 9999")
        let day = try db.query("SELECT value FROM retention_state WHERE key = 'last_prune_day'") { $0.int(0) }.first ?? 0
        #expect(day <= EventTime(seconds: Date().timeIntervalSince1970).day + 1)
    }

    @Test func theCommandsLeaveTextOutUnlessAsked() async throws {
        let dir = TempDir()
        let lines = Self.generated(lines: 3000)
        try await ingest(lines, dir, config: testConfig(dir))
        let db = dir.file("state.db")
        let plain = try run(iwDetectBinary, ["session", "sess-attack-0", "--db", db])
        #expect(plain.status == 0)
        let events = jsonLines(plain.stdout)
        #expect(events.count == Self.lineNumbers(lines, "session_id", "sess-attack-0").count)
        #expect(!plain.stdout.contains("user_input") && !plain.stdout.contains("model_output"))
        #expect(events.allSatisfy { ($0["source"] as? String)?.hasSuffix("input.jsonl") == true && $0["line"] is Int })
        let text = try run(iwDetectBinary, ["session", "sess-attack-0", "--db", db, "--show-text"])
        #expect(text.stdout.contains("\"user_input\""))
        let user = try run(iwDetectBinary, ["user", "attacker-0", "--db", db, "--days", "30"])
        #expect(jsonLines(user.stdout).count == Self.lineNumbers(lines, "user_id", "attacker-0").count)
        try FileManager.default.removeItem(atPath: dir.file("input.jsonl"))
        let gone = try run(iwDetectBinary, ["session", "sess-attack-0", "--db", db])
        #expect(gone.stdout.isEmpty && gone.stderr.contains("are missing") && gone.stderr.contains("is gone"), "\(gone.stderr)")
    }
}
