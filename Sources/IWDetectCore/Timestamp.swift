/// Fast RFC 3339 / ISO 8601 timestamp parsing and formatting, without Foundation's formatters.
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS`, optional fraction of any length, then `Z`, `z`, `±HH:MM` or
/// `±HHMM`; a space may stand for `T`. A timestamp without a zone is taken as UTC (the monitoring
/// guide's schema says "UTC timestamp"). Numbers are Unix epoch seconds, or milliseconds when
/// larger than 1e11 (a date beyond the year 5000 in seconds).
public enum Timestamp {
    /// Parses RFC 3339 text from UTF-8 bytes. Returns nil for anything malformed or out of range.
    public static func parse<C: Collection<UInt8>>(_ bytes: C) -> EventTime? where C.Index == Int {
        let n = bytes.count
        guard n >= 19 else { return nil }
        let b = bytes.startIndex
        @inline(__always) func digit(_ i: Int) -> Int? {
            let c = bytes[b + i]
            return (c >= 48 && c <= 57) ? Int(c - 48) : nil
        }
        @inline(__always) func num(_ i: Int, _ len: Int) -> Int? {
            var v = 0
            for k in 0..<len { guard let d = digit(i + k) else { return nil }; v = v * 10 + d }
            return v
        }
        guard let year = num(0, 4), bytes[b + 4] == 45, let month = num(5, 2), bytes[b + 7] == 45,
              let dayOfMonth = num(8, 2) else { return nil }
        let sep = bytes[b + 10]
        guard sep == 84 || sep == 116 || sep == 32,  // T t space
              let hour = num(11, 2), bytes[b + 13] == 58, let minute = num(14, 2), bytes[b + 16] == 58,
              let second = num(17, 2) else { return nil }
        guard (1...12).contains(month), dayOfMonth >= 1, dayOfMonth <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        var i = 19
        var fractionMicros: Int64 = 0
        if i < n, bytes[b + i] == 46 {  // '.'
            i += 1
            var scale: Int64 = 100_000
            let start = i
            while i < n, let d = digit(i) {
                fractionMicros += Int64(d) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offsetSeconds = 0
        if i < n {
            let z = bytes[b + i]
            if z == 90 || z == 122 {  // Z z
                i += 1
            } else if z == 43 || z == 45 {  // + -
                guard i + 3 <= n, let oh = num(i + 1, 2) else { return nil }
                var j = i + 3
                var om = 0
                if j < n, bytes[b + j] == 58 { j += 1 }
                if j + 2 <= n, let m = num(j, 2) { om = m; j += 2 }
                guard oh <= 23, om <= 59 else { return nil }
                offsetSeconds = (oh * 3600 + om * 60) * (z == 45 ? -1 : 1)
                i = j
            } else {
                return nil
            }
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year: year, month: month, day: dayOfMonth)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return EventTime(micros: seconds * 1_000_000 + fractionMicros)
    }

    /// Parses RFC 3339 text.
    public static func parse(_ text: String) -> EventTime? {
        var copy = text
        return copy.withUTF8 { parse($0) }
    }

    /// Interprets a JSON number as Unix time: seconds, or milliseconds above 1e11.
    /// Times at or after 10000-01-01 (milliseconds) are out of range, as in RFC 3339.
    public static func fromEpoch(_ value: Double) -> EventTime? {
        guard value.isFinite, value >= 0, value < maxEpochMillis else { return nil }
        return value > 1e11 ? EventTime(micros: Int64((value * 1000).rounded())) : EventTime(seconds: value)
    }

    /// 10000-01-01T00:00:00Z in Unix milliseconds: the end of what RFC 3339 can write.
    static let maxEpochMillis = 253_402_300_800_000.0

    /// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`; the clock of a stream without events as `unset`.
    public static func format(_ t: EventTime) -> String {
        if t.isUnset { return "unset" }
        let micros = t.micros
        let secs = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let millis = Int((micros - secs * 1_000_000) / 1000)
        let days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let rem = Int(secs - days * 86_400)
        let (y, m, d) = civilFromDays(Int(days))
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2)).\(pad(millis, 3))Z"
    }

    /// Formats a UTC day number as `YYYY-MM-DD`.
    public static func formatDay(_ day: Int64) -> String {
        String(format(EventTime(micros: day * EventTime.microsPerDay)).prefix(10))
    }

    /// Formats the start of an hour since the epoch as `YYYY-MM-DDTHH:00Z`.
    public static func formatHour(_ hour: Int64) -> String {
        String(format(EventTime(micros: hour * EventTime.microsPerHour)).prefix(13)) + ":00Z"
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
