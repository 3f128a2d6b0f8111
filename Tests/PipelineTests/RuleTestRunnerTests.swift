import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Rules
import Testing

@Suite struct RuleTestRunnerTests {
    @Test func everyBundledRuleHasPassingTestsIncludingANearMiss() {
        let loaded = RuleLoader.load(paths: [packageRoot + "/rules"], metrics: MetricDefinition.defaults, fields: FieldTable())
        let results = RuleTestRunner.run(loaded)
        let failures = results.filter { !$0.passed }.map { $0.description }
        #expect(failures.isEmpty, "\(failures)")
        #expect(results.count >= 12)
        for rule in loaded.ruleSet?.names ?? [] {
            let mine = results.filter { $0.test.rule == rule }
            #expect(mine.contains { $0.test.expectedAlerts > 0 }, "\(rule) has a test that fires")
            #expect(mine.contains { $0.test.expectedAlerts == 0 }, "\(rule) has a near miss that must not fire")
        }
    }

    @Test func aWrongExpectationFailsAndSaysWhy() throws {
        let dir = TempDir()
        dir.write("rules/r.yaml", """
            - name: big_output
              severity: low
              condition: output_tokens > 1000
              tests:
                - name: claims a small output fires
                  events:
                    - {at: 0s, user_id: u, output_tokens: 10}
                  expect: 1
                - name: an event without a time is reported
                  events:
                    - {user_id: u, output_tokens: 5000}
                  expect: 1
            """)
        let loaded = RuleLoader.load(paths: [dir.file("rules")], metrics: MetricDefinition.defaults, fields: FieldTable())
        let results = RuleTestRunner.run(loaded)
        let verdicts = results.map { $0.passed }
        #expect(verdicts == [false, false])
        #expect(results.first?.description.contains("expected 1 alert(s), got 0") == true)
        #expect(results.last?.problems.first?.contains("missing_timestamp") == true)
        let cli = try run(iwDetectBinary, ["rules", "test", dir.file("rules")])
        #expect(cli.status == 1)
        #expect(cli.stdout.contains("r.yaml:5: FAIL big_output: claims a small output fires"), "\(cli.stdout)")
        #expect(cli.stderr.contains("0 passed, 2 failed"))
    }
}
