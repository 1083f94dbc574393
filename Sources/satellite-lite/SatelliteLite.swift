import CommandParsing
import ContentStore
import OCICore
import JSONCoding

@main
enum SatelliteLite {
    /// The release (scripts/build-deb's default package version follows it).
    static let version = "0.1.0"

    static let abstract = "Edge agent of a Harbor Satellite fleet: a verified local OCI registry for small gateways."

    static var spec: CommandSpec {
        CommandSpec(
            name: "satellite-lite", abstract: abstract,
            subcommands: [
                .command(RunCommand.self), .command(Serve.self), .command(SyncCommand.self), .command(StatusCommand.self),
                .group(ConfigCommand.self), .command(Profiles.self), .command(GCCommand.self), .command(VerifyCommand.self),
                .group(HooksCommand.self), .command(RuntimeConfigCommand.self), .command(HashCommand.self),
                .group(BundleCommand.self),
            ],
            version: version)
    }

    static func main() async {
        await CommandLineTool.main(root: spec)
    }
}

extension OptionSpec {
    /// `--config <file>`, shared by every command.
    static let config = OptionSpec.value(
        "config", "file",
        help: "Config file (JSON). Default: /etc/satellite-lite/config.json if it exists, else the embedded default.")

    /// `--json`: machine-readable output instead of text.
    static let json = OptionSpec.flag("json", help: "Print JSON.")
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
