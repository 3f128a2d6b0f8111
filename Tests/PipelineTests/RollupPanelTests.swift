import Baseline
import Dashboard
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline
import Testing

/// The dashboard's rollups and panels: every count equals one computed independently from the
/// same generated file, survives a restart in the middle, and the pages escape what users send.
@Suite struct RollupPanelTests {
    /// Generated traffic with the four attack scenarios, plus one attacker whose id is markup.
    static func lines() -> [String] {
        var options = TrafficGenerator.Options()
        options.lines = 6000
        var g = TrafficGenerator(options: options)
        var out: [String] = []
        g.generate { out.append($0) }
        let hostile = #"{"log_id":"x-1","timestamp":"2026-11-01T03:20:00Z","user_id":"<script>alert(1)</script>","session_id":"s-x","input_injection_score":0.95,"tool_calls":[{"name":"<b>rm</b>"}],"risk_score":0.9,"model_id":"m\"x","inference_latency_ms":120,"guardrail_action":"block"}"#
        out.insert(hostile, at: out.count / 2)
        return out
    }

    /// What the panels should say, counted from the JSON lines with Foundation.
    struct Expected {
        var events = 0, injection = 0, pii = 0, blocked = 0, allowed = 0
        var attackers: [String: Int64] = [:], tools: [String: Int64] = [:], models: [String: Int64] = [:]
        var risk = [Int64](repeating: 0, count: 10)
        var inputTokens = 0.0
        var injectionByStep: [Int64: Int64] = [:]

        init(_ lines: [String], step: Int64) {
            for line in lines {
                let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                events += 1
                let t = Timestamp.parse(o["timestamp"] as! String)!.micros / 1_000_000
                if (o["input_injection_score"] as? Double ?? 0) > 0.7 {
                    injection += 1
                    attackers[o["user_id"] as! String, default: 0] += 1
                    injectionByStep[t / step * step, default: 0] += 1
                }
                if o["output_pii_detected"] as? Bool == true { pii += 1 }
                if o["guardrail_action"] as? String == "block" { blocked += 1 }
                if o["guardrail_action"] as? String == "allow" { allowed += 1 }
                for call in o["tool_calls"] as? [[String: Any]] ?? [] { tools[call["name"] as! String, default: 0] += 1 }
                if o["inference_latency_ms"] != nil { models[o["model_id"] as! String, default: 0] += 1 }
                if let r = o["risk_score"] as? Double { risk[min(9, Int(r * 10))] += 1 }
                inputTokens += o["input_tokens"] as? Double ?? 0
            }
        }
    }

    @Test func everyPanelCountEqualsAnIndependentCountOfTheFile() async throws {
        let dir = TempDir()
        let lines = Self.lines()
        try await ingest(lines, dir, config: testConfig(dir))
        let db = try openStateDatabase(dir.file("state.db"))
        let p = try PanelSet.read(db, range: PanelRange("24h")!)
        let e = Expected(lines, step: p.range.step)
        #expect(p.range.step == 900)
        #expect(p.total.events == Int64(e.events))
        #expect(p.total.injection == Int64(e.injection) && e.injection >= 15)
        #expect(p.total.pii == Int64(e.pii) && e.pii > 0)
        #expect(p.total.guardrail[0] == Int64(e.blocked) && p.total.guardrail[1] == Int64(e.allowed))
        #expect(p.total.attackers == e.attackers)
        #expect(p.total.tools == e.tools)
        #expect(p.total.risk == e.risk)
        #expect(Dictionary(uniqueKeysWithValues: p.latencyRows.map { ($0.model, $0.count) }) == e.models)
        // The series: each 15-minute step holds that step's attempts.
        for point in p.points {
            #expect(point.injection == e.injectionByStep[point.time.micros / 1_000_000] ?? 0, "step \(point.time)")
        }
        #expect(p.points.map(\.injection).reduce(0, +) == Int64(e.injection))
        // Drift: every input_tokens value is in one hour's mean.
        let tokens = try #require(p.drift.first { $0.metric == "input_tokens" })
        let sum = tokens.points.reduce(0.0) { $0 + $1.mean * Double($1.n) }
        #expect(abs(sum - e.inputTokens) < 1e-6 * e.inputTokens)
        #expect(tokens.points.contains { $0.bandLow != nil }, "the baseline band appears once the baseline is ready")
        // The JSON of the API says the same.
        let json = try #require(p.json("top_attackers")?.serialized())
        let users = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any])["users"] as! [[String: Any]]
        #expect(users.count == min(10, e.attackers.count))
        #expect(users.first?["attempts"] as? Int == Int(e.attackers.values.max()!))
        for name in PanelSet.names { #expect(p.json(name) != nil, "panel \(name)") }
        #expect(p.json("nope") == nil)
    }

    @Test func aRestartInTheMiddleGivesTheSameBucketsAsOnePass() async throws {
        let lines = Self.lines()
        let one = TempDir(), two = TempDir()
        var c1 = testConfig(one)
        c1.batchLines = 700
        try await ingest(lines, one, config: c1)
        // The same file, ingested in two runs: the second resumes mid-bucket and reads it back.
        var c2 = testConfig(two)
        c2.batchLines = 700
        let half = lines.count / 2 + 37
        try await ingest(Array(lines[..<half]), two, config: c2)
        try await ingest(lines, two, config: c2)
        func buckets(_ dir: TempDir) throws -> [String] {
            try openStateDatabase(dir.file("state.db")).query("SELECT res, bucket, data FROM rollups ORDER BY res, bucket") { "\($0.int(0)) \($0.int(1)) \($0.text(2))" }
        }
        let a = try buckets(one), b = try buckets(two)
        #expect(a.count > 40)
        #expect(a.count == b.count)
        let differing = zip(a, b).filter { $0 != $1 }
        #expect(differing.isEmpty, "\(differing.count) buckets differ, first: \(differing.first.map { "\($0.0.prefix(300)) vs \($0.1.prefix(300))" } ?? "")")
    }

    @Test func thePagesEscapeWhatUsersSent() async throws {
        let dir = TempDir()
        try await ingest(Self.lines(), dir, config: testConfig(dir))
        let db = try openStateDatabase(dir.file("state.db"))
        let p = try PanelSet.read(db, range: PanelRange("24h")!)
        #expect(p.total.attackers["<script>alert(1)</script>"] == 1)
        let page = Pages.dashboard(p)
        #expect(!page.contains("<script>alert(1)"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!page.contains("<b>rm</b>") && page.contains("&lt;b&gt;rm&lt;/b&gt;"))
        #expect(!page.contains("m\"x"))
        // One page, the eight panels, each with data; nothing fetched from elsewhere.
        for name in PanelSet.names.prefix(8) { #expect(page.contains("data-panel=\"\(name)\""), "panel \(name)") }
        #expect(!page.contains("data-points=\"0\""))
        #expect(!page.contains("http://") || !page.contains("src=\"http"))
        let report = TextReport.render(p)
        #expect(report.contains("Top attacking users") && report.contains("attacker-0"))
    }

    /// Past the caps (50 tools, 20 models a bucket) the busiest names are kept and the rest are
    /// counted under `(other)`: nothing is lost, in one pass or across a restart.
    @Test func theCapsKeepTheBusiestNamesAndCountTheRestUnderOther() async throws {
        // 700 events in one hour: each calls `busy` and one of 70 other tools, on one of 30 models.
        let lines = (0..<700).map { i in
            let t = String(format: "2026-11-01T10:%02d:%02dZ", i / 12, (i % 12) * 5)
            return #"{"log_id":"c-\#(i)","timestamp":"\#(t)","user_id":"u-\#(i % 9)","session_id":"s-\#(i)","#
                + #""tool_calls":[{"name":"busy"},{"name":"tool-\#(i % 70)"}],"model_id":"model-\#(i % 30)","inference_latency_ms":\#(100 + i)}"#
        }
        func rows(_ dir: TempDir) throws -> [(res: Int64, bucket: RollupBucket, text: String)] {
            try openStateDatabase(dir.file("state.db")).query("SELECT res, data FROM rollups ORDER BY res, bucket") {
                ($0.int(0), RollupBucket(json: try! JSONValue.parse($0.text(1)))!, $0.text(1))
            }
        }
        let one = TempDir(), two = TempDir()
        var config = testConfig(one)
        config.batchLines = 97
        try await ingest(lines, one, config: config)
        config = testConfig(two)
        config.batchLines = 97
        try await ingest(Array(lines[..<333]), two, config: config)
        try await ingest(lines, two, config: config)
        let a = try rows(one), b = try rows(two)
        // Past a cap, which names are kept depends on where the commits fell (README); the
        // counts do not.
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(x.bucket.events == y.bucket.events)
            #expect(x.bucket.tools.values.reduce(0, +) == y.bucket.tools.values.reduce(0, +))
            #expect(x.bucket.tools["busy"] == y.bucket.tools["busy"])
            #expect(x.bucket.latency.values.reduce(0) { $0 + $1.count } == y.bucket.latency.values.reduce(0) { $0 + $1.count })
            #expect(x.bucket.tools.count <= RollupBucket.maxTools + 1 && y.bucket.tools.count <= RollupBucket.maxTools + 1)
            #expect(y.bucket.latency.count <= RollupBucket.maxModels + 1)
        }
        let hours = a.filter { $0.res == 3600 }
        try #require(hours.count == 1)
        let hour = hours[0].bucket
        #expect(hour.tools.count == RollupBucket.maxTools + 1)
        #expect(hour.tools["busy"] == 700)
        #expect(hour.tools.values.reduce(0, +) == 1400)
        #expect((hour.tools[RollupBucket.other] ?? 0) > 0)
        #expect(hour.latency.count == RollupBucket.maxModels + 1)
        #expect(hour.latency.values.reduce(0) { $0 + $1.count } == 700)
        let fives = a.filter { $0.res == 300 }
        #expect(fives.count == 12)
        #expect(fives.map(\.bucket.events).reduce(0, +) == 700)
        #expect(fives.allSatisfy { $0.bucket.tools.count <= RollupBucket.maxTools + 1 && $0.bucket.latency.isEmpty })
        #expect(fives.map { $0.bucket.tools.values.reduce(0, +) }.reduce(0, +) == 1400)
    }

    @Test func rangesPickTheirSteps() {
        #expect(PanelRange("1h")?.step == 300)
        #expect(PanelRange("24h")?.step == 900)
        #expect(PanelRange("7d")?.step == 3600)
        #expect(PanelRange("30d")?.step == 21_600)
        #expect(PanelRange("0s") == nil && PanelRange("1m") == nil && PanelRange("soon") == nil && PanelRange("500d") == nil)
    }
}
