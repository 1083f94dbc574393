import Hooks
import Logging
import SatelliteConfig
import Synchronization
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

/// Connects the sync engine's events to the hook runner: every event is journaled in
/// `<store>/hooks` before the change it announces, and run by the runner afterwards.
final class HookBridge: SyncEventSink {
    let runner: HookRunner
    private let task = Mutex<Task<Void, Never>?>(nil)

    private init(runner: HookRunner) {
        self.runner = runner
    }

    /// nil when the config has no hooks (nothing to journal).
    static func make(settings: Settings, store: BlobStore, logger: Logger) throws -> HookBridge? {
        let runner = try HookRunner(
            hooks: settings.config.hooks, journalDirectory: store.layout.hooks,
            defaultTimeout: settings.profile.hooks.timeout,
            registryAddress: settings.config.registry.listen.localAddress, logger: logger)
        return HookBridge(runner: runner)
    }

    func update(settings: Settings) {
        runner.updateHooks(settings.config.hooks)
    }

    /// Runs hooks in the background until ``stop()``.
    func start() {
        let runner = self.runner
        task.withLock { $0 = Task { await runner.run() } }
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }

    /// Runs every pending hook now (one-shot `sync`).
    func drain() async {
        try? await runner.drain()
    }

    private static func hookEvent(_ event: SyncEvent) -> HookEvent {
        let kind: HookEvent.Kind =
            switch event.kind {
            case .imageUpdated: .imageUpdated
            case .imageRemoved: .imageRemoved
            case .syncCompleted: .syncCompleted
            case .syncFailed: .syncFailed
            case .gcCompleted: .gcCompleted
            case .trustRejected: .trustRejected
            case .bundleImported: .bundleImported
            }
        return HookEvent(
            kind: kind, repository: event.repository, tag: event.tag, digest: event.digest,
            previousDigest: event.previousDigest, message: event.message)
    }

    func prepare(_ event: SyncEvent) throws -> SyncEventToken? {
        try runner.prepare(Self.hookEvent(event)).map { SyncEventToken($0) }
    }

    func commit(_ token: SyncEventToken) throws {
        guard let prepared = token.value as? HookRunner.PreparedEvent else { return }
        try runner.commit(prepared)
    }

    func abandon(_ token: SyncEventToken) {
        guard let prepared = token.value as? HookRunner.PreparedEvent else { return }
        try? runner.abandon(prepared)
    }

    func recover(happened: (SyncEvent) -> Bool) throws {
        for prepared in try runner.preparedEvents() {
            let e = prepared.event
            let kind: SyncEvent.Kind = e.kind == .imageRemoved ? .imageRemoved : .imageUpdated
            let event = SyncEvent(kind: kind, repository: e.repository, tag: e.tag, digest: e.digest, previousDigest: e.previousDigest)
            if happened(event) {
                try runner.commit(prepared)
            } else {
                try runner.abandon(prepared)
            }
        }
    }

    func record(_ event: SyncEvent) throws {
        _ = try runner.enqueue(Self.hookEvent(event))
    }

    /// One finished hook run, for `status`.
    struct RunSummary: Encodable {
        var event: String
        var hook: Int
        var image: String
        var result: String
        var duration: String
    }

    static func recentRuns(store: BlobStore) -> [RunSummary] {
        let status = HookRunner.status(journalDirectory: store.layout.hooks)
        return status.recent.suffix(10).map { run in
            RunSummary(
                event: run.event.kind.rawValue, hook: run.hookIndex, image: run.event.image,
                result: run.succeeded ? "ok" : "\(run.outcome)", duration: Units.formatDuration(run.duration))
        }
    }
}
