import IWDetectCore
import Yams

/// Where a condition's text sits in a YAML file, so that an error points at its line and column.
public struct ConditionPosition: Sendable, Hashable {
    public var file: String
    public var line: Int
    /// The column of the condition's first character.
    public var column: Int

    /// The position of a scalar node's text.
    public init(file: String, node: Node) {
        self.file = file
        line = node.mark?.line ?? 0
        column = node.mark?.column ?? 0
        if case .scalar(let s) = node {
            switch s.style {
            case .singleQuoted, .doubleQuoted: column += 1
            case .literal, .folded: line += 1; column += 2
            default: break
            }
        }
    }

    func diagnostic(_ error: ConditionError, text: String) -> Diagnostic {
        let before = text.prefix(error.offset)
        let newlines = before.filter { $0 == "\n" }.count
        return Diagnostic(error.code, .error, error.message, file: file, line: line + newlines, column: newlines == 0 ? column + error.offset : 1)
    }
}

/// A condition of the rule language compiled on its own, evaluated per event: an export's
/// `filter:`. It reads fields, metrics, lists and baselines like a rule's condition; window
/// functions are refused (a filter keeps no state).
public struct EventCondition: Sendable {
    public let text: String
    let node: CompiledExpr
    let evaluator: RuleEngine

    /// Compiles `text`, adding the fields it reads to `fields`. Errors (and unknown-field warnings)
    /// name `position`'s file, line and column; `what` names the condition in messages.
    public static func compile(_ text: String, at position: ConditionPosition, what: String, metrics: [MetricDefinition],
                               lists: [String: [FieldValue]], fields: inout FieldTable, known: KnownFields) -> (EventCondition?, [Diagnostic]) {
        var compiler = Compiler(fields: fields, metrics: metrics, lists: lists)
        let node: CompiledExpr
        do throws(ConditionError) {
            let expr = try Parser.parse(text)
            if Compiler.containsWindow(expr) {
                throw ConditionError(code: "window_in_filter", message: "\(what) cannot use window functions (count, sum, rolling_mean, max, count_distinct): it is checked per event and keeps no state; write a rule for that",
                                     offset: 0)
            }
            node = try compiler.compile(expr)
        } catch {
            return (nil, [position.diagnostic(error, text: text)])
        }
        var warnings: [Diagnostic] = []
        var warned: Set<String> = []
        for (name, offset) in compiler.referencedFields where !known.contains(name) && warned.insert(name).inserted {
            let at = position.diagnostic(ConditionError(code: "", message: "", offset: offset), text: text)
            warnings.append(RuleLoader.unknownField(name, known, file: position.file, line: at.line, column: at.column))
        }
        fields = compiler.fields
        return (EventCondition(text: text, node: node, evaluator: RuleEngine(ruleSet: RuleSet())), warnings)
    }

    /// Checks the syntax only (when the config is read, before the rules' lists are known).
    public static func syntaxError(_ text: String, at position: ConditionPosition) -> Diagnostic? {
        do throws(ConditionError) { _ = try Parser.parse(text) } catch { return position.diagnostic(error, text: text) }
        return nil
    }

    /// Whether the event matches (a missing field makes a comparison false, as in rules).
    @inline(__always)
    public func matches<B: BaselineLookup>(_ event: Event, baseline: B) -> Bool {
        evaluator.truthy(evaluator.eval(node, event, baseline))
    }
}
