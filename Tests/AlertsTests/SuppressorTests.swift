import Alerts
import IWDetectCore
import Testing

@Suite struct SuppressorTests {
    let rule = RuleInfo(name: "r", description: "", severity: .high, action: "alert", recommendedAction: "", condition: "",
                        dedupKey: ["user_id"], dedupWindow: .minutes(15), channels: nil, tags: [])

    func detection(_ seconds: Int64, user: String = "u") -> Detection {
        Detection(rule: rule, eventTime: EventTime(micros: seconds * 1_000_000), eventID: "e\(seconds)", eventIDs: [],
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
}
