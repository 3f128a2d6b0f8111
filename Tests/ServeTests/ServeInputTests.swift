import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The HTTP input of `serve`, through the real binary on loopback: what it accepts, what it
/// refuses and why, and that every record it acknowledged is processed.
@Suite(.serialized) struct ServeInputTests {
    /// A rule that alerts once per event, so processed events can be counted from the alerts.
    static let everyEvent = """
        - name: every_event
          severity: low
          condition: input_tokens > 0
          dedup: {key: [log_id]}
        """

    func setUp(_ dir: TempDir, config: String = "stdout: false\n") -> (db: String, args: [String]) {
        dir.write("rules/r.yaml", Self.everyEvent)
        dir.write("config.yaml", config)
        return (dir.file("state.db"), ["--rules", dir.file("rules"), "--config", dir.file("config.yaml")])
    }

    func alertEventIDs(_ db: String) throws -> [String] {
        try rows(db, "SELECT group_value FROM alerts ORDER BY group_value").map { $0[0] }
    }

    @Test func anObjectAnArrayNDJSONAndGzipAreAllTakenAndProcessed() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let serve = try ServeProcess(dir, db: db, arguments: args)
        // InferenceWall posts one object per request, to the URL as given (here the root).
        var a = http("POST", serve.url, text: event("obj-1", seconds: 0))
        #expect(a.status == 200, "\(a.body)")
        #expect(a.json?["accepted"] as? Int == 1)
        a = http("POST", serve.url + "/any/path", text: "[" + event("arr-1", seconds: 1) + "," + event("arr-2", seconds: 2) + "]")
        #expect(a.status == 200, "\(a.body)")
        #expect(a.json?["accepted"] as? Int == 2)
        a = http("PUT", serve.url + "/logs", text: event("nd-1", seconds: 3) + "\n\n" + event("nd-2", seconds: 4) + "\r\n" + event("nd-3", seconds: 5) + "\n")
        #expect(a.status == 200, "\(a.body)")
        #expect(a.json?["accepted"] as? Int == 3)
        // A pretty-printed object spans lines: one record, not three bad lines.
        a = http("POST", serve.url, text: "{\n  \"log_id\": \"pretty-1\",\n  \"timestamp\": \"\(at(6))\",\n  \"input_tokens\": 5\n}\n")
        #expect(a.status == 200, "\(a.body)")
        // An empty array is nothing to take and nothing wrong.
        a = http("POST", serve.url, text: "[]")
        #expect(a.status == 200 && a.json?["accepted"] as? Int == 0, "\(a.body)")
        let gz = try gzipped(Array((event("gz-1", seconds: 7) + "\n" + event("gz-2", seconds: 8)).utf8), dir)
        a = http("POST", serve.url, body: gz, headers: ["Content-Encoding": "gzip"])
        #expect(a.status == 200, "\(a.body)")
        #expect(a.json?["accepted"] as? Int == 2)
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == ["arr-1", "arr-2", "gz-1", "gz-2", "nd-1", "nd-2", "nd-3", "obj-1", "pretty-1"])
        #expect(serve.stderr.contains("serve: 9 lines read, 9 accepted, 0 rejected"), "\(serve.stderr)")
    }

    @Test func badRecordsAre400WithReasonsAndEachIsARejectWithItsRequest() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let serve = try ServeProcess(dir, db: db, arguments: args)
        var a = http("POST", serve.url, text: "{\"log_id\": \"x\", ", headers: ["X-Request-Id": "req-bad-1"])
        #expect(a.status == 400)
        #expect(a.json?["rejected"] as? Int == 1)
        #expect(a.headers["x-request-id"] == "req-bad-1")
        // NDJSON with one good line, one bad, one that is not an object: the good one is taken.
        a = http("POST", serve.url, text: event("good-1", seconds: 0) + "\nnot json\n[1,2]\n", headers: ["X-Request-Id": "req-bad-2"])
        #expect(a.status == 400)
        #expect(a.json?["accepted"] as? Int == 1)
        #expect(a.json?["rejected"] as? Int == 2)
        let problems = a.json?["problems"] as? [[String: Any]] ?? []
        #expect(problems.map { $0["reason"] as? String } == ["invalid_json", "not_an_object"])
        #expect(problems.map { $0["record"] as? Int } == [2, 3])
        a = http("POST", serve.url, text: "   \n  \n")
        #expect(a.status == 400)
        #expect(a.body.contains("no JSON record"))
        // Valid JSON without a timestamp is taken (200), then rejected by the pipeline, with its request.
        a = http("POST", serve.url, text: "{\"log_id\": \"no-time\"}", headers: ["X-Request-Id": "req-no-time"])
        #expect(a.status == 200)
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == ["good-1"])
        let rejects = try rows(db, "SELECT source, reason, remote, request_id FROM rejects ORDER BY id")
        #expect(rejects == [["http", "invalid_json", "127.0.0.1", "req-bad-1"], ["http", "invalid_json", "127.0.0.1", "req-bad-2"],
                            ["http", "not_an_object", "127.0.0.1", "req-bad-2"], ["http", "missing_timestamp", "127.0.0.1", "req-no-time"]])
        let listed = try run(iwDetectBinary, ["rejects", "--db", db])
        #expect(listed.stdout.contains("http:"), "\(listed.stdout)")
        #expect(listed.stdout.contains("(from 127.0.0.1, request req-bad-2)"), "\(listed.stdout)")
    }

    @Test func oversizeBodiesAre413AndGzipBombsToo() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let serve = try ServeProcess(dir, db: db, arguments: args, environment: ["IW_DETECT_MAX_BODY_BYTES": "4096"])
        var a = http("POST", serve.url, text: event("big", seconds: 0, extra: ["user_input": "\"" + String(repeating: "a", count: 5000) + "\""]))
        #expect(a.status == 413, "\(a.body)")
        // 1 MB of spaces and an object compress to about a kilobyte.
        let bomb = try gzipped(Array((String(repeating: " ", count: 1 << 20) + event("bomb", seconds: 1)).utf8), dir)
        #expect(bomb.count < 4096)
        a = http("POST", serve.url, body: bomb, headers: ["Content-Encoding": "gzip"])
        #expect(a.status == 413, "\(a.body)")
        a = http("POST", serve.url, body: Array("not gzip at all".utf8), headers: ["Content-Encoding": "gzip"])
        #expect(a.status == 400, "\(a.body)")
        // A gzip stream cut short is refused, not taken in part: here only its 8-byte trailer is
        // cut, so every record would still parse.
        let whole = try gzipped(Array((0..<6).map { event("cut-\($0)", seconds: 3 + $0) }.joined(separator: "\n").utf8), dir)
        a = http("POST", serve.url, body: Array(whole.prefix(whole.count - 8)), headers: ["Content-Encoding": "gzip"])
        #expect(a.status == 400, "\(a.body)")
        a = http("POST", serve.url, text: event("small", seconds: 2))
        #expect(a.status == 200)
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == ["small"])
    }

    @Test func aTokenIsRequiredWhenSetAndNeverLogged() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let token = "s3cret-token-value-1234"
        let serve = try ServeProcess(dir, db: db, arguments: args, environment: ["IW_DETECT_HTTP_TOKEN": token])
        var a = http("POST", serve.url, text: event("no-token", seconds: 0))
        #expect(a.status == 401)
        #expect(a.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        a = http("POST", serve.url, text: event("wrong", seconds: 1), headers: ["Authorization": "Bearer s3cret-token-value-1235"])
        #expect(a.status == 401)
        a = http("POST", serve.url, text: event("short", seconds: 1), headers: ["Authorization": "Bearer s3cret"])
        #expect(a.status == 401)
        a = http("POST", serve.url, text: event("right", seconds: 2), headers: ["Authorization": "Bearer " + token])
        #expect(a.status == 200)
        a = http("POST", serve.url, text: event("scheme", seconds: 3), headers: ["Authorization": "bearer " + token])
        #expect(a.status == 200, "the scheme is case-insensitive")
        #expect(http("GET", serve.url + "/healthz").status == 200)
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == ["right", "scheme"])
        #expect(!serve.stderr.contains(token))
        let dump = try run("/usr/bin/env", ["python3", "-c", "import sys; print(open(sys.argv[1],'rb').read().count(sys.argv[2].encode()))", db, token])
        #expect(dump.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test func aFullJournalAnswers503WithRetryAfterAndLosesNothing() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let serve = try ServeProcess(dir, db: db, arguments: args, environment: ["IW_DETECT_MAX_JOURNAL_RECORDS": "5"])
        // Hold the state database's write lock, so the pipeline cannot commit and the journal fills.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
            c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(float(sys.argv[2])); c.execute('COMMIT')
            """, db, "3"]
        let lockedPipe = Pipe()
        holder.standardOutput = lockedPipe
        try holder.run()
        _ = lockedPipe.fileHandleForReading.availableData
        var statuses: [Int] = []
        var retryAfter: String?
        var acked: [String] = []
        for i in 0..<12 {
            let a = http("POST", serve.url, text: event("bp-\(i)", seconds: i))
            statuses.append(a.status)
            if a.status == 503 { retryAfter = a.headers["retry-after"] }
            if a.status == 200 { acked.append("bp-\(i)") }
        }
        #expect(statuses.contains(503), "\(statuses)")
        #expect(statuses.filter { $0 == 200 }.count >= 5, "\(statuses)")
        #expect(retryAfter == "1")
        let ready = http("GET", serve.url + "/readyz")
        #expect(ready.status == 503, "\(ready.body)")
        holder.waitUntilExit()
        // Once the pipeline catches up, requests are taken again.
        let deadline = Date().addingTimeInterval(20)
        var after = http("POST", serve.url, text: event("bp-after", seconds: 20))
        while after.status == 503 && Date() < deadline {
            usleep(100_000)
            after = http("POST", serve.url, text: event("bp-after", seconds: 20))
        }
        #expect(after.status == 200)
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == (acked + ["bp-after"]).sorted())
    }

    @Test func followedFilesAndTheHTTPInputMeetInOnePipeline() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let log = dir.write("app.jsonl", event("file-1", seconds: 0) + "\n")
        let serve = try ServeProcess(dir, db: db, arguments: args + ["--tail", log])
        #expect(http("POST", serve.url, text: event("http-1", seconds: 1)).status == 200)
        let handle = FileHandle(forWritingAtPath: log)!
        handle.seekToEndOfFile()
        handle.write(Data((event("file-2", seconds: 2) + "\n").utf8))
        try handle.close()
        #expect(http("POST", serve.url, text: event("http-2", seconds: 3)).status == 200)
        // Both inputs are committed as they come, each with its own checkpoint.
        let deadline = Date().addingTimeInterval(20)
        while (try? alertEventIDs(db).count) ?? 0 < 4 && Date() < deadline { usleep(50_000) }
        #expect(serve.terminate() == 0)
        #expect(try alertEventIDs(db) == ["file-1", "file-2", "http-1", "http-2"])
        let sources = try rows(db, "SELECT source FROM checkpoints ORDER BY source").map { $0[0] }
        #expect(sources.contains("http-journal"))
        #expect(sources.contains { $0.hasPrefix("first-line:") }, "\(sources)")
        // A restart reads neither input again.
        let again = try ServeProcess(dir, db: db, arguments: args + ["--tail", log])
        #expect(again.terminate() == 0)
        #expect(again.stderr.contains("serve: 0 lines read"), "\(again.stderr)")
    }

    @Test func sigtermDrainsTheJournalAndExitsZero() throws {
        let dir = TempDir()
        let (db, args) = setUp(dir)
        let serve = try ServeProcess(dir, db: db, arguments: args)
        // Requests in flight while SIGTERM arrives: every one answered 200 is processed.
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let ackedPath = dir.write("acked", "")
        load.arguments = ["python3", packageRoot + "/Tests/Fixtures/http_load.py", serve.url, "--rate", "400", "--connections", "8",
                          "--seconds", "3", "--acked", ackedPath]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()
        usleep(1_500_000)
        #expect(serve.terminate() == 0)
        load.waitUntilExit()
        let acked = Set((try String(contentsOfFile: ackedPath, encoding: .utf8)).split(separator: "\n").map { "seq-\($0)" })
        #expect(acked.count > 100)
        let processed = Set(try alertEventIDs(db))
        #expect(acked.isSubset(of: processed), "\(acked.subtracting(processed).count) acknowledged events were not processed")
        #expect(serve.stderr.contains("stopped; everything received is processed and committed"), "\(serve.stderr)")
        // The journal is empty afterwards: the state database has the position of its last record.
        let position = try rows(db, "SELECT offset FROM checkpoints WHERE source = 'http-journal'").first?.first
        let last = try rows(dir.file("state.input.db"), "SELECT seq FROM sqlite_sequence WHERE name = 'journal_records'").first?.first
        #expect(position != nil && position == last)
    }
}
