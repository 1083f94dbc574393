import OCICore
/// Line diffs in the unified format of `diff -u`, for `runtime-config --dry-run`.
enum UnifiedDiff {
    /// The diff of `old` and `new`, or "" when they are equal.
    static func make(old: String, new: String, oldName: String, newName: String, context: Int = 3) -> String {
        guard old != new else { return "" }
        let a = lines(old)
        let b = lines(new)
        let edits = script(a, b)
        var output = "--- \(oldName)\n+++ \(newName)\n"
        // Group edits into hunks: changes closer than 2*context lines share a hunk.
        var index = 0
        while index < edits.count {
            guard let firstChange = edits[index...].firstIndex(where: { $0.kind != .same }) else { break }
            var end = firstChange
            var last = firstChange
            while end < edits.count {
                if edits[end].kind != .same {
                    last = end
                } else if end - last > 2 * context {
                    break
                }
                end += 1
            }
            let start = max(index, firstChange - context)
            let stop = min(edits.count, last + context + 1)
            let slice = edits[start..<stop]
            let oldCount = slice.filter { $0.kind != .insert }.count
            let newCount = slice.filter { $0.kind != .delete }.count
            let oldStart = slice[start].oldLine + (oldCount > 0 ? 1 : 0)
            let newStart = slice[start].newLine + (newCount > 0 ? 1 : 0)
            output += "@@ -\(range(oldStart, oldCount)) +\(range(newStart, newCount)) @@\n"
            for edit in slice {
                switch edit.kind {
                case .same: output += " \(edit.text)\n"
                case .delete: output += "-\(edit.text)\n"
                case .insert: output += "+\(edit.text)\n"
                }
            }
            index = stop
        }
        return output
    }

    private static func range(_ start: Int, _ count: Int) -> String {
        count == 1 ? "\(start)" : "\(start),\(count)"
    }

    private static func lines(_ text: String) -> [Substring] {
        guard !text.isEmpty else { return [] }
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        if text.hasSuffix("\n") { parts.removeLast() }
        return parts
    }

    struct Edit {
        enum Kind { case same, delete, insert }
        var kind: Kind
        var text: Substring
        /// 0-based positions in the old and new text where this edit applies.
        var oldLine: Int
        var newLine: Int
    }

    /// Longest-common-subsequence edit script. The files are small config files; beyond a
    /// few thousand lines it degrades to "replace everything" rather than use quadratic memory.
    private static func script(_ a: [Substring], _ b: [Substring]) -> [Edit] {
        let n = a.count
        let m = b.count
        guard n * m <= 4_000_000 else {
            return a.enumerated().map { Edit(kind: .delete, text: $0.element, oldLine: $0.offset, newLine: 0) }
                + b.enumerated().map { Edit(kind: .insert, text: $0.element, oldLine: n, newLine: $0.offset) }
        }
        // lengths[i][j] = LCS length of a[i...] and b[j...]
        var lengths = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lengths[i * (m + 1) + j] =
                    a[i] == b[j]
                    ? lengths[(i + 1) * (m + 1) + j + 1] + 1
                    : max(lengths[(i + 1) * (m + 1) + j], lengths[i * (m + 1) + j + 1])
            }
        }
        var edits: [Edit] = []
        var i = 0
        var j = 0
        while i < n || j < m {
            if i < n, j < m, a[i] == b[j] {
                edits.append(Edit(kind: .same, text: a[i], oldLine: i, newLine: j))
                i += 1
                j += 1
            } else if i < n && (j == m || lengths[(i + 1) * (m + 1) + j] >= lengths[i * (m + 1) + j + 1]) {
                edits.append(Edit(kind: .delete, text: a[i], oldLine: i, newLine: j))
                i += 1
            } else {
                edits.append(Edit(kind: .insert, text: b[j], oldLine: i, newLine: j))
                j += 1
            }
        }
        return edits
    }
}
