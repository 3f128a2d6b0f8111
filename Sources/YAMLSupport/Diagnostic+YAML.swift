import IWDetectCore
import Yams

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
