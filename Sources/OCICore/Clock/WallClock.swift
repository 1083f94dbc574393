import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The wall clock that calendar rules (sync windows, daily and monthly budgets) read:
/// seconds since the Unix epoch. Injectable, so tests move time instead of waiting.
public protocol WallClock: Sendable {
    /// Seconds since the Unix epoch.
    func now() -> Int64
}

/// The system's wall clock, shifted by an offset a test can set without a restart.
///
/// The offset (seconds, `+3600`, `-86400`) comes from the hidden variable
/// `SATELLITE_LITE_CLOCK_OFFSET`, plus the number held in the file named by
/// `SATELLITE_LITE_CLOCK_OFFSET_FILE`, re-read at most once a second so an end-to-end test
/// can move a running `run` through windows and days. Neither is documented for operators.
public final class SystemWallClock: WallClock {
    public static let shared = SystemWallClock(
        fixedOffset: getenvInt64("SATELLITE_LITE_CLOCK_OFFSET") ?? 0, offsetFile: getenvValue("SATELLITE_LITE_CLOCK_OFFSET_FILE"))

    private let fixedOffset: Int64
    private let offsetFile: String?
    /// (offset read from the file, monotonic ns when it was read).
    private let cached = Mutex<(offset: Int64, readAt: Int64)?>(nil)

    public init(fixedOffset: Int64 = 0, offsetFile: String? = nil) {
        self.fixedOffset = fixedOffset
        self.offsetFile = offsetFile
    }

    public func now() -> Int64 {
        MonotonicClock.wallSeconds() + fixedOffset + fileOffset()
    }

    private func fileOffset() -> Int64 {
        guard let offsetFile else { return 0 }
        let now = MonotonicClock.now()
        if let fresh = cached.withLock({ $0.flatMap { now - $0.readAt < 1_000_000_000 ? $0.offset : nil } }) { return fresh }
        var value: Int64 = 0
        if let bytes = try? PosixFile.readAll(path: offsetFile, limit: 64) {
            value = Self.parseOffset(String(decoding: bytes, as: UTF8.self)) ?? 0
        }
        cached.withLock { $0 = (value, now) }
        return value
    }

    /// `+3600`, `-60`, `42` (surrounding white space allowed).
    public static func parseOffset(_ text: String) -> Int64? {
        var body = Substring(text.trimmed())
        if body.first == "+" { body = body.dropFirst() }
        return Int64(body)
    }

    private static func getenvValue(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let value = String(cString: raw)
        return value.isEmpty ? nil : value
    }

    private static func getenvInt64(_ name: String) -> Int64? {
        getenvValue(name).flatMap(parseOffset)
    }
}

/// A wall clock that only moves when told to (unit tests).
public final class ManualWallClock: WallClock {
    private let value: Mutex<Int64>

    public init(_ seconds: Int64) { value = Mutex(seconds) }

    public func now() -> Int64 { value.withLock { $0 } }

    public func set(_ seconds: Int64) { value.withLock { $0 = seconds } }

    public func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
}

/// Local civil time (the timezone from `TZ` or `/etc/localtime`), without Foundation.
public enum LocalTime {
    public struct Parts: Sendable, Equatable {
        public var year: Int
        /// 1...12
        public var month: Int
        /// 1...31
        public var day: Int
        public var hour: Int
        public var minute: Int
        public var second: Int

        public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
            (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
        }

        /// The civil time `localtime_r` or `gmtime_r` filled in.
        init(_ tm: tm) {
            self.init(
                year: Int(tm.tm_year) + 1900, month: Int(tm.tm_mon) + 1, day: Int(tm.tm_mday),
                hour: Int(tm.tm_hour), minute: Int(tm.tm_min), second: Int(tm.tm_sec))
        }

        /// Seconds since local midnight.
        public var secondOfDay: Int { hour * 3600 + minute * 60 + second }
        /// `2026-12-05`: the key of a budget's calendar day.
        public var dayKey: String { "\(year)-\(two(month))-\(two(day))" }
        /// `2026-12`: the key of a budget's calendar month.
        public var monthKey: String { "\(year)-\(two(month))" }
        /// `HH:MM`.
        public var clock: String { "\(two(hour)):\(two(minute))" }

        private func two(_ v: Int) -> String { v < 10 ? "0\(v)" : String(v) }
    }

    private static let zoneLoaded: Bool = {
        tzset()
        return true
    }()

    /// The local civil time of `seconds` since the epoch.
    public static func parts(_ seconds: Int64) -> Parts {
        _ = zoneLoaded
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        return Parts(tm)
    }
}
