extension StringProtocol {
    /// This string without the characters `isTrimmed` accepts at its ends: whitespace
    /// (newlines included) at both ends by default. The project's one trim helper: header
    /// values, config text, files holding one value.
    public func trimmed(
        leading: Bool = true, trailing: Bool = true, where isTrimmed: (Character) -> Bool = { $0.isWhitespace }
    ) -> String {
        var slice = Substring(self)
        if leading { slice = slice.drop(while: isTrimmed) }
        // "\r\n" is one Character, and `isWhitespace`/`isNewline` accept it.
        if trailing { while let last = slice.last, isTrimmed(last) { slice = slice.dropLast() } }
        return String(slice)
    }
}
