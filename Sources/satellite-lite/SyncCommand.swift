import Logging
import SatelliteConfig
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct SyncCommand: ConfigOnlyCommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "sync", abstract: "Run one reconcile pass; exit 0 only if the store then holds the whole desired state.",
            options: [.config])
    }

    var options: ConfigOption

    func run() async throws {
        let settings = try Settings.load(configPath: options.config)
        let logger = Log.make("satellite-lite")
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let client = try settings.makeClient()
        let hooks = try HookBridge.make(settings: settings, store: store, logger: logger)
        let engine = try settings.makeEngine(store: store, client: client, events: hooks, logger: logger)
        // SIGTERM/SIGINT cancel the pass: transfers stop, partial files stay for the next run.
        let pass = Task { await engine.runPass() }
        let stop = SignalWatcher(signals: [SIGTERM, SIGINT]) { signal in
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            pass.cancel()
        }
        defer { stop.cancel() }
        let report = await pass.value
        await hooks?.drain()
        await client.shutdown()
        print(report.summary(bandwidth: settings.bandwidth))
        if !report.complete { throw ExitCode.failure }
    }
}

extension SyncEngine.Report {
    func summary(bandwidth: Int64) -> String {
        var lines = ["sync: \(present)/\(wanted) image(s) present, \(Units.formatSize(bytesDownloaded)) downloaded"]
        for image in updated { lines.append("  updated: \(image)") }
        for image in removed { lines.append("  removed: \(image)") }
        for failure in failures { lines.append("  FAILED \(failure.image): \(failure.error)") }
        return lines.joined(separator: "\n")
    }
}
