import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write deterministic synthetic inference logs (benign traffic and attack scenarios) to stdout.",
        discussion: "The same --seed and options always give the same bytes. Scenarios: \(TrafficGenerator.Scenario.allCases.map(\.rawValue).joined(separator: ", "))."
    )

    @Option(help: "Lines to write.") var lines = 10_000
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Event time of the first line (RFC 3339).") var start = "2026-11-01T00:00:00Z"
    @Option(help: "Milliseconds of event time between benign events.") var intervalMs: Int64 = 2000
    @Option(help: "Distinct benign users.") var users = 200
    @Flag(help: "Benign traffic only.") var noAttacks = false

    func validate() throws {
        guard Timestamp.parse(start) != nil else { throw ValidationError("--start '\(start)' is not an RFC 3339 time such as 2026-11-01T00:00:00Z") }
        guard lines >= 0, intervalMs > 0, users > 0 else { throw ValidationError("--lines, --interval-ms and --users must be positive") }
    }

    func run() async throws {
        var o = TrafficGenerator.Options()
        o.lines = lines
        o.seed = seed
        o.start = Timestamp.parse(start)!
        o.interval = EventTime.Duration(micros: intervalMs * 1000)
        o.users = users
        o.attacks = !noAttacks
        var g = TrafficGenerator(options: o)
        var buffer = ""
        buffer.reserveCapacity(1 << 20)
        let out = FileHandle.standardOutput
        g.generate { line in
            buffer += line
            buffer += "\n"
            if buffer.utf8.count >= 1 << 20 {
                out.write(Data(buffer.utf8))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        out.write(Data(buffer.utf8))
    }
}
