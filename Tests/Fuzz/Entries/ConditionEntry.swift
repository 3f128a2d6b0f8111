import IWDetectCore
#if DEBUG
@testable import Rules
#else
import Rules
#endif
import Yams

/// One rule condition (the input text) through the condition language: as the `condition:` of a
/// one-rule YAML document, in a literal block and in the emitter's own quoting (which keeps the
/// text exact), loaded with the bundled named lists; in debug builds also straight through the
/// parser and compiler. Whatever compiles is evaluated on fixed events.
public func fuzzCondition(_ data: UnsafeRawBufferPointer) {
    let text = fuzzText(data)
    let rules = bundledRules

    // 1. A hand-written document: the condition as a literal block scalar, indented by two.
    let block = text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    let literal = "name: fuzz_condition\nseverity: high\ncondition: |2-\n" + block + "\n"
    loadAndEvaluate([("fuzz-literal.yaml", literal)] + rules.listSources, fields: rules.fields)

    // 2. The same rule serialised by Yams, so the condition reaches the loader as exactly `text`.
    let rule: Node = .mapping(Node.Mapping([
        (Node("name"), Node("fuzz_condition")), (Node("severity"), Node("high")), (Node("condition"), Node(text)),
    ]))
    if let yaml = try? Yams.serialize(node: rule) {
        let loaded = loadAndEvaluate([("fuzz-exact.yaml", yaml)] + rules.listSources, fields: rules.fields)
        if let compiled = loaded?.rules.first {
            fuzzCheck(compiled.info.condition == text, "the emitted YAML did not keep the condition text")
        }
    }

    #if DEBUG
    // 3. Straight through the parser and the compiler, without YAML in between.
    let lists = rules.ruleSet.lists
    if let expr = try? Parser.parse(text) {
        var compiler = Compiler(fields: rules.fields, metrics: MetricDefinition.defaults, lists: lists)
        _ = try? compiler.compile(expr)
        _ = Compiler.containsWindow(expr)
    }
    #endif
}

/// Loads `sources`; evaluates the rule set on the fixed events when it loaded.
@discardableResult
func loadAndEvaluate(_ sources: [(String, String)], fields: FieldTable) -> RuleSet? {
    let loaded = RuleLoader.load(sources: sources, metrics: MetricDefinition.defaults, fields: fields)
    for d in loaded.diagnostics { _ = d.description }
    guard let set = loaded.ruleSet else {
        fuzzCheck(!loaded.errors.isEmpty, "rules failed to load without an error diagnostic")
        return nil
    }
    evaluateOnFixedEvents(set, fields: loaded.fields)
    return set
}
