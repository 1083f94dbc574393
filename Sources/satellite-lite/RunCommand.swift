import FleetLink
import Logging
import SatelliteConfig
import Synchronization
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

struct RunCommand: ConfigOnlyCommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "run",
            abstract: "Serve the registry, sync on the interval, run hooks. SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config.",
            options: [.config])
    }

    var options: ConfigOption

    func run() async throws {
        var settings = try Settings.load(configPath: options.config)
        var logger = Log.make("satellite-lite")
        logger.info(
            "configuration",
            metadata: ["config": "\(settings.source)", "profile": "\(settings.profile.name)", "profileReason": "\(settings.profileReason)"])
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let proxy = try settings.makePullThrough(store: store, logger: logger)
        let server = RegistryServer(configuration: try settings.makeRegistryConfiguration(), api: try settings.makeRegistryAPI(store: store, pullThrough: proxy), logger: logger)
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
        let fleet = try settings.openFleetLink(store: store, logger: logger)
        var local = settings.localDocument()
        settings = settings.withFleet(fleet, local: local).settings
        let hooks = try HookBridge.make(settings: settings, store: store, logger: logger)
        hooks?.start()
        let metrics = RunMetrics(settings: settings, store: store, hooks: hooks)
        server.api.metrics.addProvider { metrics.render() }
        if let fleet { server.api.metrics.addProvider { fleet.metricsText() } }
        server.api.metrics.addProvider { proxy.metricsText() }
        // The WAN gate of this store: its ledger's counts on /metrics; LAN bytes served by
        // the registry fed to its accounting, and the ledger written, every few seconds.
        let wan = WANAccountingLoop(gate: settings.wanGate, served: { server.api.metrics.bytesServed })
        server.api.metrics.addProvider { wan.gate.snapshot().metricsText }
        var heartbeats: Task<Void, Never>?
        let bundleWatch = try settings.startBundleWatch(store: store, hooks: hooks, logger: logger)
        let watchdog = SystemdNotifier.ready(status: "serving on \(settings.config.registry.listen)", logger: logger) {
            await server.isResponsive(timeout: .nanoseconds($0))
        }

        let control = RunControl()
        let signalLogger = logger
        let configPath = options.config
        let watcher = SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP]) { signal in
            if signal == SIGHUP {
                Settings.reloadListenerFiles(configPath: configPath, server: server, logger: signalLogger)
                control.requestReload()
            } else {
                signalLogger.info("stopping", metadata: ["signal": "\(signal)"])
                control.requestStop()
            }
        }
        defer { watcher.cancel() }

        var lastCollect = MonotonicClock.now()
        // When the last pass started: with peers, a closed WAN still gets a pass per interval.
        var lastPass: Int64?
        while !control.stopRequested {
            // At the top, so a SIGHUP also reaches a satellite still onboarding (a fixed
            // groundControl.caFile lets it through).
            if control.takeReload() {
                do {
                    let reloaded = try Settings.load(configPath: options.config)
                    if reloaded.config.registry.listen != settings.config.registry.listen
                        || reloaded.config.storage.path != settings.config.storage.path
                    {
                        logger.warning("registry.listen and storage.path changes take effect after a restart")
                    }
                    if let fleet {
                        if let groundControl = reloaded.config.groundControl {
                            for line in fleet.reload(groundControl) where line.hasPrefix("not applied") {
                                logger.warning("\(line)")
                            }
                        } else {
                            logger.warning("groundControl removed from the config: the fleet link stays until a restart")
                        }
                    } else if reloaded.config.groundControl != nil {
                        logger.warning("groundControl added to the config: the fleet link starts after a restart")
                    }
                    local = reloaded.localDocument()
                    settings = reloaded.withFleet(fleet, local: local).settings
                    hooks?.update(settings: settings)
                    logger.info("configuration reloaded", metadata: ["config": "\(settings.source)"])
                } catch {
                    logger.error("configuration reload failed; keeping the previous one", metadata: ["error": "\(error)"])
                }
            }
            if let fleet {
                // Onboarding never holds up serving: it runs here, between passes, and a stop
                // request ends it within its slice.
                if fleet.record == nil {
                    do {
                        let deadline = MonotonicClock.now() + min(settings.config.state.interval, 30_000_000_000)
                        let onboarding = Task { try await fleet.onboard(deadline: deadline) }
                        control.cancelOnStop { onboarding.cancel() }
                        defer { control.cancelOnStop(nil) }
                        _ = try await onboarding.value
                    } catch {
                        if control.stopRequested { break }
                        logger.error("not onboarded yet", metadata: ["error": "\(error)"])
                        // A refused token waits for an operator to replace the token file.
                        let refused = (error as? FleetLinkError)?.isRefusal == true
                        await control.sleep(nanoseconds: refused ? 60_000_000_000 : 1_000_000_000)
                        continue
                    }
                }
                let effective = settings.withFleet(fleet, local: local)
                settings = effective.settings
                if let level = effective.logLevel { logger.logLevel = level }
                hooks?.update(settings: settings)
                if heartbeats == nil {
                    fleet.reportLinkUsage { [wan] in wan.gate.snapshot().heartbeatText }
                    heartbeats = Task { await fleet.runHeartbeats(store: store) }
                }
            }
            // The proxy follows the settings in effect: a reload, and in fleet mode the
            // upstream and credentials Ground Control supplies.
            settings.updatePullThrough(proxy, store: store, logger: logger)
            var client: UpstreamClient?
            var pause: Int64?
            if settings.config.upstream != nil, settings.desiredState != nil, let closed = wan.closed(settings.wanGate, logger: logger),
                !settings.config.peers.enabled || lastPass.map({ MonotonicClock.now() - $0 < settings.config.state.interval }) == true
            {
                // Outside the window or over the budget: no pass (no WAN byte, no failed-pass
                // hooks); look again soon, so a window that opens is used at once. With peers,
                // one pass per interval still runs: what the peers hold comes over the LAN.
                pause = closed
            } else if settings.config.upstream != nil, settings.desiredState != nil {
                lastPass = MonotonicClock.now()
                do {
                    var upstream = try settings.makeClient()
                    client = upstream
                    let started = MonotonicClock.now()
                    let engine = try settings.makeEngine(store: store, client: upstream, events: hooks, logger: logger)
                    metrics.passStarted(engine: engine)
                    var report = await control.whileRunning(Task { await engine.runPass() })
                    metrics.passFinished(report: report, engine: engine)
                    if let fleet, upstream.credentialRejectionCount > 0, !control.stopRequested,
                        await fleet.refreshCredentials(reason: "the registry answered 401")
                    {
                        // One retry with the new secret.
                        await upstream.shutdown()
                        settings = settings.withFleet(fleet, local: local).settings
                        upstream = try settings.makeClient()
                        client = upstream
                        let retry = try settings.makeEngine(store: store, client: upstream, events: hooks, logger: logger)
                        metrics.passStarted(engine: retry)
                        report = await control.whileRunning(Task { await retry.runPass() })
                        metrics.passFinished(report: report, engine: retry)
                    }
                    logger.info("sync pass finished", metadata: ["summary": "\(report.summary(bandwidth: settings.bandwidth))"])
                    if let deferral = report.deferred {
                        logger.info("sync paused until the WAN opens", metadata: ["reason": "\(deferral.message)"])
                        pause = WANAccountingLoop.pollInterval
                    }
                    if let fleet {
                        fleet.passFinished(
                            durationMs: (MonotonicClock.now() - started) / 1_000_000, complete: report.complete,
                            artifact: report.artifact, summary: report.activityLine)
                        if await fleet.updateRemoteConfig(client: upstream, local: local) {
                            let effective = settings.withFleet(fleet, local: local)
                            settings = effective.settings
                            if let level = effective.logLevel { logger.logLevel = level }
                            hooks?.update(settings: settings)
                            logger.info("remote config in effect", metadata: ["interval": "\(Units.formatDuration(settings.config.state.interval))"])
                        }
                    }
                } catch {
                    logger.error("sync cannot start", metadata: ["error": "\(error)"])
                }
            } else {
                logger.info("no upstream or desired state configured: serving only")
            }
            await client?.shutdown()
            settings.wanGate.flush()
            store.access.flush()
            // While the WAN is closed the loop wakes every 2 s: collect only at the interval.
            if pause == nil || MonotonicClock.now() - lastCollect >= settings.config.state.interval {
                await collectIfNeeded(settings: settings, store: store, hooks: hooks, logger: logger, metrics: metrics)
                lastCollect = MonotonicClock.now()
            }
            await control.sleep(nanoseconds: min(settings.config.state.interval, pause ?? Int64.max))
        }
        wan.stop()
        SystemdNotifier.send("STOPPING=1")
        watchdog?.cancel()
        heartbeats?.cancel()
        await heartbeats?.value
        bundleWatch?.cancel()
        await bundleWatch?.value
        await fleet?.shutdown()
        await hooks?.stop()
        await server.shutdown()
        store.access.flush()
    }

    /// Online GC at the profile's watermarks (the store's ``QuotaPolicy``), reported to the
    /// metrics and the hooks.
    func collectIfNeeded(settings: Settings, store: BlobStore, hooks: HookBridge?, logger: Logger, metrics: RunMetrics) async {
        let policy = settings.quotaPolicy(store: store)
        do {
            guard let sweep = try await policy.collectIfNeeded(store: store, roots: settings.gcRoots, logger: logger) else { return }
            let after = GarbageCollector.diskUse(store: store)
            let quota = policy.quota ?? 0
            metrics.gcFinished(freed: sweep.freedBytes)
            logger.info(
                "garbage collected",
                metadata: ["freed": "\(sweep.freedBytes)", "blobs": "\(sweep.removed.count)", "use": "\(after)", "quota": "\(quota)"])
            try? hooks?.record(
                SyncEvent(kind: .gcCompleted, message: "freed \(Units.formatSize(sweep.freedBytes)) in \(sweep.removed.count) blob(s); \(Units.formatSize(after)) used of \(Units.formatSize(quota))"))
        } catch {
            logger.error("garbage collection failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Signals for the run loop: stop and reload requests, and an interruptible sleep.
final class RunControl: Sendable {
    private struct State {
        var stop = false
        var reload = false
        var wake: CheckedContinuation<Void, Never>?
        /// Counts sleeps, so that a timer of an interrupted sleep cannot end a later one.
        var generation = 0
        var pass: Task<SyncEngine.Report, Never>?
        /// Cancels other work a stop request must end (onboarding's retries).
        var cancel: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    var stopRequested: Bool { state.withLock { $0.stop } }

    func requestStop() {
        let (wake, pass, cancel) = state.withLock { s in
            s.stop = true
            defer { s.wake = nil }
            return (s.wake, s.pass, s.cancel)
        }
        pass?.cancel()
        cancel?()
        wake?.resume()
    }

    /// Registers what a stop request cancels (nil: nothing); a stop already requested
    /// cancels it at once.
    func cancelOnStop(_ cancel: (@Sendable () -> Void)?) {
        let stopped = state.withLock { s in
            s.cancel = cancel
            return s.stop
        }
        if stopped { cancel?() }
    }

    func requestReload() {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.reload = true
            defer { s.wake = nil }
            return s.wake
        }
        wake?.resume()
    }

    func takeReload() -> Bool {
        state.withLock { s in
            defer { s.reload = false }
            return s.reload
        }
    }

    /// Awaits a pass; a stop request cancels it.
    func whileRunning(_ pass: Task<SyncEngine.Report, Never>) async -> SyncEngine.Report {
        let stopped = state.withLock { s in
            s.pass = pass
            return s.stop
        }
        if stopped { pass.cancel() }
        let report = await pass.value
        state.withLock { $0.pass = nil }
        return report
    }

    /// Sleeps until the interval passes, or a stop or reload request.
    func sleep(nanoseconds: Int64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { s -> Int? in
                if s.stop || s.reload { return nil }
                s.wake = continuation
                s.generation += 1
                return s.generation
            }
            guard let generation else {
                continuation.resume()
                return
            }
            Task {
                try? await Task.sleep(nanoseconds: UInt64(max(0, nanoseconds)))
                let wake = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                    guard s.generation == generation else { return nil }
                    defer { s.wake = nil }
                    return s.wake
                }
                wake?.resume()
            }
        }
    }
}
