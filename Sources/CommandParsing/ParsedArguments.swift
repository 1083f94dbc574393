/// What the command line said, by option name.
public struct ParsedArguments: Sendable {
    private var valuesByName: [String: [String]] = [:]
    private var flagsGiven: Set<String> = []
    public private(set) var positionals: [String] = []

    /// The option's value (the last one when given more than once).
    public func value(_ name: String) -> String? { valuesByName[name]?.last }
    /// Every value of a repeatable option, in order.
    public func values(_ name: String) -> [String] { valuesByName[name] ?? [] }
    public func flag(_ name: String) -> Bool { flagsGiven.contains(name) }

    private init() {}

    /// Parses a command's arguments (after its name): `--name value`, `--name=value`, flags,
    /// `--` and positionals.
    ///
    /// Throws ``ValidationError`` for an unknown option, a missing or extra value, or a
    /// missing required argument.
    init(parsing arguments: [String], spec: CommandSpec) throws {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                guard spec.positional != nil else {
                    throw ValidationError("unexpected argument '\(argument)'")
                }
                parsed.addPositional(argument)
                continue
            }
            if argument == "--" {
                onlyPositionals = true
                continue
            }
            guard argument.hasPrefix("--") else {
                throw ValidationError("unknown option '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = spec.options.first(where: { $0.name == name }) else {
                throw ValidationError("unknown option '--\(name)'\(CommandLineTool.suggestion(name, spec.options.map(\.name), prefix: "--"))")
            }
            switch option.kind {
            case .flag:
                if inline != nil { throw ValidationError("'--\(name)' takes no value") }
                parsed.set(name)
            case .value, .repeated:
                if let inline {
                    parsed.add(name, inline)
                } else if index < arguments.count, !arguments[index].hasPrefix("--") {
                    parsed.add(name, arguments[index])
                    index += 1
                } else {
                    throw ValidationError("missing value for '\(option.usage)'")
                }
            }
        }
        for option in spec.options {
            if case .value(required: true) = option.kind, parsed.value(option.name) == nil {
                throw ValidationError("missing expected argument '\(option.usage)'")
            }
        }
        if let positional = spec.positional, positional.required, parsed.positionals.isEmpty {
            throw ValidationError("missing expected argument '<\(positional.name)> ...'")
        }
        self = parsed
    }

    private mutating func add(_ name: String, _ value: String) { valuesByName[name, default: []].append(value) }
    private mutating func set(_ name: String) { flagsGiven.insert(name) }
    private mutating func addPositional(_ value: String) { positionals.append(value) }
}

/// A wrong command line: printed with the usage, exit status 64.
public struct ValidationError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Ends the process with this status and no further message (the command printed why).
public struct ExitCode: Error {
    public var status: Int32
    public static let failure = ExitCode(status: 1)

    public init(status: Int32) {
        self.status = status
    }
}
