#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore

/// Writes alerts to standard output: one JSON object per line in a pipe, a readable line on a
/// terminal.
public struct StdoutSink: AlertSink {
    public let name: String
    public let readable: Bool
    public var isLocal: Bool { true }

    public init(name: String = "stdout", readable: Bool? = nil) {
        self.name = name
        self.readable = readable ?? (isatty(STDOUT_FILENO) != 0)
    }

    public func deliver(_ alert: StoredAlert) async throws(SinkError) {
        let line = (readable ? alert.summary : alert.json) + "\n"
        try writeAll(STDOUT_FILENO, line, what: "standard output")
    }
}

/// Writes all of `text` to `fd`, retrying short writes.
func writeAll(_ fd: Int32, _ text: String, what: String) throws(SinkError) {
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SinkError("writing to \(what) failed: \(String(cString: strerror(errno)))", isRetryable: true)
        }
        done += n
    }
    bytes.removeAll()
}
