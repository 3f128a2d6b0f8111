/// A problem found in a rule or config file, with a stable code and a position (Falco's load results).
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
