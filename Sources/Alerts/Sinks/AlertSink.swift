import IWDetectCore

/// A delivery failure, and whether trying again may help (alertmanager's `(bool, error)`).
///
/// Messages never contain secrets: sinks describe failures without their URL, token or key.
public struct SinkError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var isRetryable: Bool
    /// Seconds the receiver asked us to wait (`Retry-After`).
    public var retryAfter: Double?
    /// The HTTP status, for sinks that speak HTTP.
    public var status: Int?
    /// No answer came (refused, timed out, reset): the receiver is unreachable, not refusing.
    /// Such failures dead-letter only after `max_age_hours`, not after `max_attempts`, so a
    /// receiver that is down for a while loses nothing.
    public var isUnreachable: Bool

    public init(_ message: String, isRetryable: Bool, retryAfter: Double? = nil, status: Int? = nil, unreachable: Bool = false) {
        self.message = message
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
        self.status = status
        self.isUnreachable = unreachable
    }

    public var description: String { message }
}

/// A destination for alerts: one receiver (PagerDuty, Slack, a SIEM, a file).
///
/// ## Implementation requirements
/// - A `struct` or a `final class` with immutable configuration; `Sendable`.
/// - ``deliver(_:)`` sends at most ``batchSize`` alerts, bounded by a timeout, and either takes
///   them all or throws ``SinkError`` saying whether a retry may help. It never loops or retries
///   itself (the delivery worker does, with backoff and a circuit breaker), never dedups (the
///   outbox does), and never puts a secret (URL, token, key) in an error.
/// - Payloads carry what ``AlertRecord`` carries (ids, scores, values, short redacted excerpts);
///   a sink adds no prompt or output text of its own.
public protocol AlertSink: Sendable {
    /// The sink's name, as routes refer to it.
    var name: String { get }
    /// Its kind in the registry (`webhook`, `pagerduty`, …).
    var kind: String { get }
    /// Local sinks (stdout, a file) are written right after each batch commits; others by their
    /// own delivery worker, so a slow receiver never stalls ingestion or another sink.
    var isLocal: Bool { get }
    /// Alerts per ``deliver(_:)`` at most: 1 for APIs that take one event per request.
    var batchSize: Int { get }
    func deliver(_ alerts: [AlertRecord]) async throws(SinkError)
    /// Checks the receiver is reachable and accepts the credentials, without raising an alert
    /// where the API allows it (`iw-detect sinks test` sends a marked test alert instead).
    func healthcheck() async throws(SinkError)
}

extension AlertSink {
    public var isLocal: Bool { false }
    public var batchSize: Int { 1 }
    public func healthcheck() async throws(SinkError) {}
}
