import Alerts
import Ingest

/// The settings of `iw-detect serve` (the `serve:` section of the config; `IW_DETECT_*`
/// variables and command-line options override them, in that order).
public struct ServeSettings: Sendable {
    /// `HOST:PORT` the HTTP input and the endpoints listen on.
    public var listen = "127.0.0.1:8080"
    /// The largest request body taken, after gzip is undone (413 above).
    public var maxBodyBytes = 10 << 20
    /// The input journal's file; nil: next to the state database (`iw-detect.db` → `iw-detect.input.db`).
    public var journalPath: String?
    /// Records received and not yet processed, at most (503 with Retry-After above).
    public var maxJournalRecords = 100_000
    /// Bytes of those records at most (503 with Retry-After above).
    public var maxJournalBytes = 1 << 30
    public var journalSync = InputJournal.Sync.normal
    /// How long processed records stay in the journal (seconds; 0: deleted once processed), so
    /// that `iw-detect session` and `user` can read HTTP events back; nil: as long as the
    /// forensic index that points at them (`retention.hot_days`, 0 without the index).
    public var journalKeep: Double?
    /// Bytes of processed records the journal keeps at most (the oldest go first past it).
    public var journalKeepBytes = 10 << 30

    /// How long processed records stay in the journal under `retention`.
    public func journalKeep(_ retention: RetentionSettings) -> Double {
        journalKeep ?? (retention.index ? Double(retention.hotDays) * 86_400 : 0)
    }
    /// The bearer token requests must carry, when set.
    public var token: SecretReference?
    /// How long a shutdown may take to drain the journal and deliver pending alerts.
    public var shutdownTimeout: Double = 30
    /// Seconds a client is told to wait (Retry-After) when the journal is full.
    public var retryAfter = 1

    public init() {}

    /// The journal's path for the state database at `databasePath`.
    public func journalPath(forDatabase databasePath: String) -> String {
        if let journalPath { return journalPath }
        return databasePath.hasSuffix(".db") ? String(databasePath.dropLast(3)) + ".input.db" : databasePath + ".input.db"
    }

    /// `listen` as a host and a port, or nil when it is not `HOST:PORT`.
    public static func parseListen(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
