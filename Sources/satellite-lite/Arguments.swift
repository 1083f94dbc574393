#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The command-line parser: long options (`--name value`, `--name=value`), flags, positional
// arguments, nested subcommands, `--help`/`-h`/`help`, and the exit statuses of the
// contract (0 success, 1 failure, 64 usage). It replaced swift-argument-parser, whose
// FoundationEssentials dependency alone made up 7.9 MB of the 16 MB static-binary budget
// (docs/static-build.md).

/// One command of the tree: how it is named, documented and parsed, and what it runs.
protocol CLICommand: Sendable {
    static var spec: CommandSpec { get }
    /// Builds the command from its parsed arguments; throws `UsageError` when they are
    /// invalid together (exit status 64).
    init(_ arguments: ParsedArguments) throws
    func run() async throws
}

/// A command that only groups subcommands.
protocol CLICommandGroup {
    static var spec: CommandSpec { get }
}

struct CommandSpec {
    var name: String
    var abstract: String
    var discussion = ""
    var hidden = false
    var options: [OptionSpec] = []
    var positional: PositionalSpec?
    var subcommands: [Node] = []

    /// A child: a command that runs, or a group.
    enum Node {
        case command(any CLICommand.Type)
        case group(any CLICommandGroup.Type)

        var spec: CommandSpec {
            switch self {
            case .command(let type): type.spec
            case .group(let type): type.spec
            }
        }
    }
}

struct OptionSpec {
    enum Kind {
        /// `--name`, present or not.
        case flag
        /// `--name VALUE`, at most one value kept (the last).
        case value(required: Bool)
        /// `--name VALUE`, repeatable.
        case repeated
    }

    var name: String
    var kind: Kind
    var valueName = "value"
    var help: String

    static func flag(_ name: String, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .flag, help: help)
    }

    static func value(_ name: String, _ valueName: String, required: Bool = false, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .value(required: required), valueName: valueName, help: help)
    }

    static func repeated(_ name: String, _ valueName: String, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .repeated, valueName: valueName, help: help)
    }

    /// `--config <file>`, shared by every command.
    static let config = OptionSpec.value(
        "config", "file",
        help: "Config file (JSON). Default: /etc/satellite-lite/config.json if it exists, else the embedded default.")

    var usage: String {
        switch kind {
        case .flag: "--\(name)"
        case .value, .repeated: "--\(name) <\(valueName)>"
        }
    }
}

struct PositionalSpec {
    var name: String
    var help: String
    /// At least one is required.
    var required = true
}

/// What the command line said, by option name.
struct ParsedArguments: Sendable {
    private(set) var values: [String: [String]] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positionals: [String] = []

    func value(_ name: String) -> String? { values[name]?.last }
    func values(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    fileprivate mutating func add(_ name: String, _ value: String) { values[name, default: []].append(value) }
    fileprivate mutating func set(_ name: String) { flags.insert(name) }
    fileprivate mutating func addPositional(_ value: String) { positionals.append(value) }
}

/// A wrong command line: printed with the usage, exit status 64.
struct UsageError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Ends the process with this status and no further message (the command printed why).
struct ExitCode: Error {
    var status: Int32
    static let failure = ExitCode(status: 1)
}

enum CommandLineTool {
    /// Parses the process's arguments against the tree under `root`, runs the command and
    /// exits with its status.
    static func main(root: CommandSpec) async -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let status = await run(root: root, arguments: arguments)
        exit(status)
    }

    static func run(root: CommandSpec, arguments: [String]) async -> Int32 {
        // Find the command: leading words that name subcommands.
        var path = [root]
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
            rest = rest.dropFirst()
        }
        if helpRequested || rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "--help" || $0 == "-h" }) {
            print(help(path: path), terminator: "")
            return 0
        }
        let spec = path[path.count - 1]
        let node = nodeFor(path: path, root: root)
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
            parsed = try parse(Array(rest), spec: spec)
            command = try type.init(parsed)
        } catch let error as UsageError {
            return usageFailure(error.description, path: path)
        } catch {
            return failure(error)
        }
        do {
            try await command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.status
        } catch let error as UsageError {
            return usageFailure(error.description, path: path)
        } catch {
            return failure(error)
        }
    }

    /// The node at the end of `path` (the root is a group unless it has no subcommands).
    private static func nodeFor(path: [CommandSpec], root: CommandSpec) -> CommandSpec.Node? {
        var nodes = root.subcommands
        var found: CommandSpec.Node?
        for spec in path.dropFirst() {
            found = nodes.first { $0.spec.name == spec.name }
            nodes = found?.spec.subcommands ?? []
        }
        return found
    }

    static func parse(_ arguments: [String], spec: CommandSpec) throws -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                guard spec.positional != nil else {
                    throw UsageError("unexpected argument '\(argument)'")
                }
                parsed.addPositional(argument)
                continue
            }
            if argument == "--" {
                onlyPositionals = true
                continue
            }
            guard argument.hasPrefix("--") else {
                throw UsageError("unknown option '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = spec.options.first(where: { $0.name == name }) else {
                throw UsageError("unknown option '--\(name)'\(suggestion(name, spec.options.map(\.name), prefix: "--"))")
            }
            switch option.kind {
            case .flag:
                if inline != nil { throw UsageError("'--\(name)' takes no value") }
                parsed.set(name)
            case .value, .repeated:
                if let inline {
                    parsed.add(name, inline)
                } else if index < arguments.count, !arguments[index].hasPrefix("--") {
                    parsed.add(name, arguments[index])
                    index += 1
                } else {
                    throw UsageError("missing value for '\(option.usage)'")
                }
            }
        }
        for option in spec.options {
            if case .value(required: true) = option.kind, parsed.value(option.name) == nil {
                throw UsageError("missing expected argument '\(option.usage)'")
            }
        }
        if let positional = spec.positional, positional.required, parsed.positionals.isEmpty {
            throw UsageError("missing expected argument '<\(positional.name)> ...'")
        }
        return parsed
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

    private static func suggestion(_ word: String, _ candidates: [String], prefix: String = "") -> String {
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
