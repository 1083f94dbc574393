@preconcurrency import Dispatch
import Logging
import SatelliteConfig
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry
import Sync

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct Serve: ConfigOnlyCommand {
    static var spec: CommandSpec {
        CommandSpec(name: "serve", abstract: "Serve the registry only (no sync). SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the TLS certificate, htpasswd users and proxy settings.", options: [.config])
    }

    var options: ConfigOption

    func run() async throws {
        let settings = try Settings.load(configPath: options.config)
        let logger = Log.make("satellite-lite")
        logger.info(
            "configuration",
            metadata: [
                "config": "\(settings.source)", "profile": "\(settings.profile.name)",
                "profileReason": "\(settings.profileReason)",
            ])
        if settings.config.upstream == nil {
            logger.info("no upstream configured: serving only; add \"upstream\" and \"state\" to the config to sync")
        }
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let proxy = try settings.makePullThrough(store: store, logger: logger)
        let server = RegistryServer(
            configuration: try settings.makeRegistryConfiguration(), api: try settings.makeRegistryAPI(store: store, pullThrough: proxy), logger: logger)
        server.api.metrics.addProvider { proxy.metricsText() }
        do {
            try await server.start()
        } catch {
            await server.shutdown()
            throw CLIError("cannot listen on \(settings.config.registry.listen): \(error)")
        }
        // Discovery announces this listener to the site's peers while it serves.
        if let network = try settings.peerNetwork(logger: logger) {
            server.api.metrics.addProvider { network.metricsText() }
            // A proxied miss asks the site's peers before the upstream.
            proxy.usePeers(network)
        }
        let watchdog = SystemdNotifier.ready(status: "serving on \(settings.config.registry.listen)", logger: logger) {
            await server.isResponsive(timeout: .nanoseconds($0))
        }
        let control = RunControl()
        let configPath = options.config
        let stop = SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP]) { signal in
            if signal == SIGHUP {
                Settings.reloadListenerFiles(configPath: configPath, server: server, logger: logger)
                // The proxy follows the config as under `run` (allow, mirrors, upstream,
                // windows, enabled); the listener and the store stay until a restart.
                do {
                    let reloaded = try Settings.load(configPath: configPath)
                    if reloaded.config.registry.listen != settings.config.registry.listen
                        || reloaded.config.storage.path != settings.config.storage.path
                    {
                        logger.warning("registry.listen and storage.path changes take effect after a restart")
                    }
                    reloaded.updatePullThrough(proxy, store: store, logger: logger)
                    logger.info("configuration reloaded", metadata: ["config": "\(reloaded.source)"])
                } catch {
                    logger.error("configuration reload failed; keeping the previous one", metadata: ["error": "\(error)"])
                }
                return
            }
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            control.requestStop()
        }
        // Wait for the signal itself, not for the listener to close: shutting the event
        // loops down from the signal's task while this one still waits on a channel future
        // could leave that future without a loop to complete on.
        while !control.stopRequested {
            await control.sleep(nanoseconds: Int64.max / 2)
        }
        SystemdNotifier.send("STOPPING=1")
        watchdog?.cancel()
        stop.cancel()
        await server.shutdown()
    }
}

/// Runs a handler when one of the signals arrives (instead of the default action).
/// Dispatch sources are thread-safe; the array is never mutated after init.
final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
