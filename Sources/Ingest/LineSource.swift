#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore

/// The first stage of the pipeline: where lines come from (a file, standard input, followed
/// files), read in owned batches, each with the checkpoint that resumes after it.
///
/// ## Implementation requirements
/// ``next()`` blocks until it has lines, the input ends, or ``Interruption`` reports a signal; it
/// never returns a line that is not complete (ended by a newline, or the last line of a finished
/// input). A source owns its identity and checkpoints: the pipeline commits the checkpoints it is
/// given with the state their lines produced, and knows nothing of paths or offsets.
public protocol LineSource: AnyObject {
    /// The name rejects and summaries use: the path as given, or `stdin`.
    var name: String { get }
    /// The next batch and what the read saw.
    func next() throws -> (LineBatch, LineReader.Status)
    /// The pipeline committed the state of the lines before `checkpoint`.
    func committed(_ checkpoint: SourceCheckpoint)
}

extension LineSource {
    public func committed(_ checkpoint: SourceCheckpoint) {}
}

/// Standard input, or any descriptor that cannot resume: no checkpoint.
public final class StandardInputSource: LineSource {
    public let name = "stdin"
    let reader: LineReader

    public init(fd: Int32 = STDIN_FILENO, maxLineBytes: Int) {
        reader = LineReader(fd: fd, maxLineBytes: maxLineBytes)
    }

    public func next() throws -> (LineBatch, LineReader.Status) { try reader.next(source: name) }
}

/// A file read to its end, resuming where an earlier read of it (or of the same content under
/// another path) stopped.
public final class FileSource: LineSource {
    public let name: String
    /// The file's resolved path, kept with its rejects.
    public let path: String
    /// Where this read started and why (``Resume``).
    public let resume: Resume
    /// The file's size when it was opened.
    public let size: Int64
    let fd: Int32
    let reader: LineReader
    let key: String
    let fingerprint: String

    /// How a read of a file starts.
    public struct Resume: Sendable {
        public var offset: Int64 = 0
        public var line: Int64 = 1
        /// A file with the same first bytes, ingested before under another path (renamed or
        /// copied), whose checkpoint this read took over.
        public var sameContentAs: String?
        /// The file's own checkpoint was for other content: it was replaced, and is read anew.
        public var replaced = false
    }

    /// Opens `path` and finds where to start (see ``FileSource/resumePoint(fd:key:db:reingest:)``).
    /// - Parameter reingest: start at line 1 whatever was read before.
    public init(path: String, maxLineBytes: Int, db: Database, reingest: Bool = false) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IngestError.open(path: path, errno: errno) }
        var st = stat()
        size = fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
        name = path
        self.path = IngestStore.resolvedPath(path)
        key = IngestStore.fileKey(path)
        fingerprint = FileFingerprint(fd: fd).stored
        do {
            resume = try FileSource.resumePoint(fd: fd, size: size, key: key, db: db, reingest: reingest)
        } catch {
            close(fd)
            throw error
        }
        lseek(fd, off_t(resume.offset), SEEK_SET)
        self.fd = fd
        reader = LineReader(fd: fd, maxLineBytes: maxLineBytes, offset: resume.offset, line: resume.line)
    }

    deinit { close(fd) }

    public func next() throws -> (LineBatch, LineReader.Status) {
        var (batch, status) = try reader.next(source: name)
        batch.path = path
        batch.checkpoint = SourceCheckpoint(key: key, offset: reader.committedOffset, line: reader.nextLine, fingerprint: fingerprint)
        return (batch, status)
    }

    /// Where to start reading: the file's own checkpoint while it still starts with the bytes it
    /// had then; else the checkpoint of another path whose file started with the same bytes (a
    /// renamed or copied file, whose events must not train the baseline twice); else line 1.
    static func resumePoint(fd: Int32, size: Int64, key: String, db: Database, reingest: Bool) throws -> Resume {
        var resume = Resume()
        if reingest { return resume }
        func usable(_ c: IngestStore.Checkpoint) -> Bool {
            c.offset <= size && (FileFingerprint(stored: c.fingerprint)?.matches(fd: fd) ?? false)
        }
        if let saved = try IngestStore.checkpoint(db, source: key) {
            if usable(saved) {
                resume.offset = saved.offset
                resume.line = saved.line
                return resume
            }
            resume.replaced = true
        }
        for (other, c) in try IngestStore.fileCheckpoints(db) where other != key && c.line > 1 && usable(c) {
            resume.offset = c.offset
            resume.line = c.line
            resume.sameContentAs = other.hasPrefix(IngestStore.filePrefix) ? String(other.dropFirst(IngestStore.filePrefix.count)) : "a followed file (\(other))"
            return resume
        }
        return resume
    }
}
