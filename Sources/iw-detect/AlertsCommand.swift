import Alerts
import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline

struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "List, show and redeliver alerts.",
        subcommands: [List.self, Show.self, Redeliver.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List alerts in the order they were raised.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Only alerts of this rule.") var rule: String?
        @Option(help: "At most this many.") var limit = 1000
        @Flag(help: "One JSON object per line (the default in a pipe).") var json = false

        func run() async throws {
            let db = try openStateDatabase(common.databasePath)
            let asJSON = json || !isTerminal(STDOUT_FILENO)
            for a in try StoredAlert.list(db, rule: rule, limit: limit) {
                print(asJSON ? a.json : a.summary + (a.suppressed > 0 ? " (+\(a.suppressed) suppressed)" : ""))
            }
            if !asJSON {
                for (sink, status, n) in try OutboxEntry.counts(db) { printErr("outbox \(sink): \(n) \(status)") }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one alert (by id or id prefix) and its deliveries.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The alert id.") var id: String

        func run() async throws {
            let db = try openStateDatabase(common.databasePath)
            guard let a = try StoredAlert.find(db, id: id) else { throw CLIError("no alert with id \(id)") }
            print(a.json)
            for o in try OutboxEntry.forAlert(db, id: a.id) {
                printErr("delivery to \(o.sink): \(o.status) after \(o.attempts) attempt(s)" + (o.lastError.map { "; last error: \($0)" } ?? ""))
            }
            if a.suppressed > 0 { printErr("\(a.suppressed) repeats were suppressed into this alert") }
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliver dead-lettered (or, with --all, every) outbox rows again.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "Only this alert id.") var id: String?
        @Flag(help: "Also resend rows already delivered.") var all = false
        @Option(help: "Seconds to wait for delivery.") var timeout: Double = 30

        func run() async throws {
            let config = try common.engineConfig()
            let db = try openStateDatabase(common.databasePath)
            let n = try Deliverer.requeue(db, alertID: id, deadOnly: !all)
            let sinks = try config.makeSinks(environment: common.environment)
            let deliverer = Deliverer(sinks: sinks, settings: config.delivery)
            let deadline = Date().addingTimeInterval(timeout)
            var delivered = 0, dead = 0
            for local in [true, false] {
                while Date() < deadline {
                    let pass = try await deliverer.deliverDue(db, local: local, now: Date().timeIntervalSince1970)
                    delivered += pass.delivered
                    dead += pass.dead
                    if try Deliverer.pendingCount(db, sinks: sinks.filter { $0.isLocal == local }.map(\.name)) == 0 { break }
                    if pass.delivered + pass.failed + pass.dead == 0 { try await Task.sleep(nanoseconds: 200_000_000) }
                }
            }
            printErr("requeued \(n) deliveries: \(delivered) delivered, \(dead) dead-lettered")
        }
    }
}
