import Alerts
import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline

struct SinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sinks",
        abstract: "List the configured sinks, and send a test alert to one.",
        subcommands: [List.self, Test.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The configured sinks: name, type, where they deliver (no secrets), and the severities routed to them.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "One JSON object per sink.") var json = false

        func run() async throws {
            let config = try common.engineConfig()
            var rows: [(name: String, kind: String, summary: String)] = config.sinks.map { ($0.name, type(of: $0).kind, $0.summary) }
            if config.stdout ?? config.sinks.isEmpty, !rows.contains(where: { $0.name == "stdout" }) {
                rows.append(("stdout", "stdout", "standard output (every alert)"))
            }
            for r in rows {
                let severities = Severity.allCases.filter { config.routes[$0]?.contains(r.name) == true }.map(\.rawValue)
                if json {
                    print(JSONValue.object([("name", .string(r.name)), ("type", .string(r.kind)), ("delivers", .string(r.summary)),
                                            ("severities", .array(severities.map { .string($0) }))]).serialized())
                } else {
                    print("\(pad(r.name, 16))\(pad(r.kind, 14))\(pad(severities.isEmpty ? "-" : severities.joined(separator: ","), 28))\(r.summary)")
                }
            }
            let configured = Set(rows.map(\.name))
            let unrouted = Set(config.routes.values.flatMap { $0 }).subtracting(configured)
            if !unrouted.isEmpty {
                printErr("routes name channels without a sink (skipped): \(unrouted.sorted().joined(separator: ", "))")
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a clearly marked test alert to one sink and print the receiver's answer; exit 1 when it fails.",
            discussion: "The alert is not stored and goes nowhere else. Its rule is iw_detect_sink_test, severity low, and it says it is a test."
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "The sink's name.") var name: String

        func run() async throws {
            let config = try common.engineConfig()
            let sinks = try config.makeSinks(environment: common.environment)
            guard let sink = sinks.first(where: { $0.name == name }) else {
                throw CLIError("no sink named \(name); configured: \(sinks.map(\.name).joined(separator: ", "))")
            }
            let alert = SinksCommand.testAlert()
            let began = Date()
            do throws(SinkError) {
                try await sink.deliver([alert])
            } catch {
                let ms = Date().timeIntervalSince(began) * 1000
                printErr(String(format: "%@: FAILED after %.0f ms: %@%@", name, ms, error.message,
                                error.isRetryable ? " (a retry may help)" : " (not retryable)"))
                throw ExitCode(1)
            }
            printErr(String(format: "%@: delivered test alert %@ in %.0f ms", name, alert.id, Date().timeIntervalSince(began) * 1000))
        }
    }

    /// The test alert: marked in its rule, description, recommended action and values.
    static func testAlert() -> AlertRecord {
        let now = EventTime(seconds: Date().timeIntervalSince1970)
        let rule = RuleInfo(name: "iw_detect_sink_test", description: "TEST ALERT sent by `iw-detect sinks test`: no action needed.",
                            severity: .low, action: "alert", recommendedAction: "None: this is a test of the sink.",
                            condition: "test", dedupKey: ["user_id"], dedupWindow: .minutes(1), channels: nil, tags: ["test"])
        let d = Detection(rule: rule, eventTime: now, eventID: "sink-test-\(now.micros)", eventIDs: ["sink-test-\(now.micros)"],
                          groupValues: ["iw-detect-sink-test"], userID: "iw-detect-sink-test", sessionID: nil,
                          evidence: [("test", .bool(true))])
        return AlertRecord(detection: d, suppressedBefore: 0, detectedAt: now)
    }
}
