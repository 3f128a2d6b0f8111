#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import IWDetectCore

/// Files followed the way `tail -F` follows them: several paths or globs at once, new matches
/// picked up, rotation by rename, copytruncate, truncation in place, deletion and re-creation.
///
/// A file's identity is a fingerprint of its first line (Vector's and Filebeat's way), and its
/// checkpoint is kept under that identity, not under its path or inode: a file renamed by
/// rotation keeps its checkpoint and is read to its end, the new file under the old name starts
/// at line 1, a copy (copytruncate's) is recognised as what was already read, and a reused inode
/// never resumes at a stale offset. A file is read once its first line is complete. While open, a
/// file is also known by its device and inode, to notice renames; one whose path no longer leads
/// to it is let go once it has been quiet for `rotateWait` (its last line, if it has no newline, is
/// then taken as complete). A line still being written is never handed out.
///
/// Waits with inotify on the patterns' folders where the kernel offers it, and rescans at least
/// every `pollInterval` in any case: no busy waiting.
public final class FollowSource: LineSource {
    public struct Options: Sendable {
        /// Paths or glob patterns (`*`, `?`, `[...]`), matched again at every scan.
        public var patterns: [String]
        /// Where to start in a file present at start that was never read before: its first line,
        /// or its end (only what is written from now on). Files that appear later start at line 1.
        public var fromBeginning = true
        /// Longest wait between scans when nothing wakes the source.
        public var pollInterval: Double = 0.25
        /// How long a file whose path is gone (rotated, deleted) may stay quiet before it is let go.
        public var rotateWait: Double = 5
        public var maxLineBytes = 1 << 20
        /// Bytes read per file per read.
        public var chunkBytes = 256 << 10
        /// While nothing arrives, an empty batch this often, so the pipeline can do its
        /// housekeeping (rule-file watching) between batches.
        public var idleTick: Double = 1

        public init(patterns: [String]) { self.patterns = patterns }
    }

    public let name = "tail"
    let options: Options
    let db: Database
    private var files: [Followed] = []
    private var lastScan = 0.0
    /// Whether lines were handed out since the last caught-up batch (a commit is then due).
    private var owesCaughtUp = false
    private var firstScan = true
    private var lastReturn = FollowSource.monotonic()
    private let inotify: Int32
    private var watched: Set<String> = []
    /// Copies already reported, so the notice is given once.
    private var pendingCopies: Set<String> = []
    /// What happened, for the log: `(path, what)`.
    public private(set) var notices: [(String, String)] = []

    /// One followed file.
    final class Followed {
        var path: String
        let fd: Int32
        let device: UInt64
        let inode: UInt64
        var reader: LineReader
        /// The first-line fingerprint; nil after a truncation until the new first line is complete.
        var identity: FileFingerprint?
        /// Set when no matched path leads to this file any more.
        var goneSince: Double?
        var lastData: Double

        init(path: String, fd: Int32, device: UInt64, inode: UInt64, reader: LineReader, identity: FileFingerprint?, now: Double) {
            self.path = path
            self.fd = fd
            self.device = device
            self.inode = inode
            self.reader = reader
            self.identity = identity
            self.lastData = now
        }

        deinit { close(fd) }

        var key: String? { identity.map(FollowSource.key) }

        var checkpoint: SourceCheckpoint? {
            identity.map { SourceCheckpoint(key: FollowSource.key($0), offset: reader.committedOffset, line: reader.nextLine, fingerprint: $0.stored) }
        }
    }

    /// The checkpoint key of a followed file: its first-line fingerprint.
    static func key(_ identity: FileFingerprint) -> String { IngestStore.identityPrefix + identity.stored }

    public init(options: Options, db: Database) {
        self.options = options
        self.db = db
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    }

    deinit { if inotify >= 0 { close(inotify) } }

    /// The files followed now, by path.
    public var followedPaths: [String] { files.map(\.path) }

    /// Takes the notices gathered since the last call (new files, rotations, truncations).
    public func takeNotices() -> [(String, String)] {
        defer { notices.removeAll() }
        return notices
    }

    public func next() throws -> (LineBatch, LineReader.Status) {
        while true {
            if Interruption.signal != 0 { return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .interrupted) }
            // A reload request (SIGHUP): hand control back so the pipeline can act between batches.
            if Interruption.reloadPending { return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .data(caughtUp: true)) }
            let now = FollowSource.monotonic()
            if firstScan || now - lastScan >= options.pollInterval { try scan(now) }
            // Oldest-modified first: a rotated file is finished before the file that replaced it
            // is read, and the order is the same after a restart, so replays give the same alerts.
            var ready: [(mtime: timespec, path: String, file: Followed)] = []
            for f in files {
                var st = stat()
                guard fstat(f.fd, &st) == 0 else { continue }
                let size = Int64(st.st_size)
                // Shorter than what was read, or a different first line (truncated and written
                // past the old offset before this look): the content was replaced in place.
                if size < f.reader.consumedOffset || (size > f.reader.consumedOffset && f.identity.map { !$0.matches(fd: f.fd) } == true) {
                    truncated(f)
                }
                if size > f.reader.consumedOffset { ready.append((st.st_mtim, f.path, f)) }
            }
            ready.sort { ($0.mtime.tv_sec, $0.mtime.tv_nsec, $0.path) < ($1.mtime.tv_sec, $1.mtime.tv_nsec, $1.path) }
            for (_, _, f) in ready {
                if f.identity == nil {
                    // Truncated: read on once the new first line is complete (it is the identity).
                    guard let id = FileFingerprint.firstLine(fd: f.fd) else { continue }
                    f.identity = id
                }
                var (batch, _) = try f.reader.next(source: f.path)
                f.lastData = now
                guard !batch.lines.isEmpty else { continue }  // only part of a line so far
                batch.path = IngestStore.resolvedPath(f.path)
                batch.checkpoint = f.checkpoint
                batch.caughtUp = false
                owesCaughtUp = true
                lastReturn = now
                return (batch, .data(caughtUp: false))
            }
            // Everything read: let go of rotated files that stayed quiet, then report being caught up
            // once (so the batch is committed), then wait.
            if let batch = try releaseQuietFiles(now) { return (batch, .data(caughtUp: false)) }
            if owesCaughtUp || now - lastReturn >= options.idleTick {
                owesCaughtUp = false
                lastReturn = now
                return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .data(caughtUp: true))
            }
            wait(options.pollInterval)
        }
    }

    // MARK: - Scanning

    /// Matches the patterns, starts following new files, and notices files whose path is gone.
    func scan(_ now: Double) throws {
        lastScan = now
        var seen: Set<String> = []
        for path in FollowSource.expand(options.patterns) {
            watch(directoryOf: path)
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let inode = "\(st.st_dev):\(st.st_ino)"
            seen.insert(inode)
            if let f = files.first(where: { $0.device == UInt64(st.st_dev) && $0.inode == UInt64(st.st_ino) }) {
                if f.path != path && f.goneSince == nil { notices.append((path, "renamed from \(f.path); still following it")) }
                f.path = path
                f.goneSince = nil
                continue
            }
            try open(path, now: now)
        }
        for pattern in options.patterns { watch(directoryOf: pattern) }
        for f in files where !seen.contains("\(f.device):\(f.inode)") && f.goneSince == nil {
            f.goneSince = now
            notices.append((f.path, "no longer under its name (rotated or deleted); reading it to its end"))
        }
        firstScan = false
    }

    /// Starts following the file at `path` once its first line is complete: at the checkpoint of
    /// its identity (the first line) if there is one, else at its first line (or its end, for
    /// `--from end` at start). A file whose identity is already followed under another name (a
    /// copy) is left alone: its lines are the ones being read.
    func open(_ path: String, now: Double) throws {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }  // gone between the scan and the open: the next scan decides
        var st = stat()
        guard fstat(fd, &st) == 0, let identity = FileFingerprint.firstLine(fd: fd) else {
            close(fd)  // no complete first line yet: the next scan looks again
            return
        }
        let key = FollowSource.key(identity)
        if let twin = files.first(where: { $0.key == key }) {
            close(fd)
            if pendingCopies.insert(path).inserted { notices.append((path, "same first line as \(twin.path), which is being read: not read twice")) }
            return
        }
        pendingCopies.remove(path)
        let size = Int64(st.st_size)
        var offset: Int64 = 0, line: Int64 = 1
        var how = "new file: from line 1"
        if let saved = try IngestStore.checkpoint(db, source: key) {
            if saved.offset <= size {
                (offset, line) = (saved.offset, saved.line)
                how = "resumed at line \(line)"
            } else {
                // Shorter than what was read of this identity: a copy made before the original
                // grew further. Nothing in it is new.
                offset = size
                line = FollowSource.countLines(fd, size: size) + 1
                how = "a copy of what was already read: from its end (line \(line))"
            }
        } else if firstScan && !options.fromBeginning {
            // Only what is written from now on; line numbers count from the end.
            offset = size
            line = FollowSource.countLines(fd, size: size) + 1
            how = "from its end (line \(line))"
        }
        lseek(fd, off_t(offset), SEEK_SET)
        let reader = LineReader(fd: fd, maxLineBytes: options.maxLineBytes, offset: offset, line: line,
                                chunkBytes: options.chunkBytes, follow: true)
        files.append(Followed(path: path, fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), reader: reader,
                              identity: identity, now: now))
        notices.append((path, "following, \(how)"))
    }

    /// A file shorter than what was read of it was truncated (copytruncate, `> file`): read it
    /// again from its first line.
    func truncated(_ f: Followed) {
        lseek(f.fd, 0, SEEK_SET)
        f.reader = LineReader(fd: f.fd, maxLineBytes: options.maxLineBytes, chunkBytes: options.chunkBytes, follow: true)
        // What it held keeps its checkpoint (a copy of it is recognised); the new content gets
        // the identity of its own first line.
        f.identity = nil
        notices.append((f.path, "truncated: reading it again from line 1"))
    }

    /// Lets go of files whose path is gone and that stayed quiet for `rotateWait`: a final line
    /// without a newline is handed out as complete. Returns that line's batch, if any.
    func releaseQuietFiles(_ now: Double) throws -> LineBatch? {
        guard let i = files.firstIndex(where: { $0.goneSince != nil && now - max($0.lastData, $0.goneSince!) >= options.rotateWait }) else {
            return nil
        }
        let f = files.remove(at: i)
        var last = try f.reader.finish(source: f.path)
        notices.append((f.path, "let go after rotation, read to its end (line \(f.reader.nextLine - 1))"))
        guard !last.lines.isEmpty else { return nil }
        last.path = IngestStore.resolvedPath(f.path)
        last.checkpoint = f.checkpoint
        last.caughtUp = false
        owesCaughtUp = true
        return last
    }

    // MARK: - Waiting

    func watch(directoryOf path: String) {
        guard inotify >= 0 else { return }
        let dir = (path as NSString).deletingLastPathComponent
        let folder = dir.isEmpty ? "." : dir
        guard !watched.contains(folder), !FollowSource.isGlob(folder) else { return }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB)
        if inotify_add_watch(inotify, folder, mask) >= 0 { watched.insert(folder) }
    }

    /// Sleeps until a watched folder changes, a signal arrives, or `seconds` pass.
    func wait(_ seconds: Double) {
        var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: Interruption.wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        let n = poll(&fds, 2, Int32(seconds * 1000))
        if n > 0 && fds[0].revents != 0 {
            // Drain the events: what changed is found by reading and scanning, not from them.
            var buf = [UInt8](repeating: 0, count: 4096)
            while Glibc.read(inotify, &buf, buf.count) > 0 {}
            // A created or renamed file is found by the next scan: make it now.
            lastScan = 0
        }
    }

    // MARK: - Helpers

    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func isGlob(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }

    /// The patterns' matches (plain paths as they are), each once, in a stable order.
    static func expand(_ patterns: [String]) -> [String] {
        var out: [String] = []
        for p in patterns {
            guard isGlob(p) else {
                if !out.contains(p) { out.append(p) }
                continue
            }
            var g = glob_t()
            defer { globfree(&g) }
            guard glob(p, 0, nil, &g) == 0 else { continue }
            for i in 0..<Int(g.gl_pathc) {
                if let c = g.gl_pathv[i], case let path = String(cString: c), !out.contains(path) { out.append(path) }
            }
        }
        return out
    }

    /// Lines in the first `size` bytes of `fd` (for numbering when starting at a file's end).
    static func countLines(_ fd: Int32, size: Int64) -> Int64 {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var offset: Int64 = 0, lines: Int64 = 0
        while offset < size {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min($0.count, Int(size - offset)), off_t(offset)) }
            guard n > 0 else { break }
            lines += Int64(buf.prefix(n).lazy.filter { $0 == 0x0A }.count)
            offset += Int64(n)
        }
        return lines
    }
}
