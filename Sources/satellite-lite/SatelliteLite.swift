import ArgumentParser

@main
struct SatelliteLite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "satellite-lite",
        abstract: "Edge agent of a Harbor Satellite fleet: a verified local OCI registry for small gateways.",
        subcommands: [
            RunCommand.self, Serve.self, SyncCommand.self, StatusCommand.self, ConfigCommand.self, Profiles.self,
            GCCommand.self, VerifyCommand.self, HooksCommand.self, RuntimeConfigCommand.self, HashCommand.self,
        ]
    )
}

/// `--config FILE`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Config file (JSON). Default: /etc/satellite-lite/config.json if it exists, else the embedded default.",
            valueName: "file"))
    var config: String?
}
