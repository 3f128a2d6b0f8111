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

    @Option(help: "Only rejects of this source (a file path, or stdin).")
    var source: String?

    @Option(help: "At most this many.")
    var limit = 1000

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
        let db = try openStateDatabase(common.databasePath)
        let rows = try IngestStore.rejects(db, source: source, limit: limit)
        for r in rows {
            if json {
                print(JSONValue.object([
                    ("source", .string(r.source)), ("line", .int(r.line)), ("offset", .int(r.offset)),
                    ("reason", .string(r.reason.rawValue)), ("detail", .string(r.detail)), ("prefix", .string(r.prefix)),
                ]).serialized())
            } else {
                print("\(r.message)\n    \(r.prefix.prefix(100).replacingOccurrences(of: "\n", with: " "))")
            }
        }
        if !json {
            let counts = try IngestStore.rejectCounts(db)
            let total = counts.reduce(0) { $0 + $1.1 }
            printErr("\(total) rejects recorded" + (counts.isEmpty ? "" : ": " + counts.map { "\($0.0) \($0.1)" }.joined(separator: ", ")))
        }
    }
}
