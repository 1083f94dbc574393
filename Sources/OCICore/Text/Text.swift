// Substring search and replacement on UTF-8 bytes. The standard library's
// `contains(_: some StringProtocol)` and `replacing(_:with:)` live in _StringProcessing,
// whose regex engine would add 1.2 MB to the static binary for a handful of call sites
// (docs/static-build.md); these helpers keep it out. Byte-wise comparison is exact for
// the ASCII protocol text they are used on (media types, paths, config syntax).

extension StringProtocol {
    /// Whether `other` occurs in this string (byte-wise on UTF-8; "" occurs everywhere).
    public func containsText(_ other: some StringProtocol) -> Bool {
        firstUTF8Offset(of: other) != nil
    }

    /// This string with every occurrence of `target` replaced by `replacement`, scanning
    /// left to right without overlaps.
    public func replacingText(_ target: some StringProtocol, with replacement: some StringProtocol) -> String {
        let haystack = Array(utf8)
        let needle = Array(target.utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return String(self) }
        var result: [UInt8] = []
        result.reserveCapacity(haystack.count)
        var index = 0
        while index < haystack.count {
            if index + needle.count <= haystack.count, haystack[index] == needle[0],
                haystack[index..<(index + needle.count)].elementsEqual(needle)
            {
                result.append(contentsOf: replacement.utf8)
                index += needle.count
            } else {
                result.append(haystack[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    private func firstUTF8Offset(of other: some StringProtocol) -> Int? {
        let haystack = Array(utf8)
        let needle = Array(other.utf8)
        guard !needle.isEmpty else { return 0 }
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start] == needle[0] && haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
