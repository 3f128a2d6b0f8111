#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One framed line, or the report of a line that was longer than the cap.
public enum FramedLine {
    /// A complete line without its `\n` (and without a trailing `\r`).
    case line(UnsafeRawBufferPointer, number: Int64, offset: Int64)
    /// A line over the cap: its first bytes, its full length; the rest was skipped, not buffered.
    case tooLong(prefix: [UInt8], number: Int64, offset: Int64, length: Int64)
}

/// Splits a byte stream read from a file descriptor into lines, in bounded memory.
///
/// Every line it hands out is followed by at least ``LineReader/padding`` readable bytes, so the
/// decoder can parse it in place (simdjson reads a little past the end).
///
/// Lines end at `\n`; a `\r` before it is dropped (CRLF files); a last line without a final newline
/// is still a line. A line longer than `maxLineBytes` is reported once as ``FramedLine/tooLong`` and
/// skipped without being held in memory. Byte offsets and line numbers are absolute, so a reader
/// resumed at a checkpoint reports the same numbers a full read would.
public final class LineReader {
    /// What one call of ``read(_:)`` saw.
    public enum Status: Equatable, Sendable {
        /// Data was read. `caughtUp` is true when the read returned less than it asked for: the
        /// producer (a pipe, a growing file) has nothing more right now.
        case data(caughtUp: Bool)
        case endOfInput
        /// SIGINT or SIGTERM arrived (``Interruption``): nothing more was read.
        case interrupted
    }

    public let fd: Int32
    public let maxLineBytes: Int
    /// Readable bytes guaranteed after the end of every line handed out.
    public static let padding = 64
    private var buffer: UnsafeMutableRawBufferPointer
    private var filled = 0
    /// Absolute offset of buffer[0] in the stream.
    private var bufferOffset: Int64
    /// Line number of the next line to emit (1-based).
    public private(set) var nextLine: Int64
    /// Offset just past the last emitted line: where a resumed reader starts.
    public private(set) var committedOffset: Int64
    private var skipping: (prefix: [UInt8], number: Int64, offset: Int64, length: Int64)?
    private var eof = false
    /// A pipe, terminal or socket: reads may block, so they wait in `poll` beside the signal pipe.
    private let mayBlock: Bool
    private let follow: Bool

    /// The stream offset up to which bytes have been read: past ``committedOffset`` by a line
    /// still being written (or being skipped as too long).
    public var consumedOffset: Int64 { bufferOffset + Int64(filled) }

    /// - Parameters:
    ///   - fd: an open file descriptor, positioned at `offset`.
    ///   - offset: the stream offset the descriptor is at (a checkpoint, or 0).
    ///   - line: the number of the first line to be read.
    ///   - follow: the descriptor is a file that grows (``FollowSource``): reaching its end means
    ///     "nothing yet", not the end of input, and a last line without a newline is still being
    ///     written, so it is kept until its newline arrives (or ``finish(source:)``).
    public init(fd: Int32, maxLineBytes: Int, offset: Int64 = 0, line: Int64 = 1, chunkBytes: Int = 1 << 20, follow: Bool = false) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        self.follow = follow
        let capacity = max(chunkBytes, maxLineBytes + 1) + maxLineBytes + 1
        // Reads fill `buffer` only; the allocation has `padding` more bytes behind it. Only the
        // padding is initialised: pages a read never reached are never touched, so an idle
        // reader costs no resident memory.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity + LineReader.padding, alignment: 64)
        UnsafeMutableRawBufferPointer(rebasing: storage[capacity...]).initializeMemory(as: UInt8.self, repeating: 0)
        self.buffer = UnsafeMutableRawBufferPointer(rebasing: storage[0..<capacity])
        self.bufferOffset = offset
        self.committedOffset = offset
        self.nextLine = line
        var st = stat()
        self.mayBlock = fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG
    }

    deinit { UnsafeMutableRawPointer(buffer.baseAddress!).deallocate() }

    /// Reads once from the descriptor (blocking if it blocks) and hands every complete line to `body`.
    /// At end of input, a final line without a newline is handed over too.
    public func read(_ body: (FramedLine) throws -> Void) throws -> Status {
        if eof { return .endOfInput }
        if Interruption.signal != 0 || (mayBlock && !Interruption.waitReadable(fd)) { return .interrupted }
        let want = buffer.count - filled
        let n = Glibc.read(fd, buffer.baseAddress! + filled, want)
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return .data(caughtUp: true) }
            throw IngestError.read(errno: errno)
        }
        if n == 0 {
            if follow { return .data(caughtUp: true) }
            eof = true
            try flushFinal(body)
            return .endOfInput
        }
        filled += n
        try frame(body)
        return .data(caughtUp: n < want)
    }

    /// Reads once, like ``read(_:)``, and returns the lines as an owned ``LineBatch`` (one copy of
    /// their bytes, padded), or the status when no line came out of it.
    /// - Returns: the batch (possibly without lines) and the read's status.
    public func next(source: String) throws -> (LineBatch, Status) {
        var lines: [LineBatch.Line] = []
        var bytes: [UInt8] = []
        // The lines must be copied as they are framed: after framing, the reader moves a partial
        // last line to the front of its buffer, over them.
        let status = try read { framed in
            switch framed {
            case .line(let b, let number, let offset):
                if bytes.isEmpty { bytes.reserveCapacity(filled + LineReader.padding) }
                lines.append(.text(start: bytes.count, count: b.count, number: number, offset: offset))
                bytes.append(contentsOf: b)
            case .tooLong(let prefix, let number, let offset, let length):
                lines.append(.tooLong(prefix: prefix, number: number, offset: offset, length: length))
            }
        }
        if !bytes.isEmpty || !lines.isEmpty { bytes.append(contentsOf: repeatElement(0, count: LineReader.padding)) }
        let caughtUp: Bool
        switch status {
        case .data(let c): caughtUp = c
        case .endOfInput, .interrupted: caughtUp = true
        }
        return (LineBatch(source: source, bytes: bytes, lines: lines, checkpoint: nil, caughtUp: caughtUp), status)
    }

    /// Ends a followed file: hands over a last line without a newline as a complete line (the
    /// file was let go after rotation) and reports the end of input from then on.
    public func finish(source: String) throws -> LineBatch {
        var lines: [LineBatch.Line] = []
        var bytes: [UInt8] = []
        eof = true
        try flushFinal { framed in
            switch framed {
            case .line(let b, let number, let offset):
                lines.append(.text(start: bytes.count, count: b.count, number: number, offset: offset))
                bytes.append(contentsOf: b)
            case .tooLong(let prefix, let number, let offset, let length):
                lines.append(.tooLong(prefix: prefix, number: number, offset: offset, length: length))
            }
        }
        if !lines.isEmpty { bytes.append(contentsOf: repeatElement(0, count: LineReader.padding)) }
        return LineBatch(source: source, bytes: bytes, lines: lines, checkpoint: nil, caughtUp: true)
    }

    /// Emits the lines in the buffer; keeps a trailing partial line for the next read.
    private func frame(_ body: (FramedLine) throws -> Void) throws {
        let base = UnsafeRawPointer(buffer.baseAddress!)
        var start = 0
        while start < filled {
            guard let nl = memchr(base + start, 0x0A, filled - start) else { break }
            let end = base.distance(to: UnsafeRawPointer(nl))
            if var skip = skipping {
                // The tail of an over-long line: count it and report the line.
                skip.length += Int64(end - start)
                skipping = nil
                try body(.tooLong(prefix: skip.prefix, number: skip.number, offset: skip.offset, length: skip.length))
            } else if end - start > maxLineBytes {
                try body(.tooLong(prefix: Array(UnsafeRawBufferPointer(start: base + start, count: min(256, end - start))),
                                  number: nextLine, offset: bufferOffset + Int64(start), length: Int64(end - start)))
            } else {
                var len = end - start
                if len > 0, base.load(fromByteOffset: start + len - 1, as: UInt8.self) == 0x0D { len -= 1 }
                try body(.line(UnsafeRawBufferPointer(start: base + start, count: len), number: nextLine,
                               offset: bufferOffset + Int64(start)))
            }
            nextLine += 1
            start = end + 1
            committedOffset = bufferOffset + Int64(start)
        }
        // Keep the partial line; if it is already over the cap, start skipping it.
        let rest = filled - start
        if skipping != nil {
            skipping!.length += Int64(rest)
            bufferOffset += Int64(filled)
            filled = 0
        } else if rest > maxLineBytes {
            skipping = (Array(UnsafeRawBufferPointer(start: base + start, count: min(256, rest))), nextLine,
                        bufferOffset + Int64(start), Int64(rest))
            bufferOffset += Int64(filled)
            filled = 0
        } else {
            if start > 0 && rest > 0 { memmove(buffer.baseAddress!, base + start, rest) }
            bufferOffset += Int64(start)
            filled = rest
        }
    }

    private func flushFinal(_ body: (FramedLine) throws -> Void) throws {
        if let skip = skipping {
            skipping = nil
            try body(.tooLong(prefix: skip.prefix, number: skip.number, offset: skip.offset, length: skip.length))
            nextLine += 1
            committedOffset = skip.offset + skip.length
            return
        }
        guard filled > 0 else { return }
        // Append a newline and frame normally: the final line is complete.
        buffer[filled] = 0x0A
        filled += 1
        try frame(body)
        committedOffset -= 1  // the newline we added is not in the stream
    }
}

/// What can go wrong reading input, as opposed to a bad line (which is a reject).
public enum IngestError: Error, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case read(errno: Int32)

    public var description: String {
        switch self {
        case .open(let path, let e): return "cannot open \(path): \(String(cString: strerror(e)))"
        case .read(let e): return "read failed: \(String(cString: strerror(e)))"
        }
    }
}
