import ArgumentParser
import Foundation
import IWDetectCore
import Pipeline
import Rules

struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check, test and list detection rules.",
        subcommands: [Check.self, Test.self, List.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Report every problem in a rule set, with file, line, column and code; exit 1 on errors.")
        @Argument(help: "Rule files or directories (default: the configured rules).") var paths: [String] = []
        @OptionGroup var common: CommonOptions
        @Flag(help: "Treat warnings (unknown fields, unknown keys) as errors: exit 1 when there is any.") var strict = false

        func run() async throws {
            let config = try common.engineConfig()
            let result = RuleLoader.load(paths: paths.isEmpty ? config.rulePaths : paths, metrics: config.metrics, fields: FieldTable(), extraFields: config.fields)
            for d in result.diagnostics { print(d.description) }
            let errors = result.errors.count
            let warnings = result.diagnostics.count - errors
            if strict && warnings > 0 {
                printErr("\(errors) error(s), \(warnings) warning(s); --strict makes warnings fatal")
                throw ExitCode(1)
            }
            if let set = result.ruleSet {
                printErr("\(set.rules.count) rules OK" + (set.disabled.isEmpty ? "" : ", \(set.disabled.count) disabled") + ", \(set.lists.count) lists, \(warnings) warning(s)")
            } else {
                printErr("\(errors) error(s), \(warnings) warning(s)")
                throw ExitCode(1)
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run every rule's embedded tests (events in, expected alerts or silence out); exit 1 on a failure.")
        @Argument(help: "Rule files or directories (default: the configured rules).") var paths: [String] = []
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print passing tests too.") var verbose = false

        func run() async throws {
            let config = try common.engineConfig()
            let loaded = RuleLoader.load(paths: paths.isEmpty ? config.rulePaths : paths, metrics: config.metrics, fields: FieldTable(), extraFields: config.fields)
            guard loaded.ruleSet != nil else {
                for d in loaded.diagnostics { print(d.description) }
                throw ExitCode(1)
            }
            let results = RuleTestRunner.run(loaded, metrics: config.metrics)
            for r in results where verbose || !r.passed { print(r.description) }
            let failed = results.filter { !$0.passed }.count
            let untested = ((loaded.ruleSet?.names ?? []) + (loaded.ruleSet?.disabled ?? [])).filter { name in !results.contains { $0.test.rule == name } }
            if !untested.isEmpty { printErr("rules without tests: \(untested.joined(separator: ", "))") }
            printErr("\(results.count - failed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the loaded rules: name, severity, action, dedup and condition.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "One JSON object per rule.") var json = false

        func run() async throws {
            let config = try common.engineConfig()
            let result = RuleLoader.load(paths: config.rulePaths, metrics: config.metrics, fields: FieldTable(), extraFields: config.fields)
            guard let set = result.ruleSet else {
                for d in result.diagnostics { printErr(d.description) }
                throw ExitCode(1)
            }
            for r in set.rules {
                let i = r.info
                if json {
                    print(JSONValue.object([
                        ("name", .string(i.name)), ("severity", .string(i.severity.rawValue)), ("action", .string(i.action)),
                        ("condition", .string(i.condition)), ("dedup_key", .array(i.dedupKey.map { .string($0) })),
                        ("dedup_window", .string(i.dedupWindow.description)), ("file", .string(r.file)),
                    ]).serialized())
                } else {
                    print("\(pad(i.name, 34))\(pad(i.severity.rawValue, 9))\(pad(i.action, 26))\(i.condition)")
                }
            }
        }
    }
}
