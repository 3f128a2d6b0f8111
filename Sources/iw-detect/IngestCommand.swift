import Alerts
import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline
import Rules

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

    @Option(help: ArgumentHelp("Seconds to wait at the end for network sinks to deliver (default 30).", valueName: "seconds"))
    var drainTimeout: Double = 30

    @Flag(help: "Read the file from its first line even when it, or a file with the same first KiB under another path, was ingested before (its events are counted again).")
    var reingest = false

    @Flag(help: "Print the summary as JSON on standard error.")
    var jsonSummary = false

    @Flag(help: "Alerts on stdout as readable lines even in a pipe.")
    var readable = false

    func run() async throws {
        var config = try common.engineConfig()
        if readable { config.readableStdout = true }
        let engine: Engine
        do {
            engine = try Engine(config: config)
        } catch let e as RuleLoadError {
            printErr(e.description)
            throw ExitCode(2)
        } catch {
            printErr("iw-detect: \(error)")
            throw ExitCode(1)
        }
        for w in engine.warnings { printErr(w.description) }
        let showProgress = isTerminal(STDERR_FILENO) && input != "-"
        if showProgress {
            engine.progress = { s in
                let rate = s.seconds > 0 ? Double(s.linesRead) / s.seconds : 0
                printErrInline(String(format: "\r%lld lines, %lld alerts, %.0f lines/s ", s.linesRead, s.alertsTotal, rate))
            }
        }
        let worker = engine.remoteSinks.isEmpty ? nil : DeliveryWorker(databasePath: config.databasePath, sinks: engine.remoteSinks, settings: config.delivery)
        let workerTask = worker.map { w in Task { await w.run() } }
        let summary: IngestSummary
        do {
            summary = try await engine.ingest(input == "-" ? .standardInput : .file(input), reingest: reingest)
        } catch {
            worker?.stop()
            printErr("iw-detect: \(error)")
            throw ExitCode(1)
        }
        if showProgress { printErrInline("\r\u{1B}[K") }
        if let worker, workerTask != nil {
            let remaining = await worker.drain(timeout: drainTimeout)
            // Not awaited: a request in flight is bounded by its timeout, and its row stays
            // pending in the outbox (delivered at least once, by this or a later run).
            worker.stop()
            if remaining > 0 {
                printErr("delivery: \(remaining) alert deliveries still pending after \(Int(drainTimeout))s; they stay in the outbox (iw-detect alerts list / redeliver)")
            }
        }
        printErr(jsonSummary ? summary.json.serialized() : summary.text(source: input == "-" ? "stdin" : input))
        if strict && summary.rejectedTotal > 0 { throw ExitCode(3) }
    }
}

func printErrInline(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}
