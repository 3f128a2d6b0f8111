/// The lines one read of a source produced, owning their bytes: a queue, a commit or another
/// thread can hold a batch after the reader has moved on.
///
/// The bytes of all lines are one contiguous copy followed by ``LineReader/padding`` bytes, so
/// each line can be parsed in place (simdjson reads a little past the end of its input).
public struct LineBatch: Sendable {
    /// One framed line: where its bytes are in ``LineBatch/bytes``, or the report of a line over
    /// the cap (whose bytes were skipped, not kept).
    public enum Line: Sendable {
        case text(start: Int, count: Int, number: Int64, offset: Int64)
        case tooLong(prefix: [UInt8], number: Int64, offset: Int64, length: Int64)

        public var number: Int64 {
            switch self {
            case .text(_, _, let n, _), .tooLong(_, let n, _, _): return n
            }
        }
    }

    /// The source's display name (a path as given, or `stdin`), for rejects and events.
    public var source: String
    /// A file source's resolved path (kept with rejects, so they are found however the file is named).
    public var path: String?
    public var bytes: [UInt8]
    public var lines: [Line]
    /// Where reading resumes after these lines (nil for a source that cannot resume, a pipe).
    public var checkpoint: SourceCheckpoint?
    /// The source had nothing more right after this read: a good moment to commit.
    public var caughtUp: Bool
    /// Lines the source itself found bad before any decoding (the HTTP input's), in order.
    public var rejects: [Reject] = []
    /// Where lines came from, by line number, when the source knows more than its name (the HTTP
    /// request of a journal record): given to the rejects of those lines.
    public var origins: [Int64: LineOrigin] = [:]

    public init(source: String, bytes: [UInt8] = [], lines: [Line] = [], checkpoint: SourceCheckpoint?, caughtUp: Bool) {
        self.source = source
        self.bytes = bytes
        self.lines = lines
        self.checkpoint = checkpoint
        self.caughtUp = caughtUp
    }

    /// Calls `body` with the batch's bytes (padding included) for in-place parsing.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }
}

/// Where a source resumes: its checkpoint key (a file's resolved path), the byte offset and line
/// number after the last line handed out, and the fingerprint of the file's first bytes.
public struct SourceCheckpoint: Sendable, Equatable {
    public var key: String
    public var offset: Int64
    public var line: Int64
    public var fingerprint: String

    public init(key: String, offset: Int64, line: Int64, fingerprint: String) {
        self.key = key
        self.offset = offset
        self.line = line
        self.fingerprint = fingerprint
    }
}

/// The HTTP request a line came in: the client's address and its `X-Request-Id`.
public struct LineOrigin: Sendable, Equatable {
    public var remote: String
    public var requestID: String?
    public init(remote: String, requestID: String?) {
        self.remote = remote
        self.requestID = requestID
    }
}

extension Reject {
    /// Gives the rejects their line's origin, where the batch knows one.
    public static func annotate(_ rejects: inout [Reject], from origins: [Int64: LineOrigin]) {
        guard !origins.isEmpty else { return }
        for i in rejects.indices where rejects[i].remote == nil {
            if let o = origins[rejects[i].line] {
                rejects[i].remote = o.remote
                rejects[i].requestID = o.requestID
            }
        }
    }
}
