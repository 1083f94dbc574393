import ContentStore
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// This process's memory and CPU use, for the heartbeat (Harbor Satellite's agent reports
/// the whole machine's; Ground Control wants the satellite's).
struct ProcessStats: Sendable {
    /// CPU seconds (user + system) and wall time (monotonic ns) at the previous sample.
    private var lastCPU: Double
    private var lastWall: Int64

    init() {
        lastCPU = Self.cpuSeconds()
        lastWall = Self.monotonic()
    }

    /// Resident set size in bytes, from /proc/self/statm (0 where there is no /proc).
    static func residentBytes() -> UInt64 {
        guard let bytes = try? PosixFile.readAll(path: "/proc/self/statm", limit: 4096) else { return 0 }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pages * UInt64(max(pageSize, 4096))
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// CPU use of this process since the previous call, in percent of one core.
    mutating func cpuPercent() -> Double {
        let cpu = Self.cpuSeconds()
        let wall = Self.monotonic()
        defer {
            lastCPU = cpu
            lastWall = wall
        }
        let elapsed = Double(wall - lastWall) / 1e9
        guard elapsed > 0.001 else { return 0 }
        let percent = (cpu - lastCPU) / elapsed * 100
        return (percent * 100).rounded() / 100
    }
}
