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
        @Option(help: "At most this many, oldest first (standard error says when more exist).") var limit = 1000
        @Flag(help: "One JSON object per line (the default in a pipe).") var json = false

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            let db = try common.existingDatabase()
            let asJSON = json || !isTerminal(STDOUT_FILENO)
            let rows = try StoredAlert.list(db, rule: rule, limit: limit)
            for a in rows {
                print(asJSON ? a.json : a.summary + (a.suppressed > 0 ? " (+\(a.suppressed) suppressed)" : ""))
            }
            let total = try StoredAlert.count(db, rule: rule)
            if total > rows.count { printErr("showing \(rows.count) of \(total) alerts; use --limit \(total) for all") }
            if !asJSON {
                for (sink, status, n) in try OutboxEntry.counts(db) { printErr("outbox \(sink): \(n) \(status)") }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one alert (by id or id prefix) and its deliveries.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The alert id, or a prefix of it that only one alert has.") var id: String

        func run() async throws {
            let db = try common.existingDatabase()
            let a = try AlertsCommand.resolve(id, in: db)
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
        @Argument(help: "Only this alert (its id or a unique prefix).") var id: String?
        @Flag(help: "Also resend rows already delivered.") var all = false
        @Option(help: "Seconds to wait for delivery.") var timeout: Double = 30

        func run() async throws {
            let config = try common.engineConfig()
            let db = try common.existingDatabase()
            let alertID = try id.map { try AlertsCommand.resolve($0, in: db).id }
            let n = try Deliverer.requeue(db, alertID: alertID, deadOnly: !all)
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

    /// The alert an id or id prefix names; an ambiguous prefix lists the candidates.
    static func resolve(_ id: String, in db: Database) throws -> StoredAlert {
        let found = try StoredAlert.matching(db, id: id)
        guard let a = found.first else { throw CLIError("no alert with id \(id)") }
        guard found.count == 1 else {
            let more = found.count == 20 ? " (or more)" : ""
            throw CLIError("\(found.count)\(more) alerts have ids starting with \(id); give more of the id:\n" +
                           found.map { "  \($0.id)  \($0.eventTime) \($0.rule) \($0.groupValue)" }.joined(separator: "\n"))
        }
        return a
    }
}
