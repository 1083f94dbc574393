import OCICore

/// The daily local-time windows in which the WAN may be used (`sync.windows`): containment
/// and the next change, computed in local time of day. No window at all means always open.
///
/// Times are local wall-clock times of day; on a day the clocks change (DST) a window is
/// still found by its local times, but a "next change" predicted across the change may be
/// off by the shift (the gate re-checks every few seconds, so it only delays by that much).
public struct SyncWindows: Sendable, Equatable {
    /// One window in minutes after local midnight; `end` < `start` crosses midnight.
    public struct Window: Sendable, Equatable {
        public var start: Int
        public var end: Int

        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }

        /// Whether minute `m` of the day (0..<1440) lies in the window (start inclusive,
        /// end exclusive).
        public func contains(minute m: Int) -> Bool {
            start < end ? (m >= start && m < end) : (m >= start || m < end)
        }
    }

    public var windows: [Window]

    public init(_ windows: [Window] = []) {
        self.windows = windows
    }

    public var alwaysOpen: Bool { windows.isEmpty }

    public func contains(minute m: Int) -> Bool {
        alwaysOpen || windows.contains { $0.contains(minute: m) }
    }

    /// Open or closed at a local time, and for how many more seconds.
    public struct State: Sendable, Equatable {
        public var open: Bool
        /// Seconds until it changes (closes when open, opens when closed); nil: never.
        public var secondsToChange: Int64?
    }

    /// The state at a local time of day (`secondOfDay` 0..<86400): scans the next two days
    /// minute by minute, so overlapping and adjacent windows ("22:00-24:00" + "00:00-02:00")
    /// count as one.
    public func state(secondOfDay: Int) -> State {
        let minute = (secondOfDay / 60) % 1440
        let open = contains(minute: minute)
        if alwaysOpen { return State(open: true, secondsToChange: nil) }
        for k in 1...2880 where contains(minute: (minute + k) % 1440) != open {
            return State(open: open, secondsToChange: Int64((minute + k) * 60 - secondOfDay))
        }
        return State(open: open, secondsToChange: nil)
    }
}
