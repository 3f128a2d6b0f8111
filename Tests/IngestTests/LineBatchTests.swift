import Foundation
import IWDetectCore
import IWDetectTestSupport
import Ingest
import Testing

/// The source and decoder stages alone: owned batches, then events and rejects.
@Suite struct LineBatchTests {
    @Test func batchesOwnTheirBytesAndDecodeInPlace() throws {
        let dir = TempDir()
        let text = logLine(time: at(0), id: "a") + "\nnot json\n\n" + logLine(time: at(1), id: "b") + "\n{\"partial\":"
        let fd = open(dir.write("in", text), O_RDONLY)
        defer { close(fd) }
        let reader = LineReader(fd: fd, maxLineBytes: 4096, chunkBytes: 64)
        var batches: [LineBatch] = []
        while true {
            let (batch, status) = try reader.next(source: "in")
            batches.append(batch)
            if status == .endOfInput { break }
        }
        // Held after the reader moved on (its buffer reused many times): each batch is intact.
        let lines = batches.flatMap { b in
            b.lines.compactMap { line -> String? in
                guard case .text(let start, let count, _, _) = line else { return nil }
                return String(decoding: b.bytes[start..<(start + count)], as: UTF8.self)
            }
        }
        #expect(lines == text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        #expect(batches.allSatisfy { $0.bytes.isEmpty || $0.bytes.suffix(LineReader.padding).allSatisfy { $0 == 0 } })

        var fields = FieldTable()
        _ = fields.slot(for: "log_id")
        let decoder = JSONLineDecoder(fields: fields, maxLineBytes: 4096)
        var out = DecodedBatch()
        for b in batches { decoder.decode(b, into: &out) }
        #expect(out.lines == 5 && out.blank == 1)
        #expect(out.events.map { $0.values[fields.existingSlot(for: "log_id")!].string } == ["a", "b"])
        #expect(out.rejects.map { "\($0.line):\($0.reason.rawValue)" } == ["2:invalid_json", "5:invalid_json"])
    }

    @Test func aFollowingReaderKeepsAHalfLineUntilItsNewline() throws {
        let dir = TempDir()
        let path = dir.write("grow", "{\"a\":1}\n{\"b\":")
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let reader = LineReader(fd: fd, maxLineBytes: 4096, follow: true)
        var (batch, status) = try reader.next(source: "grow")
        #expect(batch.lines.count == 1 && status == .data(caughtUp: true))
        (batch, status) = try reader.next(source: "grow")
        #expect(batch.lines.isEmpty && status == .data(caughtUp: true), "at the end of a followed file: nothing yet, not the end")
        let h = try #require(FileHandle(forWritingAtPath: path))
        h.seekToEndOfFile()
        h.write(Data("2}\n".utf8))
        try h.close()
        (batch, _) = try reader.next(source: "grow")
        #expect(batch.lines.count == 1)
        if case .text(let s, let n, let number, _) = batch.lines[0] {
            #expect(String(decoding: batch.bytes[s..<(s + n)], as: UTF8.self) == "{\"b\":2}" && number == 2)
        }
        #expect(reader.committedOffset == 16)
    }
}
