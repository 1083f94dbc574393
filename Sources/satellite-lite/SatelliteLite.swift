import JSONCoding

@main
enum SatelliteLite {
    static let abstract = "Edge agent of a Harbor Satellite fleet: a verified local OCI registry for small gateways."

    static var spec: CommandSpec {
        CommandSpec(
            name: "satellite-lite", abstract: abstract,
            subcommands: [
                .command(RunCommand.self), .command(Serve.self), .command(SyncCommand.self), .command(StatusCommand.self),
                .group(ConfigCommand.self), .command(Profiles.self), .command(GCCommand.self), .command(VerifyCommand.self),
                .group(HooksCommand.self), .command(RuntimeConfigCommand.self), .command(HashCommand.self),
            ])
    }

    static func main() async {
        await CommandLineTool.main(root: spec)
    }
}

/// `--config FILE`, shared by every command.
struct ConfigOption: Sendable {
    var config: String?

    init(_ arguments: ParsedArguments) {
        config = arguments.value("config")
    }
}

/// A command whose only option is `--config` (its memberwise `init(options:)` does the rest).
protocol ConfigOnlyCommand: CLICommand {
    init(options: ConfigOption)
}

extension ConfigOnlyCommand {
    init(_ arguments: ParsedArguments) {
        self.init(options: ConfigOption(arguments))
    }
}

/// A command whose options are `--config` and `--json` (its memberwise `init(options:json:)`
/// does the rest).
protocol ConfigAndJSONCommand: CLICommand {
    init(options: ConfigOption, json: Bool)
}

extension ConfigAndJSONCommand {
    init(_ arguments: ParsedArguments) {
        self.init(options: ConfigOption(arguments), json: arguments.flag(OptionSpec.json.name))
    }
}

/// Prints `value` as the `--json` output of a command: pretty, keys sorted.
func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try JSONCoder.encode(value, pretty: true, sortedKeys: true), as: UTF8.self))
}
