import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Synchronization
import Testing

/// A sink that fails as told, recording what it was given.
final class ScriptedSink: AlertSink, @unchecked Sendable {
    // @unchecked: `script` and `calls` are guarded by `lock`.
    let name = "scripted"
    var kind: String { "test" }
    let batchSize: Int
    private let lock = Mutex<(script: [SinkError?], calls: [[String]])>(([], []))

    init(batchSize: Int = 1, script: [SinkError?]) {
        self.batchSize = batchSize
        lock.withLock { $0.script = script }
    }

    var calls: [[String]] { lock.withLock { $0.calls } }

    func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        let outcome: SinkError? = lock.withLock { state in
            state.calls.append(alerts.map(\.id))
            return state.script.isEmpty ? nil : state.script.removeFirst()
        }
        if let outcome { throw outcome }
    }
}

@Suite struct DeliveryPolicyTests {
    func database(alerts: Int) throws -> (TempDir, Database, [AlertRecord]) {
        let dir = TempDir()
        let db = try Database(path: dir.file("s.db"))
        try Migrator.migrate(db, AlertStore.migrations)
        var made: [AlertRecord] = []
        for i in 0..<alerts {
            let a = SampleAlerts.alert(user: "u\(i)", event: "e\(i)")
            try AlertStore.insert(a, channels: ["scripted"], into: db)
            made.append(a)
        }
        return (dir, db, made)
    }

    static let refused = SinkError("HTTP 500", isRetryable: true, status: 500)
    static let unreachable = SinkError("connection refused", isRetryable: true, unreachable: true)

    @Test func batchesAreAsLargeAsTheSinkTakes() async throws {
        let (_, db, alerts) = try database(alerts: 7)
        let sink = ScriptedSink(batchSize: 3, script: [])
        let d = SinkDelivery(sink: sink, policy: DeliveryPolicy())
        while try await d.deliverBatch(db, now: 1000) != .idle {}
        #expect(sink.calls.map(\.count) == [3, 3, 1])
        #expect(sink.calls.flatMap { $0 } == alerts.map(\.id), "oldest first, each once")
    }

    @Test func answeredFailuresUseUpAttemptsUnreachableOnesOnlyAge() async throws {
        var policy = DeliveryPolicy()
        policy.maxAttempts = 3
        policy.baseBackoff = 0.001
        policy.maxBackoff = 0.001
        policy.maxAgeHours = 1
        // Refused three times: dead.
        let (_, db, _) = try database(alerts: 1)
        let d = SinkDelivery(sink: ScriptedSink(script: Array(repeating: Self.refused, count: 10)), policy: policy)
        var now = 1000.0
        for _ in 0..<3 {
            _ = try await d.deliverBatch(db, now: now)
            now += 1
        }
        #expect(try db.query("SELECT status, attempts FROM outbox") { "\($0.text(0)) \($0.int(1))" } == ["dead 3"])
        // Unreachable twenty times within the hour: still pending; past the hour: dead.
        let (_, db2, _) = try database(alerts: 1)
        let u = SinkDelivery(sink: ScriptedSink(script: Array(repeating: Self.unreachable, count: 30)), policy: policy)
        now = 1000
        for _ in 0..<20 {
            _ = try await u.deliverBatch(db2, now: now)
            now += 60
        }
        #expect(try db2.query("SELECT status FROM outbox") { $0.text(0) } == ["pending"])
        now = 1000 + 3601
        _ = try await u.deliverBatch(db2, now: now)
        #expect(try db2.query("SELECT status FROM outbox") { $0.text(0) } == ["dead"])
    }

    @Test func aRejectionThatCannotBeRetriedDeadLettersAtOnceAndRetryAfterIsHonoured() async throws {
        let (_, db, _) = try database(alerts: 2)
        let sink = ScriptedSink(script: [SinkError("HTTP 400", isRetryable: false, status: 400), SinkError("HTTP 429", isRetryable: true, retryAfter: 30, status: 429)])
        let d = SinkDelivery(sink: sink, policy: DeliveryPolicy())
        _ = try await d.deliverBatch(db, now: 1000)
        _ = try await d.deliverBatch(db, now: 1000)
        let rows = try db.query("SELECT status, next_attempt_at, last_error FROM outbox o JOIN alerts a ON a.id = o.alert_id ORDER BY a.seq") {
            "\($0.text(0)) \($0.int(1)) \($0.text(2))"
        }
        #expect(rows == ["dead 0 HTTP 400", "pending 1030000 HTTP 429"])
        #expect(try await d.deliverBatch(db, now: 1029) == .idle, "not before Retry-After")
        #expect(try await d.deliverBatch(db, now: 1030) == .delivered(1))
    }

    @Test func theCircuitOpensAfterFailuresInARowThenProbes() {
        var policy = DeliveryPolicy()
        policy.breakerFailures = 3
        policy.breakerCooldown = 10
        policy.maxBackoff = 35
        var b = CircuitBreaker()
        var ok = b.allows(now: 0)
        #expect(ok)
        var opened = b.failed(now: 0, policy: policy)
        #expect(!opened)
        opened = b.failed(now: 1, policy: policy)
        #expect(!opened)
        opened = b.failed(now: 2, policy: policy)
        #expect(opened, "the third failure in a row opens it")
        ok = b.allows(now: 11.9)
        #expect(!ok && b.state == .open)
        ok = b.allows(now: 12)
        #expect(ok && b.state == .halfOpen, "one probe after the cool-down")
        opened = b.failed(now: 12, policy: policy)
        #expect(opened && b.openUntil == 32, "a failed probe opens it again, twice as long")
        ok = b.allows(now: 32)
        opened = b.failed(now: 32, policy: policy)
        #expect(ok && opened && b.openUntil == 67, "capped at max_backoff")
        ok = b.allows(now: 67)
        #expect(ok)
        b.succeeded()
        #expect(b.state == .closed && b.consecutiveFailures == 0)
    }
}
