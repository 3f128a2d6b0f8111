import Yams

/// A problem found in a rule file, with a stable code and a position (Falco's load results).
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Level: String, Sendable { case error, warning }

    /// Stable identifier, e.g. `syntax_error`, `unknown_function`, `unknown_key`.
    public var code: String
    public var level: Level
    public var message: String
    public var file: String
    public var line: Int
    public var column: Int

    public init(_ code: String, _ level: Level = .error, _ message: String, file: String, line: Int, column: Int) {
        self.code = code
        self.level = level
        self.message = message
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column: error: message [code]`, as compilers print it.
    public var description: String { "\(file):\(line):\(column): \(level.rawValue): \(message) [\(code)]" }
}

/// A condition-level error before it is placed in a file.
struct ConditionError: Error, Sendable {
    var code: String
    var message: String
    var offset: Int
}

extension Diagnostic {
    /// A YAML document that could not be read, placed where the YAML library says.
    public static func yaml(_ error: any Error, file: String) -> Diagnostic {
        guard let e = error as? YamlError else {
            return Diagnostic("yaml_error", .error, "invalid YAML: \(error)", file: file, line: 1, column: 1)
        }
        switch e {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return Diagnostic("yaml_error", .error, "invalid YAML: \(problem)", file: file, line: mark.line, column: mark.column)
        case let .reader(problem, offset, _, _):
            return Diagnostic("yaml_error", .error, "invalid YAML: \(problem)" + (offset.map { " at byte \($0)" } ?? ""), file: file, line: 1, column: 1)
        case let .duplicatedKeysInMapping(duplicates, context):
            return Diagnostic("duplicate_key", .error,
                              "key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")) appears twice in the mapping that starts here",
                              file: file, line: context.mark.line, column: context.mark.column)
        default:
            return Diagnostic("yaml_error", .error, "invalid YAML: \(e)", file: file, line: 1, column: 1)
        }
    }
}
