import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One bandwidth cap shared by every transfer of the process: a token bucket that the
/// transfers draw from as bytes arrive. A transfer that overdraws sleeps on its own thread
/// until the bucket has refilled, which stops curl reading from the socket and lets TCP slow
/// the sender down.
public final class BandwidthLimiter: Sendable {
    private struct State {
        var tokens: Double
        var last: Int64
    }

    /// Bytes per second; 0 is unlimited.
    public let rate: Int64
    private let burst: Double
    private let state: Mutex<State>

    public init(bytesPerSecond: Int64) {
        rate = max(0, bytesPerSecond)
        // A tenth of a second of credit keeps the rate smooth without starving small reads.
        burst = max(Double(rate) / 10, 16384)
        state = Mutex(State(tokens: 0, last: MonotonicClock.now()))
    }

    /// Takes `bytes` from the bucket, sleeping as long as the cap requires.
    public func consume(_ bytes: Int) {
        guard rate > 0, bytes > 0 else { return }
        let wait: Int64 = state.withLock { state in
            let now = MonotonicClock.now()
            state.tokens = min(burst, state.tokens + Double(now - state.last) * Double(rate) / 1e9)
            state.last = now
            state.tokens -= Double(bytes)
            return state.tokens >= 0 ? 0 : Int64(-state.tokens / Double(rate) * 1e9)
        }
        if wait > 0 {
            var request = timespec(tv_sec: time_t(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        }
    }
}

extension BandwidthLimiter {
    private static let table = Mutex<[Int64: BandwidthLimiter]>([:])

    /// The process's one limiter for `bytesPerSecond`: the sync's clients (one per pass) and
    /// the proxy's share it, so the cap holds across all of them.
    public static func shared(bytesPerSecond: Int64) -> BandwidthLimiter {
        table.withLock { table in
            if let limiter = table[bytesPerSecond] { return limiter }
            let limiter = BandwidthLimiter(bytesPerSecond: bytesPerSecond)
            table[bytesPerSecond] = limiter
            return limiter
        }
    }
}
