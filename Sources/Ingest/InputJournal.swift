import Foundation
import IWDetectCore

/// The HTTP input's journal: every accepted request's records, appended to a SQLite database of
/// their own before the request is answered, and read in order by the pipeline
/// (``JournalSource``), which commits how far it has read with the state those records produced.
///
/// A request is acknowledged only once its transaction is committed: with `sync: normal` (WAL,
/// the default) a commit survives the process being killed (kill -9, a crash), and with `full`
/// it is also fsynced, so it survives an operating-system crash or power loss. Appends are group
/// committed: the first request to find no commit in flight commits, on its own thread, every
/// request queued by then, and again until none is left; requests that arrive meanwhile share
/// that next commit. The journal is a separate file from the state database, so the HTTP input
/// never waits for a batch commit of the pipeline.
///
/// Consumed records are deleted by the writer once the pipeline has committed past them. The
/// journal is bounded (``Options/maxRecords``, ``Options/maxBytes``): a request that would take it past its bound is
/// refused (``AppendError/full(depth:bound:)``, HTTP 503), never dropped.
public final class InputJournal: @unchecked Sendable {
    public enum Sync: String, Sendable, CaseIterable {
        case normal, full
    }

    public struct Options: Sendable {
        public var path: String
        /// Records appended and not yet committed by the pipeline, at most.
        public var maxRecords = 100_000
        /// Bytes of those records, at most (the journal's disk use, give or take SQLite's pages).
        /// Counted per group commit: a group's bytes come back once all of it is consumed.
        public var maxBytes = 1 << 30
        public var sync = Sync.normal
        /// Seconds a processed record is kept after it was received (0: deleted once processed),
        /// for the forensic queries. Kept records do not count against the bounds.
        public var keep: Double = 0
        /// Bytes of processed records kept at most: past it the oldest go first, however recent.
        public var keepBytes = 10 << 30
        public init(path: String) { self.path = path }
    }

    /// One request's records, as ``HTTPBody`` split them.
    public struct Request: Sendable {
        public var remote: String
        public var requestID: String?
        public var records: [HTTPBody.Record]
        var bytes: Int { records.reduce(0) { $0 + $1.bytes.count } }
        public init(remote: String, requestID: String?, records: [HTTPBody.Record]) {
            self.remote = remote
            self.requestID = requestID
            self.records = records
        }
    }

    public enum AppendError: Error, CustomStringConvertible {
        /// Taking the request would put more than `bound` records in the journal.
        case full(depth: Int, bound: Int)
        /// Taking the request would put more than `bound` bytes of records in the journal.
        case fullBytes(bytes: Int, bound: Int)
        /// The journal stopped taking requests (shutting down).
        case closed
        case failed(String)

        public var description: String {
            switch self {
            case .full(let depth, let bound): return "the input journal holds \(depth) unprocessed records (bound \(bound)); retry later"
            case .fullBytes(let bytes, let bound): return "the input journal holds \(bytes) bytes of unprocessed records (bound \(bound)); retry later"
            case .closed: return "iw-detect is shutting down; retry later"
            case .failed(let message): return "the input journal could not be written: \(message)"
            }
        }
    }

    /// Hears the duration of each group commit and how many requests it took (for metrics);
    /// called on the committing thread. Set before the first append.
    nonisolated(unsafe) public var onCommit: ((Duration, Int) -> Void)?
    public let path: String
    /// The journal's identity, kept with the pipeline's checkpoint: a journal deleted and made
    /// anew (numbering from 1 again) is read from its start, not from the old position.
    public let id: String
    public let maxRecords: Int
    public let maxBytes: Int
    /// Seconds processed records are kept (``Options/keep``), and their bytes at most.
    let keep: Double
    let keepBytes: Int
    /// Bytes of records appended or queued and not yet consumed; and per committed group, its
    /// last sequence number and bytes, so that consuming gives them back.
    var pendingBytes = 0
    var groups: [(lastSeq: Int64, bytes: Int)] = []
    let db: Database
    let cond = NSCondition()
    // Guarded by `cond`.
    var queue: [(Request, CheckedContinuation<Int64, any Error>?)] = []
    var queued = 0
    var appended: Int64 = 0
    var consumed: Int64 = 0
    var deletedThrough: Int64 = 0
    var closed = false
    /// A thread is using the connection (committing requests, or deleting).
    var committing = false
    var stopped = false
    var writerDone = false

    public init(options: Options) throws {
        path = options.path
        maxRecords = options.maxRecords
        maxBytes = options.maxBytes
        keep = options.keep
        keepBytes = options.keepBytes
        db = try Database(path: options.path)
        if options.sync == .full { try db.execute("PRAGMA synchronous=FULL") }
        // No checkpoint inside an append's commit (it would put its fsyncs on the request path):
        // the reader checkpoints as it consumes (``checkpoint(_:)``).
        try db.execute("PRAGMA wal_autocheckpoint=0")
        try db.execute("""
            CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS journal_requests (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                received_at REAL NOT NULL, remote TEXT NOT NULL, request_id TEXT, last_seq INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS journal_records (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                request INTEGER NOT NULL, position INTEGER NOT NULL,
                body BLOB NOT NULL, reason TEXT, detail TEXT
            );
            """)
        if let existing = try db.query("SELECT value FROM journal_meta WHERE key = 'id'", []) { $0.text(0) }.first {
            id = existing
        } else {
            id = "journal:" + UUID().uuidString.lowercased()
            try db.run("INSERT INTO journal_meta(key, value) VALUES ('id', ?)", [.text(id)])
        }
        appended = try db.query("SELECT seq FROM sqlite_sequence WHERE name = 'journal_records'", []) { $0.int(0) }.first ?? 0
        let thread = Thread { [unowned self] in self.writeLoop() }
        thread.name = "iw-detect journal writer"
        thread.start()
    }

    // MARK: - The HTTP side

    /// Appends a request's records and returns the sequence number of its last record once the
    /// commit is done.
    ///
    /// Group commit, led by the first request to find no commit in flight: it commits on its own
    /// thread, without suspending, then whatever queued up meanwhile, and answers those. A request
    /// that finds a commit in flight waits for the leader to take it into the next one. No thread
    /// is woken on the request path.
    public func append(_ request: Request) async throws -> Int64 {
        if let seq = try lead(request) { return seq }
        return try await withCheckedThrowingContinuation { continuation in
            cond.lock()
            queue.append((request, continuation))
            guard !committing else {
                cond.unlock()
                return
            }
            committing = true
            cond.unlock()
            drainQueue()
        }
    }

    /// Admits the request and, when no commit is in flight, commits it here and returns its
    /// sequence number; nil when it must wait for the commit in flight.
    func lead(_ request: Request) throws -> Int64? {
        cond.lock()
        if let refusal = admit(request) {
            cond.unlock()
            throw refusal
        }
        guard !committing && queue.isEmpty else {
            cond.unlock()
            return nil
        }
        committing = true
        cond.unlock()
        let result = commit([(request, nil)])[0]
        drainQueue()
        return try result.get()
    }

    /// Counts the request in (queued records and bytes), or says why it is refused. Under `cond`.
    func admit(_ request: Request) -> AppendError? {
        if closed { return .closed }
        let depth = Int(appended - consumed) + queued
        if depth + request.records.count > maxRecords { return .full(depth: depth, bound: maxRecords) }
        let bytes = request.bytes
        if pendingBytes + bytes > maxBytes { return .fullBytes(bytes: pendingBytes, bound: maxBytes) }
        queued += request.records.count
        pendingBytes += bytes
        return nil
    }

    /// Commits queued requests until none is left (the caller set `committing`).
    func drainQueue() {
        while true {
            cond.lock()
            if queue.isEmpty {
                committing = false
                cond.broadcast()
                cond.unlock()
                return
            }
            let work = queue
            queue.removeAll()
            cond.unlock()
            commit(work)
        }
    }

    /// Where a reader that last committed `position` should resume, made consistent with the
    /// journal: a position past the journal's last record (the journal was replaced by an older
    /// copy) moves the numbering past it, so new records are never taken for read ones; a
    /// position before the first record still kept (the state database was replaced) moves to
    /// just before it. Call before the HTTP input starts.
    public func reconcile(position: Int64) throws -> (position: Int64, note: String?) {
        cond.lock()
        defer { cond.unlock() }
        if position > appended {
            try db.run("INSERT OR REPLACE INTO sqlite_sequence(name, seq) VALUES ('journal_records', ?)", [.int(position)])
            let note = "the input journal ends at record \(appended) but the state database has read up to \(position): numbering continues after \(position)"
            appended = position
            consumed = position
            return (position, note)
        }
        let first = try db.query("SELECT min(seq) FROM journal_records", []) { $0.isNull(0) ? nil : $0.int(0) }.first ?? nil
        let kept = first.map { $0 - 1 } ?? appended
        // Records kept for the forensic queries were processed already (by another state
        // database): read again they would raise their alerts twice.
        let processed = min(appended, try db.query("SELECT value FROM journal_meta WHERE key = 'processed'", []) { Int64($0.text(0)) ?? 0 }.first ?? 0)
        if position < kept && kept >= processed {
            consumed = kept
            try countPending(after: kept)
            return (kept, "the state database has read the input journal up to record \(position), but records up to \(kept) were deleted as processed: resuming after \(kept)")
        }
        if position < processed {
            consumed = processed
            try countPending(after: processed)
            return (processed, "the state database has read the input journal up to record \(position), but records up to \(processed) were processed already (they are kept for the forensic queries, not read again): resuming after \(processed)")
        }
        consumed = position
        try countPending(after: position)
        return (position, nil)
    }

    /// The bytes of the records kept after `position`, as one group (at start).
    func countPending(after position: Int64) throws {
        let bytes = try db.query("SELECT coalesce(sum(length(body)), 0) FROM journal_records WHERE seq > ?", [.int(position)]) { Int($0.int(0)) }.first ?? 0
        groups = bytes > 0 ? [(appended, bytes)] : []
        pendingBytes = bytes
    }

    /// Records appended (or queued) and not yet committed by the pipeline.
    public var depth: Int {
        cond.lock()
        defer { cond.unlock() }
        return Int(appended - consumed) + queued
    }

    /// Whether the journal is below its bound (what `/readyz` reports).
    public var hasRoom: Bool { depth < maxRecords }

    /// The sequence number of the last committed record.
    public var lastSequence: Int64 {
        cond.lock()
        defer { cond.unlock() }
        return appended
    }

    /// Stops taking requests: later appends fail with ``AppendError/closed``; queued ones are
    /// still committed.
    public func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }

    // MARK: - The pipeline side

    /// The pipeline committed everything through `seq`: those records may be deleted.
    public func consumed(through seq: Int64) {
        cond.lock()
        if seq > consumed { consumed = seq }
        var done = 0
        while done < groups.count && groups[done].lastSeq <= seq {
            pendingBytes -= groups[done].bytes
            done += 1
        }
        if done > 0 { groups.removeFirst(done) }
        cond.broadcast()
        cond.unlock()
    }

    /// Waits until a record after `seq` is committed, the journal is closed and fully written, or
    /// `timeout` passes. True when there is a record to read.
    func waitForRecords(after seq: Int64, timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while appended <= seq {
            if closed && queue.isEmpty && queued == 0 { return false }
            if !cond.wait(until: deadline) { return appended > seq }
        }
        return true
    }

    /// Closed, and every queued request is committed (or failed).
    var drained: Bool {
        cond.lock()
        defer { cond.unlock() }
        return closed && queue.isEmpty && queued == 0
    }

    /// Ends the writer thread (after ``close()``, once drained).
    public func stop() {
        cond.lock()
        closed = true
        stopped = true
        cond.broadcast()
        while !writerDone { cond.wait() }
        cond.unlock()
    }

    // MARK: - The writer

    /// The writer thread: deletes what the pipeline has committed past, in transactions of
    /// their own, while no request is being committed.
    func writeLoop() {
        var deleteFailures = 0
        var retryDeleteAt = Date.distantPast
        while true {
            cond.lock()
            while !stopped && (committing || consumed - deletedThrough < 1024 || Date() < retryDeleteAt) {
                if !committing && consumed - deletedThrough >= 1024 { _ = cond.wait(until: retryDeleteAt) } else { cond.wait() }
            }
            if stopped {
                while committing { cond.wait() }
                writerDone = true
                cond.broadcast()
                cond.unlock()
                return
            }
            committing = true
            let deleteThrough = consumed
            let pending = pendingBytes
            cond.unlock()
            do {
                try db.transaction {
                    // How far the pipeline has processed, for a state database that starts over
                    // (``reconcile(position:)``): kept records are not read again.
                    try db.run("INSERT INTO journal_meta(key, value) VALUES ('processed', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               [.text(String(deleteThrough))])
                    if keep > 0 {
                        // Those received longer ago than `keep`; then, while the kept ones take
                        // more than `keepBytes` of the file, the oldest of them.
                        var through = try receivedBefore(Date().timeIntervalSince1970 - keep, consumed: deleteThrough)
                        try delete(through: through)
                        // A record takes more of the file than its body: deleting three quarters
                        // of the excess in bodies at a time comes close without going far past.
                        var excess = try usedBytes() - pending - keepBytes
                        while excess > 0 {
                            let next = try oldestBeyond(bytes: max(1, excess * 3 / 4), after: through, consumed: deleteThrough)
                            guard next > through else { break }
                            try delete(through: next)
                            through = next
                            excess = try usedBytes() - pending - keepBytes
                        }
                    } else {
                        try delete(through: deleteThrough)
                    }
                }
                deleteFailures = 0
                cond.lock()
                deletedThrough = max(deletedThrough, deleteThrough)
                cond.unlock()
            } catch {
                deleteFailures += 1
                retryDeleteAt = Date(timeIntervalSinceNow: min(60, Double(deleteFailures)))
            }
            // Requests that queued while the deletion ran are committed now.
            drainQueue()
        }
    }

    /// The bytes of the journal's pages in use (what its file would be without free pages): the
    /// kept records' share of it is what ``keepBytes`` bounds, read without scanning them.
    func usedBytes() throws -> Int {
        let pages = try db.query("PRAGMA page_count") { $0.int(0) }.first ?? 0
        let free = try db.query("PRAGMA freelist_count") { $0.int(0) }.first ?? 0
        let size = try db.query("PRAGMA page_size") { $0.int(0) }.first ?? 4096
        return Int((pages - free) * size)
    }

    /// Deletes the records through `through` and the requests they end (in arrival order, so
    /// the ones done are a prefix by id, found without scanning the ones kept).
    func delete(through: Int64) throws {
        guard through > 0 else { return }
        try db.run("DELETE FROM journal_records WHERE seq <= ?", [.int(through)])
        let lastDone = try walkRequests { _, lastSeq in lastSeq <= through }
        try db.run("DELETE FROM journal_requests WHERE id <= ?", [.int(lastDone)])
    }

    /// Walks the requests in arrival order, a page at a time, while `take` accepts them (when
    /// received, last record); returns the id of the last one taken (0 for none).
    func walkRequests(_ take: (_ receivedAt: Double, _ lastSeq: Int64) -> Bool) throws -> Int64 {
        var last: Int64 = 0
        while true {
            let page = try db.query("SELECT id, received_at, last_seq FROM journal_requests WHERE id > ? ORDER BY id LIMIT 4096", [.int(last)]) {
                ($0.int(0), $0.double(1), $0.int(2))
            }
            for (id, receivedAt, lastSeq) in page {
                guard take(receivedAt, lastSeq) else { return last }
                last = id
            }
            if page.count < 4096 { return last }
        }
    }

    /// The last record of the oldest requests received before `before` and processed (a prefix
    /// in arrival order: the walk stops at the first one kept); 0 for none.
    func receivedBefore(_ before: Double, consumed: Int64) throws -> Int64 {
        var through: Int64 = 0
        _ = try walkRequests { receivedAt, lastSeq in
            guard receivedAt < before, lastSeq <= consumed else { return false }
            through = max(through, lastSeq)
            return true
        }
        return through
    }

    /// The last of the oldest processed records after `after` whose bodies add up to `bytes`
    /// (records take a little more of the file than their bodies: this frees at least that); 0
    /// for none.
    func oldestBeyond(bytes: Int, after: Int64, consumed: Int64) throws -> Int64 {
        var excess = bytes, through = after
        while excess > 0 && through < consumed {
            let page = try db.query("SELECT seq, length(body) FROM journal_records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 4096", [.int(through), .int(consumed)]) {
                ($0.int(0), Int($0.int(1)))
            }
            if page.isEmpty { break }
            for (seq, n) in page where excess > 0 {
                through = seq
                excess -= n
            }
        }
        return through == after ? 0 : through
    }

    /// Commits one group of requests; answers those that wait (a continuation) and returns
    /// every outcome.
    @discardableResult
    func commit(_ work: [(Request, CheckedContinuation<Int64, any Error>?)]) -> [Result<Int64, any Error>] {
        var lastSeqs: [Int64] = []
        let now = Date().timeIntervalSince1970
        let began = ContinuousClock.now
        let outcome: Result<Int64, any Error> = Result {
            try db.transaction {
                for (request, _) in work { lastSeqs.append(try insert(request, receivedAt: now)) }
                return lastSeqs.last ?? appended
            }
        }
        onCommit?(ContinuousClock.now - began, work.count)
        let records = work.reduce(0) { $0 + $1.0.records.count }
        let bytes = work.reduce(0) { $0 + $1.0.bytes }
        cond.lock()
        queued -= records
        switch outcome {
        case .success(let last):
            appended = max(appended, last)
            if last > consumed { groups.append((last, bytes)) } else { pendingBytes -= bytes }
        case .failure:
            pendingBytes -= bytes
        }
        cond.broadcast()
        cond.unlock()
        let results: [Result<Int64, any Error>] = work.indices.map { i in
            switch outcome {
            case .success: return .success(lastSeqs[i])
            case .failure(let error): return .failure(AppendError.failed("\(error)"))
            }
        }
        for (i, (_, continuation)) in work.enumerated() { continuation?.resume(with: results[i]) }
        return results
    }

    /// Inserts one request; returns the sequence number of its last record.
    func insert(_ request: Request, receivedAt: Double) throws -> Int64 {
        try db.run("INSERT INTO journal_requests(received_at, remote, request_id, last_seq) VALUES (?, ?, ?, 0)",
                   [.double(receivedAt), .text(request.remote), request.requestID.map { .text($0) } ?? .null])
        let requestRow = db.lastInsertRowID
        var last: Int64 = 0
        for (position, record) in request.records.enumerated() {
            try db.run("INSERT INTO journal_records(request, position, body, reason, detail) VALUES (?, ?, ?, ?, ?)",
                       [.int(requestRow), .int(Int64(position)), .blob(record.bytes),
                        record.problem.map { .text($0.reason.rawValue) } ?? .null, record.problem.map { .text($0.detail) } ?? .null])
            last = db.lastInsertRowID
        }
        try db.run("UPDATE journal_requests SET last_seq = ? WHERE id = ?", [.int(last), .int(requestRow)])
        return last
    }
}
