import Foundation
import IWDetectCore
import Ingest
import IWDetectTestSupport
import Testing

/// The HTTP input's journal and the pipeline's reader of it, without HTTP.
@Suite struct InputJournalTests {
    func request(_ lines: [String], bad: [Int] = []) -> InputJournal.Request {
        InputJournal.Request(remote: "10.1.2.3", requestID: "r-\(lines.count)", records: lines.enumerated().map { i, l in
            HTTPBody.Record(bytes: Array(l.utf8), problem: bad.contains(i) ? (.invalidJSON, "bad") : nil)
        })
    }

    func stateDB(_ dir: TempDir) throws -> Database {
        let db = try Database(path: dir.file("state.db"))
        try Migrator.migrate(db, IngestStore.migrations)
        return db
    }

    @Test func recordsAreReadInOrderWithTheirCheckpointAndBadOnesAsRejects() async throws {
        let dir = TempDir()
        let journal = try InputJournal(options: .init(path: dir.file("in.db")))
        defer { journal.stop() }
        #expect(try await journal.append(request(["{\"a\":1}", "{\"a\":2}"])) == 2)
        #expect(try await journal.append(request(["{\"a\":3}", "not json", "{\"a\":5}"], bad: [1])) == 5)
        let source = try JournalSource(journal: journal, db: try stateDB(dir), maxLineBytes: 1 << 20)
        source.gatherTime = 0
        let (batch, status) = try source.next()
        #expect(status == .data(caughtUp: true))
        #expect(batch.lines.map(\.number) == [1, 2, 3, 5])
        #expect(batch.rejects.map(\.line) == [4])
        #expect(batch.rejects.first?.remote == "10.1.2.3")
        #expect(batch.rejects.first?.requestID == "r-3")
        #expect(batch.checkpoint == SourceCheckpoint(key: JournalSource.checkpointKey, offset: 5, line: 6, fingerprint: journal.id))
        #expect(batch.origins[5] == LineOrigin(remote: "10.1.2.3", requestID: "r-3"))
        // Closed and read to its end: the reader ends once finished.
        journal.close()
        source.finish()
        let (last, end) = try source.next()
        #expect(end == .endOfInput)
        #expect(last.lines.isEmpty)
        await #expect(throws: InputJournal.AppendError.self) { try await journal.append(request(["{}"])) }
    }

    @Test func theBoundRefusesWhatWouldPassItUntilThePipelineCommits() async throws {
        let dir = TempDir()
        var options = InputJournal.Options(path: dir.file("in.db"))
        options.maxRecords = 3
        let journal = try InputJournal(options: options)
        defer { journal.stop() }
        _ = try await journal.append(request(["{}", "{}"]))
        do {
            _ = try await journal.append(request(["{}", "{}"]))
            Issue.record("a request past the bound was taken")
        } catch InputJournal.AppendError.full(let depth, let bound) {
            #expect(depth == 2 && bound == 3)
        }
        #expect(journal.hasRoom)
        journal.consumed(through: 2)
        #expect(journal.depth == 0)
        #expect(try await journal.append(request(["{}", "{}", "{}"])) == 5)
        #expect(!journal.hasRoom)
    }

    /// Processed records are kept `keep` seconds after they arrived, and while they take at
    /// most `keepBytes` of the file: past that the oldest go first. Records not yet processed are
    /// never deleted, and a state database that starts over does not read the kept ones again.
    @Test func processedRecordsAreKeptForTheirTimeAndTheirBytesAtMost() async throws {
        let dir = TempDir()
        var options = InputJournal.Options(path: dir.file("in.db"))
        options.keep = 3
        options.keepBytes = 100_000
        let journal = try InputJournal(options: options)
        defer { journal.stop() }
        let body = "{\"x\":\"" + String(repeating: "a", count: 92) + "\"}"  // 100 bytes
        func kept() throws -> (first: Int64, last: Int64, bytes: Int64) {
            let db = try Database(path: dir.file("in.db"), readOnly: true)
            return try db.query("SELECT min(seq), max(seq), coalesce(sum(length(body)), 0) FROM journal_records") { ($0.int(0), $0.int(1), $0.int(2)) }[0]
        }
        func settled(_ done: (Int64, Int64, Int64) -> Bool) async throws -> (first: Int64, last: Int64, bytes: Int64) {
            for _ in 0..<200 {
                let k = try kept()
                if done(k.first, k.last, k.bytes) { return k }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try kept()
        }
        // 2,100 records of 100 bytes, the first 2,000 processed at once: younger than `keep`, but
        // about 236 KB of pages, so only the newest that fit in 100,000 bytes stay; the 100 not
        // processed are not touched.
        for _ in 0..<21 { _ = try await journal.append(request(Array(repeating: body, count: 100))) }
        journal.consumed(through: 2000)
        var k = try await settled { first, _, _ in first > 1 }
        // The kept bodies are between half the bound and the bound (pages take a little more).
        #expect(k.first >= 1001 && k.first <= 1501, "kept from \(k.first)")
        #expect(k.last == 2100)
        // Later, 1,100 records of 40 bytes, all processed: the first 21 requests are older than
        // `keep` and go with their records; the new ones stay (44,000 bytes, under the bound).
        try await Task.sleep(for: .milliseconds(3200))
        let small = "{\"x\":\"" + String(repeating: "b", count: 32) + "\"}"
        for _ in 0..<11 { _ = try await journal.append(request(Array(repeating: small, count: 100))) }
        journal.consumed(through: 3200)
        k = try await settled { first, _, _ in first > 2100 }
        #expect(k.first == 2101 && k.last == 3200 && k.bytes == 44_000)
        let requests = try Database(path: dir.file("in.db"), readOnly: true).query("SELECT count(*) FROM journal_requests") { $0.int(0) }[0]
        #expect(requests == 11)
        // A state database that has read nothing (replaced, or new) resumes after what was
        // processed, not at the first record kept.
        let resumed = try journal.reconcile(position: 0)
        #expect(resumed.position == 3200)
        #expect(resumed.note?.contains("processed already") == true)
    }

    @Test func theByteBoundCountsWhatIsNotConsumedAcrossARestart() async throws {
        let dir = TempDir()
        var options = InputJournal.Options(path: dir.file("in.db"))
        options.maxBytes = 100
        let record = "{\"x\":\"" + String(repeating: "a", count: 32) + "\"}"  // 40 bytes
        do {
            let journal = try InputJournal(options: options)
            _ = try await journal.append(request([record, record]))
            await #expect(throws: InputJournal.AppendError.self) { try await journal.append(request([record])) }
            // Bytes come back a commit group at a time: both records of that request.
            journal.consumed(through: 1)
            await #expect(throws: InputJournal.AppendError.self) { try await journal.append(request([record])) }
            journal.consumed(through: 2)
            _ = try await journal.append(request([record]))
            journal.stop()
        }
        // After a restart at position 1, records 2 and 3 (80 bytes) still count.
        let journal = try InputJournal(options: options)
        defer { journal.stop() }
        let db = try stateDB(dir)
        try IngestStore.save(SourceCheckpoint(key: JournalSource.checkpointKey, offset: 1, line: 2, fingerprint: journal.id), into: db)
        _ = try JournalSource(journal: journal, db: db, maxLineBytes: 1 << 20)
        do {
            _ = try await journal.append(request([record]))
            Issue.record("past the byte bound")
        } catch InputJournal.AppendError.fullBytes(let bytes, let bound) {
            #expect(bytes == 80 && bound == 100)
        }
        journal.consumed(through: 3)
        #expect(try await journal.append(request([record, record])) == 5)
    }

    @Test func aPositionPastTheJournalMovesTheNumberingOnAndOneBeforeItsRecordsSkipsToThem() async throws {
        let dir = TempDir()
        let db = try stateDB(dir)
        do {
            // The state database read up to 10, but the journal is a fresh (or older) file.
            let journal = try InputJournal(options: .init(path: dir.file("in.db")))
            try IngestStore.save(SourceCheckpoint(key: JournalSource.checkpointKey, offset: 10, line: 11, fingerprint: journal.id), into: db)
            let source = try JournalSource(journal: journal, db: db, maxLineBytes: 1 << 20)
            #expect(source.position == 10)
            #expect(source.note?.contains("numbering continues after 10") == true)
            // A new record is not mistaken for one already read.
            #expect(try await journal.append(request(["{\"n\":11}"])) == 11)
            source.gatherTime = 0
            #expect(try source.next().0.lines.map(\.number) == [11])
            journal.stop()
        }
        // The state database is older than the journal's deletions: resume at the first record kept.
        let journal = try InputJournal(options: .init(path: dir.file("in2.db")))
        defer { journal.stop() }
        for _ in 0..<3 { _ = try await journal.append(request(["{}"])) }
        let fresh = try Database(path: dir.file("in2.db"))
        try fresh.run("DELETE FROM journal_records WHERE seq <= 2", [])
        try IngestStore.save(SourceCheckpoint(key: JournalSource.checkpointKey, offset: 0, line: 1, fingerprint: journal.id), into: db)
        let source = try JournalSource(journal: journal, db: db, maxLineBytes: 1 << 20)
        #expect(source.position == 2)
        source.gatherTime = 0
        #expect(try source.next().0.lines.map(\.number) == [3])
    }

    @Test func bodiesSplitAsALogstashJSONInputReadsThem() {
        let splitter = HTTPBodySplitter(maxBodyBytes: 1 << 20)
        func split(_ s: String) -> HTTPBody { HTTPBody.split(Array(s.utf8), maxRecordBytes: 64, using: splitter) }
        #expect(split("{\"a\": 1,\n \"b\": [1, 2]}").records.map { String(decoding: $0.bytes, as: UTF8.self) } == ["{\"a\":1,\"b\":[1,2]}"])
        #expect(split("[{\"a\":1}, {\"b\":2}, 3]").problems.map(\.reason) == [.notAnObject])
        #expect(split("[]").records.isEmpty && !split("[]").isNDJSON)
        let nd = split("{\"a\":1}\r\n\n{\"a\":\n[\"x\"]\n{\"" + String(repeating: "y", count: 80) + "\":1}\n")
        #expect(nd.isNDJSON)
        #expect(nd.records.count == 4)
        #expect(nd.problems.map(\.reason) == [.invalidJSON, .notAnObject, .lineTooLong])
        #expect(split("\"just a string\"").problems.map(\.reason) == [.notAnObject])
        #expect(split("{\"bad\": \"\u{FFFD}\"}").problems.isEmpty)
        #expect(HTTPBody.split([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], maxRecordBytes: 64, using: splitter).problems.map(\.reason) == [.invalidUTF8])
    }
}
