import Testing

@testable import Sync

@Suite struct SyncWindowsTests {
    static func hm(_ h: Int, _ m: Int = 0) -> Int { h * 60 + m }

    @Test func noWindowIsAlwaysOpen() {
        let windows = SyncWindows()
        #expect(windows.contains(minute: 0) && windows.contains(minute: 1439))
        #expect(windows.state(secondOfDay: 12345) == .init(open: true, secondsToChange: nil))
    }

    @Test func plainWindow() {
        let windows = SyncWindows([.init(start: Self.hm(1), end: Self.hm(5))])
        #expect(!windows.contains(minute: Self.hm(0, 59)))
        #expect(windows.contains(minute: Self.hm(1)))
        #expect(windows.contains(minute: Self.hm(4, 59)))
        #expect(!windows.contains(minute: Self.hm(5)))
        // 00:30:10 -> opens at 01:00 (1790 s later); 04:59:30 -> closes in 30 s.
        #expect(windows.state(secondOfDay: 1810) == .init(open: false, secondsToChange: 1790))
        #expect(windows.state(secondOfDay: 4 * 3600 + 59 * 60 + 30) == .init(open: true, secondsToChange: 30))
        // 06:00 -> opens at 01:00 the next day: 19 hours.
        #expect(windows.state(secondOfDay: 6 * 3600) == .init(open: false, secondsToChange: 19 * 3600))
    }

    @Test func windowCrossingMidnight() {
        let windows = SyncWindows([.init(start: Self.hm(22), end: Self.hm(2))])
        #expect(windows.contains(minute: Self.hm(23, 59)))
        #expect(windows.contains(minute: 0))
        #expect(windows.contains(minute: Self.hm(1, 59)))
        #expect(!windows.contains(minute: Self.hm(2)))
        #expect(!windows.contains(minute: Self.hm(21, 59)))
        // 23:00 -> closes at 02:00, three hours later, across midnight.
        #expect(windows.state(secondOfDay: 23 * 3600) == .init(open: true, secondsToChange: 3 * 3600))
    }

    @Test func adjacentWindowsAreOneAndSeveralPerDay() {
        let windows = SyncWindows([
            .init(start: Self.hm(22), end: 1440), .init(start: 0, end: Self.hm(2)), .init(start: Self.hm(12), end: Self.hm(13)),
        ])
        // 22:00-24:00 + 00:00-02:00 close at 02:00, not at midnight.
        #expect(windows.state(secondOfDay: 22 * 3600) == .init(open: true, secondsToChange: 4 * 3600))
        // 03:00 -> the noon window is next.
        #expect(windows.state(secondOfDay: 3 * 3600) == .init(open: false, secondsToChange: 9 * 3600))
        // 13:00 -> the evening one.
        #expect(windows.state(secondOfDay: 13 * 3600) == .init(open: false, secondsToChange: 9 * 3600))
    }

    @Test func wholeDayNeverChanges() {
        let windows = SyncWindows([.init(start: 0, end: 1440)])
        #expect(windows.state(secondOfDay: 0) == .init(open: true, secondsToChange: nil))
    }
}
