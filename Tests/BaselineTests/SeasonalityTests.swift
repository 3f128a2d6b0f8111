import Baseline
import IWDetectCore
import Testing

@Suite struct SeasonalityTests {
    /// 2026-11-02 00:00 UTC, a Monday.
    static let monday: Int64 = 1_793_577_600

    func t(_ seconds: Int64) -> EventTime { EventTime(micros: seconds * 1_000_000) }

    @Test func hoursOfTheDayAndOfTheWeekInUTC() throws {
        let day = try #require(Seasonality(mode: .hourOfDay))
        let week = try #require(Seasonality(mode: .hourOfWeek))
        let m = SeasonalityTests.monday
        #expect(day.bin(t(m)) == 0 && week.bin(t(m)) == 0)
        #expect(day.bin(t(m + 14 * 3600 + 59 * 60)) == 14 && week.bin(t(m + 14 * 3600)) == 14)
        #expect(week.bin(t(m + 6 * 86_400 + 23 * 3600)) == 167, "Sunday 23:00")
        #expect(week.bin(t(m + 7 * 86_400)) == 0, "the next Monday")
        #expect(day.bin(t(m - 1)) == 23 && week.bin(t(m - 1)) == 167, "the second before is Sunday 23:59:59")
        #expect(day.bins == 24 && week.bins == 168)
    }

    @Test func localHoursFollowTheTimeZoneAcrossDaylightSaving() throws {
        let paris = try #require(Seasonality(mode: .hourOfDay, timeZone: "Europe/Paris"))
        // 2026-07-01 12:00 UTC is 14:00 in Paris (CEST, +2); 2026-12-01 12:00 UTC is 13:00 (CET, +1).
        #expect(paris.bin(t(1_782_907_200)) == 14)
        #expect(paris.bin(t(1_796_126_400)) == 13)
        // 2026-03-29 at 01:00 UTC clocks go from 02:00 to 03:00: 00:59 UTC is 01:59 CET, 01:00 UTC 03:00 CEST.
        #expect(paris.bin(t(1_774_745_940)) == 1)
        #expect(paris.bin(t(1_774_746_000)) == 3)
        #expect(Seasonality(mode: .hourOfDay, timeZone: "Mars/Olympus") == nil)
    }
}
