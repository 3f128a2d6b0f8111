#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore
import YAMLSupport
import Yams

/// Writes alerts to standard output: one JSON object per line in a pipe, the readable line on a
/// terminal.
public struct StdoutSink: AlertSink {
    public let name: String
    public let readable: Bool
    public var kind: String { StdoutSinkConfig.kind }
    public var isLocal: Bool { true }
    public var batchSize: Int { 500 }

    public init(name: String = "stdout", readable: Bool? = nil) {
        self.name = name
        self.readable = readable ?? (isatty(STDOUT_FILENO) != 0)
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        var text = ""
        for a in alerts { text += (readable ? a.summaryLine : a.json.serialized()) + "\n" }
        try writeAll(STDOUT_FILENO, text, what: "standard output")
    }
}

/// `type: stdout`: alerts on standard output (readable on a terminal, JSON lines in a pipe).
/// No keys of its own.
public struct StdoutSinkConfig: SinkConfig {
    public static let kind = "stdout"
    public static let keys: [String] = []
    public let name: String
    /// Force a readable (true) or JSON (false) rendering instead of deciding by isatty.
    public var readable: Bool?

    public init(name: String, readable: Bool? = nil) {
        self.name = name
        self.readable = readable
    }

    public init?(name: String, map: Node.Mapping, item: Node, reader: inout ConfigReader) { self.name = name }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink { StdoutSink(name: name, readable: readable) }

    public var summary: String { "standard output" }
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
