import IWDetectCore

/// A delivery failure, and whether trying again may help (alertmanager's `(bool, error)`).
///
/// Messages never contain secrets: sinks describe failures without their URL or credentials.
public struct SinkError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var isRetryable: Bool
    /// Seconds the receiver asked us to wait (`Retry-After`).
    public var retryAfter: Double?

    public init(_ message: String, isRetryable: Bool, retryAfter: Double? = nil) {
        self.message = message
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}

/// A destination for alerts.
///
/// ## Implementation requirements
/// Deliver one alert per call, with a bounded timeout; report retryability in ``SinkError``;
/// never loop or retry inside the sink (the outbox does); never put secrets in errors.
public protocol AlertSink: Sendable {
    /// The sink's name, as routes refer to it.
    var name: String { get }
    /// Local sinks (stdout, a file) are delivered inline right after each batch commits; others by
    /// the background delivery worker, so a slow receiver never stalls ingestion.
    var isLocal: Bool { get }
    func deliver(_ alert: StoredAlert) async throws(SinkError)
}
