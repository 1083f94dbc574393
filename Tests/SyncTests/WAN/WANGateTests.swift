import Testing
import TestSupport
import OCICore

@testable import Sync

@Suite struct WANGateTests {
    /// A local midnight (whatever TZ the tests run in): times below are offsets from it.
    static let midnight: Int64 = {
        let now: Int64 = 1_780_000_000  // 2026-05-28
        return now - Int64(LocalTime.parts(now).secondOfDay)
    }()

    static func policy(windows: [SyncWindows.Window] = [], perDay: Int64? = nil, perMonth: Int64? = nil) -> WANGate.Policy {
        WANGate.Policy(windows: SyncWindows(windows), budget: WANBudget(perDay: perDay, perMonth: perMonth))
    }

    @Test func budgetArithmetic() {
        let budget = WANBudget(perDay: 100, perMonth: 250)
        #expect(budget.remaining(dayUsed: 30, monthUsed: 30) == 70)
        #expect(budget.remaining(dayUsed: 30, monthUsed: 200) == 50)
        #expect(budget.remaining(dayUsed: 130, monthUsed: 130) == 0)
        #expect(WANBudget(perMonth: 10).remaining(dayUsed: 99, monthUsed: 4) == 6)
        #expect(WANBudget().remaining(dayUsed: 1 << 40, monthUsed: 1 << 40) == nil)
        #expect(budget.spentLimit(dayUsed: 100, monthUsed: 100) == "daily")
        #expect(budget.spentLimit(dayUsed: 0, monthUsed: 250) == "monthly")
    }

    @Test func outsideTheWindowNoRequestStarts() throws {
        let clock = ManualWallClock(Self.midnight + 30 * 60)  // 00:30
        let gate = WANGate(ledgerPath: nil, policy: Self.policy(windows: [.init(start: 60, end: 300)]), clock: clock)
        let error = #expect(throws: SyncError.self) { try gate.lease(wanting: 10) }
        #expect(error?.kind == .deferred)
        #expect(error?.resumesAt == Self.midnight + 3600)
        #expect(error?.message.contains("outside the sync window until 01:00") == true)
        #expect(throws: SyncError.self) { try gate.admit() }
        clock.set(Self.midnight + 3600)
        let lease = try gate.lease(wanting: 10)
        #expect(lease.allowance == nil)
        #expect(lease.take(10) == 10)
        lease.end()
        #expect(gate.accounting.wanBytes == 10)
    }

    @Test func windowEndingMidTransferStopsIt() throws {
        let clock = ManualWallClock(Self.midnight + 4 * 3600 + 59 * 60)  // 04:59
        let gate = WANGate(ledgerPath: nil, policy: Self.policy(windows: [.init(start: 60, end: 300)]), clock: clock)
        let lease = try gate.lease(wanting: nil)
        #expect(lease.take(1000) == 1000)
        clock.set(Self.midnight + 5 * 3600)  // 05:00
        #expect(lease.take(1000) == 0)
        #expect(lease.stop?.kind == .deferred)
        #expect(lease.stop?.resumesAt == Self.midnight + 86_400 + 3600)
        #expect(gate.snapshot().dayBytes == 1000)
    }

    @Test func budgetStopsAtTheLimitAcrossConcurrentRequests() throws {
        let clock = ManualWallClock(Self.midnight + 10 * 3600)
        let gate = WANGate(ledgerPath: nil, policy: Self.policy(perDay: 1000), clock: clock)
        try gate.check()  // a probe reserves nothing
        let first = try gate.lease(wanting: 600)
        let second = try gate.lease(wanting: 600)
        #expect(first.allowance == 600)
        #expect(second.allowance == 400)  // the first one's 600 are promised
        #expect(throws: SyncError.self) { try gate.lease(wanting: 1) }
        #expect(throws: SyncError.self) { try gate.check() }
        #expect(first.take(500) == 500)
        first.end()  // 100 unused go back
        let third = try gate.lease(wanting: nil)
        #expect(third.allowance == 100)
        #expect(second.take(300) == 300)
        #expect(second.take(300) == 100)
        #expect(second.stop?.kind == .deferred)
        #expect(second.stop?.message.contains("daily WAN budget") == true)
        #expect(second.stop?.resumesAt == Self.midnight + 86_400)
        // The third holds the last 100: it gets them, and not one byte more.
        #expect(third.take(60) == 60)
        #expect(third.take(60) == 40)
        #expect(third.stop?.kind == .deferred)
        third.end()
        #expect(gate.snapshot().dayBytes == 1000)
        #expect(gate.snapshot().dayLeft == 0)
        // A HEAD (no body) still passes inside the window.
        #expect(try gate.lease(wanting: 0).allowance == 0)
        // The next day the budget renews.
        clock.set(Self.midnight + 86_400 + 60)
        #expect(try gate.lease(wanting: 5000).allowance == 1000)
    }

    @Test func monthlyBudgetSpansDays() throws {
        let clock = ManualWallClock(Self.midnight + 3600)
        let gate = WANGate(ledgerPath: nil, policy: Self.policy(perDay: 1000, perMonth: 1500), clock: clock)
        let day1 = try gate.lease(wanting: 1000)
        #expect(day1.take(1000) == 1000)
        day1.end()
        let day = LocalTime.parts(clock.now())
        clock.advance(86_400)
        if LocalTime.parts(clock.now()).monthKey == day.monthKey {
            #expect(try gate.lease(wanting: 1000).allowance == 500)
        }
        let next = WANGate.nextMonth(after: Self.midnight + 3600)
        #expect(LocalTime.parts(next).day == 1)
        #expect(LocalTime.parts(next).secondOfDay == 0)
        #expect(LocalTime.parts(next - 1).monthKey == day.monthKey)
    }

    @Test func ledgerSurvivesRestartAndBoundsTheCrashLoss() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let path = "\(directory)/sync/wan.json"
        let clock = ManualWallClock(Self.midnight + 3600)
        do {
            let gate = WANGate(ledgerPath: path, policy: Self.policy(perDay: 10_000), clock: clock)
            let lease = try gate.lease(wanting: 300)
            for _ in 0..<5 { #expect(lease.take(50) == 50) }
            // No flush(), no end(): as after kill -9 mid-request. The 300 reserved were on
            // disk before the request started: a restart counts them all (over-count, never
            // under-count).
            let crashed = try #require(WANLedger.read(path: path))
            #expect(crashed.dayBytes + crashed.pending == 300)
            let afterCrash = WANGate(ledgerPath: path, policy: Self.policy(perDay: 10_000), clock: clock).snapshot()
            #expect(afterCrash.dayBytes == 300)
            lease.end()
            gate.accounting.addLAN(77)
            gate.flush()
            #expect(WANLedger.read(path: path)?.pending == 0)
        }
        // Without a budget nothing is reserved: no write per request or per chunk, one per
        // flushInterval while bytes move (here with 0 s: at the next chunk), and at flush().
        let free = "\(directory)/free/wan.json"
        let unbudgeted = WANGate(ledgerPath: free, policy: Self.policy(), clock: clock, flushInterval: 3_600_000_000_000)
        let lease = try unbudgeted.lease(wanting: nil)
        for _ in 0..<5 { #expect(lease.take(50) == 50) }
        #expect(WANLedger.read(path: free) == nil)
        unbudgeted.flush()
        #expect(WANLedger.read(path: free)?.wanBytes == 250)
        let often = WANGate(ledgerPath: free, policy: Self.policy(), clock: clock, flushInterval: 0)
        _ = try often.lease(wanting: nil).take(10)
        #expect(WANLedger.read(path: free)?.wanBytes == 260)

        let restarted = WANGate(ledgerPath: path, policy: Self.policy(perDay: 10_000), clock: clock)
        let snapshot = restarted.snapshot()
        #expect(snapshot.dayBytes == 250 && snapshot.monthBytes == 250 && snapshot.wanBytes == 250 && snapshot.lanBytes == 77)
        #expect(snapshot.dayLeft == 9750)
        #expect(WANGate.snapshot(ledgerPath: path, policy: Self.policy(perDay: 10_000), clock: clock) == snapshot)
        // A new day starts from zero; the totals stay.
        clock.advance(86_400)
        let tomorrow = WANGate(ledgerPath: path, policy: Self.policy(perDay: 10_000), clock: clock).snapshot()
        #expect(tomorrow.dayBytes == 0 && tomorrow.wanBytes == 250)
    }

    @Test func offsetFileMovesTheSystemClock() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        try PosixFile.writeAtomically("\(directory)/offset", Array("+86400\n".utf8), durable: false)
        let clock = SystemWallClock(fixedOffset: 60, offsetFile: "\(directory)/offset")
        let shifted = clock.now() - MonotonicClock.wallSeconds()
        #expect(shifted >= 86_460 - 1 && shifted <= 86_460 + 1)
        #expect(SystemWallClock.parseOffset(" -3600 ") == -3600)
        #expect(SystemWallClock.parseOffset("soon") == nil)
    }
}
