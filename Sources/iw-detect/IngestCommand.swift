import Alerts
import ArgumentParser
import Exports
import Foundation
import IWDetectCore
import Ingest
import Pipeline
import Rules
import Synchronization

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest JSON inference logs from a file or standard input (-).",
        discussion: """
            Each line is one JSON event. Bad lines are recorded (see `iw-detect rejects`) and
            counted; processing goes on. A file is resumed where a previous ingest of it stopped.
            Standard input is processed as it arrives, so a live pipe gets alerts at once.
            Alerts go to the configured sinks (stdout by default: JSON lines in a pipe, readable
            lines on a terminal); the summary goes to standard error.
            """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: ArgumentHelp("The log file, or - for standard input.", valueName: "file"))
    var input: String

    @Flag(help: "Exit with status 3 when any line was rejected.")
    var strict = false

    @Option(help: ArgumentHelp("Seconds to wait at the end for network sinks and export targets to deliver (default 30).", valueName: "seconds"))
    var drainTimeout: Double = 30

    @Flag(help: "Read the file from its first line even when it, or a file with the same first KiB under another path, was ingested before (its events are counted again).")
    var reingest = false

    @Flag(help: "Print the summary as JSON on standard error.")
    var jsonSummary = false

    @Flag(help: "Alerts on stdout as readable lines even in a pipe.")
    var readable = false

    @Flag(help: "No progress line on a terminal.")
    var quiet = false

    @Flag(help: "A progress line on standard error even when it is not a terminal.")
    var progress = false

    @Flag(help: "Wait for another ingest of the same database to finish instead of exiting 1.")
    var wait = false

    @Option(help: ArgumentHelp("Threads: from 2, lines are read and decoded on a thread of their own beside the pipeline; 1 does everything on one (default: the config's threads, else 1).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be from 1 to 256") }
    }

    func run() async throws {
        var config = try common.engineConfig()
        if readable { config.readableStdout = true }
        if let threads { config.threads = threads }
        let lock = try common.lockDatabase(waiting: wait, command: "ingest \(input)")
        defer { lock.release() }
        Interruption.install()
        let engine = try makeEngine(config) { printErr($0) }
        let line = ProgressLine(enabled: !quiet && (progress || (isTerminal(STDERR_FILENO) && input != "-")))
        if line.enabled {
            engine.progress = { line.show($0) }
            engine.beforeLocalOutput = { line.clear() }
        }
        let worker = engine.remoteSinks.isEmpty ? nil : DeliveryService(databasePath: config.databasePath, sinks: engine.remoteSinks, policy: config.delivery)
        let workerTask = worker.map { w in Task { await w.run() } }
        let exports = ExportWorkers(engine, config)
        let source: InputSource = input == "-" ? .standardInput : .file(input)
        let summary: IngestSummary
        do {
            summary = try await engine.ingest(source, reingest: reingest)
        } catch {
            worker?.stop()
            exports?.service.stop()
            line.clear()
            throw error
        }
        line.clear()
        if let worker, workerTask != nil {
            // Interrupted: do not hold the user up; what is pending stays in the outbox.
            let remaining = await worker.drain(timeout: summary.interrupted == nil ? drainTimeout : 0)
            // Not awaited: a request in flight is bounded by its timeout, and its row stays
            // pending in the outbox (delivered at least once, by this or a later run).
            worker.stop()
            for (sink, st) in worker.stats().sorted(by: { $0.key < $1.key }) {
                printErr("delivery \(sink): \(st.delivered) delivered, \(st.failed) failed (to be retried), \(st.dead) dead-lettered" +
                         (st.circuitOpened > 0 ? ", circuit opened \(st.circuitOpened) time(s)" : "") +
                         (st.lastError.map { "; last error: \($0)" } ?? ""))
            }
            if remaining > 0 {
                printErr("delivery: \(remaining) alert deliveries still pending; they stay in the outbox and are sent by the next run (iw-detect alerts list / redeliver)")
            }
        }
        await exports?.finish(timeout: summary.interrupted == nil ? drainTimeout : 0)
        let name = input == "-" ? "stdin" : input
        if let (signal, next) = summary.interrupted {
            printErr("interrupted by \(Interruption.name(signal)) at \(name):\(next); everything before it is committed" +
                     (input == "-" ? "" : "; run the same command to resume"))
        }
        printErr(jsonSummary ? summary.json.serialized() : summary.text(source: name))
        if let (signal, _) = summary.interrupted { throw ExitCode(Interruption.exitStatus(signal)) }
        if strict && summary.rejectedTotal > 0 { throw ExitCode(3) }
    }
}

/// The progress line of a long ingest on standard error: percent, bytes and ETA when the input's
/// size is known. Cleared before alerts are printed, so the two never run together.
final class ProgressLine: Sendable {
    let enabled: Bool
    private let showing = Mutex(false)

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ s: IngestSummary) {
        let rate = s.seconds > 0 ? Double(s.linesRead) / s.seconds : 0
        var text = "\r\u{1B}[K"
        if let total = s.totalBytes, total > s.startOffset {
            let todo = Double(total - s.startOffset)
            let done = Double(s.bytes)
            let eta = done > 0 ? s.seconds * (todo - done) / done : 0
            text += String(format: "%3.0f%% %@ of %@, ", min(100, 100 * done / todo), ProgressLine.bytes(s.startOffset + s.bytes), ProgressLine.bytes(total))
            text += String(format: "%lld lines, %lld alerts, %.0f lines/s, ETA %@", s.linesRead, s.alertsTotal, rate, ProgressLine.duration(eta))
        } else {
            text += String(format: "%lld lines, %@, %lld alerts, %.0f lines/s", s.linesRead, ProgressLine.bytes(s.bytes), s.alertsTotal, rate)
        }
        printErrInline(text)
        showing.withLock { $0 = true }
    }

    func clear() {
        guard showing.withLock({ let was = $0; $0 = false; return was }) else { return }
        printErrInline("\r\u{1B}[K")
    }

    static func bytes(_ n: Int64) -> String {
        let x = Double(n)
        if x >= 1e9 { return String(format: "%.2f GB", x / 1e9) }
        if x >= 1e6 { return String(format: "%.1f MB", x / 1e6) }
        if x >= 1e3 { return String(format: "%.0f kB", x / 1e3) }
        return "\(n) B"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

func printErrInline(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}

/// The export workers of a run (`exports:`), started with it.
struct ExportWorkers {
    let service: ExportService
    let task: Task<Void, Never>

    init?(_ engine: Engine, _ config: EngineConfig) {
        guard !engine.exportTargets.isEmpty else { return nil }
        let service = ExportService(databasePath: config.databasePath, targets: engine.exportTargets, policy: config.delivery)
        self.service = service
        task = Task { await service.run() }
    }

    /// Waits up to `timeout` seconds for the spool to empty, stops the workers, and reports each
    /// target. Not awaited: a request in flight is bounded by its timeout, and its events stay
    /// queued (sent at least once, by this or a later run).
    func finish(timeout: Double) async {
        let left = await service.drain(timeout: timeout)
        service.stop()
        let stats = service.stats()
        for name in service.names {
            let st = stats[name] ?? ExportService.Stats()
            printErr("export \(name): \(st.sent) events sent in \(st.requests) request(s), \(st.failures) failed request(s)"
                     + (st.dead > 0 ? ", \(st.dead) events dead-lettered (refused for good)" : "")
                     + (st.lastError.map { "; last error: \($0)" } ?? "")
                     + ((left[name] ?? 0) > 0 ? "; \(left[name]!) events still queued, sent by the next run (iw-detect exports list)" : ""))
        }
    }
}
