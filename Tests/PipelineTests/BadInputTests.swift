import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// Bad input on a fresh database, through the built binary: never a crash, every bad line recorded
/// with its line number and reason, and the next good line still processed.
@Suite struct BadInputTests {
    let rules = packageRoot + "/rules"

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: @Sendable () -> [UInt8]
        /// `line:reason` of every reject, in order.
        var rejects: [String]
        var blank = 0
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "an empty file", bytes: { [] }, rejects: []),
        Case(name: "only blank lines", bytes: { Array("\n  \n\t\r\n".utf8) }, rejects: [], blank: 3),
        Case(name: "only bad lines", bytes: { Array("not json\n[1,2]\n{\"a\":1}\n{\"timestamp\":\"soon\"}\n".utf8) },
             rejects: ["1:invalid_json", "2:not_an_object", "3:missing_timestamp", "4:invalid_timestamp"]),
        Case(name: "a single 50 MB line", bytes: { Array("{\"a\":\"".utf8) + [UInt8](repeating: 0x78, count: 50 << 20) + Array("\"}\n".utf8) },
             rejects: ["1:line_too_long"]),
        Case(name: "NUL bytes", bytes: { [0, 0, 0, 0x0A] + Array("{\"timestamp\":\"2026-11-01T00:00:00Z\",\"a\":\"".utf8) + [0] + Array("\"}\n".utf8) },
             rejects: ["1:invalid_json", "2:invalid_json"]),
        Case(name: "invalid UTF-8", bytes: { [0xFF, 0xFE, 0x0A] + Array("{\"timestamp\":\"2026-11-01T00:00:00Z\",\"u\":\"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8) },
             rejects: ["1:invalid_utf8", "2:invalid_utf8"]),
        Case(name: "a 10,000-deep array", bytes: { Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n").utf8) },
             rejects: ["1:invalid_json"]),
        Case(name: "a 10,000-deep object", bytes: { Array((String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000) + "\n").utf8) },
             rejects: ["1:invalid_json"]),
        Case(name: "timestamps out of range", bytes: { Array("{\"timestamp\":1e300}\n{\"timestamp\":-5}\n{\"timestamp\":\"99999-01-01T00:00:00Z\"}\n".utf8) },
             rejects: ["1:invalid_timestamp", "2:invalid_timestamp", "3:invalid_timestamp"]),
    ]

    /// Ingests the bad file alone (a batch with no accepted event), then again with a good line
    /// appended: the resumed ingest must accept exactly that line.
    @Test(arguments: cases)
    func badInputIsRecordedAndTheNextLineStillProcessed(_ c: Case) throws {
        let dir = TempDir()
        let bytes = c.bytes()
        let input = dir.write("bad.jsonl", bytes: bytes)
        let db = dir.file("state.db")
        let first = try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", rules])
        #expect(first.status == 0, "\(c.name): exit \(first.status): \(first.stderr.suffix(600))")
        let lines = bytes.isEmpty ? 0 : bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count - (bytes.last == 0x0A ? 1 : 0)
        #expect(first.stderr.contains("\(lines) lines read, 0 accepted, \(c.rejects.count) rejected"), "\(first.stderr)")
        let recorded = try run(iwDetectBinary, ["rejects", "--db", db, "--json"])
        #expect(recorded.status == 0)
        #expect(jsonLines(recorded.stdout).map { "\($0["line"] as? Int ?? -1):\($0["reason"] as? String ?? "?")" } == c.rejects)

        let handle = try #require(FileHandle(forWritingAtPath: input))
        handle.seekToEndOfFile()
        handle.write(Data((logLine(time: at(0), id: "after-the-bad-lines") + "\n").utf8))
        try handle.close()
        let second = try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", rules])
        #expect(second.status == 0, "\(second.stderr.suffix(600))")
        #expect(second.stderr.contains("1 lines read, 1 accepted, 0 rejected"), "\(second.stderr)")
    }

    /// A live pipe whose first line is bad: the reject is committed while the pipe stays open, and
    /// the good line after it is processed.
    @Test func aLivePipeWhoseFirstLineIsBad() throws {
        let dir = TempDir()
        let db = dir.file("state.db")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = ["ingest", "-", "--db", db, "--rules", rules]
        let inp = Pipe()
        let errPath = dir.write("stderr", "")
        p.standardInput = inp
        p.standardOutput = FileHandle(forWritingAtPath: dir.write("stdout", ""))
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        inp.fileHandleForWriting.write(Data("{\"broken\n".utf8))
        // The reject is committed before more input arrives.
        let deadline = Date().addingTimeInterval(20)
        var seen: [[String: Any]] = []
        while seen.isEmpty && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            seen = jsonLines(try run(iwDetectBinary, ["rejects", "--db", db, "--json"]).stdout)
        }
        #expect(p.isRunning, "a bad first line must not end the ingest: \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
        #expect(seen.map { "\($0["line"] as? Int ?? -1):\($0["reason"] as? String ?? "?")" } == ["1:invalid_json"])
        inp.fileHandleForWriting.write(Data((logLine(time: at(0)) + "\n").utf8))
        try inp.fileHandleForWriting.close()
        p.waitUntilExit()
        let stderr = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(p.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("stdin: 2 lines read, 1 accepted, 1 rejected"), "\(stderr)")
    }
}
