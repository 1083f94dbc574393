import OCICore

/// k3s's registries.yaml, edited as lines so that everything this editor does not touch
/// stays byte for byte: comments, other keys, other registries, their formatting.
///
/// It understands the subset k3s documents: top-level `mirrors:` and `configs:` maps from
/// registry host to block maps, `endpoint` as a block or flow list of strings, plain and
/// quoted scalars, comments. Whatever it cannot read with certainty (tabs in indentation,
/// anchors and aliases, tags, block scalars or flow maps in those sections, several
/// documents) makes it refuse, so the file is never rewritten from a wrong reading.
struct RegistriesYAML {
    private(set) var lines: [String]

    struct Refusal: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    init(text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        if text.hasSuffix("\n") { lines.removeLast() }
        self.lines = lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        for (number, line) in self.lines.enumerated() {
            let indentation = line.prefix { $0 == " " || $0 == "\t" }
            if indentation.contains("\t") {
                throw Refusal(line: number + 1, message: "a tab in the indentation")
            }
            let content = line.dropFirst(indentation.count)
            if content.isEmpty || content.hasPrefix("#") { continue }
            if indentation.isEmpty {
                if content.hasPrefix("---") || content.hasPrefix("...") || content.hasPrefix("%") {
                    throw Refusal(line: number + 1, message: "document markers or directives")
                }
                guard let (_, rest) = Self.key(content) else {
                    throw Refusal(line: number + 1, message: "a top-level line that is not `key: value`")
                }
                _ = rest
            }
        }
    }

    var text: String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }

    // MARK: Edits

    /// Makes `endpoint` (a URL) the first endpoint of `mirrors.<host>`, unless it is already
    /// one of them. Returns whether anything changed.
    mutating func addMirror(host: String, endpoint: String) throws -> Bool {
        let section = try self.section("mirrors")
        guard let entry = try self.entry(host, in: section) else {
            insert(
                [
                    "\(section.childIndent)\(Self.quoted(host)):",
                    "\(section.childIndent)  endpoint:",
                    "\(section.childIndent)    - \(Self.quoted(endpoint))",
                ], section: section)
            return true
        }
        guard entry.rest.isEmpty else {
            throw Refusal(line: entry.line + 1, message: "mirrors.\(host) is written in flow style; edit it by hand")
        }
        let body = significantLines(entry.line + 1..<entry.end)
        let subIndent = body.first.map { indent(of: $0) } ?? indent(of: entry.line) + 2
        guard
            let endpointLine = body.first(where: {
                indent(of: $0) == subIndent && Self.key(content(of: $0))?.key == "endpoint"
            })
        else {
            let pad = String(repeating: " ", count: subIndent)
            lines.insert(contentsOf: ["\(pad)endpoint:", "\(pad)  - \(Self.quoted(endpoint))"], at: entry.line + 1)
            return true
        }
        let rest = Self.key(content(of: endpointLine))?.rest ?? ""
        if rest.hasPrefix("[") {
            guard rest.hasSuffix("]") else {
                throw Refusal(line: endpointLine + 1, message: "mirrors.\(host).endpoint spans several lines; edit it by hand")
            }
            let inner = rest.dropFirst().dropLast()
            let items = try Self.splitFlow(inner, line: endpointLine + 1)
            if items.contains(endpoint) { return false }
            let pad = String(repeating: " ", count: subIndent)
            let others = inner.trimmed(where: { " ".contains($0) })
            lines[endpointLine] = "\(pad)endpoint: [\(Self.quoted(endpoint))\(others.isEmpty ? "" : ", \(others)")]"
            return true
        }
        guard rest.isEmpty || rest == "~" || rest == "null" else {
            throw Refusal(line: endpointLine + 1, message: "mirrors.\(host).endpoint is not a list")
        }
        var items: [(line: Int, value: String)] = []
        for line in significantLines(endpointLine + 1..<entry.end) {
            let lineIndent = indent(of: line)
            let text = content(of: line)
            if lineIndent < subIndent || (lineIndent == subIndent && !text.hasPrefix("-")) { break }
            guard text.hasPrefix("- ") || text == "-" else {
                throw Refusal(line: line + 1, message: "mirrors.\(host).endpoint holds something other than strings")
            }
            items.append((line, try Self.scalar(text.dropFirst(1).trimmed(where: { " ".contains($0) }), line: line + 1)))
        }
        if items.contains(where: { $0.value == endpoint }) { return false }
        if rest == "~" || rest == "null" {
            lines[endpointLine] = String(repeating: " ", count: subIndent) + "endpoint:"
        }
        let itemLine = items.first?.line
        let itemIndent = itemLine.map { indent(of: $0) } ?? subIndent + 2
        lines.insert(
            String(repeating: " ", count: itemIndent) + "- " + Self.quoted(endpoint), at: itemLine ?? endpointLine + 1)
        return true
    }

    /// Adds `configs.<host>.tls` with `settings` (key, YAML value text) unless the registry
    /// already has a `configs` entry, which is then left to its owner. Returns whether
    /// anything changed.
    mutating func addTLSConfig(host: String, settings: [(String, String)]) throws -> Bool {
        let section = try self.section("configs")
        if try entry(host, in: section) != nil { return false }
        insert(
            ["\(section.childIndent)\(Self.quoted(host)):", "\(section.childIndent)  tls:"]
                + settings.map { "\(section.childIndent)    \($0.0): \($0.1)" }, section: section)
        return true
    }

    /// Whether `configs.<host>` exists.
    func hasConfig(host: String) throws -> Bool {
        try entry(host, in: try section("configs")) != nil
    }

    // MARK: Structure

    /// A top-level key's lines: `header` (nil when absent: it is appended), `end` (exclusive).
    private struct Section {
        var name: String
        var header: Int?
        var end: Int
        /// Indentation of the section's entries.
        var childIndent: String
    }

    private struct Entry {
        var line: Int
        var end: Int
        var rest: String
    }

    private func section(_ name: String) throws -> Section {
        guard
            let header = lines.indices.first(where: { index in
                indent(of: index) == 0 && Self.key(content(of: index))?.key == name
            })
        else {
            return Section(name: name, header: nil, end: lines.count, childIndent: "  ")
        }
        let rest = Self.key(content(of: header))?.rest ?? ""
        guard rest.isEmpty || rest == "{}" || rest == "~" || rest == "null" else {
            throw Refusal(line: header + 1, message: "\(name) is not written as a block map; edit it by hand")
        }
        var end = header + 1
        while end < lines.count, indent(of: end) > 0 || content(of: end).isEmpty || content(of: end).hasPrefix("#") {
            end += 1
        }
        let body = significantLines(header + 1..<end)
        for line in body {
            let text = content(of: line)
            let value = text.hasPrefix("- ") ? String(text.dropFirst(2)) : (Self.key(text)?.rest ?? text)
            if Self.key(text)?.key == "<<" || value.hasPrefix("&") || value.hasPrefix("*") || value.hasPrefix("!")
                || value.hasPrefix("|") || value.hasPrefix(">")
            {
                throw Refusal(line: line + 1, message: "anchors, aliases, tags or block scalars in \(name); edit it by hand")
            }
        }
        let childIndent = body.first.map { String(repeating: " ", count: indent(of: $0)) } ?? "  "
        return Section(name: name, header: header, end: end, childIndent: childIndent)
    }

    private func entry(_ host: String, in section: Section) throws -> Entry? {
        guard let header = section.header else { return nil }
        let body = significantLines(header + 1..<section.end)
        let childWidth = section.childIndent.count
        var found: Entry?
        for line in body {
            let lineIndent = indent(of: line)
            if lineIndent < childWidth {
                throw Refusal(line: line + 1, message: "inconsistent indentation in \(section.name)")
            }
            guard lineIndent == childWidth else { continue }
            if found != nil {
                found?.end = line
                break
            }
            guard let (key, rest) = Self.key(content(of: line)) else {
                throw Refusal(line: line + 1, message: "\(section.name) holds something other than registry entries")
            }
            if key == host { found = Entry(line: line, end: section.end, rest: rest) }
        }
        if var entry = found, entry.end == section.end {
            // Trailing blank lines and comments stay after the entry, not inside it.
            entry.end = (significantLines(entry.line..<section.end).last ?? entry.line) + 1
            found = entry
        }
        return found
    }

    /// Appends `newLines` at the end of a section (creating it when absent).
    private mutating func insert(_ newLines: [String], section: Section) {
        guard let header = section.header else {
            lines.append("\(section.name):")
            lines.append(contentsOf: newLines)
            return
        }
        let rest = Self.key(content(of: header))?.rest ?? ""
        if !rest.isEmpty { lines[header] = "\(section.name):" }
        let last = significantLines(header..<section.end).last ?? header
        lines.insert(contentsOf: newLines, at: last + 1)
    }

    private func indent(of line: Int) -> Int { lines[line].prefix { $0 == " " }.count }

    private func content(of line: Int) -> String {
        String(lines[line].dropFirst(indent(of: line)))
    }

    /// Lines that are neither blank nor comments.
    private func significantLines(_ range: Range<Int>) -> [Int] {
        range.filter { !content(of: $0).isEmpty && !content(of: $0).hasPrefix("#") }
    }

    // MARK: Scalars

    /// `key: rest` -> (key, rest without comment); nil when the line is not a map entry.
    static func key(_ text: some StringProtocol) -> (key: String, rest: String)? {
        let text = Substring(text)
        var keyText: String
        var after: Substring
        if let first = text.first, first == "\"" || first == "'" {
            guard let (value, end) = quotedScalar(text) else { return nil }
            keyText = value
            after = text[end...]
            guard after.hasPrefix(":") else { return nil }
            after = after.dropFirst()
        } else {
            if let first = text.first, "-?[{&*!|>%@`".contains(first) { return nil }
            var index = text.startIndex
            var colon: Substring.Index?
            while index < text.endIndex {
                let next = text.index(after: index)
                if text[index] == ":" && (next == text.endIndex || text[next] == " ") {
                    colon = index
                    break
                }
                if text[index] == "#" && index > text.startIndex && text[text.index(before: index)] == " " { return nil }
                index = next
            }
            guard let colon else { return nil }
            keyText = String(text[..<colon]).trimmed(where: { " ".contains($0) })
            after = text[text.index(after: colon)...]
        }
        guard after.isEmpty || after.hasPrefix(" ") else { return nil }
        return (keyText, stripComment(after).trimmed(where: { " ".contains($0) }))
    }

    /// A scalar value: plain or quoted. Throws for anything structured.
    static func scalar(_ text: String, line: Int) throws -> String {
        let text = stripComment(Substring(text)).trimmed(where: { " ".contains($0) })
        if let first = text.first, first == "\"" || first == "'" {
            guard let (value, end) = quotedScalar(Substring(text)), text[end...].trimmed(where: { " ".contains($0) }).isEmpty else {
                throw Refusal(line: line, message: "a quoted string this editor cannot read")
            }
            return value
        }
        if let first = text.first, "[{&*!|>".contains(first) {
            throw Refusal(line: line, message: "a value this editor cannot read")
        }
        return text
    }

    /// The items of a one-line flow sequence of scalars.
    static func splitFlow(_ text: Substring, line: Int) throws -> [String] {
        var items: [String] = []
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                current.append(character)
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
                current.append(character)
            } else if character == "," {
                items.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.trimmed(where: { " ".contains($0) }).isEmpty || !items.isEmpty { items.append(current) }
        return try items.map { try scalar($0, line: line) }
    }

    /// A quoted scalar at the start of `text`: its value and the index after it.
    private static func quotedScalar(_ text: Substring) -> (String, Substring.Index)? {
        guard let open = text.first else { return nil }
        var value = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if open == "'" && character == "'" {
                if next < text.endIndex && text[next] == "'" {
                    value.append("'")
                    index = text.index(after: next)
                    continue
                }
                return (value, next)
            }
            if open == "\"" && character == "\\" {
                guard next < text.endIndex else { return nil }
                switch text[next] {
                case "\"": value.append("\"")
                case "\\": value.append("\\")
                case "/": value.append("/")
                case "n": value.append("\n")
                case "t": value.append("\t")
                default: return nil
                }
                index = text.index(after: next)
                continue
            }
            if open == "\"" && character == "\"" { return (value, next) }
            value.append(character)
            index = next
        }
        return nil
    }

    /// Text before a ` #` comment that is outside quotes.
    private static func stripComment(_ text: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        for index in text.indices {
            let character = text[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                if previous == " " || previous == "[" || previous == "," { quote = character }
            } else if character == "#" && previous == " " {
                return text[..<index]
            }
            previous = character
        }
        return text
    }

    /// A YAML double-quoted string.
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingText("\\", with: "\\\\").replacingText("\"", with: "\\\"") + "\""
    }
}
