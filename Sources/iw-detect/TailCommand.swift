import Alerts
import ArgumentParser
import Foundation
import IWDetectCore
import Ingest
import Logging
import Pipeline
import Rules

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow log files as they are written, across rotation, until SIGINT or SIGTERM.",
        discussion: """
            Follows every PATH and every file a GLOB matches (quote it, so the shell does not
            expand it: new matches are picked up as they appear) the way `tail -F` does: a file
            renamed by rotation is read to its end, the new file under the name from its first
            line; copytruncate, truncation, deletion and re-creation are followed. Files are known
            by identity and a fingerprint of their first bytes, and their offsets are committed
            with the state they produced, so a restart (even after kill -9) resumes exactly where
            the last commit left off. Include the rotated names in a glob (app.log*) so the end of
            a file rotated while iw-detect was down is read too. SIGINT or SIGTERM commits and
            exits 0. SIGHUP (or, with --watch-rules, a change to a rule file) reloads the rules:
            a set with errors is reported and the previous rules keep running.
            """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: ArgumentHelp("Files or glob patterns to follow.", valueName: "path-or-glob"))
    var patterns: [String]

    @Option(help: ArgumentHelp("Where to start in a file present at start and never read before: beginning or end.", valueName: "beginning|end"))
    var from = "beginning"

    @Option(help: ArgumentHelp("Seconds a file whose name is gone (rotated, deleted) may stay quiet before it is let go.", valueName: "seconds"))
    var rotateWait: Double = 5

    @Option(help: ArgumentHelp("Longest pause between scans for new and rotated files, in milliseconds.", valueName: "ms"))
    var pollInterval = 250

    @Flag(help: "Alerts on stdout as readable lines even in a pipe.")
    var readable = false

    @Flag(help: "Print the final summary as JSON on standard error.")
    var jsonSummary = false

    @Flag(help: "Wait for another writer of the database to finish instead of exiting 1.")
    var wait = false

    @Flag(help: "Reload the rules when a rule file changes (SIGHUP always reloads).")
    var watchRules = false

    @Option(help: ArgumentHelp("Log lines on standard error as readable text or one JSON object each.", valueName: "text|json"))
    var logFormat = "text"

    func validate() throws {
        guard ["beginning", "end"].contains(from) else { throw ValidationError("--from must be beginning or end") }
        guard rotateWait >= 0, rotateWait <= 3600 else { throw ValidationError("--rotate-wait must be between 0 and 3600 seconds") }
        guard (10...10_000).contains(pollInterval) else { throw ValidationError("--poll-interval must be between 10 and 10000 ms") }
        guard StderrLogHandler.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json") }
    }

    func run() async throws {
        let format = StderrLogHandler.Format(rawValue: logFormat)!
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, format: format) }
        let logger = Logger(label: "iw-detect.tail")
        var config = try common.engineConfig()
        if readable { config.readableStdout = true }
        let lock = try common.lockDatabase(waiting: wait, command: "tail \(patterns.joined(separator: " "))")
        defer { lock.release() }
        Interruption.install(reload: true)
        let engine = try makeEngine(config, logger: logger, watchRules: watchRules) { logger.warning("\($0)") }
        var options = FollowSource.Options(patterns: patterns)
        options.fromBeginning = from == "beginning"
        options.rotateWait = rotateWait
        options.pollInterval = Double(pollInterval) / 1000
        options.maxLineBytes = config.maxLineBytes
        let worker = engine.remoteSinks.isEmpty ? nil : DeliveryService(databasePath: config.databasePath, sinks: engine.remoteSinks, policy: config.delivery)
        let workerTask = worker.map { w in Task { await w.run() } }
        let exports = ExportWorkers(engine, config)
        logger.info("following \(patterns.joined(separator: " ")) into \(config.databasePath) with \(engine.ruleSet.rules.count) rule(s)")
        let summary = try await engine.follow(options) { path, what in logger.info("\(path): \(what)", metadata: ["file": .string(path)]) }
        if let worker, workerTask != nil {
            worker.stop()
            let pending = await worker.drain(timeout: 0)
            if pending > 0 { printErr("delivery: \(pending) alert deliveries still pending; they stay in the outbox and are sent by the next run") }
        }
        await exports?.finish(timeout: 0)
        if let (signal, _) = summary.interrupted { logger.info("stopped by \(Interruption.name(signal)); everything read is committed") }
        printErr(jsonSummary ? summary.json.serialized() : summary.text(source: "tail"))
    }
}
