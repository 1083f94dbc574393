import OCICore
import Synchronization

/// The one place WAN bytes pass: every request of an ``UpstreamClient`` (the sync's, the
/// proxy's, the mirrors') asks the gate first, and every body chunk it receives is counted
/// by it. Outside `sync.windows` no request starts and a running transfer stops at the
/// next chunk; with `sync.budget` a request may only receive what is left today and this
/// month (the client asks for at most that many bytes with a `Range` end and stops at
/// exactly the limit). Both throw ``SyncError`` `.deferred` with the time the WAN opens
/// again, which the transfer layer treats as "pause", not as a broken link.
///
/// API for other sources (LAN peers):
/// - The process's gate for a store is `WANGate.shared(ledgerPath:policy:)` (in the CLI:
///   `settings.wanGate`); every ``UpstreamClient`` built by `Settings.makeClient()` carries
///   it (``UpstreamClient/gate``).
/// - Peer bytes are LAN bytes and never pass the gate (peers work outside the windows and
///   past the budget): count what a peer sent with `gate.accounting.addLAN(_:)`. What the
///   registry serves (to clients and to peers) is already counted by `run`.
/// - A composite source (peers first, then the upstream) reaches the WAN only through that
///   ``UpstreamClient``, so its WAN part stays gated. A ``SyncError`` with kind `.deferred`
///   from the upstream part means "WAN closed until `resumesAt`": keep trying peers, then
///   rethrow it (``BlobTransfer`` checkpoints and pauses; it is not a broken link).
/// - ``check()`` probes (window and budget) without reserving; ``snapshot()`` is what
///   status, metrics and the heartbeat show.
///
/// Counting: body bytes received from the upstream; HTTP headers and TLS overhead (a few
/// hundred bytes a request) are not counted.
///
/// Durability without a write per chunk: under a budget the ledger is written before a
/// request starts, with the bytes reserved for requests in flight as `pending` (a request
/// never receives more than its reservation: its `Range` end); a process restarting after
/// a crash (kill -9, power loss) counts `pending` as used, so a crash over-counts (at most
/// ``segment`` per transfer in flight) and never lets the WAN carry more than the budget.
/// Besides, the ledger is written every ``flushInterval`` while bytes move and at
/// ``flush()``; without a budget a crash loses at most the totals of that interval.
public final class WANGate: Sendable {
    public struct Policy: Sendable, Equatable {
        public var windows: SyncWindows
        public var budget: WANBudget

        public init(windows: SyncWindows = SyncWindows(), budget: WANBudget = WANBudget()) {
            self.windows = windows
            self.budget = budget
        }

        public var unrestricted: Bool { windows.alwaysOpen && budget.unlimited }
    }

    /// What `status`, `/metrics` and the heartbeat show.
    public struct Snapshot: Sendable, Codable, Equatable {
        /// `sync.windows` as configured (empty: always open).
        public var windows: [String]
        public var windowOpen: Bool
        /// Wall seconds when the window next closes (when open) or opens (when closed); nil: never.
        public var windowChangesAt: Int64?
        public var perDay: Int64?
        public var perMonth: Int64?
        public var day: String
        public var dayBytes: Int64
        public var month: String
        public var monthBytes: Int64
        /// Bytes the budget still allows today / this month; nil without that limit.
        public var dayLeft: Int64?
        public var monthLeft: Int64?
        /// Totals of the store's ledger.
        public var wanBytes: Int64
        public var lanBytes: Int64

        /// Whether a WAN transfer may run now.
        public var open: Bool { windowOpen && dayLeft != 0 && monthLeft != 0 }
    }

    private struct State {
        var policy: Policy
        var ledger: WANLedger
        /// Budget bytes promised to requests in flight and not yet received.
        var reserved: Int64 = 0
        /// LAN bytes of the accounting already in `ledger.lanBytes`.
        var lanCounted: Int64 = 0
        /// When (monotonic ns) the ledger was last written.
        var flushedAt: Int64
        var dirty = false
        var sequence: Int64 = 0
        /// `wanBytes + pending` of the last write: what a restart would count.
        var covered: Int64 = 0
        /// Cached window state: valid while `now` is in computedAt..<validUntil.
        var computedAt: Int64 = Int64.max
        var validUntil: Int64 = Int64.min
        var open = true
        var changesAt: Int64?
    }

    public let clock: any WallClock
    public let accounting: LinkAccounting
    public let ledgerPath: String?
    /// The ledger is written at most this often (nanoseconds) while bytes move, besides
    /// the writes at each budgeted request and at ``flush()``.
    public let flushInterval: Int64
    private let state: Mutex<State>
    /// Serialises ledger writes and drops a stale one.
    private let writer = Mutex<Int64>(-1)

    /// - Parameters:
    ///   - ledgerPath: the store's `sync/wan.json`; nil keeps the counts in memory only.
    public init(
        ledgerPath: String?, policy: Policy, clock: any WallClock = SystemWallClock.shared, accounting: LinkAccounting = LinkAccounting(),
        flushInterval: Int64 = 10_000_000_000
    ) {
        self.clock = clock
        self.accounting = accounting
        self.ledgerPath = ledgerPath
        self.flushInterval = flushInterval
        let local = LocalTime.parts(clock.now())
        var ledger = ledgerPath.flatMap(WANLedger.read) ?? WANLedger(at: local)
        // The previous process did not stop cleanly: what it may have received after its
        // last write counts as used (over-count, never exceed).
        ledger.add(wan: ledger.pending)
        ledger.pending = 0
        ledger.roll(to: local)
        state = Mutex(State(policy: policy, ledger: ledger, flushedAt: MonotonicClock.now()))
    }

    public var policy: Policy {
        get { state.withLock { $0.policy } }
        set { state.withLock { $0.policy = newValue; $0.validUntil = Int64.min } }
    }

    // MARK: Requests

    /// One request's permission to use the WAN, used on the thread of its transfer.
    public final class Lease {
        private let gate: WANGate
        /// Bytes this request may still receive; nil: no limit.
        public private(set) var allowance: Int64?
        /// Set once the request must stop: the window closed or the allowance is spent
        /// with bytes still coming.
        public private(set) var stop: SyncError?
        private var held: Int64

        init(gate: WANGate, allowance: Int64?) {
            self.gate = gate
            self.allowance = allowance
            self.held = allowance ?? 0
        }

        /// Counts `count` bytes that arrived and returns how many of them may be kept
        /// (fewer than `count` only when the request must stop; ``stop`` then says why).
        public func take(_ count: Int) -> Int {
            guard count > 0 else { return 0 }
            var wanted = Int64(count)
            if let allowance { wanted = min(wanted, allowance) }
            let granted = gate.count(wanted, releasing: min(held, wanted))
            held -= min(held, granted)
            if let allowance { self.allowance = allowance - granted }
            if granted < Int64(count), stop == nil { stop = gate.deferral() }
            return Int(granted)
        }

        /// Returns what the request did not use to the budget. Idempotent.
        public func end() {
            if held > 0 { gate.release(held) }
            held = 0
        }

        deinit { if held > 0 { gate.release(held) } }
    }

    /// Lets a request start: `wanting` is the most body bytes it may receive (nil: unknown).
    /// The lease's ``Lease/allowance`` is what it may receive (the budget left, less what
    /// other requests in flight hold).
    ///
    /// Throws ``SyncError`` `.deferred` outside the windows, or when the budget is spent
    /// (a request wanting 0 bytes, a HEAD, only needs an open window).
    public func lease(wanting: Int64?) throws -> Lease {
        let now = clock.now()
        let (allowance, write): (Int64?, (WANLedger, Int64)?) = try state.withLock { s in
            refresh(&s, now)
            guard s.open else { throw windowDeferral(s, now) }
            guard let left = s.policy.budget.remaining(dayUsed: s.ledger.dayBytes, monthUsed: s.ledger.monthBytes) else {
                return (nil, nil)
            }
            let available = max(0, left - s.reserved)
            if wanting == 0 { return (0, nil) }
            guard available > 0 else { throw budgetDeferral(s, now) }
            let granted = min(wanting ?? available, available, Self.segment)
            s.reserved += granted
            // The promise is on disk before the request starts: a crash can then over-count
            // what was reserved but never under-count what the upstream sent.
            guard ledgerPath != nil, s.ledger.wanBytes + s.reserved > s.covered else { return (granted, nil) }
            return (granted, takeWrite(&s, MonotonicClock.now(), pending: s.reserved))
        }
        if let write { persist(write.0, sequence: write.1) }
        return Lease(gate: self, allowance: allowance)
    }

    /// Throws ``SyncError`` `.deferred` when no WAN byte may move now.
    /// The most one request may reserve under a budget (its `Range` end): bounds what a
    /// crash can over-count to this much per transfer in flight.
    public static let segment: Int64 = 16 << 20

    public func admit() throws {
        _ = try lease(wanting: 0)
    }

    /// Throws ``SyncError`` `.deferred` when a transfer could not start now: outside the
    /// windows, or with no budget left. Reserves nothing (a probe before starting work).
    public func check() throws {
        let now = clock.now()
        try state.withLock { s in
            refresh(&s, now)
            guard s.open else { throw windowDeferral(s, now) }
            if let left = s.policy.budget.remaining(dayUsed: s.ledger.dayBytes, monthUsed: s.ledger.monthBytes), left - s.reserved <= 0 {
                throw budgetDeferral(s, now)
            }
        }
    }

    /// Why the WAN is closed now (the window, or the budget).
    public func deferral() -> SyncError {
        let now = clock.now()
        return state.withLock { s in
            refresh(&s, now)
            return s.open ? budgetDeferral(s, now) : windowDeferral(s, now)
        }
    }

    /// Counts up to `bytes` (fewer when the window has closed: then none) and releases
    /// `releasing` of the lease's reservation.
    private func count(_ bytes: Int64, releasing: Int64) -> Int64 {
        let now = clock.now()
        let (granted, write) = state.withLock { s -> (Int64, (WANLedger, Int64)?) in
            refresh(&s, now)
            s.reserved = max(0, s.reserved - releasing)
            guard s.open else { return (0, nil) }
            s.ledger.add(wan: bytes)
            s.dirty = true
            return (bytes, dueWrite(&s))
        }
        accounting.addWAN(granted)
        if let write { persist(write.0, sequence: write.1) }
        return granted
    }

    private func release(_ bytes: Int64) {
        state.withLock { s in
            s.reserved = max(0, s.reserved - bytes)
            // The ledger's `pending` is now more than needed: the next write corrects it.
            s.dirty = true
        }
    }

    // MARK: Clock

    private func refresh(_ s: inout State, _ now: Int64) {
        guard now < s.computedAt || now >= s.validUntil else { return }
        let local = LocalTime.parts(now)
        let window = s.policy.windows.state(secondOfDay: local.secondOfDay)
        s.ledger.roll(to: local)
        s.open = window.open
        s.changesAt = window.secondsToChange.map { now + $0 }
        s.computedAt = now
        // Again at the window's change, at local midnight (a new budget day), and at least
        // once a minute.
        let midnight = now + Int64(86_400 - local.secondOfDay)
        s.validUntil = min(s.changesAt ?? Int64.max, midnight, now + 60)
    }

    private func windowDeferral(_ s: State, _ now: Int64) -> SyncError {
        guard let opens = s.changesAt else {
            return SyncError(.deferred, "outside the sync window (sync.windows never opens)")
        }
        return SyncError(.deferred, "outside the sync window until \(Self.describe(opens, now: now))", resumesAt: opens)
    }

    private func budgetDeferral(_ s: State, _ now: Int64) -> SyncError {
        let budget = s.policy.budget
        let monthly = budget.perMonth.map { s.ledger.monthBytes >= $0 } ?? false
        let renews = monthly ? Self.nextMonth(after: now) : now + Int64(86_400 - LocalTime.parts(now).secondOfDay)
        let limit = monthly ? "monthly WAN budget of \(ByteSize.format(budget.perMonth ?? 0))" : "daily WAN budget of \(ByteSize.format(budget.perDay ?? 0))"
        return SyncError(.deferred, "the \(limit) is spent until \(Self.describe(renews, now: now))", resumesAt: renews)
    }

    /// `03:00`, or `2026-12-07 03:00` when not within the next 24 hours (local time).
    public static func describe(_ at: Int64, now: Int64) -> String {
        let local = LocalTime.parts(at)
        return at - now < 86_400 ? local.clock : "\(local.dayKey) \(local.clock)"
    }

    /// Local midnight starting the month after the one of `now`.
    static func nextMonth(after now: Int64) -> Int64 {
        let start = LocalTime.parts(now)
        var t = now + Int64(86_400 - start.secondOfDay)
        while LocalTime.parts(t).monthKey == start.monthKey { t += 86_400 }
        // A DST change on the way shifts midnight by the offset change: settle on 00:00.
        return t - Int64(LocalTime.parts(t).secondOfDay)
    }

    // MARK: Ledger and surfaces

    private func dueWrite(_ s: inout State) -> (WANLedger, Int64)? {
        let now = MonotonicClock.now()
        guard ledgerPath != nil, s.dirty, now - s.flushedAt >= flushInterval else { return nil }
        // Under a budget every byte in flight is reserved (and was written at its lease).
        return takeWrite(&s, now, pending: s.reserved)
    }

    private func takeWrite(_ s: inout State, _ now: Int64, pending: Int64) -> (WANLedger, Int64) {
        let lan = accounting.lanBytes
        s.ledger.lanBytes += lan - s.lanCounted
        s.lanCounted = lan
        s.ledger.updated = clock.now()
        s.flushedAt = now
        s.dirty = false
        s.sequence += 1
        var written = s.ledger
        written.pending = pending
        s.covered = written.wanBytes + pending
        return (written, s.sequence)
    }

    private func persist(_ ledger: WANLedger, sequence: Int64) {
        guard let ledgerPath else { return }
        writer.withLock { written in
            guard sequence > written else { return }
            // A failed write keeps counting in memory; the next one carries the total.
            try? ledger.write(path: ledgerPath)
            written = sequence
        }
    }

    /// Writes the ledger now when anything changed (the end of a pass, a stop).
    public func flush() {
        let lan = accounting.lanBytes
        let write = state.withLock { s -> (WANLedger, Int64)? in
            guard s.dirty || lan != s.lanCounted else { return nil }
            return takeWrite(&s, MonotonicClock.now(), pending: 0)
        }
        if let write { persist(write.0, sequence: write.1) }
    }

    /// The windows, the budget's use and the totals now; writes the ledger when it is due
    /// (so LAN bytes are saved too while no WAN byte moves).
    public func snapshot() -> Snapshot {
        let now = clock.now()
        let lan = accounting.lanBytes
        let (snapshot, write) = state.withLock { s -> (Snapshot, (WANLedger, Int64)?) in
            refresh(&s, now)
            if lan != s.lanCounted { s.dirty = true }
            let write = dueWrite(&s)
            var ledger = s.ledger
            ledger.lanBytes += lan - s.lanCounted
            return (Self.snapshot(ledger: ledger, policy: s.policy, open: s.open, changesAt: s.changesAt), write)
        }
        if let write { persist(write.0, sequence: write.1) }
        return snapshot
    }

    /// The same view from a ledger file, for a process that does not move bytes (`status`).
    public static func snapshot(ledgerPath: String, policy: Policy, clock: any WallClock = SystemWallClock.shared) -> Snapshot {
        let now = clock.now()
        let local = LocalTime.parts(now)
        var ledger = WANLedger.read(path: ledgerPath) ?? WANLedger(at: local)
        ledger.roll(to: local)
        let window = policy.windows.state(secondOfDay: local.secondOfDay)
        return snapshot(ledger: ledger, policy: policy, open: window.open, changesAt: window.secondsToChange.map { now + $0 })
    }

    private static func snapshot(ledger: WANLedger, policy: Policy, open: Bool, changesAt: Int64?) -> Snapshot {
        Snapshot(
            windows: policy.windows.windows.map(Self.format), windowOpen: open, windowChangesAt: changesAt,
            perDay: policy.budget.perDay, perMonth: policy.budget.perMonth,
            day: ledger.day, dayBytes: ledger.dayBytes, month: ledger.month, monthBytes: ledger.monthBytes,
            dayLeft: policy.budget.perDay.map { max(0, $0 - ledger.dayBytes) },
            monthLeft: policy.budget.perMonth.map { max(0, $0 - ledger.monthBytes) },
            wanBytes: ledger.wanBytes, lanBytes: ledger.lanBytes)
    }

    static func format(_ window: SyncWindows.Window) -> String {
        func clock(_ m: Int) -> String {
            let h = m / 60, mm = m % 60
            return (h < 10 ? "0\(h)" : "\(h)") + ":" + (mm < 10 ? "0\(mm)" : "\(mm)")
        }
        return "\(clock(window.start))-\(clock(window.end))"
    }
}

extension WANGate {
    private static let table = Mutex<[String: WANGate]>([:])

    /// The process's one gate for the store whose ledger is `ledgerPath` (the sync's
    /// clients, the proxy's and the mirrors' share it, so the budget holds across all of
    /// them), with its policy set to `policy` (a reloaded config takes effect).
    public static func shared(ledgerPath: String, policy: Policy) -> WANGate {
        table.withLock { table in
            if let gate = table[ledgerPath] {
                if gate.policy != policy { gate.policy = policy }
                return gate
            }
            let gate = WANGate(ledgerPath: ledgerPath, policy: policy)
            table[ledgerPath] = gate
            return gate
        }
    }
}
