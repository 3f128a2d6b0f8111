import IWDetectCore
import Pipeline
import Rules

/// A whole rule file (the input, as YAML) with the bundled named lists beside it: the loader,
/// then, for what loads, the embedded tests through ``RuleTestRunner`` and the rule set on fixed
/// events. At most 8 tests of at most 16 events run, so one input stays fast.
public func fuzzRuleFile(_ data: UnsafeRawBufferPointer) {
    let rules = bundledRules
    let sources = [("fuzz.yaml", fuzzText(data))] + rules.listSources
    var loaded = RuleLoader.load(sources: sources, metrics: MetricDefinition.defaults, fields: rules.fields)
    for d in loaded.diagnostics { _ = d.description }
    guard let set = loaded.ruleSet else {
        fuzzCheck(!loaded.errors.isEmpty, "rules failed to load without an error diagnostic")
        return
    }
    loaded.tests = loaded.tests.prefix(8).map { test in
        var t = test
        t.events = Array(t.events.prefix(16))
        return t
    }
    for result in RuleTestRunner.run(loaded) { _ = result.description }
    evaluateOnFixedEvents(set, fields: loaded.fields)
}
