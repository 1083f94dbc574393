import OCICore
/// Parsers for the config file's units: sizes ("512MiB", "4GB" or a byte count), durations
/// ("30s", "5m", "1h30m", "250ms") and rates ("2MB/s", "16Mbit/s").
///
/// Every result is 64-bit: `Int` is 32-bit on armv7.
public enum Units {
    static let sizeUnits: [(String, Int64)] = [
        ("b", 1),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40),
    ]

    static let bitUnits: [(String, Int64)] = [
        ("bit", 1), ("kbit", 1_000), ("mbit", 1_000_000), ("gbit", 1_000_000_000),
        ("kibit", 1 << 10), ("mibit", 1 << 20), ("gibit", 1 << 30),
    ]

    /// Parses a size such as "512MiB", "4GB", "1.5GiB" or "1048576" into bytes.
    public static func parseSize(_ text: String) -> Int64? {
        let trimmed = text.trimmed().lowercased()
        guard let (number, unit) = splitNumber(trimmed) else { return nil }
        if unit.isEmpty { return scale(number, by: 1) }
        guard let factor = sizeUnits.first(where: { $0.0 == unit })?.1 else { return nil }
        return scale(number, by: factor)
    }

    /// Parses a rate such as "2MB/s", "16Mbit/s" or "0" into bytes per second.
    public static func parseRate(_ text: String) -> Int64? {
        let trimmed = text.trimmed().lowercased()
        if let bytes = splitNumber(trimmed), bytes.1.isEmpty {
            return scale(bytes.0, by: 1)
        }
        guard trimmed.hasSuffix("/s") else { return nil }
        let body = String(trimmed.dropLast(2))
        guard let (number, unit) = splitNumber(body) else { return nil }
        if let factor = bitUnits.first(where: { $0.0 == unit })?.1 {
            return scale(number / 8, by: factor)
        }
        if let factor = sizeUnits.first(where: { $0.0 == unit })?.1 {
            return scale(number, by: factor)
        }
        return nil
    }

    /// Parses a duration such as "30s", "5m", "1h30m" or "250ms" into nanoseconds.
    public static func parseDuration(_ text: String) -> Int64? {
        var rest = Substring(text.trimmed().lowercased())
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        var total: Double = 0
        while !rest.isEmpty {
            let numberPart = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard !numberPart.isEmpty, let number = Double(numberPart) else { return nil }
            rest = rest.dropFirst(numberPart.count)
            let unitPart = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unitPart.count)
            let factor: Double
            switch unitPart {
            case "ns": factor = 1
            case "us", "µs": factor = 1e3
            case "ms": factor = 1e6
            case "s": factor = 1e9
            case "m": factor = 60e9
            case "h": factor = 3600e9
            case "d": factor = 86400e9
            default: return nil
            }
            total += number * factor
        }
        guard total.isFinite, total < 9.2e18 else { return nil }
        return Int64(total)
    }

    /// Parses a share such as "20%" into a fraction (0.2).
    public static func parsePercent(_ text: String) -> Double? {
        let trimmed = text.trimmed()
        guard trimmed.hasSuffix("%"), let value = Double(trimmed.dropLast()), value >= 0, value <= 100 else {
            return nil
        }
        return value / 100
    }

    /// Formats a byte count for people: "1.5 GiB".
    public static func formatSize(_ bytes: Int64) -> String { ByteSize.format(bytes) }

    /// Formats a duration in nanoseconds for people: "1m30s", "250ms".
    public static func formatDuration(_ nanoseconds: Int64) -> String {
        if nanoseconds < 1_000_000_000 {
            return "\(nanoseconds / 1_000_000)ms"
        }
        var seconds = nanoseconds / 1_000_000_000
        var text = ""
        if seconds >= 3600 {
            text += "\(seconds / 3600)h"
            seconds %= 3600
        }
        if seconds >= 60 {
            text += "\(seconds / 60)m"
            seconds %= 60
        }
        if seconds > 0 || text.isEmpty { text += "\(seconds)s" }
        return text
    }

    public static func formatDecimal(_ value: Double) -> String { ByteSize.formatDecimal(value) }

    private static func splitNumber(_ text: String) -> (Double, String)? {
        let numberPart = text.prefix(while: { $0.isNumber || $0 == "." })
        guard !numberPart.isEmpty, let number = Double(numberPart), number >= 0 else { return nil }
        let unit = text.dropFirst(numberPart.count).trimmed()
        return (number, unit)
    }

    private static func scale(_ number: Double, by factor: Int64) -> Int64? {
        let value = number * Double(factor)
        guard value.isFinite, value < 9.2e18 else { return nil }
        return Int64(value.rounded())
    }
}
