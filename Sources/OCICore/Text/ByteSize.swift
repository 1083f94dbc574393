/// The one byte formatter: sizes for people, in binary units with one decimal ("1.5 KiB",
/// "8 GiB", "57.6 MiB").
public enum ByteSize {
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var index = 0
        while abs(value) >= 1024, index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        return "\(formatDecimal(value)) \(units[index])"
    }

    /// A number with at most one decimal, without a trailing ".0".
    public static func formatDecimal(_ value: Double) -> String {
        let tenths = Int64((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(abs(tenths % 10))"
    }
}
