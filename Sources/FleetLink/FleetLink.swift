import Fleet
import JSONCoding
import Logging
import SatelliteConfig
import Synchronization
import Sync
import ContentStore
import OCICore

/// The satellite's link to Ground Control: onboarding (ZTR), heartbeats, remote config and
/// credential refresh, with their state kept in the store (``FleetFiles``).
///
/// Thread-safe; the run loop reports passes to it, its heartbeat task reads what they left.
public final class FleetLink: Sendable {
    public let files: FleetFiles
    let logger: Logger

    struct State {
        /// The `groundControl` keys in effect; SIGHUP replaces them (``reload(_:)``).
        var configuration: ConfigFile.GroundControl
        var client: GroundControlClient
        /// Clients replaced by a reload; a request may still be running on one, so they
        /// are shut down with the link.
        var retiredClients: [GroundControlClient] = []
        var record: LinkRecord?
        var status: LinkStatus
        var applied: AppliedConfig?
        var stats = ProcessStats()
        /// Heartbeat interval in effect (remote config may change it), nanoseconds.
        var heartbeatInterval: Int64
        /// Failed ZTR attempts so far, so backoff keeps growing across `onboard` calls.
        var onboardAttempts = 0
        /// Monotonic time before which no ZTR is sent, and why.
        var nextOnboardAttempt: Int64 = 0
        var lastOnboardFailure = ""
        /// Wakes the heartbeat task early (after a pass, or a config change).
        var wake: CheckedContinuation<Void, Never>?
    }

    let state: Mutex<State>

    /// Opens the link's files in the store at `storeRoot`.
    ///
    /// Throws when a file exists but cannot be read (a corrupt link is not silently redone:
    /// ZTR tokens are single-use).
    public init(configuration: ConfigFile.GroundControl, storeRoot: String, logger: Logger) throws {
        self.files = FleetFiles(storeRoot: storeRoot)
        self.logger = logger
        let client = Self.makeClient(configuration)
        let record: LinkRecord?
        do {
            record = try FleetFiles.read(LinkRecord.self, files.link)
        } catch {
            throw FleetLinkError("cannot read \(files.link): \(error); move it away only if this satellite should onboard again with a new token")
        }
        let status = (try? FleetFiles.read(LinkStatus.self, files.status)) ?? LinkStatus()
        let applied = try? FleetFiles.read(AppliedConfig.self, files.config)
        state = Mutex(
            State(
                configuration: configuration, client: client, record: record, status: status, applied: applied,
                heartbeatInterval: configuration.heartbeat))
    }

    static func makeClient(_ configuration: ConfigFile.GroundControl) -> GroundControlClient {
        GroundControlClient(
            configuration: .init(url: configuration.url, caFile: configuration.caFile, insecure: configuration.insecure))
    }

    public func shutdown() async {
        let clients = state.withLock { [$0.client] + $0.retiredClients }
        for client in clients { await client.shutdown() }
    }

    /// The `groundControl` keys in effect.
    public var configuration: ConfigFile.GroundControl { state.withLock { $0.configuration } }
    var client: GroundControlClient { state.withLock { $0.client } }

    /// Takes the `groundControl` keys of a reloaded config file (SIGHUP): `heartbeat`,
    /// `caFile`, `insecure`, `remoteConfig`, `remoteHooks`, and the join token while not
    /// onboarded yet, apply at once; a new `url` only while not onboarded (the stored link
    /// belongs to the Ground Control that issued it). Returns one line per change, and per
    /// change that waits for a restart (prefixed "not applied:").
    @discardableResult
    public func reload(_ new: ConfigFile.GroundControl) -> [String] {
        var lines: [String] = []
        state.withLock { s in
            let old = s.configuration
            var next = new
            if new.url != old.url {
                if s.record != nil {
                    next.url = old.url
                    lines.append("not applied: groundControl.url (onboarded with \(old.url); restart with a new store to join another)")
                } else {
                    lines.append("groundControl.url")
                }
            }
            if new.token != old.token || new.tokenFile != old.tokenFile {
                lines.append(s.record == nil ? "groundControl join token" : "not applied: groundControl join token (already onboarded)")
            }
            if new.heartbeat != old.heartbeat { lines.append("groundControl.heartbeat") }
            if new.caFile != old.caFile { lines.append("groundControl.caFile") }
            if new.insecure != old.insecure { lines.append("groundControl.insecure") }
            if new.remoteConfig != old.remoteConfig { lines.append("groundControl.remoteConfig") }
            if new.remoteHooks != old.remoteHooks { lines.append("groundControl.remoteHooks") }
            if new.remoteHooks != old.remoteHooks || new.remoteConfig != old.remoteConfig {
                // A config refused under the old rules (hooks without remoteHooks) is judged again.
                s.status.refusedConfigDigest = ""
                s.status.refusedConfigReason = ""
            }
            s.configuration = next
            s.heartbeatInterval = next.heartbeat
            guard next.url != old.url || next.caFile != old.caFile || next.insecure != old.insecure else { return }
            // A caFile whose contents changed under the same name is read again too: the
            // client reads it per request, so only a new name or TLS setting needs a new one.
            let previous = s.client
            s.client = Self.makeClient(next)
            s.retiredClients.append(previous)
            // A new connection may succeed where the old settings failed: retry onboarding now.
            s.nextOnboardAttempt = 0
        }
        if !lines.isEmpty {
            logger.info("groundControl reloaded", metadata: ["changed": "\(lines.joined(separator: "; "))"])
        }
        // The next heartbeat goes now, with the new settings and interval.
        wakeHeartbeat()
        return lines
    }

    public var record: LinkRecord? { state.withLock { $0.record } }
    public var status: LinkStatus { state.withLock { $0.status } }
    public var appliedConfig: AppliedConfig? { state.withLock { $0.applied } }

    /// Changes the status and writes it, under the lock so that the heartbeat task and the
    /// run loop never write an older snapshot over a newer one (a few KB, not fsync'ed).
    func updateStatus(_ change: (inout LinkStatus) -> Void) {
        let failure = state.withLock { s -> (any Error)? in
            change(&s.status)
            do {
                try PosixFile.writeAtomically(files.status, try JSONCoder.encode(s.status, pretty: true), durable: false)
                return nil
            } catch {
                return error
            }
        }
        if let failure { logger.warning("cannot write the fleet status", metadata: ["error": "\(failure)"]) }
    }

    /// Records something abnormal for the next heartbeat's `activity`.
    public func note(_ text: String) {
        updateStatus { status in
            status.pendingNotes.append(text)
            if status.pendingNotes.count > 8 { status.pendingNotes.removeFirst(status.pendingNotes.count - 8) }
        }
    }

    // MARK: Onboarding

    /// The join token from `tokenFile` or `token`.
    ///
    /// Throws ``FleetLinkError`` when there is none or it cannot be read.
    func joinToken() throws -> String {
        if let token = configuration.token { return token }
        guard let path = configuration.tokenFile else {
            throw FleetLinkError("not onboarded yet and no join token: set groundControl.tokenFile (or token)")
        }
        let bytes: [UInt8]
        do {
            bytes = try PosixFile.readAll(path: path, limit: 64 * 1024)
        } catch {
            throw FleetLinkError("cannot read groundControl.tokenFile \(path): \(error)")
        }
        var token = String(decoding: bytes, as: UTF8.self)
        while let last = token.last, last.isWhitespace { token.removeLast() }
        while let first = token.first, first.isWhitespace { token.removeFirst() }
        guard !token.isEmpty else { throw FleetLinkError("groundControl.tokenFile \(path) is empty") }
        return token
    }

    /// Onboards once: returns the stored link if there is one (ZTR is never called again),
    /// else trades the join token for credentials and the state reference, retrying with
    /// backoff while Ground Control is unreachable or busy (never sooner than its
    /// `Retry-After`), until `deadline` (monotonic ns; nil: forever) or cancellation.
    ///
    /// The answer is written (0600, atomically, fsync'ed) before it is used. If the answer
    /// is lost on the way (link cut after Ground Control consumed the token), the token is
    /// spent and ZTR answers that it is unknown: an operator issues a new one.
    ///
    /// Throws ``FleetLinkError`` when the token is refused or the deadline passes.
    public func onboard(deadline: Int64? = nil) async throws -> LinkRecord {
        if let record { return record }
        let token = try joinToken()
        while true {
            try Task.checkCancellation()
            let (next, lastFailure) = state.withLock { ($0.nextOnboardAttempt, $0.lastOnboardFailure) }
            let now = ProcessStats.monotonic()
            if next > now {
                // Backing off: never sooner than the backoff (or Retry-After) allows, even
                // across calls.
                if let deadline, next > deadline {
                    try await Task.sleep(nanoseconds: UInt64(max(0, deadline - now)))
                    throw FleetLinkError("onboarding did not complete yet: \(lastFailure)")
                }
                try await Task.sleep(nanoseconds: UInt64(next - now))
            }
            do {
                let result = try await client.register(token: token)
                guard let name = FleetNames.satelliteName(inStateReference: result.state) else {
                    throw FleetLinkError("ZTR answer names no satellite in its state reference", isRefusal: true)
                }
                let record = LinkRecord(
                    groundControl: configuration.url, name: name, state: result.state, registry: result.auth,
                    onboardedAt: unixNow())
                // The token is spent now: keep the answer in memory even if the disk refuses
                // it, and store it at the next heartbeat.
                state.withLock { $0.record = record }
                storeLink(record)
                logger.info("onboarded with Ground Control", metadata: ["name": "\(name)", "registry": "\(record.registryURL)"])
                note("onboarded as \(name)")
                return record
            } catch let failure as GroundControlClient.Failure where failure.isRetryable {
                var wait = Backoff.delay(attempt: state.withLock { s in
                    s.onboardAttempts += 1
                    return s.onboardAttempts
                })
                if let after = failure.retryAfter { wait = max(wait, after * 1_000_000_000) }
                state.withLock { s in
                    s.nextOnboardAttempt = ProcessStats.monotonic() + wait
                    s.lastOnboardFailure = failure.description
                }
                logger.warning(
                    "onboarding: Ground Control not reachable, retrying",
                    metadata: ["error": "\(failure)", "retryIn": "\(wait / 1_000_000_000)s"])
            } catch let failure as GroundControlClient.Failure {
                throw FleetLinkError(
                    "onboarding refused: \(failure) (the join token is wrong or already used: issue a new one)", isRefusal: true)
            }
        }
    }

    /// Writes link.json; a failure is logged and retried by the next heartbeat.
    func storeLink(_ record: LinkRecord) {
        do {
            try FleetFiles.writePrivate(files.link, try JSONCoder.encode(record, pretty: true))
        } catch {
            logger.error("cannot store the fleet link; retrying at the next heartbeat", metadata: ["path": "\(files.link)", "error": "\(error)"])
        }
    }

    /// The config with what Ground Control supplies: the central registry with this
    /// satellite's credentials as `upstream`, its satellite-state artifact as `state`.
    ///
    /// The registry's credentials cross the link as HTTP Basic: a plain `http://` registry is
    /// used only when Ground Control itself is reached over plain HTTP (a lab) or
    /// `groundControl.insecure` says so; otherwise no upstream is set and the log says why.
    public func apply(to config: ConfigFile) -> ConfigFile {
        guard let record else { return config }
        var config = config
        if record.registryURL.lowercased().hasPrefix("http://"), !configuration.isPlainHTTP, !configuration.insecure {
            logger.error(
                "Ground Control names a plain-HTTP registry; not sending credentials over it (set groundControl.insecure to allow)",
                metadata: ["registry": "\(record.registryURL)"])
            config.upstream = nil
            config.state.images = []
            config.state.file = nil
            config.state.artifact = nil
            return config
        }
        var upstream = ConfigFile.Upstream(url: record.registryURL)
        upstream.username = record.registry.username
        upstream.password = record.registry.password
        upstream.caFile = configuration.caFile
        upstream.insecure = configuration.insecure
        config.upstream = upstream
        config.state.images = []
        config.state.file = nil
        config.state.artifact = record.stateArtifact
        return config
    }

    // MARK: Passes

    /// Takes what a sync pass found: its duration, whether it completed, the state artifact
    /// it followed; a complete pass makes that artifact the applied one.
    public func passFinished(durationMs: Int64, complete: Bool, artifact: ResolvedArtifact?, summary: String) {
        updateStatus { status in
            status.lastSyncDurationMs = durationMs
            status.lastPass = summary
            if let artifact {
                status.configReference = artifact.configReference
                if complete { status.appliedStateDigest = artifact.stateDigest }
            }
        }
        // Report the pass at once, unless Ground Control is unreachable: then the backoff rules.
        if status.failuresInRow == 0 { wakeHeartbeat() }
    }

    /// Reads the config-state artifact the satellite state names and applies it when its
    /// digest changed: validated over `local` first; refused documents are reported and the
    /// last good one stays. Returns true when a new config was applied.
    public func updateRemoteConfig(client upstream: UpstreamClient, local: JSONValue) async -> Bool {
        guard configuration.remoteConfig else { return false }
        let reference = status.configReference
        guard !reference.isEmpty else { return false }
        let path = DesiredStateSource.stripRegistryHost(reference)
        guard let image = ImageReference(path) else {
            note("config state reference \(reference) is not a repository:tag")
            return false
        }
        let digest: String
        let document: [UInt8]
        do {
            let read = try await DesiredStateSource.readStateDocument(image, client: upstream)
            digest = read.digest.description
            document = read.document
        } catch {
            logger.warning("cannot read the config state", metadata: ["reference": "\(path)", "error": "\(error)"])
            return false
        }
        let current = status
        if digest == current.appliedConfigDigest || digest == current.refusedConfigDigest { return false }
        do {
            guard let tree = try? JSON.parse(document), let parsed = try? JSONCoder.decode(ConfigState.self, from: tree) else {
                throw RemoteConfig.Refusal("its artifacts.json is not a config document")
            }
            _ = try RemoteConfig.apply(parsed, over: local, remoteHooks: configuration.remoteHooks)
            let applied = AppliedConfig(digest: digest, document: tree)
            try FleetFiles.writePrivate(files.config, try JSONCoder.encode(applied, pretty: true))
            state.withLock { $0.applied = applied }
            updateStatus { status in
                status.appliedConfigDigest = digest
                status.refusedConfigDigest = ""
                status.refusedConfigReason = ""
                status.pendingNotes.append("applied config \(digest.prefix(19))")
            }
            logger.info("remote config applied", metadata: ["digest": "\(digest)"])
            return true
        } catch let refusal as RemoteConfig.Refusal {
            updateStatus { status in
                status.refusedConfigDigest = digest
                status.refusedConfigReason = refusal.description
                status.pendingNotes.append("refused config \(digest.prefix(19)): \(refusal.description); kept \(current.appliedConfigDigest.isEmpty ? "the local config" : String(current.appliedConfigDigest.prefix(19)))")
            }
            logger.error("remote config refused; keeping the last good one", metadata: ["digest": "\(digest)", "reason": "\(refusal)"])
            return false
        } catch {
            logger.error("cannot store the remote config", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// The effective config: the local document with the last good remote config over it,
    /// then Ground Control's upstream and state. A stored document that no longer validates
    /// (the local file changed) is skipped and reported.
    public func effective(local: JSONValue, localConfig: ConfigFile) -> (config: ConfigFile, logLevel: Logger.Level?) {
        var config = localConfig
        var level: Logger.Level?
        if configuration.remoteConfig, let applied = appliedConfig,
            let document = try? JSONCoder.decode(ConfigState.self, from: applied.document)
        {
            do {
                let effective = try RemoteConfig.apply(document, over: local, remoteHooks: configuration.remoteHooks)
                config = effective.config
                level = effective.logLevel
            } catch {
                logger.error("the stored remote config no longer validates; using the local config", metadata: ["error": "\(error)"])
            }
        }
        if let heartbeat = config.groundControl?.heartbeat {
            let changed = state.withLock { s -> Bool in
                defer { s.heartbeatInterval = heartbeat }
                return s.heartbeatInterval != heartbeat
            }
            // A shorter interval must not wait out the longer sleep already under way.
            if changed { wakeHeartbeat() }
        }
        return (apply(to: config), level)
    }

    // MARK: Credentials

    /// Asks Ground Control for a new secret and stores it (0600, atomically) before using it.
    /// Returns whether the credentials changed.
    @discardableResult
    public func refreshCredentials(reason: String) async -> Bool {
        guard var record else { return false }
        do {
            let result = try await client.refresh(credentials: record.registry)
            record.registry.password = result.secret
            record.refreshedAt = unixNow()
            try FleetFiles.writePrivate(files.link, try JSONCoder.encode(record, pretty: true))
            state.withLock { $0.record = record }
            updateStatus { status in
                status.credentialRefreshes += 1
                status.pendingNotes.append("credentials refreshed (\(reason))")
            }
            logger.info("registry credentials refreshed", metadata: ["reason": "\(reason)"])
            return true
        } catch {
            logger.error("credential refresh failed", metadata: ["reason": "\(reason)", "error": "\(error)"])
            note("credential refresh failed: \(error)")
            return false
        }
    }

    // MARK: Heartbeats

    func wakeHeartbeat() {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.wake = nil }
            return s.wake
        }
        wake?.resume()
    }

    /// Builds the heartbeat from the store and this process.
    func makeHeartbeat(store: BlobStore) -> Heartbeat {
        let (record, status, interval, cpu) = state.withLock { s in
            (s.record, s.status, s.heartbeatInterval, s.stats.cpuPercent())
        }
        let images = StoreInventory.images(store: store)
        var activity: [String] = []
        if let since = status.unreachableSince {
            activity.append("reconnected after \(unixNow() - since)s without Ground Control")
        }
        if !status.lastPass.isEmpty { activity.append(status.lastPass) }
        if !status.refusedConfigReason.isEmpty {
            activity.append("refused config \(status.refusedConfigDigest.prefix(19)): \(status.refusedConfigReason)")
        }
        activity += status.pendingNotes
        return Heartbeat(
            name: record?.name ?? "",
            activity: activity.isEmpty ? "idle" : activity.joined(separator: "; "),
            stateReportInterval: EveryInterval.format(seconds: interval / 1_000_000_000),
            latestStateDigest: status.appliedStateDigest,
            latestConfigDigest: status.appliedConfigDigest,
            memoryUsedBytes: ProcessStats.residentBytes(),
            storageUsedBytes: UInt64(max(0, GarbageCollector.diskUse(store: store))),
            cpuPercent: cpu,
            requestCreatedTime: UTCTime.rfc3339(unixNow()),
            lastSyncDurationMs: status.lastSyncDurationMs,
            imageCount: images.count,
            cachedImages: images)
    }

    /// Sends one heartbeat; on `refresh_credentials` (or a 401) refreshes the credentials.
    /// Returns whether Ground Control took it.
    @discardableResult
    public func sendHeartbeat(store: BlobStore) async -> Bool {
        guard let record else { return false }
        if !PosixFile.exists(files.link) {
            // The first heartbeat tells Ground Control onboarding is complete: never before
            // the answer is durable here.
            storeLink(record)
            guard PosixFile.exists(files.link) else { return false }
        }
        let included = status.pendingNotes
        let heartbeat = makeHeartbeat(store: store)
        let now = unixNow()
        do {
            let reply = try await client.heartbeat(heartbeat, credentials: record.registry)
            updateStatus { status in
                status.lastHeartbeatAttempt = now
                status.lastHeartbeatOK = now
                status.lastHeartbeatResult = "ok"
                status.failuresInRow = 0
                status.unreachableSince = nil
                status.heartbeatsSent += 1
                // What went out is reported; keep what arrived meanwhile.
                if status.pendingNotes.starts(with: included) { status.pendingNotes.removeFirst(included.count) }
            }
            if reply.asksForCredentialRefresh {
                await refreshCredentials(reason: "asked by Ground Control")
            }
            return true
        } catch {
            let failure = error as? GroundControlClient.Failure
            updateStatus { status in
                status.lastHeartbeatAttempt = now
                status.lastHeartbeatResult = "\(error)"
                status.failuresInRow += 1
                status.heartbeatsFailed += 1
                if failure?.isRetryable ?? true, status.unreachableSince == nil { status.unreachableSince = now }
            }
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            if failure?.kind == .unauthorized {
                await refreshCredentials(reason: "heartbeat answered 401")
            }
            return false
        }
    }

    /// Heartbeats until cancelled: every interval, sooner after a pass; backs off while
    /// Ground Control is unreachable (doubling up to 5 minutes, never faster than the interval).
    public func runHeartbeats(store: BlobStore) async {
        while !Task.isCancelled {
            let ok = await sendHeartbeat(store: store)
            let (interval, failures) = state.withLock { ($0.heartbeatInterval, $0.status.failuresInRow) }
            let wait = ok ? interval : max(interval, Backoff.delay(attempt: failures))
            await sleepOrWake(nanoseconds: wait)
        }
    }

    func sleepOrWake(nanoseconds: Int64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let previous = state.withLock { s -> CheckedContinuation<Void, Never>? in
                    defer { s.wake = continuation }
                    return s.wake
                }
                previous?.resume()
                Task {
                    try? await Task.sleep(nanoseconds: UInt64(max(0, nanoseconds)))
                    self.wakeHeartbeat()
                }
            }
        } onCancel: {
            self.wakeHeartbeat()
        }
    }

    // MARK: Metrics

    /// Prometheus lines for `/metrics`.
    public func metricsText() -> String {
        let s = status
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("satellite_heartbeats_total", "counter", "Heartbeats Ground Control accepted.", s.heartbeatsSent)
        metric("satellite_heartbeat_failures_total", "counter", "Heartbeats that failed.", s.heartbeatsFailed)
        metric("satellite_heartbeat_last_success_seconds", "gauge", "Unix time of the last accepted heartbeat.", s.lastHeartbeatOK ?? 0)
        metric("satellite_ground_control_reachable", "gauge", "1 when the last heartbeat reached Ground Control.", s.failuresInRow == 0 && s.lastHeartbeatOK != nil ? 1 : 0)
        metric("satellite_credential_refreshes_total", "counter", "Registry credential refreshes.", s.credentialRefreshes)
        return out
    }
}

/// A fleet link failure the CLI shows as one line.
public struct FleetLinkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// Ground Control refused (rather than could not be reached): retrying soon is pointless.
    public var isRefusal: Bool
    public init(_ description: String, isRefusal: Bool = false) {
        self.description = description
        self.isRefusal = isRefusal
    }
}

/// Exponential backoff with jitter: 2 s, 4 s, … up to 5 minutes.
enum Backoff {
    static func delay(attempt: Int) -> Int64 {
        let base = Int64(2_000_000_000) << Int64(min(max(attempt - 1, 0), 8))
        let capped = min(base, 300_000_000_000)
        return capped - Int64.random(in: 0...(capped / 4))
    }
}
