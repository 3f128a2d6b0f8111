import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// One batch that raises thousands of alerts: every one reaches every local sink before ingest ends.
@Suite struct AlertStormTests {
    @Test func everyAlertOfAStormReachesStdoutAndTheJSONLFile() throws {
        let dir = TempDir()
        let storm = 6_000
        // Each line: a new user calling an unapproved tool, so each raises its own alert.
        let lines = (0..<storm).map { i in
            logLine(time: at(i), user: "storm-\(i)", session: "s-\(i)", id: "storm-\(i)", tools: ["shell_exec"])
        }
        let input = dir.write("storm.jsonl", lines.joined(separator: "\n") + "\n")
        let jsonl = dir.file("alerts.jsonl")
        let config = dir.write("config.yaml", """
            batch_lines: 20000
            stdout: true
            sinks:
              - {name: siem, type: jsonl, path: \(jsonl)}
            """)
        let db = dir.file("state.db")
        let r = try run(iwDetectBinary, ["ingest", input, "--db", db, "--rules", packageRoot + "/rules", "--config", config, "--json-summary"])
        #expect(r.status == 0, "\(r.stderr.suffix(500))")
        let summary = try #require(jsonLines(r.stderr).last)
        let raised = (summary["alerts"] as? [String: Int] ?? [:]).values.reduce(0, +)
        #expect(raised == storm)
        let stdoutIDs = jsonLines(r.stdout).compactMap { $0["id"] as? String }
        #expect(stdoutIDs.count == storm)
        #expect(Set(stdoutIDs).count == storm, "no alert written twice")
        let fileIDs = jsonLines(try String(contentsOfFile: jsonl, encoding: .utf8)).compactMap { $0["id"] as? String }
        #expect(fileIDs == stdoutIDs, "the file got the same alerts, in the same order")
        let listed = try run(iwDetectBinary, ["alerts", "list", "--db", db, "--json", "--limit", "100000"])
        #expect(jsonLines(listed.stdout).compactMap { $0["id"] as? String } == stdoutIDs)
        // Nothing is left pending for a local sink.
        let pending = try Database(path: db).query("SELECT count(*) FROM outbox WHERE status != 'delivered'") { $0.int(0) }.first
        #expect(pending == 0)
    }
}
