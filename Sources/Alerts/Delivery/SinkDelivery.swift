import IWDetectCore

/// Delivers one sink's due outbox rows, a batch at a time: the retry stage (alertmanager's
/// `RetryStage`) between the outbox and a sink.
///
/// A batch is as large as the sink takes per request. Success marks the rows delivered; a
/// retryable failure reschedules them with exponential backoff (or the receiver's `Retry-After`);
/// a failure that cannot be retried, the last allowed attempt that the receiver answered, or a
/// delivery older than `max_age` dead-letters them. (An unreachable receiver does not use up
/// attempts: while it is down, only `max_age` ends a delivery.)
public struct SinkDelivery: Sendable {
    public let sink: any AlertSink
    public let policy: DeliveryPolicy

    public init(sink: any AlertSink, policy: DeliveryPolicy) {
        self.sink = sink
        self.policy = policy
    }

    /// What one batch did.
    public enum Outcome: Sendable, Equatable {
        /// Nothing was due.
        case idle
        case delivered(Int)
        /// The request failed; the rows are retried later (`retryable`) or were dead-lettered.
        case failed(Int, dead: Int, message: String)
    }

    /// Delivers the next due batch of the sink at wall-clock second `now`.
    public func deliverBatch(_ db: Database, now: Double) async throws -> Outcome {
        let rows = try Outbox.due(db, sink: sink.name, now: now, limit: max(1, sink.batchSize))
        guard !rows.isEmpty else { return .idle }
        do throws(SinkError) {
            try await sink.deliver(rows.map(\.alert))
        } catch {
            var retry: [Outbox.Row] = [], dead: [Outbox.Row] = []
            for r in rows {
                let tries = r.attempts + 1
                let age = now - Double(r.firstAttemptAt ?? Outbox.millis(now)) / 1000
                let outOfAttempts = tries >= policy.maxAttempts && !error.isUnreachable
                if !error.isRetryable || outOfAttempts || age >= policy.maxAgeHours * 3600 { dead.append(r) } else { retry.append(r) }
            }
            let wait = error.retryAfter.map { min($0, policy.maxBackoff) } ?? policy.backoff(attempt: (retry.first?.attempts ?? 0) + 1)
            // One short transaction for the batch's bookkeeping (never across the request).
            try db.atomically {
                try Outbox.failed(retry, error: error.message, retryAt: now + wait, now: now, in: db)
                try Outbox.failed(dead, error: error.message, retryAt: nil, now: now, in: db)
            }
            return .failed(rows.count, dead: dead.count, message: error.message)
        }
        try db.atomically { try Outbox.delivered(rows, now: now, in: db) }
        return .delivered(rows.count)
    }
}

/// Writes the local sinks (stdout, files) inline, right after a batch commits.
public struct Deliverer: Sendable {
    public let sinks: [any AlertSink]
    public let policy: DeliveryPolicy

    public init(sinks: [any AlertSink], policy: DeliveryPolicy = DeliveryPolicy()) {
        self.sinks = sinks
        self.policy = policy
    }

    /// What a local pass did.
    public struct Pass: Sendable, Equatable {
        public var delivered = 0
        public var failed = 0
        public var dead = 0
        public var errors: [String] = []
        public init() {}
    }

    /// Writes a committed batch's alerts to the local sinks they are routed to, from memory (no
    /// read-back), and marks those outbox rows delivered in one transaction. A sink whose write
    /// fails is left to ``deliverLocal(_:now:)`` (its rows stay pending), which the engine runs at
    /// the next commit.
    public func deliverLocal(_ alerts: [(AlertRecord, channels: [String])], _ db: Database, now: Double) async throws -> Pass {
        var pass = Pass()
        var written: [(AlertRecord, String)] = []
        for sink in sinks where sink.isLocal {
            let mine = alerts.filter { $0.channels.contains(sink.name) }.map(\.0)
            guard !mine.isEmpty else { continue }
            do throws(SinkError) {
                for start in stride(from: 0, to: mine.count, by: max(1, sink.batchSize)) {
                    let batch = Array(mine[start..<min(start + max(1, sink.batchSize), mine.count)])
                    try await sink.deliver(batch)
                    written += batch.map { ($0, sink.name) }
                }
            } catch {
                pass.failed += 1
                pass.errors.append(error.message)
            }
        }
        guard !written.isEmpty else { return pass }
        try db.transaction { try Outbox.delivered(written.map { Outbox.Row(alert: $0.0, sink: $0.1, attempts: 0, firstAttemptAt: nil) }, now: now, in: db) }
        pass.delivered = written.count
        return pass
    }

    /// Delivers every due row of the local sinks, batch after batch, until none is due: every
    /// alert committed so far is written before this returns, whatever the count. A batch whose
    /// write failed is rescheduled (or dead-lettered) and not retried in this call, so it always
    /// ends. Each batch's outbox updates are one transaction.
    public func deliverLocal(_ db: Database, now: Double) async throws -> Pass {
        var pass = Pass()
        for sink in sinks where sink.isLocal {
            let delivery = SinkDelivery(sink: sink, policy: policy)
            while true {
                try db.execute("BEGIN IMMEDIATE")
                let outcome: SinkDelivery.Outcome
                do {
                    outcome = try await delivery.deliverBatch(db, now: now)
                    try db.execute("COMMIT")
                } catch {
                    try? db.execute("ROLLBACK")
                    throw error
                }
                guard case .delivered(let n) = outcome else {
                    if case .failed(let n, let dead, let message) = outcome {
                        pass.failed += n - dead
                        pass.dead += dead
                        pass.errors.append(message)
                    }
                    break
                }
                pass.delivered += n
            }
        }
        return pass
    }
}
