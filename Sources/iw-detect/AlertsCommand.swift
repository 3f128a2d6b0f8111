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
        @Option(help: "Only alerts of this severity (low, medium, high, critical).") var severity: String?
        @Option(help: ArgumentHelp("Only alerts whose event time is at or after this (RFC 3339).", valueName: "time")) var since: String?
        @Option(help: ArgumentHelp("Only alerts whose event time is before this (RFC 3339).", valueName: "time")) var until: String?
        @Option(help: "Only alerts of this user_id.") var user: String?
        @Option(help: ArgumentHelp("Only alerts with a delivery in this state (for --sink, when given).", valueName: "pending|delivered|dead"))
        var delivery: String?
        @Option(help: "Only alerts routed to this sink.") var sink: String?
        @Option(help: "At most this many, oldest first (standard error says when more exist).") var limit = 1000
        @Flag(help: "One JSON object per line (the default in a pipe).") var json = false

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
            if let severity, Severity(rawValue: severity) == nil { throw ValidationError("--severity must be low, medium, high or critical") }
            for (flag, value) in [("--since", since), ("--until", until)] {
                if let value, Timestamp.parse(value) == nil { throw ValidationError("\(flag) '\(value)' is not an RFC 3339 time such as 2026-11-01T00:00:00Z") }
            }
            if let delivery, !["pending", "delivered", "dead"].contains(delivery) { throw ValidationError("--delivery must be pending, delivered or dead") }
        }

        func run() async throws {
            let db = try common.existingDatabase()
            var filter = AlertStore.Filter()
            filter.rule = rule
            filter.severity = severity.flatMap(Severity.init(rawValue:))
            filter.since = since.flatMap(Timestamp.parse)
            filter.until = until.flatMap(Timestamp.parse)
            filter.user = user
            filter.delivery = delivery
            filter.sink = sink
            let asJSON = json || !isTerminal(STDOUT_FILENO)
            let rows = try AlertStore.list(db, filter, limit: limit)
            for a in rows {
                print(asJSON ? a.json.serialized() : a.summaryLine + (a.suppressed > 0 ? " (+\(a.suppressed) suppressed)" : ""))
            }
            let total = try AlertStore.count(db, filter)
            if total > rows.count { printErr("showing \(rows.count) of \(total) alerts; use --limit \(total) for all") }
            if !asJSON {
                for (sink, status, n) in try Outbox.counts(db) { printErr("outbox \(sink): \(n) \(status)") }
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
            print(a.json.serialized())
            for o in try Outbox.entries(db, alertID: a.id) {
                var line = "delivery to \(o.sink): \(o.status) after \(o.attempts) attempt(s)"
                if o.status == "pending" && o.nextAttemptAt > 0 {
                    line += ", next attempt at \(EventTime(micros: o.nextAttemptAt * 1000))"
                }
                printErr(line + (o.lastError.map { "; last error: \($0)" } ?? ""))
            }
            if a.suppressed > 0 { printErr("\(a.suppressed) repeats were suppressed into this alert") }
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver dead-lettered outbox rows again (with --now also those waiting on backoff; with --all every row).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "Only this alert (its id or a unique prefix).") var id: String?
        @Flag(help: "Also retry pending deliveries now instead of after their backoff.") var now = false
        @Flag(help: "Also resend rows already delivered.") var all = false
        @Option(help: "Seconds to wait for delivery.") var timeout: Double = 30

        func run() async throws {
            let config = try common.engineConfig()
            let db = try common.existingDatabase()
            let alertID = try id.map { try AlertsCommand.resolve($0, in: db).id }
            let n = try Outbox.requeue(db, alertID: alertID, waiting: now || all, all: all)
            let sinks = try config.makeSinks(environment: common.environment)
            let deadline = Date().addingTimeInterval(timeout)
            var delivered = 0, dead = 0
            for sink in sinks {
                let delivery = SinkDelivery(sink: sink, policy: config.delivery)
                while Date() < deadline {
                    switch try await delivery.deliverBatch(db, now: Date().timeIntervalSince1970) {
                    case .idle: break
                    case .delivered(let k): delivered += k; continue
                    case .failed(_, let d, let message):
                        dead += d
                        printErr("delivery to \(sink.name) failed: \(message)")
                        if try Outbox.pendingCount(db, sinks: [sink.name]) > 0 { try await Task.sleep(nanoseconds: 200_000_000); continue }
                    }
                    break
                }
            }
            printErr("requeued \(n) deliveries: \(delivered) delivered, \(dead) dead-lettered")
        }
    }

    /// The alert an id or id prefix names; an ambiguous prefix lists the candidates.
    static func resolve(_ id: String, in db: Database) throws -> AlertRecord {
        let found = try AlertStore.matching(db, id: id)
        guard let a = found.first else { throw CLIError("no alert with id \(id)") }
        guard found.count == 1 else {
            let more = found.count == 20 ? " (or more)" : ""
            throw CLIError("\(found.count)\(more) alerts have ids starting with \(id); give more of the id:\n" +
                           found.map { "  \($0.id)  \($0.eventTime) \($0.rule) \($0.groupValue)" }.joined(separator: "\n"))
        }
        return a
    }
}
