import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bytes the store's blobs occupy, kept as a running figure so that a quota check (one
/// per proxy miss) does not stat every blob: walked once, then moved by every commit and
/// removal this process makes, and walked again when it may be stale.
///
/// Other processes (`sync`, `gc`, `bundle import` beside `run`) change the store too. Every
/// change appends one byte to `gc/changes` (O_APPEND: atomic across processes); the file's
/// size is a store-wide change counter. A process that finds the counter anywhere but where
/// its own changes left it walks again. The figure is walked again anyway after
/// ``maximumAge`` (content changed behind the store's back, by hand).
public final class StoreUsage: Sendable {
    /// After this long (nanoseconds) the figure is walked again even if no change was seen.
    public let maximumAge: Int64
    private let layout: StoreLayout
    private let state: Mutex<State>

    private struct State {
        /// Bytes of every blob, as of the last walk plus this process's changes since.
        var bytes: Int64 = 0
        /// When the figure was walked (monotonic nanoseconds); nil before the first walk.
        var walked: Int64?
        /// The change counter as this process's last walk or change left it.
        var seen: Int64 = -1
        /// Open on `gc/changes` (append only), or -1.
        var fd: Int32 = -1
        var walks: Int = 0
    }

    /// The counter file is cut back to empty at a walk once it grows past this (any process
    /// that saw the old size then simply walks once more).
    static let counterLimit: Int64 = 1 << 20

    init(layout: StoreLayout, maximumAge: Int64 = 60_000_000_000) {
        self.layout = layout
        self.maximumAge = maximumAge
        state = Mutex(State())
    }

    deinit {
        state.withLock { if $0.fd >= 0 { PosixFile.close($0.fd) } }
    }

    /// Bytes of every blob in the store: the running figure, or a fresh walk when the
    /// figure is older than ``maximumAge`` or another process changed the store since.
    public func blobBytes() -> Int64 {
        state.withLock { state in
            let now = MonotonicClock.now()
            if let walked = state.walked, now - walked < maximumAge, counter(&state) == state.seen {
                return state.bytes
            }
            walk(&state, now: now)
            return state.bytes
        }
    }

    /// Walks the store now (the exact figure, for a decision that must not err).
    @discardableResult
    public func refresh() -> Int64 {
        state.withLock { state in
            walk(&state, now: MonotonicClock.now())
            return state.bytes
        }
    }

    /// How many times this process walked the store (for tests and metrics).
    public var walks: Int { state.withLock { $0.walks } }

    /// Records a change of `delta` bytes this process made to the blobs (positive for a
    /// commit, negative for a removal) and bumps the store-wide counter.
    func record(_ delta: Int64) {
        state.withLock { state in
            let fd = open(&state)
            guard fd >= 0 else {
                state.walked = nil
                return
            }
            var byte: UInt8 = 0x2E
            let written = write(fd, &byte, 1)
            let position = Int64(lseek(fd, 0, SEEK_CUR))
            // Anything but exactly our own byte after what we last saw: another process
            // changed the store too (or cut the counter back), so our figure is stale.
            if written == 1, position == state.seen + 1 {
                state.seen = position
                state.bytes += delta
            } else {
                state.walked = nil
            }
        }
    }

    private func open(_ state: inout State) -> Int32 {
        if state.fd >= 0 { return state.fd }
        let path = layout.usageCounter
        if let fd = try? PosixFile.open(path, O_WRONLY | O_CREAT | O_APPEND) {
            state.fd = fd
        } else if (try? PosixFile.makeDirectories(layout.gc)) != nil, let fd = try? PosixFile.open(path, O_WRONLY | O_CREAT | O_APPEND) {
            state.fd = fd
        }
        return state.fd
    }

    /// The store-wide change counter now (-2 when it cannot be read: never equal to `seen`).
    private func counter(_ state: inout State) -> Int64 {
        let fd = open(&state)
        guard fd >= 0, let status = try? PosixFile.status(fd: fd, path: layout.usageCounter) else { return -2 }
        return status.size
    }

    private func walk(_ state: inout State, now: Int64) {
        // The counter is read before the walk: a change racing the walk moves it past
        // `seen`, so the next check walks again rather than miss it.
        var seen = counter(&state)
        if seen > Self.counterLimit, state.fd >= 0, ftruncate(state.fd, 0) == 0 {
            seen = 0
        }
        var total: Int64 = 0
        for algorithm in [Digest.Algorithm.sha256, .sha512] {
            let base = layout.blobs(algorithm)
            for prefix in (try? PosixFile.list(base)) ?? [] where prefix.count == 2 {
                for name in (try? PosixFile.list("\(base)/\(prefix)")) ?? [] {
                    if let status = try? PosixFile.status("\(base)/\(prefix)/\(name)"), status.isRegular {
                        total += status.size
                    }
                }
            }
        }
        state.bytes = total
        state.seen = seen
        state.walked = now
        state.walks += 1
    }
}
