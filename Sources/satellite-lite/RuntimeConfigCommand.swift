import ArgumentParser
import Hooks
import SatelliteConfig
import TinyRegistry

extension RuntimeConfig.Runtime: ExpressibleByArgument {}

struct RuntimeConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime-config",
        abstract: "Point a container runtime's pulls of the upstream registry at satellite-lite.",
        discussion: """
            Writes the runtime's mirror configuration (containerd hosts.toml, a CRI-O/podman registries.conf.d \
            drop-in, Docker daemon.json registry-mirrors, k3s registries.yaml) under --root. Each write is atomic \
            and keeps the previous file as FILE.satellite-lite.bak; a second run changes nothing. See \
            docs/runtime-config.md.
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: ArgumentHelp("The runtime: \(RuntimeConfig.Runtime.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "runtime"))
    var runtime: RuntimeConfig.Runtime

    @Option(help: ArgumentHelp("Write under this directory instead of / (image builds, tests).", valueName: "dir"))
    var root: String = "/"

    @Flag(help: "Print the changes as a diff; write nothing.")
    var dryRun = false

    @Option(
        name: .customLong("mirror-for"),
        help: ArgumentHelp("Another registry host whose pulls go to satellite-lite (repeatable).", valueName: "host"))
    var mirrorFor: [String] = []

    func validate() throws {
        guard let status = try? PosixFile.status(root), status.isDirectory else {
            throw ValidationError("--root \(root) is not an existing directory")
        }
        for host in mirrorFor where host.isEmpty || host.contains("/") || host.contains(where: \.isWhitespace) {
            throw ValidationError("--mirror-for \"\(host)\" is not a registry host such as registry.example.com:5000")
        }
    }

    func run() throws {
        let settings = try Settings.load(configPath: options.config)
        let runtimeConfig: RuntimeConfig
        do {
            runtimeConfig = try RuntimeConfig(config: settings.config, extraHosts: mirrorFor, root: root)
        } catch let error as RuntimeConfig.Error {
            throw CLIError("\(error) (config: \(settings.source))")
        }
        let plan = try runtimeConfig.plan(for: runtime)
        if dryRun {
            if plan.hasChanges {
                print(plan.diff, terminator: "")
                print("dry run: nothing written")
            } else {
                print("nothing to change: \(runtime.rawValue) already points at satellite-lite (\(runtimeConfig.mirrorURL))")
            }
        } else {
            let outcomes = try plan.apply()
            for outcome in outcomes { print(outcome) }
            if !plan.hasChanges {
                print("nothing to change: \(runtime.rawValue) already points at satellite-lite (\(runtimeConfig.mirrorURL))")
            }
        }
        for note in plan.notes { print(note) }
    }
}
