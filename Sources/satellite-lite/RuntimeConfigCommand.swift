import Hooks
import RuntimeConfig
import SatelliteConfig
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

struct RuntimeConfigCommand: CLICommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "runtime-config",
            abstract: "Point a container runtime's pulls of the upstream registry at satellite-lite.",
            discussion: """
                Writes the runtime's mirror configuration (containerd hosts.toml, a CRI-O/podman registries.conf.d \
                drop-in, Docker daemon.json registry-mirrors, k3s registries.yaml) under --root. Each write is atomic \
                and keeps the previous file as FILE.satellite-lite.bak; a second run changes nothing. See \
                docs/runtime-config.md.
                """,
            options: [
                .config,
                .value(
                    "runtime", "runtime", required: true,
                    help: "The runtime: \(RuntimeConfig.Runtime.allCases.map(\.rawValue).joined(separator: ", "))."),
                .value("root", "dir", help: "Write under this directory instead of / (image builds, tests)."),
                .flag("dry-run", help: "Print the changes as a diff; write nothing."),
                .repeated("mirror-for", "host", help: "Another registry host whose pulls go to satellite-lite (repeatable)."),
            ])
    }

    var options: ConfigOption
    var runtime: RuntimeConfig.Runtime
    var root: String
    var dryRun: Bool
    var mirrorFor: [String]

    init(_ arguments: ParsedArguments) throws {
        options = ConfigOption(arguments)
        let name = arguments.value("runtime") ?? ""
        guard let runtime = RuntimeConfig.Runtime(rawValue: name) else {
            throw ValidationError(
                "the value '\(name)' is invalid for '--runtime <runtime>': use one of "
                    + RuntimeConfig.Runtime.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.runtime = runtime
        root = arguments.value("root") ?? "/"
        dryRun = arguments.flag("dry-run")
        mirrorFor = arguments.values("mirror-for")
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
