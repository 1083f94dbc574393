#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// RFC 3339 times in UTC, without Foundation: what heartbeats carry (Go's `time.Time`
/// marshals this way), what Ground Control stores and shows, and what its pages read back.
public enum UTCTime {
    /// `2026-12-05T10:20:00Z`.
    public static func rfc3339(_ seconds: Int64) -> String {
        let p = parts(seconds)
        return "\(p.year)-\(two(p.month))-\(two(p.day))T\(two(p.hour)):\(two(p.minute)):\(two(p.second))Z"
    }

    /// `2026-12-05T10:20:00.123Z`.
    public static func rfc3339(milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = milliseconds - seconds * 1000
        var text = rfc3339(seconds)
        text.removeLast()
        let m = String(millis)
        return text + "." + String(repeating: "0", count: 3 - m.count) + m + "Z"
    }

    /// `20261205T102000Z`: a timestamp that sorts and is a valid OCI tag.
    public static func compact(_ seconds: Int64) -> String {
        let p = parts(seconds)
        return "\(p.year)\(two(p.month))\(two(p.day))T\(two(p.hour))\(two(p.minute))\(two(p.second))Z"
    }

    /// Seconds since the epoch of an RFC 3339 time (`Z` or a `±hh:mm` offset, optional
    /// fraction, which is dropped); nil for anything else.
    public static func parse(_ text: some StringProtocol) -> Int64? {
        let b = Array(text.utf8)
        func number(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var value = 0
            for byte in b[at..<(at + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3a, b[16] == 0x3a,
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        if i < b.count, b[i] == 0x2e {
            i += 1
            let start = i
            while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }
            guard i > start else { return nil }
        }
        var offset = 0
        if i < b.count, b[i] == 0x5a || b[i] == 0x7a {
            i += 1
        } else if i + 6 == b.count, b[i] == 0x2b || b[i] == 0x2d, b[i + 3] == 0x3a,
            let oh = number(i + 1, 2), let om = number(i + 4, 2), oh < 24, om < 60
        {
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2b ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return Int64(daysFromCivil(year, month, day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset)
    }

    /// The civil time in UTC (the same fields as ``LocalTime/Parts``).
    private static func parts(_ seconds: Int64) -> LocalTime.Parts {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        return LocalTime.Parts(tm)
    }

    private static func two(_ v: Int) -> String { v < 10 ? "0\(v)" : String(v) }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
