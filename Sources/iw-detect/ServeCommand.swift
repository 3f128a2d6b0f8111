import Alerts
import ArgumentParser
import Foundation
import IWDetectCore
import Ingest
import IngestHTTP
import Logging
import Pipeline
import Rules

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run as a daemon: an HTTP input (InferenceWall's IW_ELK_URL), followed files, health and Prometheus metrics.",
        discussion: """
            Accepts what a Logstash http input with codec json accepts, on any path: a JSON
            object, a JSON array of objects, or NDJSON, optionally gzip-compressed. A request is
            answered 200 once its records are committed to the input journal (a SQLite file
            next to the database), before any detection work; the pipeline processes the
            journal in order and commits its position with the state it produced, so an
            acknowledged record is processed exactly once, even across kill -9.
            Answers: 400 (a record is not a JSON object; the others are taken, each bad one is a
            reject), 401 (token missing), 413 (body too large), 503 + Retry-After (journal full,
            or shutting down). GET /healthz, /readyz and /metrics (Prometheus text format).
            SIGTERM or SIGINT: stop accepting, process the journal, commit, deliver pending
            alerts for up to serve.shutdown_timeout seconds, exit 0. SIGHUP reloads the rules.
            Environment: IW_DETECT_LISTEN, IW_DETECT_HTTP_TOKEN, IW_DETECT_JOURNAL,
            IW_DETECT_JOURNAL_SYNC, IW_DETECT_MAX_JOURNAL_RECORDS, IW_DETECT_MAX_JOURNAL_BYTES,
            IW_DETECT_MAX_BODY_BYTES
            override the config's serve section; options override both.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("HOST:PORT to listen on (default: $IW_DETECT_LISTEN, else serve.listen, else 127.0.0.1:8080; port 0 picks a free one).",
                               valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("tail"), help: ArgumentHelp("Also follow these files or glob patterns, as `tail` does (repeatable).", valueName: "path-or-glob"))
    var tailPatterns: [String] = []

    @Option(help: ArgumentHelp("The input journal (default: $IW_DETECT_JOURNAL, else serve.journal, else DB's name with .input.db).", valueName: "path"))
    var journal: String?

    @Flag(help: "Wait for another writer of the database to finish instead of exiting 1.")
    var wait = false

    @Flag(help: "Reload the rules when a rule file changes (SIGHUP always reloads).")
    var watchRules = false

    @Option(help: ArgumentHelp("Log lines on standard error as readable text or one JSON object each.", valueName: "text|json"))
    var logFormat = "text"

    func validate() throws {
        guard StderrLogHandler.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json") }
        if let listen, ServeSettings.parseListen(listen) == nil { throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080") }
    }

    /// The serve settings: the config's, then the environment's, then the options.
    func settings(_ config: EngineConfig, environment: [String: String]) throws -> ServeSettings {
        var s = config.serve
        func number(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            guard let n = Int(v), range.contains(n) else { throw CLIError("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), got '\(v)'") }
            return n
        }
        if let v = environment["IW_DETECT_LISTEN"], !v.isEmpty {
            guard ServeSettings.parseListen(v) != nil else { throw CLIError("IW_DETECT_LISTEN must be HOST:PORT, got '\(v)'") }
            s.listen = v
        }
        if let v = environment["IW_DETECT_JOURNAL"], !v.isEmpty { s.journalPath = v }
        if let v = environment["IW_DETECT_JOURNAL_SYNC"], !v.isEmpty {
            guard let sync = InputJournal.Sync(rawValue: v) else { throw CLIError("IW_DETECT_JOURNAL_SYNC must be normal or full, got '\(v)'") }
            s.journalSync = sync
        }
        if let v = environment["IW_DETECT_JOURNAL_KEEP"], !v.isEmpty {
            guard let d = EventTime.Duration(parsing: v), d.micros >= 0 else { throw CLIError("IW_DETECT_JOURNAL_KEEP must be a duration such as 0s, 6h or 7d, got '\(v)'") }
            s.journalKeep = Double(d.micros) / 1e6
        }
        if let n = try number("IW_DETECT_JOURNAL_KEEP_BYTES", 0...(1 << 40)) { s.journalKeepBytes = n }
        if let n = try number("IW_DETECT_MAX_JOURNAL_RECORDS", 1...100_000_000) { s.maxJournalRecords = n }
        if let n = try number("IW_DETECT_MAX_JOURNAL_BYTES", 1024...(1 << 40)) { s.maxJournalBytes = n }
        if let n = try number("IW_DETECT_MAX_BODY_BYTES", 1024...(1 << 30)) { s.maxBodyBytes = n }
        if environment["IW_DETECT_HTTP_TOKEN"] != nil { s.token = .environment("IW_DETECT_HTTP_TOKEN") }
        if let listen { s.listen = listen }
        if let journal { s.journalPath = journal }
        return s
    }

    func run() async throws {
        let format = StderrLogHandler.Format(rawValue: logFormat)!
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, format: format) }
        let logger = Logger(label: "iw-detect.serve")
        let environment = ProcessInfo.processInfo.environment
        let config = try common.engineConfig()
        let serve = try settings(config, environment: environment)
        var token: String?
        if let reference = serve.token {
            do {
                token = try reference.resolve(environment, sink: "serve", key: "token")
            } catch {
                throw CLIError(error.description)
            }
            if token?.isEmpty ?? true { throw CLIError("serve: the bearer token is empty") }
        }
        let lock = try common.lockDatabase(waiting: wait, command: "serve")
        defer { lock.release() }
        Interruption.install(reload: true, stop: false)
        let engine = try makeEngine(config, logger: logger, watchRules: watchRules) { logger.warning("\($0)") }
        var follow: FollowSource.Options?
        if !tailPatterns.isEmpty {
            var options = FollowSource.Options(patterns: tailPatterns)
            options.maxLineBytes = config.maxLineBytes
            follow = options
        }
        let daemon = try Daemon(engine: engine, settings: serve, token: token, follow: follow, logger: logger)
        let rules = engine.ruleSet.rules.count
        let following = tailPatterns.isEmpty ? "" : ", following \(tailPatterns.joined(separator: " "))"
        let journalPath = daemon.journal.path
        let summary = try await daemon.run { address in
            logger.info("listening on \(address): HTTP input into \(config.databasePath) (journal \(journalPath)) with \(rules) rule(s)\(following)",
                        metadata: ["address": .string(address)])
        }
        logger.info("stopped; everything received is processed and committed")
        printErr(summary.text(source: "serve"))
    }
}
