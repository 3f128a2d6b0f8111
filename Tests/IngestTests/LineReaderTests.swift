import Foundation
import Ingest
import IWDetectTestSupport
import Testing

@Suite struct LineReaderTests {
    /// Frames `text` with a tiny chunk size, so lines straddle reads.
    func frame(_ bytes: [UInt8], max: Int = 64, chunk: Int = 7, offset: Int64 = 0) throws -> [String] {
        let dir = TempDir()
        let path = dir.write("in", bytes: bytes)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        lseek(fd, off_t(offset), SEEK_SET)
        let reader = LineReader(fd: fd, maxLineBytes: max, offset: offset, chunkBytes: chunk)
        var out: [String] = []
        while try reader.read({ line in
            switch line {
            case .line(let b, let n, let o): out.append("\(n)@\(o):\(String(decoding: b, as: UTF8.self))")
            case .tooLong(let prefix, let n, let o, let len): out.append("\(n)@\(o):TOO LONG \(len) \(String(decoding: prefix.prefix(3), as: UTF8.self))")
            }
        }) != .endOfInput {}
        return out
    }

    @Test func crlfAndMissingFinalNewline() throws {
        #expect(try frame(Array("a\r\nbb\n\nccc".utf8)) == ["1@0:a", "2@3:bb", "3@6:", "4@7:ccc"])
    }

    @Test func overLongLinesAreReportedOnceAndSkipped() throws {
        let long = String(repeating: "x", count: 200)
        #expect(try frame(Array("ok\n\(long)\nafter\n\(long)".utf8), max: 50) ==
                ["1@0:ok", "2@3:TOO LONG 200 xxx", "3@204:after", "4@210:TOO LONG 200 xxx"])
    }

    @Test func resumesWithAbsoluteOffsets() throws {
        let dir = TempDir()
        let path = dir.write("in", "one\ntwo\nthree\n")
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let reader = LineReader(fd: fd, maxLineBytes: 64, chunkBytes: 5)
        var seen = 0
        while try reader.read({ _ in seen += 1 }) != .endOfInput {}
        #expect(seen == 3 && reader.committedOffset == 14 && reader.nextLine == 4)
        // A checkpoint after "two" (offset 8, line 3) resumes with the same numbering.
        lseek(fd, 8, SEEK_SET)
        let resumed = LineReader(fd: fd, maxLineBytes: 64, offset: 8, line: 3)
        var rest: [String] = []
        while try resumed.read({ if case .line(let b, let n, let o) = $0 { rest.append("\(n)@\(o):\(String(decoding: b, as: UTF8.self))") } }) != .endOfInput {}
        #expect(rest == ["3@8:three"])
        #expect(resumed.committedOffset == 14)
    }
}
