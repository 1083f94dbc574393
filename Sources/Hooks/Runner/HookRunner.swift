import JSONCoding
import Logging
import SatelliteConfig
import Synchronization
import OCICore

/// Runs the configured hooks for events, durably and one at a time.
///
/// The sync engine journals an event with ``enqueue(_:)`` (or ``prepare(_:)`` and
/// ``commit(_:)``) and moves on: hooks never run on the caller's task, and a failing or
/// hanging hook never fails anything but itself. ``run()`` is the long-running service
/// that processes events as they come; ``drain()`` processes what is pending and returns.
///
/// Guarantees (see ``HookJournal``):
/// - An event is on disk (fsync'ed) before `enqueue` returns.
/// - Events are processed in journal order; the hooks of one event in config order.
/// - At least once: a hook that had not finished when the process died runs again at the
///   next start (its `SATELLITE_EVENT_ID` is the same). A hook that finished is never run
///   again for that event, whatever its exit status: failures are reported, not retried.
/// - A hook interrupted ``Configuration/maxInterruptedAttempts`` times (the process died or
///   was stopped each time it ran, e.g. a hook that restarts the agent itself) is abandoned
///   and reported instead of looping forever.
/// - One process at a time runs hooks from a journal (a `flock`); any process may enqueue.
public final class HookRunner: Sendable {
    public struct Configuration: Sendable {
        public var hooks: [ConfigFile.Hook]
        /// Nanoseconds a hook may run when it sets no `timeout` (the profile's hook timeout).
        public var defaultTimeout: Int64
        /// host:port of the local registry, passed as `SATELLITE_REGISTRY`.
        public var registryAddress: String
        /// Nanoseconds between SIGTERM and SIGKILL to a timed-out hook's process group.
        public var killGracePeriod: Int64 = 5_000_000_000
        /// Bytes of each hook's output kept for the log (the tail).
        public var outputLimit: Int = 64 * 1024
        /// Runs kept for `status`.
        public var historyLimit: Int = 50
        /// Bytes of output kept per run in the history file.
        public var historyOutputLimit: Int = 4 * 1024
        /// Interrupted starts of one hook after which it is abandoned.
        public var maxInterruptedAttempts: Int = 3
        /// How often ``HookRunner/run()`` looks for events journaled by other processes.
        public var pollInterval: Int64 = 10_000_000_000

        public init(hooks: [ConfigFile.Hook], defaultTimeout: Int64, registryAddress: String) {
            self.hooks = hooks
            self.defaultTimeout = defaultTimeout
            self.registryAddress = registryAddress
        }
    }

    /// What the runner is doing, for `status`.
    public struct Status: Sendable {
        /// Journaled events whose hooks have not all finished, oldest first.
        public var pending: [HookEvent]
        /// The hook running now, if any (only known inside the process that runs it).
        public var running: Running?
        /// The last finished runs, oldest first.
        public var recent: [HookRun]

        public struct Running: Sendable {
            public var event: HookEvent
            public var hookIndex: Int
            public var command: String
            /// Nanoseconds since the Unix epoch.
            public var started: Int64
        }
    }

    /// An event journaled by ``prepare(_:)``, waiting for ``commit(_:)`` or ``abandon(_:)``.
    public struct PreparedEvent: Sendable {
        public let event: HookEvent
        let sequence: Int64
    }

    private struct State {
        var configuration: Configuration
        var running: Status.Running?
        var history: [HookRun]
        /// Runs finished by this runner, and how many of them failed (for metrics: the
        /// history is bounded, these only grow).
        var runs: Int64 = 0
        var failures: Int64 = 0
        /// `run()` waiting for work.
        var waiter: CheckedContinuation<Void, Never>?
        /// Work arrived while nobody waited.
        var woken = false
    }

    private let journal: HookJournal
    private let state: Mutex<State>
    private let logger: Logger

    /// Opens (and creates) the journal in `journalDirectory` and loads the run history.
    /// Nothing runs until ``run()`` or ``drain()``, which also pick up events a previous
    /// process left unfinished.
    ///
    /// Throws ``PosixError`` when the directory cannot be created.
    public init(configuration: Configuration, journalDirectory: String, logger: Logger) throws {
        let journal = try HookJournal(directory: journalDirectory, logger: logger)
        self.journal = journal
        self.logger = logger
        self.state = Mutex(State(configuration: configuration, history: Self.loadHistory(journal.directory)))
    }

    public convenience init(
        hooks: [ConfigFile.Hook], journalDirectory: String, defaultTimeout: Int64, registryAddress: String,
        logger: Logger
    ) throws {
        try self.init(
            configuration: Configuration(hooks: hooks, defaultTimeout: defaultTimeout, registryAddress: registryAddress),
            journalDirectory: journalDirectory, logger: logger)
    }

    /// Replaces the hooks (config reload). Events already journaled run the new hooks.
    public func updateHooks(_ hooks: [ConfigFile.Hook]) {
        state.withLock { $0.configuration.hooks = hooks }
    }

    // MARK: Enqueueing

    /// Journals `event` durably (fsync'ed when this returns) and wakes ``run()``.
    ///
    /// Returns false, writing nothing, when no hook is configured for the event, and for an
    /// `image-updated` that is not a change: its digest equals its previous digest, or the
    /// newest pending `image-updated` of the same tag already has this digest.
    ///
    /// Throws ``PosixError`` when the journal cannot be written (the event is then lost to
    /// hooks: the caller should report it).
    @discardableResult
    public func enqueue(_ event: HookEvent) throws -> Bool {
        guard try shouldJournal(event) else { return false }
        let sequence = try journal.append(HookJournal.Entry(event: event), as: .pending)
        logger.debug("hook event journaled", metadata: Self.metadata(event).merging(["sequence": "\(sequence)"]) { $1 })
        wake()
        return true
    }

    /// The first half of a two-phase enqueue, for a caller that must not lose an event if
    /// it dies between its own state change and the journal write: `prepare`, change the
    /// state (e.g. move the tag), then ``commit(_:)``; on failure ``abandon(_:)``.
    /// After a crash, ``preparedEvents()`` lists what was prepared and never committed, for
    /// the caller to commit if its change happened (the tag points at `event.digest`) or
    /// abandon otherwise. Prepared events never run before they are committed.
    ///
    /// Returns nil when ``enqueue(_:)`` would return false.
    public func prepare(_ event: HookEvent) throws -> PreparedEvent? {
        guard try shouldJournal(event) else { return nil }
        return PreparedEvent(event: event, sequence: try journal.append(HookJournal.Entry(event: event), as: .prepared))
    }

    /// Makes a prepared event pending (durably) and wakes ``run()``.
    public func commit(_ prepared: PreparedEvent) throws {
        try journal.commit(prepared.sequence)
        wake()
    }

    /// Forgets a prepared event.
    public func abandon(_ prepared: PreparedEvent) throws {
        try journal.remove(prepared.sequence, .prepared)
    }

    /// Events prepared by a process that died before committing or abandoning them.
    /// Call it at start, while no other process can be preparing events (under the store's
    /// writer lock).
    public func preparedEvents() throws -> [PreparedEvent] {
        try journal.records(.prepared).map { PreparedEvent(event: $0.entry.event, sequence: $0.sequence) }
    }

    private func shouldJournal(_ event: HookEvent) throws -> Bool {
        let hooks = state.withLock { $0.configuration.hooks }
        guard hooks.contains(where: { event.triggers($0) }) else { return false }
        guard event.kind == .imageUpdated else { return true }
        if event.digest == event.previousDigest {
            logger.debug("image-updated without a digest change ignored", metadata: Self.metadata(event))
            return false
        }
        let newest = try journal.records(.pending).last {
            $0.entry.event.kind == .imageUpdated && $0.entry.event.repository == event.repository
                && $0.entry.event.tag == event.tag
        }
        if let newest, newest.entry.event.digest == event.digest {
            logger.debug("image-updated already pending for this digest", metadata: Self.metadata(event))
            return false
        }
        return true
    }

    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.woken = true
            return nil
        }
        waiter?.resume()
    }

    // MARK: Processing

    /// Processes events until the task is cancelled: those left by a previous process
    /// first, then each one as it is enqueued (or found in the journal, every
    /// ``Configuration/pollInterval``, when another process wrote it). Cancelling terminates
    /// a running hook, whose event stays journaled for the next start.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await drain()
            } catch is CancellationError {
                return
            } catch {
                logger.error("hook journal failed; retrying", metadata: ["error": "\(error)"])
            }
            let interval = state.withLock { $0.configuration.pollInterval }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(nanoseconds: UInt64(max(interval, 1_000_000))) }
                group.addTask { await self.waitForWork() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Processes every pending event, including those enqueued meanwhile, and returns
    /// when none is left. Waits while another process or task is processing this journal.
    ///
    /// Throws `CancellationError` when cancelled (a running hook is terminated and its event
    /// stays journaled), or ``PosixError`` when the journal cannot be read or written.
    public func drain() async throws {
        try await journal.withProcessingLock {
            journal.removeStaleTemporaries()
            while true {
                try Task.checkCancellation()
                guard let record = try journal.records(.pending).first else { return }
                try await process(record)
            }
        }
    }

    private func waitForWork() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let previous = state.withLock { state -> (resumeNow: Bool, replaced: CheckedContinuation<Void, Never>?) in
                    if state.woken || Task.isCancelled {
                        state.woken = false
                        return (true, nil)
                    }
                    let replaced = state.waiter
                    state.waiter = continuation
                    return (false, replaced)
                }
                previous.replaced?.resume()
                if previous.resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    private func process(_ record: HookJournal.Record) async throws {
        var record = record
        let configuration = state.withLock { $0.configuration }
        let event = record.entry.event
        let hooks = configuration.hooks.enumerated().filter { event.triggers($0.element) }
        for (position, (index, hook)) in hooks.enumerated() {
            let key = HookJournal.HookKey(index: index, run: hook.run)
            if record.entry.done.contains(key) { continue }
            let attempt = record.entry.inProgress == key ? record.entry.attempts + 1 : 1
            let run: HookRun
            if attempt > configuration.maxInterruptedAttempts {
                run = HookRun(
                    event: event, hookIndex: index, command: hook.run, attempt: attempt - 1,
                    started: MonotonicClock.wallNow(), duration: 0, outcome: .abandoned(attempts: attempt - 1),
                    output: "", outputBytes: 0)
                logger.error(
                    "hook abandoned: the process stopped every time it ran",
                    metadata: Self.metadata(event).merging(["hook": "\(index)", "attempts": "\(attempt - 1)"]) { $1 })
            } else {
                record.entry.inProgress = key
                record.entry.attempts = attempt
                try journal.update(record)
                let started = MonotonicClock.wallNow()
                state.withLock {
                    $0.running = Status.Running(event: event, hookIndex: index, command: hook.run, started: started)
                }
                run = await Self.execute(hook, index: index, event: event, attempt: attempt, configuration: configuration, logger: logger)
                state.withLock { $0.running = nil }
            }
            remember(run, configuration: configuration)
            if run.outcome == .cancelled { throw CancellationError() }
            record.entry.done.append(key)
            record.entry.inProgress = nil
            record.entry.attempts = 0
            if position < hooks.count - 1 { try journal.update(record) }
        }
        try journal.remove(record.sequence)
    }

    private func remember(_ run: HookRun, configuration: Configuration) {
        var kept = run
        let bytes = Array(kept.output.utf8)
        if bytes.count > configuration.historyOutputLimit {
            kept.output = String(decoding: bytes.suffix(configuration.historyOutputLimit), as: UTF8.self)
        }
        let history = state.withLock { state -> [HookRun] in
            state.runs += 1
            if !run.succeeded { state.failures += 1 }
            state.history.append(kept)
            if state.history.count > configuration.historyLimit {
                state.history.removeFirst(state.history.count - configuration.historyLimit)
            }
            return state.history
        }
        do {
            try PosixFile.writeAtomically(
                Self.historyPath(journal.directory), try JSONCoder.encode(history, sortedKeys: true), durable: false)
        } catch {
            logger.warning("cannot write the hook history", metadata: ["error": "\(error)"])
        }
    }

    /// Hook runs this runner finished since it was created, and how many failed
    /// (timed out, killed or exited non-zero).
    public var totals: (runs: Int64, failures: Int64) {
        state.withLock { ($0.runs, $0.failures) }
    }

    /// Events journaled and not yet done.
    public var pendingCount: Int {
        HookJournal.peek(directory: journal.directory).count
    }

    // MARK: Running hooks

    /// Runs the hooks `event` triggers now, in config order, without the journal or the
    /// history: for `satellite-lite hooks run`.
    public static func execute(_ event: HookEvent, configuration: Configuration, logger: Logger) async -> [HookRun] {
        var runs: [HookRun] = []
        for (index, hook) in configuration.hooks.enumerated() where event.triggers(hook) {
            if Task.isCancelled { break }
            runs.append(await execute(hook, index: index, event: event, attempt: 1, configuration: configuration, logger: logger))
        }
        return runs
    }

    private static func execute(
        _ hook: ConfigFile.Hook, index: Int, event: HookEvent, attempt: Int, configuration: Configuration, logger: Logger
    ) async -> HookRun {
        var options = HookProcess.Options(timeout: hook.timeout ?? configuration.defaultTimeout)
        options.killGracePeriod = configuration.killGracePeriod
        options.outputLimit = configuration.outputLimit
        var metadata = metadata(event)
        metadata["hook"] = "\(index)"
        logger.info("hook started", metadata: metadata.merging(["command": "\(hook.run)", "attempt": "\(attempt)"]) { $1 })
        let started = MonotonicClock.wallNow()
        let result = await HookProcess.run(
            command: hook.run, environment: event.environment(registry: configuration.registryAddress), options: options)
        if result.output.droppedBytes > 0 {
            logger.info("hook output: \(result.output.droppedBytes) earlier bytes not kept", metadata: metadata)
        }
        for line in result.output.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(
            result.output.text.hasSuffix("\n") ? 1 : 0)
        {
            logger.info("hook output: \(line)", metadata: metadata)
        }
        metadata["outcome"] = "\(result.outcome)"
        metadata["duration"] = "\(Units.formatDuration(result.duration))"
        logger.log(level: result.outcome.succeeded ? .info : .warning, "hook finished", metadata: metadata)
        return HookRun(
            event: event, hookIndex: index, command: hook.run, attempt: attempt, started: started,
            duration: result.duration, outcome: result.outcome, output: result.output.text,
            outputBytes: result.output.totalBytes)
    }

    private static func metadata(_ event: HookEvent) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["event": "\(event.kind.rawValue)", "eventID": "\(event.id)"]
        if !event.image.isEmpty { metadata["image"] = "\(event.image)" }
        if !event.digest.isEmpty { metadata["digest"] = "\(event.digest)" }
        return metadata
    }

    // MARK: Status

    /// A snapshot for `status`: pending events (read from the journal), the running hook
    /// and the last runs.
    public func status() -> Status {
        let (running, history) = state.withLock { ($0.running, $0.history) }
        return Status(pending: HookJournal.peek(directory: journal.directory).map(\.event), running: running, recent: history)
    }

    /// The status of the agent's hooks as another process (`satellite-lite status`) sees it
    /// on disk: pending events and the last runs (`running` is nil).
    public static func status(journalDirectory: String) -> Status {
        Status(
            pending: HookJournal.peek(directory: journalDirectory).map(\.event), running: nil,
            recent: loadHistory(journalDirectory))
    }

    private static func historyPath(_ directory: String) -> String { "\(directory)/history.json" }

    private static func loadHistory(_ directory: String) -> [HookRun] {
        guard let bytes = try? PosixFile.readAll(path: historyPath(directory), limit: 16 << 20) else { return [] }
        return (try? JSONCoder.decode([HookRun].self, from: bytes)) ?? []
    }
}
