#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one-writer lock of a state database: held by `ingest` (and every other command that
/// changes the engine's state) for as long as it runs, so two writers never interleave batches
/// and baselines.
///
/// It is an `flock` on a file beside the database, `<db>-lock`, which holds the holder's pid and
/// command. The kernel releases it when the holder exits, `kill -9` included, so a stale lock
/// never needs cleaning up. (Not SQLite's own locks: closing any descriptor of the database file
/// would drop those.)
public final class DatabaseLock {
    /// Who holds a lock, as its lock file says.
    public struct Holder: Sendable, CustomStringConvertible {
        public var pid: Int32
        public var command: String
        public var description: String { "pid \(pid)" + (command.isEmpty ? "" : " (\(command))") }
    }

    /// The lock is held by another process.
    public struct HeldError: Error, CustomStringConvertible {
        public var databasePath: String
        public var holder: Holder?
        public var description: String {
            "\(databasePath) is in use by another iw-detect, \(holder?.description ?? "pid unknown"); wait for it to finish, or run this command with --wait"
        }
    }

    public let path: String
    private var fd: Int32

    /// Takes the lock of the database at `databasePath`.
    /// - Parameters:
    ///   - wait: block until the holder releases it; otherwise throw ``HeldError`` at once.
    ///   - command: what this process is, for the message another process gets.
    public init(databasePath: String, command: String, wait: Bool) throws {
        path = databasePath + "-lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DatabaseError(code: 0, message: "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            let holder = DatabaseLock.holder(fd)
            close(fd)
            fd = -1
            throw HeldError(databasePath: databasePath, holder: holder)
        }
        let text = Array("\(getpid())\n\(command)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { release() }

    /// Releases the lock (exiting does too).
    public func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        close(fd)
        fd = -1
    }

    static func holder(_ fd: Int32) -> Holder? {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let lines = String(decoding: buf.prefix(n), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard let pid = lines.first.flatMap({ Int32($0) }) else { return nil }
        return Holder(pid: pid, command: lines.count > 1 ? String(lines[1]) : "")
    }
}
