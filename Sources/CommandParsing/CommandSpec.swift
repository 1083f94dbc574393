// The command-line parser: long options (`--name value`, `--name=value`), flags, positional
// arguments, nested subcommands, `--help`/`-h`/`help`, and the exit statuses of the
// contract (0 success, 1 failure, 64 usage). It replaced swift-argument-parser, whose
// FoundationEssentials dependency made up 5.7 MB of the static binary and put it over its
// 16 MB budget (docs/static-build.md). This file: how commands describe themselves.

/// One command of the tree: how it is named, documented and parsed, and what it runs.
public protocol CLICommand: Sendable {
    static var spec: CommandSpec { get }
    /// Builds the command from its parsed arguments; throws `ValidationError` when they are
    /// invalid together (exit status 64).
    init(_ arguments: ParsedArguments) throws
    func run() async throws
}

/// A command that only groups subcommands.
public protocol CLICommandGroup {
    static var spec: CommandSpec { get }
}

public struct CommandSpec {
    public var name: String
    public var abstract: String
    public var discussion = ""
    public var hidden = false
    public var options: [OptionSpec] = []
    public var positional: PositionalSpec?
    public var subcommands: [Node] = []
    /// Printed by `--version` on the root command; nil: no such option.
    public var version: String?

    public init(
        name: String, abstract: String, discussion: String = "", hidden: Bool = false, options: [OptionSpec] = [],
        positional: PositionalSpec? = nil, subcommands: [Node] = [], version: String? = nil
    ) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.hidden = hidden
        self.options = options
        self.positional = positional
        self.subcommands = subcommands
        self.version = version
    }

    /// A child: a command that runs, or a group.
    public enum Node {
        case command(any CLICommand.Type)
        case group(any CLICommandGroup.Type)

        public var spec: CommandSpec {
            switch self {
            case .command(let type): type.spec
            case .group(let type): type.spec
            }
        }
    }
}

public struct OptionSpec: Sendable {
    public enum Kind: Sendable {
        /// `--name`, present or not.
        case flag
        /// `--name VALUE`, at most one value kept (the last).
        case value(required: Bool)
        /// `--name VALUE`, repeatable.
        case repeated
    }

    public var name: String
    public var kind: Kind
    public var valueName = "value"
    public var help: String

    public static func flag(_ name: String, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .flag, help: help)
    }

    public static func value(_ name: String, _ valueName: String, required: Bool = false, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .value(required: required), valueName: valueName, help: help)
    }

    public static func repeated(_ name: String, _ valueName: String, help: String) -> OptionSpec {
        OptionSpec(name: name, kind: .repeated, valueName: valueName, help: help)
    }

    public var usage: String {
        switch kind {
        case .flag: "--\(name)"
        case .value, .repeated: "--\(name) <\(valueName)>"
        }
    }
}

public struct PositionalSpec: Sendable {
    public var name: String
    public var help: String
    /// At least one is required.
    public var required = true

    public init(name: String, help: String, required: Bool = true) {
        self.name = name
        self.help = help
        self.required = required
    }
}
