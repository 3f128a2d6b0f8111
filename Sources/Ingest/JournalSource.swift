import IWDetectCore
import Synchronization

/// The pipeline's side of the ``InputJournal``: its records in order, as line batches whose
/// checkpoint is the sequence number of the last record handed out, committed with the state
/// those records produced. After a restart the pipeline resumes after the last committed record:
/// each acknowledged request is processed exactly once.
///
/// Records the HTTP input found bad (not JSON, not an object, too long) come as the batch's
/// ``LineBatch/rejects``; the batch's ``LineBatch/origins`` give the rejects the decoder finds
/// later (a missing timestamp) their request's remote address and id.
public final class JournalSource: LineSource {
    public let name = "http"
    /// The checkpoint key of the journal position.
    public static let checkpointKey = "http-journal"
    public let journal: InputJournal
    let reader: Database
    let maxLineBytes: Int
    let batchRecords: Int
    /// The last record handed out.
    public private(set) var position: Int64
    /// Set by ``finish()``: end once the journal is closed and read to its end.
    let finishing = Atomic<Bool>(false)
    /// The longest a record waits for more to share its batch (and its commit).
    public var gatherTime = 0.02
    /// What ``init(journal:db:maxLineBytes:batchRecords:)`` found when it reconciled the saved
    /// position with the journal, for the log.
    public private(set) var note: String?
    var consumedSinceCheckpoint: Int64 = 0
    /// Set on the pipeline's thread after commits; the reading thread checkpoints the WAL.
    let checkpointDue = Atomic<Bool>(false)

    /// Opens a reader of `journal`, resuming after the position committed in `db`.
    public init(journal: InputJournal, db: Database, maxLineBytes: Int, batchRecords: Int = 1000) throws {
        self.journal = journal
        self.maxLineBytes = maxLineBytes
        self.batchRecords = batchRecords
        reader = try Database(path: journal.path)
        var saved: Int64 = 0
        if let c = try IngestStore.checkpoint(db, source: JournalSource.checkpointKey) {
            if c.fingerprint == journal.id { saved = c.offset } else {
                note = "the input journal \(journal.path) is not the one the state database read before: reading it from its start"
            }
        }
        let reconciled = try journal.reconcile(position: saved)
        position = reconciled.position
        note = note ?? reconciled.note
    }

    public func next() throws -> (LineBatch, LineReader.Status) {
        while true {
            if checkpointDue.exchange(false, ordering: .relaxed) { try? reader.execute("PRAGMA wal_checkpoint(PASSIVE)") }
            let finishing = self.finishing.load(ordering: .acquiring)
            if Interruption.signal != 0 && !finishing {
                return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .interrupted)
            }
            if journal.waitForRecords(after: position, timeout: 0.25) {
                // Let a few more arrive, so that a steady stream of small requests is committed
                // in batches, not one commit per request.
                if !finishing { _ = journal.waitForRecords(after: position + Int64(batchRecords) - 1, timeout: gatherTime) }
                let batch = try read()
                return (batch, .data(caughtUp: batch.caughtUp))
            }
            if journal.drained && journal.lastSequence == position {
                return (LineBatch(source: name, checkpoint: checkpoint, caughtUp: true), .endOfInput)
            }
            if Interruption.reloadPending {
                return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .data(caughtUp: true))
            }
        }
    }

    /// The pipeline committed through the given checkpoint: the journal may drop those records.
    public func committed(_ checkpoint: SourceCheckpoint) {
        guard checkpoint.key == JournalSource.checkpointKey else { return }
        journal.consumed(through: checkpoint.offset)
        // The journal's WAL is checkpointed here, off the request path (its writer does not).
        consumedSinceCheckpoint += 1
        if consumedSinceCheckpoint >= 20 {
            consumedSinceCheckpoint = 0
            checkpointDue.store(true, ordering: .relaxed)
        }
    }

    var checkpoint: SourceCheckpoint {
        SourceCheckpoint(key: JournalSource.checkpointKey, offset: position, line: position + 1, fingerprint: journal.id)
    }

    func read() throws -> LineBatch {
        var batch = LineBatch(source: name, checkpoint: nil, caughtUp: false)
        let rows = try reader.query("""
            SELECT r.seq, r.position, r.body, r.reason, r.detail, q.remote, q.request_id
            FROM journal_records r JOIN journal_requests q ON q.id = r.request
            WHERE r.seq > ? ORDER BY r.seq LIMIT ?
            """, [.int(position), .int(Int64(batchRecords))]) { s in
            (seq: s.int(0), position: s.int(1), body: s.blob(2), reason: s.optionalText(3), detail: s.optionalText(4),
             remote: s.text(5), requestID: s.optionalText(6))
        }
        if rows.isEmpty {
            // Nothing past the position although the journal has records after it: they were
            // deleted (see ``InputJournal/reconcile(position:)``); go on after them.
            position = max(position, journal.lastSequence)
        }
        for row in rows {
            batch.origins[row.seq] = LineOrigin(remote: row.remote, requestID: row.requestID)
            if let reason = row.reason {
                var r = Reject(source: name, line: row.seq, offset: row.position, reason: RejectReason(rawValue: reason) ?? .invalidJSON,
                               detail: row.detail ?? "", bytes: row.body)
                r.remote = row.remote
                r.requestID = row.requestID
                batch.rejects.append(r)
            } else if row.body.count > maxLineBytes {
                batch.lines.append(.tooLong(prefix: Array(row.body.prefix(Reject.prefixBytes)), number: row.seq, offset: row.position,
                                            length: Int64(row.body.count)))
            } else {
                batch.lines.append(.text(start: batch.bytes.count, count: row.body.count, number: row.seq, offset: row.position))
                batch.bytes += row.body
            }
            position = row.seq
        }
        if !batch.bytes.isEmpty { batch.bytes += [UInt8](repeating: 0x20, count: LineReader.padding) }
        batch.checkpoint = checkpoint
        batch.caughtUp = journal.lastSequence == position
        return batch
    }

    /// Ends with the journal: the next reads drain it, then report the end of input (for a
    /// graceful shutdown, after ``InputJournal/close()``).
    public func finish() { finishing.store(true, ordering: .releasing) }
}
