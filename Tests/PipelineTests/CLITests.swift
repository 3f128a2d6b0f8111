import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The built binary, argv in, alerts and exit status out.
@Suite struct CLITests {
    let rules = packageRoot + "/rules"

    @Test func rejectsAreRecordedWithLineAndReasonAndIngestGoesOn() throws {
        let dir = TempDir()
        var bytes: [UInt8] = []
        func add(_ s: String) { bytes += Array(s.utf8) }
        add(logLine(time: at(0), id: "ok-1") + "\n")                       // 1
        add("this is not json\n")                                          // 2
        add("{\"log_id\":\"x\",\"timestamp\":\"2026-11-01T00:00:01Z\"\n")  // 3 truncated
        add("[1,2,3]\n")                                                   // 4 an array
        add("{\"user_id\":\"u\",\"pad\":\"" + String(repeating: "x", count: 5000) + "\"}\n")  // 5 over the cap
        add(logLine(time: at(2), id: "ok-2") + "\r\n")                     // 6 CRLF
        bytes += Array("{\"log_id\":\"bad-utf8\",\"timestamp\":\"2026-11-01T00:00:03Z\",\"user_input\":\"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)  // 7
        add("{\"log_id\":\"no-time\",\"user_id\":\"u\"}\n")                // 8
        add("{\"log_id\":\"bad-time\",\"timestamp\":\"yesterday\"}\n")      // 9
        add("\n")                                                          // 10 blank
        add(logLine(time: at(4), id: "ok-3"))                              // 11, no final newline
        let input = dir.write("mixed.jsonl", bytes: bytes)
        let config = dir.write("config.yaml", "max_line_bytes: 4096\n")
        let db = dir.file("state.db")
        let r = try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", rules, "--config", config])
        #expect(r.status == 0, "bad lines are not an operational failure: \(r.stderr)")
        #expect(r.stderr.contains("11 lines read, 3 accepted, 7 rejected, 1 blank"), "\(r.stderr)")
        let rejects = try run(iwDetectBinary, ["rejects", "--db", db, "--json"])
        #expect(rejects.status == 0)
        let rows = jsonLines(rejects.stdout)
        let got = rows.map { "\($0["line"] as! Int):\($0["reason"] as! String)" }
        #expect(got == ["2:invalid_json", "3:invalid_json", "4:not_an_object", "5:line_too_long", "7:invalid_utf8",
                        "8:missing_timestamp", "9:invalid_timestamp"])
        #expect(rows.allSatisfy { ($0["source"] as? String) == input })
        #expect(rows.allSatisfy { (($0["prefix"] as? String)?.utf8.count ?? 999) <= 120 + 3 }, "only a bounded prefix is kept")
        // --strict turns rejects into a non-zero exit, for pipelines that want it.
        let strict = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("strict.db"), "--rules", rules, "--config", config, "--strict"])
        #expect(strict.status == 3)
    }

    @Test func alertsGoToStdoutAsJSONLinesInAPipe() throws {
        let dir = TempDir()
        let lines = (0..<5).map { logLine(time: at($0 * 30), user: "attacker", session: "s-9", injection: 0.9) }
        let input = dir.write("attack.jsonl", lines.joined(separator: "\n") + "\n")
        let r = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("state.db"), "--rules", rules])
        #expect(r.status == 0)
        let alerts = jsonLines(r.stdout)
        #expect(alerts.count == 1)
        #expect(alerts.first?["rule"] as? String == "rapid_fire_injection_attempts")
        #expect(alerts.first?["group_value"] as? String == "attacker")
        #expect(r.stderr.contains("rapid_fire_injection_attempts [high]: 1 raised, 1 suppressed"))
        let listed = try run(iwDetectBinary, ["alerts", "list", "--db", dir.file("state.db"), "--json"])
        #expect(jsonLines(listed.stdout).map { $0["id"] as? String } == alerts.map { $0["id"] as? String })
    }

    @Test func aBrokenRuleSetIsRefusedWithFileLineAndColumn() throws {
        let dir = TempDir()
        dir.write("rules/bad.yaml", """
            - name: broken
              severity: high
              condition: injection_score > AND count(session_id, 5m) > 3
            """)
        let input = dir.write("in.jsonl", logLine(time: at(0)) + "\n")
        let r = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("state.db"), "--rules", dir.file("rules")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("bad.yaml:3:32: error:"), "\(r.stderr)")
        #expect(r.stderr.contains("[syntax_error]"))
        let check = try run(iwDetectBinary, ["rules", "check", dir.file("rules")])
        #expect(check.status == 1)
        #expect(check.stdout.contains("bad.yaml:3:32"))
    }

    @Test func rulesCheckWarnsAboutTyposAndStrictMakesThemFatal() throws {
        let dir = TempDir()
        dir.write("rules/typo.yaml", """
            - name: typo
              severity: low
              condition: output_tokns > 100
            """)
        let lenient = try run(iwDetectBinary, ["rules", "check", dir.file("rules")])
        #expect(lenient.status == 0)
        #expect(lenient.stdout.contains("typo.yaml:3:14: warning: unknown field 'output_tokns'"), "\(lenient.stdout)")
        #expect(lenient.stdout.contains("did you mean 'output_tokens'?"))
        let strict = try run(iwDetectBinary, ["rules", "check", "--strict", dir.file("rules")])
        #expect(strict.status == 1)
        #expect(strict.stderr.contains("--strict makes warnings fatal"))
        // A field declared in the config is known.
        let config = dir.write("c.yaml", "fields: [output_tokns]\n")
        let declared = try run(iwDetectBinary, ["rules", "check", "--strict", "--config", config, dir.file("rules")])
        #expect(declared.status == 0, "\(declared.stdout)")
    }

    @Test func aLivePipeGetsTheAlertBeforeTheNextLineIsWritten() throws {
        let dir = TempDir()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = ["ingest", "-", "--db", dir.file("state.db"), "--rules", rules]
        let inp = Pipe(), out = Pipe()
        let errPath = dir.write("stderr", "")
        p.standardInput = inp
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        for k in 0..<4 {
            inp.fileHandleForWriting.write(Data((logLine(time: at(k * 30), user: "live", session: "live-s", injection: 0.95) + "\n").utf8))
        }
        // The fourth line makes the rule hold; its alert must arrive while the pipe stays open.
        let reader = out.fileHandleForReading
        var received = Data()
        let deadline = Date().addingTimeInterval(20)
        while !received.contains(UInt8(ascii: "\n")) && Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            received += chunk
        }
        let alert = jsonLines(String(decoding: received, as: UTF8.self)).first
        #expect(alert?["rule"] as? String == "rapid_fire_injection_attempts")
        #expect(p.isRunning, "the producer has not closed the pipe yet")
        inp.fileHandleForWriting.write(Data((logLine(time: at(200), user: "live", session: "live-s") + "\n").utf8))
        try inp.fileHandleForWriting.close()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let summary = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(summary.contains("stdin: 5 lines read, 5 accepted"))
    }
}
