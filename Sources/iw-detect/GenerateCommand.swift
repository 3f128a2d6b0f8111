import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write deterministic synthetic inference logs (benign traffic and attack scenarios) to stdout.",
        discussion: """
            The same --seed and options always give the same bytes. Scenarios: \(TrafficGenerator.Scenario.allCases.map(\.rawValue).joined(separator: ", ")).
            Profiles: default (about 1.9 KB lines, twelve attacks); realistic (about 2.5 KB lines with multi-paragraph outputs, \
            three weeks at about 400 events an hour, tool calls, about 2 % of events alerting with the bundled rules); \
            storm (like realistic, about 10 % of events alerting).
            """
    )

    @Option(help: "Traffic profile: default, realistic or storm.") var profile: TrafficGenerator.Profile = .default
    @Option(help: "Lines to write (default: 10000; realistic and storm: 201600, three weeks).") var lines: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Event time of the first line (RFC 3339).") var start = "2026-11-01T00:00:00Z"
    @Option(help: "Milliseconds of event time between benign events (default: 2000; realistic and storm: 9000 on average).")
    var intervalMs: Int64?
    @Option(help: "Distinct benign users (default: 200; realistic and storm: 300).") var users: Int?
    @Flag(help: "Benign traffic only.") var noAttacks = false

    func validate() throws {
        guard Timestamp.parse(start) != nil else { throw ValidationError("--start '\(start)' is not an RFC 3339 time such as 2026-11-01T00:00:00Z") }
        guard (lines ?? 0) >= 0, (intervalMs ?? 1) > 0, (users ?? 1) > 0 else {
            throw ValidationError("--lines, --interval-ms and --users must be positive")
        }
    }

    func run() async throws {
        var o = TrafficGenerator.Options(profile: profile)
        if let lines { o.lines = lines }
        o.seed = seed
        o.start = Timestamp.parse(start)!
        if let intervalMs { o.interval = EventTime.Duration(micros: intervalMs * 1000) }
        if let users { o.users = users }
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

extension TrafficGenerator.Profile: ExpressibleByArgument {}
