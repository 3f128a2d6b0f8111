/// Event time: microseconds since the Unix epoch, UTC.
///
/// Every decision in iw-detect is made on event time (DESIGN §2); only delivery uses the wall clock.
public struct EventTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var micros: Int64

    @inlinable public init(micros: Int64) { self.micros = micros }
    /// The clock of a stream that has seen no event yet: earlier than every event time. Never do
    /// arithmetic on it (it is `Int64.min`); test for it first.
    public static let unset = EventTime(micros: .min)
    public var isUnset: Bool { micros == Int64.min }
    public init(seconds: Double) { self.micros = Int64((seconds * 1_000_000).rounded()) }

    @inlinable public static func < (a: EventTime, b: EventTime) -> Bool { a.micros < b.micros }
    @inlinable public static func + (a: EventTime, d: Duration) -> EventTime { EventTime(micros: a.micros + d.micros) }
    @inlinable public static func - (a: EventTime, d: Duration) -> EventTime { EventTime(micros: a.micros - d.micros) }

    public static let microsPerDay: Int64 = 86_400_000_000
    public static let microsPerHour: Int64 = 3_600_000_000

    /// The UTC day number since the epoch (day 0 is 1970-01-01).
    @inlinable public var day: Int64 { bucket(EventTime.microsPerDay) }
    /// The hour number since the epoch.
    @inlinable public var hour: Int64 { bucket(EventTime.microsPerHour) }

    /// The number of the `unit`-microsecond bucket this time falls in, rounding down (before
    /// 1970 too): `day` and `hour` are buckets of a day and of an hour.
    @inlinable public func bucket(_ unit: Int64) -> Int64 { micros >= 0 ? micros / unit : (micros + 1) / unit - 1 }

    /// RFC 3339 text in UTC with millisecond precision, e.g. `2026-11-21T10:40:17.123Z`.
    public var description: String { Timestamp.format(self) }

    /// A span of event time.
    public struct Duration: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var micros: Int64
        @inlinable public init(micros: Int64) { self.micros = micros }
        public static func seconds(_ s: Int64) -> Duration { Duration(micros: s * 1_000_000) }
        public static func minutes(_ m: Int64) -> Duration { .seconds(m * 60) }
        public static func hours(_ h: Int64) -> Duration { .seconds(h * 3600) }
        public static func days(_ d: Int64) -> Duration { .seconds(d * 86_400) }
        @inlinable public static func < (a: Duration, b: Duration) -> Bool { a.micros < b.micros }

        /// Parses `30s`, `5m`, `1h`, `14d`, `2w` (a whole number and a unit). Durations longer
        /// than ``maxParsed`` are nil, as is anything malformed.
        public init?(parsing text: String) {
            guard let unit = text.last, let n = Int64(text.dropLast()), n >= 0 else { return nil }
            let seconds: Int64
            switch unit {
            case "s": seconds = 1
            case "m": seconds = 60
            case "h": seconds = 3600
            case "d": seconds = 86_400
            case "w": seconds = 604_800
            default: return nil
            }
            guard n <= Duration.maxParsed.micros / 1_000_000 / seconds else { return nil }
            self = .seconds(n * seconds)
        }

        /// The longest duration text may give: 100 years, far beyond any window or schedule, and
        /// far from overflowing the microsecond arithmetic of event times.
        public static let maxParsed = Duration.days(36_525)

        public var description: String {
            let s = micros / 1_000_000
            if s > 0, s % 604_800 == 0 { return "\(s / 604_800)w" }
            if s > 0, s % 86_400 == 0 { return "\(s / 86_400)d" }
            if s > 0, s % 3600 == 0 { return "\(s / 3600)h" }
            if s > 0, s % 60 == 0 { return "\(s / 60)m" }
            if micros % 1_000_000 == 0 { return "\(s)s" }
            return "\(Double(micros) / 1_000_000)s"
        }
    }
}
