#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore

/// What identifies a file's content across renames and appends: a hash of its first bytes (at
/// most 1 KiB) and how many bytes it covers.
///
/// A file that grows keeps its fingerprint, because the check reads the same number of bytes as
/// when the fingerprint was taken; a file replaced by other content does not.
public struct FileFingerprint: Sendable, Equatable {
    /// Bytes read at most: enough to tell log files apart, cheap to read.
    public static let maxBytes = 1024

    public var length: Int
    public var hash: String

    /// The fingerprint of the first `min(length, size)` bytes of the open file `fd`.
    public init(fd: Int32, length: Int = FileFingerprint.maxBytes) {
        var buf = [UInt8](repeating: 0, count: max(0, length))
        let n = buf.isEmpty ? 0 : buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, length, 0) }
        self.length = max(n, 0)
        var h = StableHash()
        h.combine(String(decoding: buf.prefix(self.length), as: UTF8.self))
        self.hash = h.hex
    }

    /// The identity of a followed file: its first line, newline included (at most ``maxBytes``);
    /// nil while the file has no complete first line and is shorter than that. Stable from the
    /// moment it exists, however the file grows; the same for a copy of the file.
    public static func firstLine(fd: Int32) -> FileFingerprint? {
        var buf = [UInt8](repeating: 0, count: maxBytes)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, maxBytes, 0) }
        guard n > 0 else { return nil }
        if let nl = buf.prefix(n).firstIndex(of: 0x0A) { return FileFingerprint(fd: fd, length: nl + 1) }
        return n == maxBytes ? FileFingerprint(fd: fd, length: maxBytes) : nil
    }

    /// Parses the stored form, `LENGTH:HASH`. A bare hash (written before lengths were stored)
    /// covers 1 KiB.
    public init?(stored: String) {
        let parts = stored.split(separator: ":", maxSplits: 1)
        if parts.count == 2, let n = Int(parts[0]), n >= 0 {
            length = n
            hash = String(parts[1])
        } else if parts.count == 1, !stored.isEmpty {
            length = FileFingerprint.maxBytes
            hash = stored
        } else {
            return nil
        }
    }

    /// The form kept in the checkpoints table.
    public var stored: String { "\(length):\(hash)" }

    /// Whether the open file `fd` starts with the bytes this fingerprint was taken of.
    public func matches(fd: Int32) -> Bool {
        let now = FileFingerprint(fd: fd, length: length)
        // A legacy fingerprint of a file shorter than 1 KiB covered the whole file.
        return now.hash == hash && (now.length == length || length == FileFingerprint.maxBytes)
    }
}
