#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore
import YAMLSupport
import Yams

/// Appends alerts as JSON lines to a local file.
public final class JSONLFileSink: AlertSink {
    public let name: String
    public let path: String
    public var kind: String { JSONLFileSinkConfig.kind }
    public var isLocal: Bool { true }
    public var batchSize: Int { 500 }
    private let fd: Int32

    /// Opens (creating) `path` for appending.
    public init(name: String, path: String) throws(SinkError) {
        self.name = name
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { throw SinkError("sink '\(name)': cannot open \(path): \(String(cString: strerror(errno)))", isRetryable: false) }
    }

    deinit { close(fd) }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        try writeAll(fd, alerts.map { $0.json.serialized() + "\n" }.joined(), what: path)
    }
}

/// `type: jsonl`: appends each alert as one JSON object per line.
/// - `path` (required): the file, created if needed (mode 0640).
public struct JSONLFileSinkConfig: SinkConfig {
    public static let kind = "jsonl"
    public static let keys = ["path"]
    public let name: String
    public var path: String

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        guard let path = r.string(map, "path", "sink '\(name)': path") else {
            if map["path"] == nil { r.error(item, "missing_key", "sink '\(name)': a jsonl sink needs 'path'") }
            return nil
        }
        self.path = path
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink { try JSONLFileSink(name: name, path: path) }

    public var summary: String { path }
}
