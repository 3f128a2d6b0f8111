import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

@Suite struct ConfigMetricTests {
    @Test func aMetricDeclaredInTheConfigIsBaselinedAndUsableInRules() async throws {
        let dir = TempDir()
        let configFile = dir.write("config.yaml", """
            metrics:
              - name: anomaly_score
                field: anomaly_score
              - name: match_count
                field: matches
                kind: count
            baseline:
              min_samples: 20
              segment_by: ""
            stdout: false
            """)
        dir.write("rules/scan.yaml", """
            - name: scan_score_spike
              severity: high
              condition: log_type == 'scan' AND anomaly_score > baseline.p99 * 3 AND match_count >= 1
            """)
        var config = EngineConfig(databasePath: dir.file("state.db"), rulePaths: [dir.file("rules")])
        try config.apply(file: configFile)
        #expect(config.metrics.map(\.name).suffix(2) == ["anomaly_score", "match_count"])
        // Two hours of quiet scans (scores 1…4), then one with a score of 40.
        var lines = (0..<120).map { i in
            "{\"log_type\":\"scan\",\"timestamp\":\"\(at(i * 60))\",\"request_id\":\"r\(i)\",\"decision\":\"allow\",\"anomaly_score\":\(1 + i % 4),\"matches\":[{\"signature_id\":\"INJ-O-010\"}]}"
        }
        lines.append("{\"log_type\":\"scan\",\"timestamp\":\"\(at(7300))\",\"request_id\":\"spike\",\"decision\":\"allow\",\"anomaly_score\":40,\"matches\":[{\"signature_id\":\"INJ-D-002\"}]}")
        try await ingest(lines, dir, config: config)
        let alerts = try storedAlerts(dir.file("state.db"))
        #expect(alerts.map { $0["event_id"] as? String } == ["spike"])
        let baseline = (alerts.first?["values"] as? [String: Any])?["baseline.anomaly_score"] as? [String: Any]
        #expect(baseline?["p99"] as? Double == 4)
        let show = try run(iwDetectBinary, ["baseline", "show", "--json", "--db", dir.file("state.db"), "--rules", dir.file("rules"),
                                            "--config", configFile])
        #expect(jsonLines(show.stdout).contains { $0["metric"] as? String == "match_count" && $0["ready"] as? Bool == true })
        // The snapshot before the spike (scores 1…4, 30 of each): the robust statistics are listed
        // with the others, within the sketch's 0.81 %.
        let score = jsonLines(show.stdout).first { $0["metric"] as? String == "anomaly_score" && $0["segment"] as? String == "" }
        for (key, value) in [("median", 2.0), ("p25", 1.0), ("p75", 3.0), ("p999", 4.0)] {
            let got = score?[key] as? Double ?? -1
            #expect(got >= value && got <= value * 1.0081, "\(key): \(score ?? [:])")
        }
        #expect(score?["mad"] != nil)
    }

    @Test func aConfigMetricCannotShadowADefault() throws {
        let dir = TempDir()
        let file = dir.write("c.yaml", "metrics:\n  - {name: output_tokens, field: x}\n")
        var config = EngineConfig(databasePath: dir.file("s.db"), rulePaths: [])
        #expect { try config.apply(file: file) } throws: { "\($0)".contains("defined twice") }
        let bad = dir.write("d.yaml", "metrics:\n  - {name: m, field: x, kind: median}\n")
        #expect { try config.apply(file: bad) } throws: { "\($0)".contains("kind must be value, count or bytes") }
    }
}

@Suite struct DerivedMetricTests {
    @Test func aBytesMetricIsBaselinedAndReadableByName() async throws {
        let dir = TempDir()
        let configFile = dir.write("config.yaml", """
            metrics:
              - {name: output_bytes, field: model_output, kind: bytes}
            baseline: {min_samples: 10, segment_by: ""}
            stdout: false
            """)
        dir.write("rules/r.yaml", """
            - name: long_text
              severity: low
              condition: output_bytes > baseline.max * 2
            """)
        var config = EngineConfig(databasePath: dir.file("state.db"), rulePaths: [dir.file("rules")])
        try config.apply(file: configFile)
        var lines = (0..<60).map { logLine(time: at($0 * 120), id: "n\($0)", extra: ["model_output": "\"\(String(repeating: "é", count: 10 + $0 % 5))\""]) }
        lines.append(logLine(time: at(7300), id: "long", extra: ["model_output": "\"\(String(repeating: "x", count: 100))\""]))
        try await ingest(lines, dir, config: config)
        let alerts = try storedAlerts(dir.file("state.db"))
        #expect(alerts.map { $0["event_id"] as? String } == ["long"])
        let values = alerts.first?["values"] as? [String: Any]
        #expect(values?["output_bytes"] as? Double == 100)
        #expect((values?["baseline.output_bytes"] as? [String: Any])?["max"] as? Double == 28, "é is two bytes: 14 characters are 28")
    }
}
