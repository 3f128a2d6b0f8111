import Alerts
import Baseline
import Exports
import Foundation
import IWDetectCore
import Ingest
import Rules

/// The commit stage: one transaction per batch holding everything the batch changed (rejects,
/// alerts and their outbox rows, events queued for export, baseline buckets and snapshots, window and dedup state) and every
/// source's checkpoint, so a crash loses nothing and repeats nothing (DESIGN §7).
public struct StateCommitter {
    let db: Database

    public init(db: Database) { self.db = db }

    /// Commits a batch. Alerts already in the database (the same input raised again) are not
    /// queued twice.
    /// - Returns: which of `alerts` were queued (false: it was already there), and whether
    ///   retention pruned (the space is freed after the commit).
    /// - Throws: ``DatabaseError``; then nothing of the batch is committed.
    @discardableResult
    public func commit(rejects: [Reject], alerts: [(AlertRecord, channels: [String])], processor: inout Processor<BaselineModel>, rollups: inout Rollups?, forensics: inout Forensics,
                       checkpoints: some Sequence<SourceCheckpoint>,
                       exports: (chunks: [ExportStore.Chunk], skipped: [ExportStore.Skipped])? = nil) throws -> (queued: [Bool], pruned: Bool) {
        processor.sweep()
        return try db.transaction {
            try IngestStore.insert(rejects, into: db)
            let queued = try alerts.map { try AlertStore.insert($0.0, channels: $0.channels, into: db) }
            try BaselineStore.save(&processor.baseline, to: db)
            try RuleStateStore.save(&processor.rules, to: db)
            try AlertStore.save(&processor.suppressor, to: db)
            try rollups?.save()
            let pruned = try forensics.save()
            if let exports { try ExportStore.insert(exports.chunks, skipped: exports.skipped, now: Date().timeIntervalSince1970, into: db) }
            for c in checkpoints { try IngestStore.save(c, into: db) }
            return (queued, pruned)
        }
    }
}
