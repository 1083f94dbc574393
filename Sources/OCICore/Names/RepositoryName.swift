/// A repository name that matched the OCI distribution grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
///
/// The grammar has no `.` or `..` component, no leading `_`, no `%` and no empty component,
/// so a validated name is safe to use as a relative path below the store.
public struct RepositoryName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    /// Longest accepted name, as in distribution.
    public static let maxLength = 255

    public init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength else { return nil }
        for component in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidComponent(Substring(component)) else { return nil }
        }
        value = String(text)
    }

    public var description: String { value }
    public var components: [Substring] { value.split(separator: "/") }

    public static func < (lhs: RepositoryName, rhs: RepositoryName) -> Bool { lhs.value < rhs.value }

    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }

    static func isValidComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if isAlnum(c) {
                i += 1
                continue
            }
            // Separator: ".", "_", "__" or one or more "-", always followed by an alnum.
            var j = i
            if c == 0x2e {
                j += 1
            } else if c == 0x5f {
                j += 1
                if j < bytes.count, bytes[j] == 0x5f { j += 1 }
            } else if c == 0x2d {
                while j < bytes.count, bytes[j] == 0x2d { j += 1 }
            } else {
                return false
            }
            guard j < bytes.count, isAlnum(bytes[j]) else { return false }
            i = j
        }
        return true
    }
}
