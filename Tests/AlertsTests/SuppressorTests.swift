import Alerts
import IWDetectCore
import Testing

@Suite struct SuppressorTests {
    let rule = RuleInfo(name: "r", description: "", severity: .high, action: "alert", recommendedAction: "", condition: "",
                        dedupKey: ["user_id"], dedupWindow: .minutes(15), channels: nil, tags: [])

    /// The same rule with episode dedup, quiet 10 minutes.
    let episodic = RuleInfo(name: "e", description: "", severity: .low, action: "alert", recommendedAction: "", condition: "",
                            dedupKey: ["user_id"], dedupWindow: .minutes(10), channels: nil, tags: [], episode: true)

    func detection(_ seconds: Int64, user: String = "u", rule: RuleInfo? = nil) -> Detection {
        Detection(rule: rule ?? self.rule, eventTime: EventTime(micros: seconds * 1_000_000), eventID: "e\(seconds)", eventIDs: [],
                  groupValues: [user], userID: user, sessionID: nil, evidence: [])
    }

    @Test func oneAlertPerGroupPerWindowAndRepeatsCarriedForward() {
        var s = Suppressor()
        var decisions: [Suppressor.Decision] = []
        for t: Int64 in [0, 60, 120, 899, 900, 960] {
            let d = detection(t)
            let decision = s.decide(d)
            if case .alert = decision { s.opened(d, alertID: "a\(t)") }
            decisions.append(decision)
        }
        #expect(decisions == [.alert(suppressedBefore: 0), .suppress(alertID: "a0"), .suppress(alertID: "a0"),
                              .suppress(alertID: "a0"), .alert(suppressedBefore: 3), .suppress(alertID: "a900")])
        #expect(s.suppressedByRule["r"] == 4)
        let other = detection(61, user: "v")
        #expect(s.decide(other) == .alert(suppressedBefore: 0), "groups are independent")
    }

    @Test func aSweepNeverChangesADecision() {
        var a = Suppressor(), b = Suppressor()
        for t: Int64 in [0, 100, 90_000, 200_000] {
            let d = detection(t)
            b.sweep(clock: EventTime(micros: t * 1_000_000))
            let x = a.decide(d), y = b.decide(d)
            #expect(x == y)
            if case .alert = x { a.opened(d, alertID: "\(t)"); b.opened(d, alertID: "\(t)") }
        }
    }

    /// Episode dedup: detections closer than the quiet time extend one alert's episode; the first
    /// after a quiet gap opens the next, and the close is recorded either way.
    @Test func episodesOpenExtendAndClose() {
        func d(_ seconds: Int64) -> Detection { detection(seconds, rule: episodic) }
        var s = Suppressor()
        var decisions: [Suppressor.Decision] = []
        // 300, 800, 1,300 and 1,850 are each under 10 minutes after the previous: one episode,
        // although it lasts longer than 10 minutes. 2,450 is 10 minutes after 1,850: a new one.
        for t: Int64 in [0, 300, 800, 1_300, 1_850, 2_450] {
            let x = d(t)
            let decision = s.decide(x)
            if case .alert = decision { s.opened(x, alertID: "a\(t)") }
            decisions.append(decision)
        }
        #expect(decisions == [.alert(suppressedBefore: 0), .suppress(alertID: "a0"), .suppress(alertID: "a0"), .suppress(alertID: "a0"),
                              .suppress(alertID: "a0"), .alert(suppressedBefore: 4)])
        #expect(s.closedEpisodes == [Suppressor.ClosedEpisode(alertID: "a0", suppressed: 4, lastSeen: 1_850_000_000, closedAt: 2_450_000_000)])
        // The clock short of the quiet time leaves the second open; past it, the sweep closes it once.
        s.sweep(clock: EventTime(micros: 3_049_000_000))
        #expect(s.closedEpisodes.count == 1)
        s.sweep(clock: EventTime(micros: 3_050_000_000))
        s.sweep(clock: EventTime(micros: 3_200_000_000))
        #expect(s.closedEpisodes.last == Suppressor.ClosedEpisode(alertID: "a2450", suppressed: 0, lastSeen: 2_450_000_000, closedAt: 3_050_000_000))
        #expect(s.closedEpisodes.count == 2)
    }

    /// A late detection inside the quiet time extends the episode whether or not a commit has
    /// already recorded its close: batching must not change which detections alert.
    @Test func aLateDetectionExtendsAnEpisodeWhateverTheSweeps() {
        func d(_ seconds: Int64) -> Detection { detection(seconds, rule: episodic) }
        var swept = Suppressor(), whole = Suppressor()
        for s in [0 as Int64] { let x = d(s); _ = swept.decide(x); swept.opened(x, alertID: "a"); _ = whole.decide(x); whole.opened(x, alertID: "a") }
        // An event at 700 s moves the clock past the episode's end (600 s); one commit sweeps there.
        swept.sweep(clock: EventTime(micros: 700_000_000))
        #expect(swept.closedEpisodes.count == 1)
        for t: Int64 in [590, 1_000] {
            let x = d(t)
            let a = swept.decide(x), b = whole.decide(x)
            #expect(a == b && a == .suppress(alertID: "a"), "detection at \(t): \(a) vs \(b)")
        }
        // The close is recorded again, at the extended end.
        swept.sweep(clock: EventTime(micros: 2_000_000_000))
        #expect(swept.closedEpisodes.last == Suppressor.ClosedEpisode(alertID: "a", suppressed: 2, lastSeen: 1_000_000_000, closedAt: 1_600_000_000))
        // A reload that drops the rule ends an open episode instead of forgetting it.
        var reloaded = Suppressor()
        let x = d(0)
        _ = reloaded.decide(x)
        reloaded.opened(x, alertID: "r")
        reloaded.retain(rules: [])
        #expect(reloaded.closedEpisodes == [Suppressor.ClosedEpisode(alertID: "r", suppressed: 0, lastSeen: 0, closedAt: 600_000_000)])
    }
}
