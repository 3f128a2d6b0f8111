#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore

/// Appends alerts as JSON lines to a local file.
public final class JSONLFileSink: AlertSink {
    public let name: String
    public let path: String
    public var isLocal: Bool { true }
    private let fd: Int32

    /// Opens (creating) `path` for appending.
    public init(name: String, path: String) throws(SinkError) {
        self.name = name
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { throw SinkError("sink '\(name)': cannot open \(path): \(String(cString: strerror(errno)))", isRetryable: false) }
    }

    deinit { close(fd) }

    public func deliver(_ alert: StoredAlert) async throws(SinkError) {
        try writeAll(fd, alert.json + "\n", what: path)
    }
}
