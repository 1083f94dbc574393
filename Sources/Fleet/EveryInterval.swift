/// Harbor Satellite's interval strings: `@every <Go duration>` (`@every 00h00m30s`,
/// `@every 5m`), as `app_config` and the heartbeat's `state_report_interval` carry them.
public enum EveryInterval {
    static let prefix = "@every "

    /// Seconds in `@every …`; nil when the text is not of that form or not positive.
    public static func seconds(_ text: String) -> Double? {
        guard text.hasPrefix(prefix) else { return nil }
        guard let nanoseconds = goDuration(String(text.dropFirst(prefix.count))), nanoseconds > 0 else { return nil }
        return Double(nanoseconds) / 1e9
    }

    /// `@every 00h00m30s`, the canonical form Harbor Satellite's Ground Control stores.
    public static func format(seconds: Int64) -> String {
        let s = max(0, seconds)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : String(v) }
        return "\(prefix)\(two(s / 3600))h\(two(s / 60 % 60))m\(two(s % 60))s"
    }

    /// Parses a Go duration (`1h30m`, `00h01m30s`, `1.5s`, `300ms`, `-2m`) into nanoseconds,
    /// as Go's `time.ParseDuration` does; nil when it is not one or overflows Int64.
    public static func goDuration(_ text: String) -> Int64? {
        var bytes = Substring(text).utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        if bytes.elementsEqual("0".utf8) { return 0 }
        guard !bytes.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        var total: Double = 0
        while !bytes.isEmpty {
            let number = bytes.prefix { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
            guard !number.isEmpty, let value = Double(String(decoding: number, as: UTF8.self)) else { return nil }
            bytes = bytes.dropFirst(number.count)
            let unitBytes = bytes.prefix { !(($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".")) }
            let unit = String(decoding: unitBytes, as: UTF8.self)
            guard let scale = units.first(where: { $0.0 == unit })?.1 else { return nil }
            bytes = bytes.dropFirst(unitBytes.count)
            total += value * scale
        }
        guard total < 9.2e18 else { return nil }
        let nanoseconds = Int64(total.rounded())
        return negative ? -nanoseconds : nanoseconds
    }
}
