import ArgumentParser
import Foundation
import IWDetectCore
import Ingest
import Logging
import Pipeline
import Rules

@main
struct IWDetect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iw-detect",
        abstract: "Streaming anomaly detection for AI inference logs.",
        discussion: """
            Reads JSON inference logs, keeps 14-day behavioural baselines in SQLite, evaluates the
            detection rules in rules/ and routes deduplicated alerts by severity.
            """,
        version: IWDetectVersion.current,
        subcommands: [
            IngestCommand.self, TailCommand.self, RejectsCommand.self, AlertsCommand.self, BaselineCommand.self, RulesCommand.self,
            SinksCommand.self, ExportsCommand.self, GenerateCommand.self, ServeCommand.self, ReportCommand.self, SessionCommand.self, UserCommand.self, PruneCommand.self,
        ]
    )

    /// Runs the command; operational failures print as `iw-detect: message` (no usage text) and
    /// exit 1, argument errors as argument-parser prints them.
    static func main() async {
        // A write past RLIMIT_FSIZE fails with EFBIG, reported like a full disk, instead of
        // killing the process.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            fail(error.description)
        } catch let error as DatabaseError {
            fail(error.description)
        } catch let error as ConfigError {
            fail(error.description)
        } catch let error as IngestError {
            fail(error.description)
        } catch let error as CommitError {
            fail(error.description)
        } catch {
            exit(withError: error)
        }
    }

    static func fail(_ message: String) -> Never {
        printErr("iw-detect: " + message)
        Foundation.exit(1)
    }
}

/// Options every command that touches state shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The state database (default: $IW_DETECT_DB, else ./iw-detect.db).", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("Rule files or directories (default: $IW_DETECT_RULES, else the bundled rules/).", valueName: "path"))
    var rules: [String] = []

    @Option(name: .long, help: ArgumentHelp("A YAML config file (default: $IW_DETECT_CONFIG, if set).", valueName: "path"))
    var config: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var databasePath: String { db ?? environment["IW_DETECT_DB"] ?? "iw-detect.db" }

    var rulePaths: [String] {
        if !rules.isEmpty { return rules }
        if let env = environment["IW_DETECT_RULES"], !env.isEmpty { return env.split(separator: ":").map(String.init) }
        return [BundledRules.directory()]
    }

    /// The state database of a command that reads it: it must exist (a read-only command never
    /// creates an empty one and reports "nothing").
    func existingDatabase() throws -> Database {
        let path = databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("no database at \(path); ingest something first, or name the database with --db or IW_DETECT_DB")
        }
        return try openStateDatabase(path)
    }

    /// Takes the database's one-writer lock for the rest of the command.
    func lockDatabase(waiting: Bool, command: String) throws -> DatabaseLock {
        do {
            return try DatabaseLock(databasePath: databasePath, command: "iw-detect " + command, wait: waiting)
        } catch let error as DatabaseLock.HeldError {
            throw CLIError(error.description)
        }
    }

    func engineConfig() throws -> EngineConfig {
        var c = EngineConfig(databasePath: databasePath, rulePaths: rulePaths)
        if let path = config ?? environment["IW_DETECT_CONFIG"] {
            do { try c.apply(file: path) } catch {
                printErr(String(describing: error))
                throw ExitCode(1)
            }
        }
        return c
    }
}

/// The engine of a command that runs the pipeline: rule-set errors are printed and exit 2; the
/// rule set's warnings go to `warn`. With a logger (the long-running commands), the engine logs
/// through it, reloads the rules on SIGHUP and, with `watchRules`, when a rule file changes.
func makeEngine(_ config: EngineConfig, logger: Logger? = nil, watchRules: Bool = false, warn: (String) -> Void) throws -> Engine {
    let engine: Engine
    do {
        engine = try Engine(config: config)
    } catch let e as RuleLoadError {
        printErr(e.description)
        throw ExitCode(2)
    }
    for w in engine.warnings { warn(w.description) }
    if let logger {
        engine.logger = logger
        engine.reloadOnSignal = true
        if watchRules { engine.watchRules() }
    }
    return engine
}

/// An error the CLI prints as `iw-detect: message` and exits 1 for.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Finds the rules that ship with iw-detect: the copy an install put beside the binary
/// (`PREFIX/share/iw-detect/rules`, found from the executable's real path, so operators can read
/// and edit it), else the copy built into the binary.
enum BundledRules {
    static func directory() -> String {
        let installed = executableDirectory().appendingPathComponent("../share/iw-detect/rules").standardized.path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: installed, isDirectory: &isDir), isDir.boolValue { return installed }
        return BundledRuleFiles.path
    }

    /// The folder of the running executable, with symbolic links resolved (not from argv[0],
    /// which is only a name when the binary is run from $PATH).
    static func executableDirectory() -> URL {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        let path = n > 0 ? String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : (Bundle.main.executablePath ?? CommandLine.arguments[0])
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
    }
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
