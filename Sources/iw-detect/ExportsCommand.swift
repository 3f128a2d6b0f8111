import Alerts
import ArgumentParser
import Exports
import Foundation
import IWDetectCore
import Pipeline

struct ExportsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exports",
        abstract: "The export targets (exports:) and where each stands.",
        subcommands: [List.self, Redeliver.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each export target: where it sends (no secrets), events sent, events queued and how far behind they are, events skipped, the last error.",
            discussion: """
                The state is one of: ok (nothing queued), sending (events queued within max_lag), failing (the last \
                request failed, events queued), stalled (the oldest queued event has waited more than max_lag: new events \
                are skipped and counted until it catches up).
                """
        )
        @OptionGroup var common: CommonOptions
        @Flag(help: "One JSON object per target.") var json = false

        func run() async throws {
            let config = try common.engineConfig()
            guard !config.exports.isEmpty else {
                printErr("no export targets are configured (exports: in the config file)")
                return
            }
            let names = config.exports.map(\.name)
            let statuses = FileManager.default.fileExists(atPath: config.databasePath)
                ? try ExportStore.status(try common.existingDatabase(), targets: names)
                : names.map { ExportStore.Status(name: $0) }
            let now = Date().timeIntervalSince1970
            for (target, st) in zip(config.exports, statuses) {
                let state = List.state(st)
                if json {
                    var o: [(String, JSONValue)] = [
                        ("name", .string(st.name)), ("type", .string(target.kind)), ("state", .string(state)), ("sends", .string(target.summary)),
                        ("sent", .int(st.sent)), ("requests", .int(st.requests)), ("failed_requests", .int(st.failures)),
                        ("queued", .int(st.pending)), ("lag_seconds", .number((st.lag(now: now) * 1000).rounded() / 1000)),
                        ("skipped", .int(st.skipped)), ("dead", .int(st.dead)),
                    ]
                    if let t = st.oldestPending { o.append(("oldest_queued", .string(t.description))) }
                    if let t = st.lastSentEventTime { o.append(("sent_through", .string(t.description))) }
                    if let t = st.skippedFirst, let u = st.skippedLast { o.append(("skipped_between", .array([.string(t.description), .string(u.description)]))) }
                    if let e = st.lastError { o.append(("last_error", .string(e))) }
                    if let at = st.lastErrorAt { o.append(("last_error_at", .string(EventTime(seconds: at).description))) }
                    print(JSONValue.object(o).serialized())
                    continue
                }
                print("\(st.name) (\(target.kind)): \(state)")
                print("  sends:   \(target.summary)")
                print("  sent:    \(st.sent) events in \(st.requests) request(s)" + (st.lastSentEventTime.map { ", through event time \($0)" } ?? "")
                      + (st.failures > 0 ? "; \(st.failures) failed request(s)" : ""))
                print("  queued:  \(st.pending) events" + (st.oldestPending.map { ", the oldest of event time \($0), waiting \(EventTime.Duration(micros: Int64(st.lag(now: now) * 1e6)))" } ?? ""))
                if st.skipped > 0, let a = st.skippedFirst, let b = st.skippedLast {
                    print("  skipped: \(st.skipped) events between \(a) and \(b) (stalled past max_lag, or larger than the receiver takes)")
                }
                if st.dead > 0 {
                    print("  dead:    \(st.dead) events the receiver refused \(config.delivery.maxAttempts) times (not retryable), kept in the table export_dead; iw-detect exports redeliver \(st.name) sends them again")
                }
                if let e = st.lastError { print("  last error: \(e)" + (st.lastErrorAt.map { " at \(EventTime(seconds: $0))" } ?? "")) }
            }
        }

        static func state(_ st: ExportStore.Status) -> String {
            if st.stalled { return "stalled" }
            if st.pending == 0 { return "ok" }
            if let e = st.lastErrorAt, e >= (st.lastSentAt ?? 0) { return "failing" }
            return "sending"
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a target's dead-lettered batches back at the head of its queue and send what is queued, waiting up to --timeout seconds.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The export target's name.") var name: String
        @Option(help: "Seconds to wait for delivery.") var timeout: Double = 30

        func run() async throws {
            let config = try common.engineConfig()
            guard let target = config.exports.first(where: { $0.name == name }) else {
                throw CLIError("no export target named \(name); configured: \(config.exports.map(\.name).joined(separator: ", "))")
            }
            let shipper: any EventShipper
            do { shipper = try target.makeShipper(environment: common.environment) } catch { throw CLIError(error.message) }
            let db = try common.existingDatabase()
            let requeued = try ExportStore.requeueDead(db, target: name)
            let service = ExportService(databasePath: config.databasePath, targets: [(target, shipper)], policy: config.delivery)
            let worker = Task { await service.run() }
            let left = await service.drain(timeout: timeout)
            service.stop()
            _ = worker
            let st = service.stats()[name] ?? ExportService.Stats()
            printErr("export \(name): requeued \(requeued) dead-lettered events; \(st.sent) events sent, \(st.failures) failed request(s)"
                     + (st.dead > 0 ? ", \(st.dead) dead-lettered again" : "") + (st.lastError.map { "; last error: \($0)" } ?? "")
                     + ((left[name] ?? 0) > 0 ? "; \(left[name]!) events still queued" : ""))
            if (left[name] ?? 0) > 0 || st.dead > 0 { throw ExitCode(1) }
        }
    }
}
