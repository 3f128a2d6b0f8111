import IWDetectCore

extension TrafficGenerator {
    /// The shape of the traffic.
    public enum Profile: String, CaseIterable, Sendable {
        /// About 1.9 KB lines, one-paragraph outputs, twelve attacks spread over the run (about 10
        /// alerts in 200,000 lines with the bundled rules): the bundled example and the tests' data.
        case `default`
        /// Traffic shaped like a deployment: about 2.5 KB lines with multi-paragraph outputs, event
        /// times about 9 s apart (400 an hour), half the events calling approved tools 1–6 times,
        /// and attack incidents throughout, so that about 2 % of events raise an alert with the
        /// bundled rules.
        case realistic
        /// Like `realistic`, with incidents often enough that about 10 % of events raise an alert.
        case storm

        /// Stream time between benign events: incidents add 2.5 events each, so that all events
        /// together are about 9 s apart (400 an hour).
        var benignInterval: EventTime.Duration { .init(micros: Int64(9_000_000 * (1 + 2.5 * incidentRate))) }

        /// Attack incidents per benign event. Each incident raises about one alert (its attacker
        /// is new, so dedup never merges two) over 1 to 5 events, 2.5 on average: an alerting
        /// fraction f needs about f / (1 - 2.5 f). Tuned on the bundled rules (README).
        var incidentRate: Double {
            switch self {
            case .default: 0
            case .realistic: 0.0215
            case .storm: 0.123
            }
        }
    }

    /// Tools the benign users of the profiles call: the bundled rules' `approved_tools`, so that a
    /// benign tool call never alerts.
    static let approvedTools = ["search_docs", "get_weather", "lookup_order"]

    /// The `realistic` and `storm` generator: benign events at jittered intervals (around
    /// ``Options/interval``), an incident
    /// planted before a benign event with the profile's probability, from the second day on. (On
    /// the first day the baseline is not ready, so an exfiltration-sized answer would not alert and
    /// would train it: in a storm, enough of them to lift its p99 above any later one.)
    mutating func generateProfiled(_ emit: (String) -> Void) {
        var t = options.start
        let firstIncident = options.start + .days(1)
        var incidents = 0
        var written = 0
        while written < options.lines {
            if let first = pending.first, first.0 <= t {
                emit(pending.removeFirst().1)
            } else if options.attacks, t >= firstIncident, rng.unit() < options.profile.incidentRate {
                plant(Scenario.allCases[incidents % Scenario.allCases.count], at: t, number: incidents)
                incidents += 1
                continue
            } else {
                emit(profiledBenign(at: t))
                // Uniform in 0.5…1.5 intervals: the mean rate stays that of `interval`.
                t = t + EventTime.Duration(micros: Int64(Double(options.interval.micros) * (0.5 + rng.unit())))
            }
            written += 1
        }
    }

    /// A benign event with a multi-paragraph answer and, half the time, 1–6 tool calls (one most
    /// often, six in about 3.5 % of events, so the baseline's p99 of the count is 6 and a benign
    /// count never exceeds it, even in a segment's first hundred samples).
    mutating func profiledBenign(at t: EventTime) -> String {
        let u = Int(rng.next() % UInt64(options.users))
        let user = "user-\(u)"
        let session = "sess-\(u)-\(t.micros / 1_800_000_000)"
        let injection = rng.unit() < 0.02 ? 0.3 + 0.3 * rng.unit() : 0.05 * rng.unit()
        let outputTokens = 80 + Int(rng.unit() * rng.unit() * 700)
        var calls = 0
        if rng.unit() < 0.5 {
            let r = rng.unit()
            calls = r < 0.35 ? 1 : r < 0.6 ? 2 : r < 0.75 ? 3 : r < 0.85 ? 4 : r < 0.93 ? 5 : 6
        }
        let tools = (0..<calls).map { _ in TrafficGenerator.approvedTools[Int(rng.next() % UInt64(TrafficGenerator.approvedTools.count))] }
        // Paragraphs of 25–75 words, about three words for four tokens, joined by blank lines.
        var paragraphs: [String] = []
        var remaining = max(outputTokens * 3 / 4, 20)
        while remaining > 0 {
            let n = min(remaining, 25 + Int(rng.next() % 51))
            paragraphs.append(words(n) + ".")
            remaining -= n
        }
        return line(at: t, user: user, session: session, injection: injection, outputTokens: outputTokens, pii: false,
                    tools: tools, guardrail: false, input: words(30 + Int(rng.next() % 51)),
                    output: paragraphs.joined(separator: "\\n\\n"))
    }
}
