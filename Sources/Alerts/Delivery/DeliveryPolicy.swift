/// How the outbox retries: backoff, dead-lettering and the circuit breaker.
public struct DeliveryPolicy: Sendable {
    /// Attempts the receiver answered (and refused) before a delivery is dead-lettered.
    public var maxAttempts: Int64 = 8
    /// Hours after its first attempt a delivery is dead-lettered, however few attempts it had,
    /// even while the receiver is unreachable.
    public var maxAgeHours: Double = 24
    /// The first retry waits this long; each further one twice as long, up to `maxBackoff`.
    public var baseBackoff: Double = 1
    public var maxBackoff: Double = 300
    /// Consecutive failed requests that open a sink's circuit: it then waits `breakerCooldown`
    /// (doubling while it keeps failing, up to `maxBackoff`) and probes with one request.
    public var breakerFailures = 5
    public var breakerCooldown: Double = 5
    public init() {}

    /// Seconds to wait before attempt `attempt + 1`: exponential with ±20 % jitter.
    public func backoff(attempt: Int64) -> Double {
        let exp = min(baseBackoff * Double(1 << min(max(attempt - 1, 0), 30)), maxBackoff)
        return exp * Double.random(in: 0.8...1.2)
    }
}

/// A sink's circuit: closed while requests succeed; open after ``DeliveryPolicy/breakerFailures``
/// failures in a row, so a dead receiver is not hammered; half-open after the cool-down, when one
/// request probes it.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: String, Sendable { case closed, open, halfOpen = "half-open" }

    public private(set) var state = State.closed
    public private(set) var consecutiveFailures = 0
    /// Wall-clock seconds until which an open circuit sends nothing.
    public private(set) var openUntil: Double = 0
    private var cooldown: Double = 0

    public init() {}

    /// Whether a request may be sent at `now` (an open circuit turns half-open when its time is up).
    public mutating func allows(now: Double) -> Bool {
        if state == .open && now >= openUntil { state = .halfOpen }
        return state != .open
    }

    public mutating func succeeded() {
        state = .closed
        consecutiveFailures = 0
        cooldown = 0
    }

    /// Records a failed request; true when this opened the circuit.
    @discardableResult
    public mutating func failed(now: Double, policy: DeliveryPolicy) -> Bool {
        consecutiveFailures += 1
        guard state == .halfOpen || consecutiveFailures >= policy.breakerFailures else { return false }
        cooldown = cooldown == 0 ? policy.breakerCooldown : min(cooldown * 2, max(policy.maxBackoff, policy.breakerCooldown))
        state = .open
        openUntil = now + cooldown
        return true
    }
}
