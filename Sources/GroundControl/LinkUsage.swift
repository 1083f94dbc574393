/// What a satellite's newest heartbeat said about its link: WAN and LAN bytes, whether its
/// sync window is open, and its WAN budget (docs/sync.md "Windows and budgets").
///
/// Harbor Satellite's heartbeat has no field for this, so the satellite appends
/// `wan_bytes=N lan_bytes=N wan_window=open|closed wan_day_used=N wan_day_left=N|unlimited
/// wan_month_used=N wan_month_left=N|unlimited` to `activity` (satellite-lite's
/// `WANUsage.heartbeatText`). Ground Control reads it back when it shows a satellite; nothing
/// extra is stored. A value it cannot read is left out, never an error: `activity` is free text
/// and older satellites (or other implementations) send none of it.
public struct LinkUsage: Codable, Sendable, Equatable {
    /// Body bytes received over the WAN, store lifetime.
    public var wanBytes: Int64?
    /// Bytes moved on the site LAN (served to clients, received from peers), store lifetime.
    public var lanBytes: Int64?
    /// `open` or `closed`: may the WAN be used now.
    public var window: String?
    /// WAN bytes counted today (the satellite's local calendar day), and what the daily
    /// budget still allows (absent when no daily budget is set, or not reported).
    public var dayUsed: Int64?
    public var dayLeft: Int64?
    /// The same for the calendar month.
    public var monthUsed: Int64?
    public var monthLeft: Int64?
    /// True when the day's or the month's budget has nothing left: the satellite moves no
    /// WAN byte until it renews.
    public var budgetSpent: Bool

    enum CodingKeys: String, CodingKey {
        case wanBytes = "wan_bytes"
        case lanBytes = "lan_bytes"
        case window
        case dayUsed = "day_used"
        case dayLeft = "day_left"
        case monthUsed = "month_used"
        case monthLeft = "month_left"
        case budgetSpent = "budget_spent"
    }

    public init(
        wanBytes: Int64? = nil, lanBytes: Int64? = nil, window: String? = nil, dayUsed: Int64? = nil,
        dayLeft: Int64? = nil, monthUsed: Int64? = nil, monthLeft: Int64? = nil
    ) {
        self.wanBytes = wanBytes
        self.lanBytes = lanBytes
        self.window = window
        self.dayUsed = dayUsed
        self.dayLeft = dayLeft
        self.monthUsed = monthUsed
        self.monthLeft = monthLeft
        self.budgetSpent = dayLeft == 0 || monthLeft == 0
    }

    /// The link figures in a heartbeat's `activity`, or nil when it carries none.
    ///
    /// `activity` is "; "-joined phrases; the figures are whitespace-separated `key=value`
    /// words. When a key appears twice the last one counts (the satellite appends its link
    /// phrase last). Byte counts must be plain non-negative decimals that fit an Int64.
    public static func parse(activity: String) -> LinkUsage? {
        var usage = LinkUsage()
        var found = false
        for word in activity.split(whereSeparator: { $0 == " " || $0 == ";" || $0 == "\t" || $0 == "\n" }) {
            guard let eq = word.firstIndex(of: "=") else { continue }
            let key = word[..<eq]
            let value = word[word.index(after: eq)...]
            switch key {
            case "wan_bytes": found = set(&usage.wanBytes, count(value)) || found
            case "lan_bytes": found = set(&usage.lanBytes, count(value)) || found
            case "wan_day_used": found = set(&usage.dayUsed, count(value)) || found
            case "wan_month_used": found = set(&usage.monthUsed, count(value)) || found
            case "wan_day_left":
                if value == "unlimited" {
                    usage.dayLeft = nil
                    found = true
                } else {
                    found = set(&usage.dayLeft, count(value)) || found
                }
            case "wan_month_left":
                if value == "unlimited" {
                    usage.monthLeft = nil
                    found = true
                } else {
                    found = set(&usage.monthLeft, count(value)) || found
                }
            case "wan_window":
                if value == "open" || value == "closed" {
                    usage.window = String(value)
                    found = true
                }
            default: continue
            }
        }
        guard found else { return nil }
        usage.budgetSpent = usage.dayLeft == 0 || usage.monthLeft == 0
        return usage
    }

    private static func set(_ field: inout Int64?, _ value: Int64?) -> Bool {
        guard let value else { return false }
        field = value
        return true
    }

    /// A non-negative decimal that fits an Int64 ("123"), else nil ("-1", "1e3", "9…9" too long).
    static func count(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }
}
