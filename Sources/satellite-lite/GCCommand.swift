import Logging
import SatelliteConfig
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

struct GCCommand: CLICommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "gc", abstract: "Remove unreferenced content and enforce the quota.",
            options: [.config, .flag("dry-run", help: "List what would go and the bytes freed; change nothing.")])
    }

    var options: ConfigOption
    var dryRun: Bool

    init(_ arguments: ParsedArguments) {
        options = ConfigOption(arguments)
        dryRun = arguments.flag("dry-run")
    }

    func run() throws {
        let settings = try Settings.load(configPath: options.config)
        let logger = Log.make("satellite-lite")
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let lock = try StoreLock.acquire(store: store, logger: logger)
        defer { lock.release() }
        let quota = settings.quotaBytes(store: store)
        let plan = try GarbageCollector.plan(store: store, policy: settings.gcPolicy, roots: settings.gcRoots)
        let use = GarbageCollector.diskUse(store: store)
        print("store: \(Units.formatSize(use)) used of \(Units.formatSize(quota)) quota; \(Units.formatSize(plan.liveBytes)) referenced")
        if plan.youngBytes > 0 {
            print("kept: \(Units.formatSize(plan.youngBytes)) unreferenced but used within the last \(Units.formatDuration(settings.profile.gc.gracePeriod))")
        }
        if dryRun {
            for candidate in plan.candidates {
                print("would remove \(candidate.digest) \(Units.formatSize(candidate.size))")
            }
            print("would free \(Units.formatSize(plan.candidateBytes)) in \(plan.candidates.count) blob(s)")
            return
        }
        let sweep = GarbageCollector.sweep(store: store, plan: plan)
        for candidate in sweep.removed {
            print("removed \(candidate.digest) \(Units.formatSize(candidate.size))")
        }
        print("freed \(Units.formatSize(sweep.freedBytes)) in \(sweep.removed.count) blob(s)")
        let after = GarbageCollector.diskUse(store: store)
        // Journaled for the hooks: a running agent (or `hooks drain`) runs them.
        try? HookBridge.make(settings: settings, store: store, logger: logger)?.record(
            SyncEvent(
                kind: .gcCompleted,
                message: "freed \(Units.formatSize(sweep.freedBytes)) in \(sweep.removed.count) blob(s); "
                    + "\(Units.formatSize(after)) used of \(Units.formatSize(quota))"))
        if after > quota {
            print("still over quota: \(Units.formatSize(after)) used of \(Units.formatSize(quota)); what remains is referenced")
            throw ExitCode.failure
        }
    }
}

struct VerifyCommand: ConfigOnlyCommand {
    static var spec: CommandSpec {
        CommandSpec(name: "verify", abstract: "Re-hash every blob; quarantine corrupt ones; exit 1 if any.", options: [.config])
    }

    var options: ConfigOption

    func run() throws {
        let settings = try Settings.load(configPath: options.config)
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let report = try Verifier.verify(store: store)
        print("verified \(report.checked) blob(s), \(Units.formatSize(report.checkedBytes))")
        for digest in report.corrupt {
            print("CORRUPT \(digest): moved to \(store.layout.quarantine); the next sync fetches it again")
        }
        for image in report.brokenImages {
            print("broken: \(image)")
        }
        if !report.corrupt.isEmpty { throw ExitCode.failure }
    }
}
