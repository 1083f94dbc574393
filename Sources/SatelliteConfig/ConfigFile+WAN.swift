import OCICore

/// `sync.windows` and `sync.budget` (docs/sync.md, "Windows and budgets").
extension ConfigFile.Sync {
    /// One daily window of local time in which the WAN may be used, `"01:00-05:00"`.
    /// An end before the start crosses midnight (`"22:00-02:00"`); `"24:00"` is the end of
    /// the day; start and end are the same only in `"00:00-24:00"` (all day).
    public struct Window: Sendable, Equatable, CustomStringConvertible {
        /// Minutes after local midnight, 0..<1440.
        public var start: Int
        /// Minutes after local midnight, 0...1440 (exclusive end).
        public var end: Int

        public init?(start: Int, end: Int) {
            guard (0..<1440).contains(start), (0...1440).contains(end), start != end, !(start == 0 && end == 0) else {
                return nil
            }
            self.start = start
            self.end = end
        }

        /// Parses `HH:MM-HH:MM`.
        public init?(_ text: String) {
            let parts = text.trimmed().split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let start = Self.minutes(parts[0]), let end = Self.minutes(parts[1]), start < 1440 else {
                return nil
            }
            self.init(start: start, end: end)
        }

        /// `HH:MM` (00:00 to 24:00) as minutes after midnight.
        static func minutes(_ text: Substring) -> Int? {
            let fields = text.trimmed().split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, fields[0].count == 2, fields[1].count == 2,
                fields.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
                let hours = Int(fields[0]), let minutes = Int(fields[1]), minutes < 60,
                hours < 24 || (hours == 24 && minutes == 0)
            else { return nil }
            return hours * 60 + minutes
        }

        public var description: String {
            func clock(_ m: Int) -> String {
                let h = m / 60, mm = m % 60
                return (h < 10 ? "0\(h)" : "\(h)") + ":" + (mm < 10 ? "0\(mm)" : "\(mm)")
            }
            return "\(clock(start))-\(clock(end))"
        }
    }

    /// Bytes the WAN may carry per calendar day and month of local time; nil is no limit.
    public struct Budget: Sendable, Equatable {
        public var perDay: Int64?
        public var perMonth: Int64?

        public init(perDay: Int64? = nil, perMonth: Int64? = nil) {
            self.perDay = perDay
            self.perMonth = perMonth
        }
    }

    /// Reads `windows` and `budget` of the `sync` object.
    ///
    /// Throws ``ConfigError`` naming the key at fault.
    mutating func readWAN(_ reader: inout ObjectReader) throws {
        if let texts = try reader.stringArray("windows") {
            windows = try texts.enumerated().map { index, text in
                guard let window = Window(text) else {
                    throw ConfigError(
                        path: "sync.windows[\(index)]",
                        message: "\"\(text)\" is not a local-time window HH:MM-HH:MM, e.g. \"01:00-05:00\" or \"22:00-02:00\"")
                }
                return window
            }
        }
        if var budgetReader = try reader.object("budget") {
            for key in ["perDay", "perMonth"] {
                guard let bytes = try budgetReader.size(key) else { continue }
                guard bytes > 0 else {
                    throw ConfigError(path: "sync.budget.\(key)", message: "must be more than 0 (leave it out for no limit)")
                }
                if key == "perDay" { budget.perDay = bytes } else { budget.perMonth = bytes }
            }
            try budgetReader.finish()
        }
    }
}
