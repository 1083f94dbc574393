import JSONCoding
import OCICore

/// The WAN bytes of the current calendar day and month (local time), and the WAN and LAN
/// totals, kept in the store (`sync/wan.json`) so a budget holds across restarts.
///
/// Written atomically (temp file, fsync, rename) by ``WANGate`` before each budgeted
/// request, every few seconds while bytes move and when the process stops, not on every
/// chunk; `pending` makes a crash over-count (by at most ``WANGate/segment`` per transfer in
/// flight) instead of under-count.
public struct WANLedger: Sendable, Codable, Equatable {
    /// `2026-12-05`: the local day `dayBytes` belongs to.
    public var day: String
    public var dayBytes: Int64 = 0
    /// `2026-12`: the local month `monthBytes` belongs to.
    public var month: String
    public var monthBytes: Int64 = 0
    /// Every WAN byte counted in this store, and every LAN byte served, since it was created.
    public var wanBytes: Int64 = 0
    public var lanBytes: Int64 = 0
    /// Bytes that may arrive before the next write (0 after a clean stop): a process
    /// starting after a crash adds them to the counts.
    public var pending: Int64 = 0
    /// Wall seconds of the last write.
    public var updated: Int64 = 0

    public init(at local: LocalTime.Parts) {
        day = local.dayKey
        month = local.monthKey
    }

    /// Starts a new day or month when the calendar moved (either way: a clock set back to
    /// another day starts that day afresh).
    public mutating func roll(to local: LocalTime.Parts) {
        if local.dayKey != day {
            day = local.dayKey
            dayBytes = 0
        }
        if local.monthKey != month {
            month = local.monthKey
            monthBytes = 0
        }
    }

    /// Adds WAN bytes to the day, the month and the total.
    public mutating func add(wan bytes: Int64) {
        dayBytes += bytes
        monthBytes += bytes
        wanBytes += bytes
    }

    /// The ledger at `path`; nil when there is none or it cannot be read (then counting
    /// starts from zero, which the gate logs).
    public static func read(path: String) -> WANLedger? {
        guard let bytes = try? PosixFile.readAll(path: path, limit: 64 * 1024) else { return nil }
        return try? JSONCoder.decode(WANLedger.self, from: bytes)
    }

    /// Throws ``PosixError`` when the file cannot be written.
    public func write(path: String) throws {
        if let slash = path.lastIndex(of: "/") { try PosixFile.makeDirectories(String(path[..<slash])) }
        try PosixFile.writeAtomically(path, try JSONCoder.encode(self, sortedKeys: true), durable: true)
    }
}
