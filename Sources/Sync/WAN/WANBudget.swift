/// Bytes the WAN may carry per calendar day and calendar month of local time
/// (`sync.budget`); nil is no limit.
public struct WANBudget: Sendable, Equatable {
    public var perDay: Int64?
    public var perMonth: Int64?

    public init(perDay: Int64? = nil, perMonth: Int64? = nil) {
        self.perDay = perDay
        self.perMonth = perMonth
    }

    public var unlimited: Bool { perDay == nil && perMonth == nil }

    /// Bytes left today after `dayUsed` today and `monthUsed` this month (never negative);
    /// nil when there is no limit.
    public func remaining(dayUsed: Int64, monthUsed: Int64) -> Int64? {
        let day = perDay.map { max(0, $0 - dayUsed) }
        let month = perMonth.map { max(0, $0 - monthUsed) }
        switch (day, month) {
        case (nil, nil): return nil
        case (let d?, nil): return d
        case (nil, let m?): return m
        case (let d?, let m?): return min(d, m)
        }
    }

    /// Which limit is spent, for messages: "daily", "monthly", or nil.
    public func spentLimit(dayUsed: Int64, monthUsed: Int64) -> String? {
        if let perMonth, monthUsed >= perMonth { return "monthly" }
        if let perDay, dayUsed >= perDay { return "daily" }
        return nil
    }
}
