import Alerts
import Baseline
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Rules
import Testing

/// The config loader: strict keys and types, ranges, cross-references, every problem at once.
@Suite struct ConfigLoaderTests {
    func apply(_ yaml: String) -> [Diagnostic] {
        var config = EngineConfig(databasePath: "unused.db", rulePaths: [])
        do {
            try config.apply(yaml: yaml, file: "c.yaml")
            return []
        } catch let error as ConfigError {
            return error.diagnostics
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func theGoodFixtureSetsEveryKey() throws {
        var c = EngineConfig(databasePath: "unused.db", rulePaths: [])
        try c.apply(file: packageRoot + "/Tests/Fixtures/config/good.yaml")
        #expect(c.maxLineBytes == 65536 && c.batchLines == 5000 && c.evaluation.allowedLateness == .minutes(10))
        #expect(c.fields == ["tenant_id", "details.reason"] && c.stdout == true)
        #expect(c.baseline.windowDays == 7 && c.baseline.minSamples == 50 && c.baseline.minSpan == .days(2))
        #expect(c.baseline.recomputeEvery == .minutes(30) && !c.baseline.excludeAlerting && c.baseline.maxSegments == 200)
        #expect(c.delivery.maxAttempts == 5 && c.delivery.baseBackoff == 0.5 && c.delivery.maxBackoff == 60)
        #expect(c.metrics.map(\.name).suffix(3) == ["anomaly_score", "match_count", "output_bytes"])
        #expect(c.sinks.map(\.name) == ["siem", "pager", "slack"])
        let pager = try #require(c.sinks[1] as? WebhookSinkConfig)
        #expect(pager.url == .environment("IW_DETECT_PAGER_URL") && pager.timeout == 3)
        #expect(c.routes[.critical] == ["pager", "slack", "siem"] && c.routes[.low] == ["siem"])
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var yaml: String
        var code: String
        var line: Int
        var column: Int
        var says: String
        var testDescription: String { "\(code) at \(line):\(column)" }
    }

    static let bad: [Bad] = [
        Bad(yaml: "max_line_bytes: -5\n", code: "out_of_range", line: 1, column: 17, says: "between 256 and"),
        Bad(yaml: "max_line_bytes: 99999999999999999999\n", code: "bad_type", line: 1, column: 17, says: "whole number"),
        Bad(yaml: "batch_lines: lots\n", code: "bad_type", line: 1, column: 14, says: "whole number, got 'lots'"),
        Bad(yaml: "allowed_lateness: 5 minutes\n", code: "bad_duration", line: 1, column: 19, says: "such as 30s"),
        Bad(yaml: "allowed_lateness: 999999999999d\n", code: "bad_duration", line: 1, column: 19, says: "such as 30s"),
        Bad(yaml: "stdout: yes please\n", code: "bad_type", line: 1, column: 9, says: "true or false"),
        Bad(yaml: "fields: tenant\n", code: "bad_type", line: 1, column: 9, says: "must be a list"),
        Bad(yaml: "baseline:\n  window_dayz: 3\n", code: "unknown_key", line: 2, column: 3, says: "did you mean 'window_days'"),
        Bad(yaml: "baseline:\n  min_samples: 0\n", code: "out_of_range", line: 2, column: 16, says: "between 1 and"),
        Bad(yaml: "baseline:\n  window_days: 3\n  min_days: 5\n", code: "out_of_range", line: 3, column: 13, says: "never be ready"),
        Bad(yaml: "baseline:\n  window: 1d\n  min_span: 25h\n", code: "out_of_range", line: 3, column: 13, says: "never be ready"),
        Bad(yaml: "baseline:\n  window: 30m\n", code: "out_of_range", line: 2, column: 11, says: "between 1h and"),
        Bad(yaml: "baseline:\n  window_days: 3\n  window: 2d\n", code: "conflict", line: 3, column: 11, says: "keep one"),
        Bad(yaml: "baseline:\n  window_samples: 0\n", code: "out_of_range", line: 2, column: 19, says: "between 1 and"),
        Bad(yaml: "baseline:\n  recompute_every: 0s\n", code: "out_of_range", line: 2, column: 20, says: "between 1m and"),
        Bad(yaml: "baseline: 14d\n", code: "bad_type", line: 1, column: 11, says: "must be a mapping"),
        Bad(yaml: "delivery: {max_attempts: 0}\n", code: "out_of_range", line: 1, column: 26, says: "between 1 and 1000"),
        Bad(yaml: "delivery: {base_backoff_seconds: 10, max_backoff_seconds: 1}\n", code: "out_of_range", line: 1, column: 59, says: "less than"),
        Bad(yaml: "metrics:\n  - {name: m, field: x, kind: median}\n", code: "bad_value", line: 2, column: 31, says: "value, count or bytes"),
        Bad(yaml: "metrics:\n  - {name: output_tokens, field: x}\n", code: "duplicate_metric", line: 2, column: 12, says: "defined twice"),
        Bad(yaml: "metrics:\n  - {name: m}\n", code: "missing_key", line: 2, column: 5, says: "name and a field"),
        Bad(yaml: "sinks:\n  - {name: s, type: webhok}\n", code: "unknown_sink_type", line: 2, column: 21, says: "known types"),
        Bad(yaml: "sinks:\n  - {name: s, type: jsonl}\n", code: "missing_key", line: 2, column: 5, says: "needs 'path'"),
        Bad(yaml: "sinks:\n  - {name: s, type: webhook, url: 'http://x', url_env: X}\n", code: "conflicting_keys", line: 2, column: 56, says: "give one of url, url_env, not several"),
        Bad(yaml: "sinks:\n  - {name: s, type: webhook}\n", code: "missing_key", line: 2, column: 5, says: "needs 'url_env'"),
        Bad(yaml: "sinks:\n  - {name: s, type: webhook, url_env: X, colour: red}\n", code: "unknown_key", line: 2, column: 42, says: "known: headers, name"),
        Bad(yaml: "sinks:\n  - {name: s, type: webhook, url_env: X, timeout: 0}\n", code: "out_of_range", line: 2, column: 51, says: "timeout"),
        Bad(yaml: "sinks:\n  - {name: s, type: stdout}\n  - {name: s, type: stdout}\n", code: "duplicate_sink", line: 3, column: 12, says: "twice"),
        Bad(yaml: "routes:\n  urgent: [stdout]\n", code: "bad_severity", line: 2, column: 3, says: "not a severity"),
        Bad(yaml: "routes:\n  critical: [pager]\n", code: "unknown_sink", line: 2, column: 13, says: "'pager', which is not defined"),
        Bad(yaml: "stdout: true\nstdout: false\n", code: "duplicate_key", line: 1, column: 1, says: "'stdout' appears twice"),
        Bad(yaml: "- a\n- b\n", code: "bad_type", line: 1, column: 1, says: "must be a mapping"),
        Bad(yaml: "max_line_bytes: [1\n", code: "yaml_error", line: 2, column: 1, says: "invalid YAML"),
    ]

    @Test(arguments: bad)
    func aBadConfigIsReportedWithItsPosition(_ b: Bad) {
        let d = apply(b.yaml)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.code == b.code)
        #expect(d.first.map { "\($0.line):\($0.column)" } == "\(b.line):\(b.column)", "\(d)")
        #expect(d.first?.message.contains(b.says) == true, "\(d.first?.message ?? "")")
        #expect(d.first?.description.hasPrefix("c.yaml:\(b.line):\(b.column): error: ") == true)
    }

    @Test func everyProblemIsReportedAtOnceInFileOrder() {
        let d = apply("""
            sinks:
              - {name: siem, type: webhok}
            max_line_bytes: -5
            baseline:
              exclude_alerting: maybe
            routes:
              critical: [nowhere]
            """)
        #expect(d.map(\.code) == ["unknown_sink_type", "out_of_range", "bad_type", "unknown_sink"])
        #expect(d.map(\.line) == [2, 3, 5, 7])
    }

    @Test func aBadConfigChangesNothing() {
        var config = EngineConfig(databasePath: "unused.db", rulePaths: [])
        #expect(throws: ConfigError.self) { try config.apply(yaml: "batch_lines: 7\nmax_line_bytes: -1\n", file: "c.yaml") }
        #expect(config.batchLines == 20_000)
    }

    /// The binary prints every diagnostic and exits 1, without a usage dump.
    @Test func theBinaryReportsConfigErrorsAndExits1() throws {
        let dir = TempDir()
        let config = dir.write("bad.yaml", "batch_lines: lots\nmax_line_bytes: 10\n")
        let input = dir.write("in.jsonl", logLine(time: at(0)) + "\n")
        let r = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("s.db"), "--config", config])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.yaml:1:14: error: batch_lines must be a whole number"), "\(r.stderr)")
        #expect(r.stderr.contains("bad.yaml:2:17: error: max_line_bytes must be between"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("s.db")), "nothing is created on a config error")
    }
}
