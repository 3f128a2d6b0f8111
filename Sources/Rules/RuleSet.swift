import IWDetectCore

/// A loaded, compiled set of rules and the named lists they use.
public struct RuleSet: Sendable {
    public var rules: [CompiledRule]
    public var lists: [String: [FieldValue]]
    /// Rules present in files but switched off with `enabled: false`: compiled and checked (and
    /// their embedded tests run), never evaluated on the stream.
    public var disabledRules: [CompiledRule]

    public init(rules: [CompiledRule] = [], lists: [String: [FieldValue]] = [:], disabledRules: [CompiledRule] = []) {
        self.rules = rules
        self.lists = lists
        self.disabledRules = disabledRules
    }

    public var disabled: [String] { disabledRules.map(\.info.name) }

    public var names: [String] { rules.map(\.info.name) }
}

/// The outcome of loading rule files: the set (when there were no errors) and every diagnostic.
public struct RuleLoadResult: Sendable {
    public var ruleSet: RuleSet?
    public var diagnostics: [Diagnostic]
    /// The field table extended with every field the rules reference.
    public var fields: FieldTable
    /// The examples embedded in the rule files (`tests:`), for `iw-detect rules test`.
    public var tests: [RuleTestCase] = []

    public var errors: [Diagnostic] { diagnostics.filter { $0.level == .error } }
}
