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
            let all = try db.query("SELECT data FROM forensic_postings") { $0.blob(0) }.flatMap { ForensicIndex.decode($0)! }
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
        let oldest = try db.query("SELECT min(last_time) FROM forensic_postings") { $0.int(0) }.first!
        let clock = Timestamp.parse((try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any])["timestamp"] as! String)!.micros / 1_000_000
        #expect(oldest >= clock - 11 * 86_400, "nothing older than hot_days (and a day) is left in the index")
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
