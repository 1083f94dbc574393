#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one clock: nanoseconds as Int64 (the project keeps durations as Int64 ns), and
/// wall-clock seconds for records that outlive the process.
public enum MonotonicClock {
    /// Nanoseconds on a clock that never jumps (for timeouts and durations).
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Nanoseconds since the Unix epoch (for records a person reads).
    public static func wallNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Seconds since the Unix epoch (access times, status files).
    public static func wallSeconds() -> Int64 {
        wallNow() / 1_000_000_000
    }
}
