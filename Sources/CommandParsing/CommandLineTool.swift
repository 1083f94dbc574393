#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Parses the command line against a tree of ``CommandSpec``s, runs the command and turns
/// its outcome into an exit status and at most one `Error: …` line.
public enum CommandLineTool {
    /// Parses the process's arguments against the tree under `root`, runs the command and
    /// exits with its status.
    public static func main(root: CommandSpec) async -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let status = await run(root: root, arguments: arguments)
        exit(status)
    }

    public static func run(root: CommandSpec, arguments: [String]) async -> Int32 {
        // Find the command: leading words that name subcommands.
        var path = [root]
        var node: CommandSpec.Node?  // nil: the root
        var rest = arguments[...]
        var helpRequested = false
        if rest.first == "help" {
            helpRequested = true
            rest = rest.dropFirst()
        }
        while let word = rest.first, !word.hasPrefix("-") {
            guard !path[path.count - 1].subcommands.isEmpty else { break }
            guard let next = path[path.count - 1].subcommands.first(where: { $0.spec.name == word }) else {
                return usageFailure("unknown command '\(word)'\(suggestion(word, path.last?.subcommands.map(\.spec.name) ?? []))", path: path)
            }
            path.append(next.spec)
            node = next
            rest = rest.dropFirst()
        }
        if path.count == 1, let version = root.version, rest.first == "--version" {
            print("\(root.name) \(version)")
            return 0
        }
        if helpRequested || rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "--help" || $0 == "-h" }) {
            print(help(path: path), terminator: "")
            return 0
        }
        let spec = path[path.count - 1]
        guard case .command(let type) = node else {
            if let word = rest.first {
                return usageFailure("unknown \(word.hasPrefix("-") ? "option" : "command") '\(word)'", path: path)
            }
            // A group alone: say what it holds.
            print(help(path: path), terminator: "")
            return 0
        }
        let parsed: ParsedArguments
        let command: any CLICommand
        do {
            parsed = try ParsedArguments(parsing: Array(rest), spec: spec)
            command = try type.init(parsed)
        } catch let error as ValidationError {
            return usageFailure(error.description, path: path)
        } catch {
            return failure(error)
        }
        do {
            try await command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.status
        } catch let error as ValidationError {
            return usageFailure(error.description, path: path)
        } catch {
            return failure(error)
        }
    }

    // MARK: - Messages

    private static func usageFailure(_ message: String, path: [CommandSpec]) -> Int32 {
        writeError("Error: \(message)\nUsage: \(usageLine(path: path))\n  See '\(path.map(\.name).joined(separator: " ")) --help' for more.\n")
        return 64
    }

    private static func failure(_ error: any Error) -> Int32 {
        writeError("Error: \(error)\n")
        return 1
    }

    private static func writeError(_ text: String) {
        fflush(nil)
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    static func suggestion(_ word: String, _ candidates: [String], prefix: String = "") -> String {
        let best = candidates.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(2, word.count / 3) else { return "" }
        return " (did you mean '\(prefix)\(best.0)'?)"
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    static func usageLine(path: [CommandSpec]) -> String {
        let spec = path[path.count - 1]
        var words = path.map(\.name)
        if !spec.subcommands.isEmpty {
            words.append("<subcommand>")
        }
        for option in spec.options {
            switch option.kind {
            case .value(required: true): words.append(option.usage)
            case .repeated: words.append("[\(option.usage) ...]")
            default: words.append("[\(option.usage)]")
            }
        }
        if let positional = spec.positional {
            words.append(positional.required ? "<\(positional.name)> ..." : "[<\(positional.name)> ...]")
        }
        return words.joined(separator: " ")
    }

    static func help(path: [CommandSpec]) -> String {
        let spec = path[path.count - 1]
        var text = "OVERVIEW: \(spec.abstract)\n\n"
        if !spec.discussion.isEmpty {
            text += wrap(spec.discussion, indent: 0) + "\n\n"
        }
        text += "USAGE: \(usageLine(path: path))\n\n"
        if let positional = spec.positional {
            text += "ARGUMENTS:\n" + entry("<\(positional.name)>", positional.help) + "\n"
        }
        text += "OPTIONS:\n"
        for option in spec.options {
            text += entry(option.usage, option.help)
        }
        if path.count == 1, spec.version != nil {
            text += entry("--version", "Show the version.")
        }
        text += entry("-h, --help", "Show help information.")
        let visible = spec.subcommands.filter { !$0.spec.hidden }
        if !visible.isEmpty {
            text += "\nSUBCOMMANDS:\n"
            for child in visible {
                text += entry(child.spec.name, child.spec.abstract)
            }
            text += "\n  See '\(path.map(\.name).joined(separator: " ")) <subcommand> --help' for detailed help.\n"
        }
        return text
    }

    private static func entry(_ label: String, _ help: String) -> String {
        let column = 26
        let body = wrap(help, indent: column)
        if label.count + 2 < column {
            let padding = String(repeating: " ", count: column - label.count - 2)
            return "  \(label)\(padding)\(body.dropFirst(column))\n"
        }
        return "  \(label)\n\(body)\n"
    }

    /// Word-wraps at 80 columns, every line indented by `indent`.
    private static func wrap(_ text: String, indent: Int) -> String {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, indent + line.count + 1 + word.count > 80 {
                lines.append(margin + line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        lines.append(margin + line)
        return lines.joined(separator: "\n")
    }
}
