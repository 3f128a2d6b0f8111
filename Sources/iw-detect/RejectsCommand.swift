import ArgumentParser
import Foundation
import IWDetectCore
import Ingest
import Pipeline

struct RejectsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejects",
        abstract: "List the lines that were rejected, with source, line number and reason."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Only rejects of this source: a file (however it is named: relative, absolute, through a link) or stdin.")
    var source: String?

    @Option(help: "At most this many, oldest first (standard error says when more exist).")
    var limit = 1000

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
        let db = try common.existingDatabase()
        let rows = try IngestStore.rejects(db, source: source, limit: limit)
        for r in rows {
            if json {
                var fields: [(String, JSONValue)] = [
                    ("source", .string(r.source)), ("line", .int(r.line)), ("offset", .int(r.offset)),
                    ("reason", .string(r.reason.rawValue)), ("detail", .string(r.detail)), ("prefix", .string(r.prefix)),
                ]
                if let remote = r.remote { fields.append(("remote", .string(remote))) }
                if let id = r.requestID { fields.append(("request_id", .string(id))) }
                print(JSONValue.object(fields).serialized())
            } else {
                let origin = r.remote.map { " (from \($0)" + (r.requestID.map { ", request \($0)" } ?? "") + ")" } ?? ""
                print("\(r.message)\(origin)\n    \(r.prefix.prefix(100).replacingOccurrences(of: "\n", with: " "))")
            }
        }
        let total = try IngestStore.rejectCount(db, source: source)
        if total > rows.count { printErr("showing \(rows.count) of \(total) rejects; use --limit \(total) for all") }
        if !json {
            let counts = try IngestStore.rejectCounts(db)
            let all = counts.reduce(0) { $0 + $1.1 }
            printErr("\(all) rejects recorded in the database" + (counts.isEmpty ? "" : ": " + counts.map { "\($0.0) \($0.1)" }.joined(separator: ", ")))
        }
    }
}
