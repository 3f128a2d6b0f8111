#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IWDetectCore
import Ingest

/// Line framing and JSON decoding of an input file, then the engine's per-event path for every
/// accepted event (baseline, rules, dedup, alerts; no SQLite).
///
/// The input is the file. Small buffers (4096-byte lines, 256-byte reads) put line and buffer
/// boundaries everywhere; a second, framing-only pass uses tiny ones (100-byte lines, 7-byte
/// reads), as the reader's own tests do. Checked: every framed line is the bytes at its offset,
/// numbers count up from 1, an over-long line's prefix is its own first bytes, the reader ends at
/// the input's length, and decoding a line in place (padded, as the engine does) and from a copy
/// give the same outcome.
public func fuzzDecoder(_ data: UnsafeRawBufferPointer) {
    let maxLineBytes = 4096
    let rules = bundledRules
    let decoder = JSONLineDecoder(fields: rules.fields, maxLineBytes: maxLineBytes)
    var engine = InMemoryEngine(ruleSet: rules.ruleSet, fields: rules.fields)
    var batch = 0
    frameChecked(data, maxLineBytes: maxLineBytes, chunkBytes: 256) { framed in
        switch framed {
        case .tooLong(let prefix, let number, let offset, let length):
            _ = Reject(source: "fuzz", line: number, offset: offset, reason: .lineTooLong, detail: "\(length) bytes", bytes: prefix).message
        case .line(let bytes, let number, let offset):
            // As the engine: blank lines are skipped, not rejected.
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { break }
            let origin = Event.Origin(source: "fuzz", line: number)
            let inPlace = decoder.decode(bytes, origin: origin, padded: true)
            let copied = decoder.decode(bytes, origin: origin, padded: false)
            switch (inPlace, copied) {
            case (.event(let a), .event(let b)):
                fuzzCheck(a.time == b.time && a.values == b.values, "line \(number) decodes differently in place and copied")
                _ = a.id
                engine.handle(a)
            case (.reject(let r1, let d1), .reject(let r2, let d2)):
                fuzzCheck(r1 == r2 && d1 == d2, "line \(number) is rejected differently in place (\(r1)) and copied (\(r2))")
                _ = Reject(source: "fuzz", line: number, offset: offset, reason: r1, detail: d1, bytes: bytes).message
            default:
                fuzzCheck(false, "line \(number) is accepted one way and rejected the other: \(inPlace) / \(copied)")
            }
        }
        batch += 1
        if batch == 8 {  // a batch boundary, as the engine commits every batch
            engine.commit()
            batch = 0
        }
    }
    engine.commit()
    frameChecked(data, maxLineBytes: 100, chunkBytes: 7) { _ in }
}

/// Frames `data` with a ``LineReader`` over an in-memory file, checks every framed line against
/// the input, and hands it to `body`.
func frameChecked(_ data: UnsafeRawBufferPointer, maxLineBytes: Int, chunkBytes: Int, _ body: (FramedLine) -> Void) {
    let fd = fuzzMemoryFile(data)
    defer { close(fd) }
    let reader = LineReader(fd: fd, maxLineBytes: maxLineBytes, chunkBytes: chunkBytes)
    let input = data.count == 0 ? [] : Array(data)
    var expectedLine: Int64 = 1
    var expectedOffset: Int64 = 0

    /// Whether a line may end at `end`: a newline, CR LF, a CR at the end, or the end.
    func endsLine(at end: Int) -> Bool {
        if end == input.count { return true }
        if input[end] == 0x0A { return true }
        if input[end] == 0x0D { return end + 1 == input.count || input[end + 1] == 0x0A }
        return false
    }
    func next(after end: Int) -> Int64 {
        var e = end
        if e < input.count, input[e] == 0x0D { e += 1 }
        if e < input.count, input[e] == 0x0A { e += 1 }
        return Int64(e)
    }

    func process(_ framed: FramedLine) {
        switch framed {
        case .tooLong(let prefix, let number, let offset, let length):
            fuzzCheck(number == expectedLine, "too-long line numbered \(number), expected \(expectedLine)")
            fuzzCheck(offset == expectedOffset, "too-long line \(number) at offset \(offset), expected \(expectedOffset)")
            fuzzCheck(length > Int64(maxLineBytes), "too-long line \(number) is only \(length) bytes")
            let start = Int(offset), end = start + Int(length)
            fuzzCheck(end <= input.count && endsLine(at: end), "too-long line \(number) (\(offset)+\(length)) does not end at a newline")
            fuzzCheck(prefix.count <= 256 && Int64(prefix.count) <= length && input[start..<start + prefix.count].elementsEqual(prefix),
                      "too-long line \(number) (\(length) bytes): its \(prefix.count)-byte prefix is not the line's first bytes")
            expectedOffset = next(after: end)
        case .line(let bytes, let number, let offset):
            fuzzCheck(number == expectedLine, "line numbered \(number), expected \(expectedLine)")
            fuzzCheck(offset == expectedOffset, "line \(number) at offset \(offset), expected \(expectedOffset)")
            let start = Int(offset), end = start + bytes.count
            fuzzCheck(bytes.count <= maxLineBytes, "line \(number) has \(bytes.count) bytes, over the cap")
            fuzzCheck(end <= input.count && input[start..<end].elementsEqual(bytes), "line \(number) is not the input's bytes at its offset")
            fuzzCheck(endsLine(at: end), "line \(number) does not end at a newline")
            expectedOffset = next(after: end)
        }
        expectedLine += 1
        body(framed)
    }

    var status: LineReader.Status = .data(caughtUp: false)
    repeat {
        do { status = try reader.read(process) } catch { fuzzCheck(false, "reading a memory file failed: \(error)") }
    } while status != .endOfInput
    fuzzCheck(reader.committedOffset == Int64(input.count),
              "the reader stopped at offset \(reader.committedOffset) of \(input.count)")
    fuzzCheck(expectedOffset == Int64(input.count), "the lines cover \(expectedOffset) of \(input.count) bytes")
}
