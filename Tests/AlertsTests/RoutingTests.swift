import Foundation
import Alerts
import IWDetectCore
import Testing

@Suite struct RoutingTests {
    func rule(_ severity: Severity, channels: [String]? = nil) -> RuleInfo {
        RuleInfo(name: "r", description: "", severity: severity, action: "alert", recommendedAction: "", condition: "",
                 dedupKey: [], dedupWindow: .minutes(15), channels: channels, tags: [])
    }

    @Test(arguments: [
        (Severity.critical, ["pager", "slack", "siem"]), (.high, ["slack", "siem"]), (.medium, ["siem"]), (.low, ["siem"]),
    ])
    func defaultRoutesBySeverity(severity: Severity, expected: [String]) {
        let router = AlertRouter()
        #expect(router.channels(for: rule(severity), available: ["pager", "slack", "siem"], everywhere: []) == expected)
    }

    @Test func ruleChannelsOverrideAndUnavailableSinksAreLeftOut() {
        let router = AlertRouter()
        #expect(router.channels(for: rule(.low, channels: ["pager"]), available: ["pager", "siem"], everywhere: []) == ["pager"])
        #expect(router.channels(for: rule(.critical), available: ["siem", "stdout"], everywhere: ["stdout"]) == ["siem", "stdout"])
    }

    @Test(arguments: [(200, nil as Bool?), (204, nil), (400, false), (401, false), (404, false), (408, true), (429, true),
                      (500, true), (502, true), (503, true)])
    func httpStatusToRetryability(status: Int, retryable: Bool?) {
        let response = HTTPExchange.Response(status: status, headers: status == 429 ? ["retry-after": "7"] : [:], body: Data())
        do throws(SinkError) {
            try HTTPExchange.check(response, sink: "s")
            #expect(retryable == nil)
        } catch {
            #expect(error.isRetryable == retryable)
            #expect(error.message == "sink 's': HTTP \(status)")
            #expect(error.retryAfter == (status == 429 ? 7 : nil), "Retry-After is read whatever the header's case")
        }
    }

    @Test func retryAfterInSecondsOrAsAnHTTPDate() throws {
        #expect(HTTPExchange.retryAfter("120") == 120)
        let inAMinute = Date().addingTimeInterval(60)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let wait = try #require(HTTPExchange.retryAfter(f.string(from: inAMinute)))
        #expect(wait > 55 && wait <= 60)
        #expect(HTTPExchange.retryAfter("soon") == nil)
    }
}
