import ArgumentParser
import Foundation
import Pipeline

@main
struct IWDetect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iw-detect",
        abstract: "Streaming anomaly detection for AI inference logs.",
        discussion: """
            Reads JSON inference logs, keeps 14-day behavioural baselines in SQLite, evaluates the
            detection rules in rules/ and routes deduplicated alerts by severity.
            """,
        version: "0.1.0",
        subcommands: [
            IngestCommand.self, RejectsCommand.self, AlertsCommand.self, BaselineCommand.self, RulesCommand.self,
            GenerateCommand.self,
        ]
    )
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

    func engineConfig() throws -> EngineConfig {
        var c = EngineConfig(databasePath: databasePath, rulePaths: rulePaths)
        if let path = config ?? environment["IW_DETECT_CONFIG"] {
            do { try c.apply(file: path) } catch { throw CLIError(String(describing: error)) }
        }
        return c
    }
}

/// An error the CLI prints as `iw-detect: message` and exits 1 for.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Finds the rules that ship with iw-detect.
enum BundledRules {
    static func directory() -> String {
        let fm = FileManager.default
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let exeDir = exe.deletingLastPathComponent()
        var candidates = [
            exeDir.appendingPathComponent("../share/iw-detect/rules").standardized.path,
        ]
        // A build inside the checkout: .build/<config>/iw-detect → the checkout's rules/.
        var dir = exeDir
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("rules").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(fm.currentDirectoryPath + "/rules")
        for c in candidates {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: c, isDirectory: &isDir), isDir.boolValue,
               fm.fileExists(atPath: (c as NSString).deletingLastPathComponent + "/Package.swift") || c.hasSuffix("share/iw-detect/rules") {
                return c
            }
        }
        return fm.currentDirectoryPath + "/rules"
    }
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
