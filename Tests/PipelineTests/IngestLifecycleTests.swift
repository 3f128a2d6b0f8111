import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// `ingest` as an operator runs it: interrupted, run twice at once, watched on a terminal, given a
/// renamed file.
@Suite struct IngestLifecycleTests {
    let rules = packageRoot + "/rules"

    /// Polls the committed checkpoint line of `db` until it passes `line` or `p` ends.
    func waitForCommit(_ db: String, past line: Int64, while p: Process) {
        let deadline = Date().addingTimeInterval(60)
        var committed: Int64 = 0
        while committed < line && p.isRunning && Date() < deadline {
            usleep(5_000)
            if let d = try? Database(path: db, readOnly: true) {
                committed = (try? d.query("SELECT line FROM checkpoints", [], { $0.int(0) }).first) ?? 0
            }
        }
    }

    /// Waits until `p` holds the lock of `db` (its pid is in the lock file).
    func waitForLock(_ db: String, by p: Process) {
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline,
              (try? String(contentsOfFile: db + "-lock", encoding: .utf8))?.hasPrefix("\(p.processIdentifier)\n") != true {
            usleep(10_000)
        }
    }

    func start(_ arguments: [String], stdin: Pipe? = nil, stderr: String, stdout: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = arguments
        if let stdin { p.standardInput = stdin }
        p.standardOutput = stdout.map { FileHandle(forWritingAtPath: $0)! } ?? FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: stderr)
        try p.run()
        return p
    }

    @Test func sigtermCommitsTheBatchSaysWhereAndTheSameCommandResumes() throws {
        let dir = TempDir()
        let input = dir.write("big.jsonl", DeterminismTests.generated(40_000, seed: 5).joined(separator: "\n") + "\n")
        let config = dir.write("config.yaml", "batch_lines: 500\nstdout: false\n")
        let reference = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("ref.db"), "--rules", rules, "--config", config])
        #expect(reference.status == 0)

        let db = dir.file("state.db")
        let args = ["ingest", input, "--db", db, "--rules", rules, "--config", config]
        let errPath = dir.write("stderr", "")
        let p = try start(args, stderr: errPath)
        waitForCommit(db, past: 2_000, while: p)
        #expect(p.isRunning, "still running when signalled")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let stderr = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(p.terminationReason == .exit && p.terminationStatus == 143, "\(stderr)")
        let said = try #require(stderr.firstMatch(of: /interrupted by SIGTERM at (.+):(\d+); everything before it is committed; run the same command to resume/))
        #expect(String(said.1) == input)
        #expect(stderr.contains("lines read"), "the partial summary is printed")
        // The checkpoint is exactly where it said it stopped.
        let next = try Database(path: db).query("SELECT line FROM checkpoints", [], { $0.int(0) }).first
        #expect(next == Int64(said.2))

        let resumed = try run(iwDetectBinary, args + ["--json-summary"])
        #expect(resumed.status == 0)
        let summary = try #require(jsonLines(resumed.stderr).last)
        #expect(summary["lines_read"] as? Int == 40_000 - Int(said.2)! + 1, "resumed at the line it named")
        #expect(canonical(try storedAlerts(dir.file("ref.db"))) == canonical(try storedAlerts(db)), "nothing lost, nothing twice")
    }

    @Test func sigintOnAQuietPipeCommitsWhatArrivedAndExits130() throws {
        let dir = TempDir()
        let db = dir.file("state.db")
        let inp = Pipe()
        let errPath = dir.write("stderr", "")
        let p = try start(["ingest", "-", "--db", db, "--rules", rules], stdin: inp, stderr: errPath)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let lines = (0..<4).map { logLine(time: at($0 * 30), user: "u", session: "s", injection: 0.9) } + ["not json"]
        inp.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        // Wait until the reject of line 5 is committed: the reader is then blocked on the quiet pipe.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && p.isRunning,
              jsonLines((try? run(iwDetectBinary, ["rejects", "--db", db, "--json"]))?.stdout ?? "").isEmpty {
            usleep(50_000)
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stderr = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(p.terminationStatus == 130, "\(stderr)")
        #expect(stderr.contains("interrupted by SIGINT at stdin:6; everything before it is committed"), "\(stderr)")
        #expect(stderr.contains("stdin: 5 lines read, 4 accepted, 1 rejected"))
        let alerts = try run(iwDetectBinary, ["alerts", "list", "--db", db, "--json"])
        #expect(jsonLines(alerts.stdout).map { $0["rule"] as? String } == ["rapid_fire_injection_attempts"])
    }

    @Test func aSecondIngestOfTheSameDatabaseNamesTheHolderOrWaits() throws {
        let dir = TempDir()
        let db = dir.file("state.db")
        let inp = Pipe()
        let holder = try start(["ingest", "-", "--db", db, "--rules", rules], stdin: inp, stderr: dir.write("holder.err", ""))
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        inp.fileHandleForWriting.write(Data((logLine(time: at(0)) + "\n").utf8))
        let other = dir.write("other.jsonl", logLine(time: at(1), id: "other") + "\n")
        waitForLock(db, by: holder)
        let second = try run(iwDetectBinary, ["ingest", other, "--db", db, "--rules", rules])
        #expect(second.status == 1)
        #expect(second.stderr.contains("is in use by another iw-detect, pid \(holder.processIdentifier) (iw-detect ingest -)"), "\(second.stderr)")
        #expect(second.stderr.contains("--wait"))
        let recompute = try run(iwDetectBinary, ["baseline", "recompute", "--db", db])
        #expect(recompute.status == 1 && recompute.stderr.contains("pid \(holder.processIdentifier)"), "\(recompute.stderr)")

        // --wait: blocks until the holder ends, then ingests.
        let waiterErr = dir.write("waiter.err", "")
        let waiter = try start(["ingest", other, "--db", db, "--rules", rules, "--wait"], stderr: waiterErr)
        usleep(500_000)
        #expect(waiter.isRunning, "waits while the lock is held")
        try inp.fileHandleForWriting.close()
        holder.waitUntilExit()
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 0)
        #expect(try String(contentsOfFile: waiterErr, encoding: .utf8).contains("1 lines read, 1 accepted"))
    }

    /// A lock held by a process that was killed is free at once.
    @Test func theLockOfAKilledIngestIsReleased() throws {
        let dir = TempDir()
        let db = dir.file("state.db")
        let inp = Pipe()
        let holder = try start(["ingest", "-", "--db", db, "--rules", rules], stdin: inp, stderr: dir.write("holder.err", ""))
        inp.fileHandleForWriting.write(Data((logLine(time: at(0)) + "\n").utf8))
        waitForLock(db, by: holder)
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let after = try run(iwDetectBinary, ["ingest", dir.write("in.jsonl", logLine(time: at(5)) + "\n"), "--db", db, "--rules", rules])
        #expect(after.status == 0, "\(after.stderr)")
    }

    @Test func theProgressLineIsClearedBeforeEachAlertAndShowsPercentAndETA() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", DeterminismTests.generated(60_000, seed: 3).joined(separator: "\n") + "\n")
        let config = dir.write("config.yaml", "batch_lines: 200\n")
        // stdout and stderr into one file, as on a terminal.
        let both = dir.write("both", "")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iwDetectBinary)
        p.arguments = ["ingest", input, "--db", dir.file("s.db"), "--rules", rules, "--config", config, "--progress", "--readable"]
        let handle = FileHandle(forWritingAtPath: both)!
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let text = try String(contentsOfFile: both, encoding: .utf8)
        let progress = text.components(separatedBy: "\r\u{1B}[K").filter { $0.contains("lines/s, ETA") }
        #expect(!progress.isEmpty, "a progress line was shown: \(text.prefix(300))")
        #expect(progress.allSatisfy { $0.firstMatch(of: /^\s*\d+% [\d.]+ [kMG]?B of [\d.]+ [kMG]?B, \d+ lines, \d+ alerts, \d+ lines\/s, ETA \d+:\d\d$/) != nil },
                "\(progress.prefix(3))")
        // Every alert line starts a line of its own: nothing of the progress line before it.
        let alertLines = text.components(separatedBy: "\n").filter { $0.firstMatch(of: /\s\|\s.*\[[0-9a-f]{16}\]$/) != nil }
        #expect(alertLines.count > 5)
        for line in alertLines {
            // What the terminal shows of the line: the text after the last clear.
            let visible = line.components(separatedBy: "\r\u{1B}[K").last ?? line
            #expect(visible.firstMatch(of: /^2026-\d\d-\d\dT/) != nil, "progress and alert ran together: \(line.debugDescription)")
        }
        let quiet = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("q.db"), "--rules", rules, "--config", config, "--progress", "--quiet"])
        #expect(!quiet.stderr.contains("ETA"), "--quiet turns progress off")
    }

    @Test func theSummaryCountsThisRunOnly() throws {
        let dir = TempDir()
        let db = dir.file("s.db")
        // An attacker's events alert and stay out of the baseline; one event is far too late.
        var first = (0..<5).map { logLine(time: at(600 + $0 * 30), user: "a", session: "s", injection: 0.9) }
        first.append(logLine(time: at(0), id: "late"))
        let one = try run(iwDetectBinary, ["ingest", dir.write("one.jsonl", first.joined(separator: "\n") + "\n"), "--db", db, "--rules", rules])
        #expect(one.stderr.contains("late events (beyond the allowed lateness, not counted by windows): 1"), "\(one.stderr)")
        #expect(one.stderr.contains("events kept out of it") && !one.stderr.contains("; 0 events kept out"), "\(one.stderr)")
        let two = try run(iwDetectBinary, ["ingest", dir.write("two.jsonl", logLine(time: at(900), id: "quiet") + "\n"), "--db", db, "--rules", rules])
        #expect(!two.stderr.contains("late events"), "the first run's late event is not this run's: \(two.stderr)")
        #expect(two.stderr.contains("; 0 events kept out of it"), "\(two.stderr)")
    }

    @Test func aRenamedFileIsNotIngestedTwiceUnlessAskedTo() throws {
        let dir = TempDir()
        let db = dir.file("s.db")
        let lines = (0..<50).map { logLine(time: at($0), id: "e\($0)") }
        let original = dir.write("app.log", lines.joined(separator: "\n") + "\n")
        #expect(try run(iwDetectBinary, ["ingest", original, "--db", db, "--rules", rules]).status == 0)
        // Rotated: renamed, and grown by two lines under its new name.
        let rotated = dir.file("app.log.1")
        try FileManager.default.moveItem(atPath: original, toPath: rotated)
        let h = FileHandle(forWritingAtPath: rotated)!
        h.seekToEndOfFile()
        h.write(Data((logLine(time: at(60), id: "new-1") + "\n" + logLine(time: at(61), id: "new-2") + "\n").utf8))
        try h.close()
        let again = try run(iwDetectBinary, ["ingest", rotated, "--db", db, "--rules", rules])
        #expect(again.status == 0)
        #expect(again.stderr.contains("warning: \(rotated) starts with the same bytes as \(dir.path)/app.log, which was ingested up to line 50; resumed at line 51"), "\(again.stderr)")
        #expect(again.stderr.contains("2 lines read, 2 accepted"))
        let forced = try run(iwDetectBinary, ["ingest", rotated, "--db", dir.file("s.db"), "--rules", rules, "--reingest"])
        #expect(forced.stderr.contains("52 lines read, 52 accepted"), "\(forced.stderr)")
    }
}
