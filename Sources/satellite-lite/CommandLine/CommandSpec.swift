// The command-line parser: long options (`--name value`, `--name=value`), flags, positional
// arguments, nested subcommands, `--help`/`-h`/`help`, and the exit statuses of the
// contract (0 success, 1 failure, 64 usage). It replaced swift-argument-parser, whose
// FoundationEssentials dependency made up 5.7 MB of the static binary and put it over its
// 16 MB budget (docs/static-build.md). This file: how commands describe themselves.

/// One command of the tree: how it is named, documented and parsed, and what it runs.
protocol CLICommand: Sendable {
    static var spec: CommandSpec { get }
    /// Builds the command from its parsed arguments; throws `ValidationError` when they are
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

    /// `--json`: machine-readable output instead of text.
    static let json = OptionSpec.flag("json", help: "Print JSON.")

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
