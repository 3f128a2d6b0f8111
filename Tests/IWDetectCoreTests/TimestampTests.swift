import IWDetectCore
import Testing

@Suite struct TimestampTests {
    @Test(arguments: [
        ("2026-11-21T10:40:17Z", 1_795_257_617_000_000 as Int64),
        ("2026-11-21T10:40:17.5Z", 1_795_257_617_500_000),
        ("2026-11-21T10:40:17.123456789Z", 1_795_257_617_123_456),
        ("2026-11-21 10:40:17Z", 1_795_257_617_000_000),
        ("2026-11-21T10:40:17", 1_795_257_617_000_000),
        ("2026-11-21T12:40:17+02:00", 1_795_257_617_000_000),
        ("2026-11-21T05:10:17-0530", 1_795_257_617_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
    ])
    func parsesRFC3339(text: String, micros: Int64) {
        #expect(Timestamp.parse(text)?.micros == micros)
    }

    @Test(arguments: ["", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-21T24:00:00Z",
                      "2026-11-21T10:40:17.Z", "2026-11-21T10:40:17ZZ", "2026-11-21T10:40", "2025-02-29T00:00:00Z"])
    func rejectsMalformed(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test func formatsAndReadsBack() {
        for micros: Int64 in [0, 1_795_257_617_123_000, 951_782_400_000_000, -1_000] {
            let t = EventTime(micros: micros)
            #expect(Timestamp.parse(t.description)?.micros == micros)
        }
        #expect(EventTime(micros: 1_795_257_617_123_000).description == "2026-11-21T10:40:17.123Z")
    }

    @Test func epochNumbers() {
        #expect(Timestamp.fromEpoch(1_795_257_617)?.micros == 1_795_257_617_000_000)
        #expect(Timestamp.fromEpoch(1_795_257_617_250)?.micros == 1_795_257_617_250_000)
        #expect(Timestamp.fromEpoch(-1) == nil)
    }

    @Test func durations() {
        #expect(EventTime.Duration(parsing: "5m")?.micros == 300_000_000)
        #expect(EventTime.Duration(parsing: "14d") == .days(14))
        #expect(EventTime.Duration(parsing: "5x") == nil)
        #expect(EventTime.Duration.minutes(90).description == "90m")
        #expect(EventTime.Duration.hours(48).description == "2d")
    }
}
