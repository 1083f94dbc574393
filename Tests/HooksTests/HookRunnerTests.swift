import SatelliteConfig
import Testing

@testable import Hooks
@testable import RuntimeConfig
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct HookRunnerTests {
    private func runner(_ hooks: [ConfigFile.Hook], journal: String, timeout: Double = 10) throws -> HookRunner {
        var configuration = HookRunner.Configuration(
            hooks: hooks, defaultTimeout: Int64(timeout * 1e9), registryAddress: "127.0.0.1:5000")
        configuration.killGracePeriod = 500_000_000
        return try HookRunner(configuration: configuration, journalDirectory: journal, logger: Helpers.logger)
    }

    private func pendingFiles(_ journal: String) -> [String] {
        HookJournal.peek(directory: journal).map(\.event.id)
    }

    @Test func hooksRunInConfigOrderAndEventsInJournalOrder() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let runner = try runner(
            [
                Helpers.hook(.imageUpdated, "echo 0 $SATELLITE_IMAGE >> \(log)"),
                Helpers.hook(.imageUpdated, "echo 1 $SATELLITE_IMAGE >> \(log)", match: "factory/*"),
                Helpers.hook(.syncCompleted, "echo sync $SATELLITE_MESSAGE >> \(log)"),
                Helpers.hook(.imageUpdated, "echo failing; exit 7"),
                Helpers.hook(.imageUpdated, "echo 3 $SATELLITE_PREVIOUS_DIGEST >> \(log)"),
            ], journal: "\(directory)/journal")
        #expect(try runner.enqueue(HookEvent(kind: .imageUpdated, repository: "factory/a", tag: "1", digest: "sha256:a", previousDigest: "sha256:0")))
        #expect(try runner.enqueue(HookEvent(kind: .syncCompleted, message: "ok")))
        #expect(try runner.enqueue(HookEvent(kind: .imageUpdated, repository: "library/x", tag: "2", digest: "sha256:x")))
        #expect(try !runner.enqueue(HookEvent(kind: .gcCompleted)))  // no hook: nothing journaled
        #expect(pendingFiles("\(directory)/journal").count == 3)
        try await runner.drain()
        #expect(
            Helpers.lines(log) == [
                "0 factory/a:1", "1 factory/a:1", "3 sha256:0", "sync ok", "0 library/x:2", "3",
            ])
        #expect(pendingFiles("\(directory)/journal").isEmpty)
        let recent = runner.status().recent
        #expect(recent.count == 8)
        let failing = recent.filter { $0.hookIndex == 3 }
        #expect(failing.count == 2)
        #expect(failing.allSatisfy { $0.outcome == .exited(7) && $0.output == "failing\n" })
    }

    @Test func anEventJournaledBeforeACrashRunsOnceAfterRestart() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let hooks = [Helpers.hook(.imageUpdated, "echo $SATELLITE_EVENT_ID $SATELLITE_DIGEST >> \(log)")]
        let event = HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: "sha256:new", previousDigest: "sha256:old")
        do {
            // The tag moved, the event is journaled, then the process dies: nothing runs.
            let first = try runner(hooks, journal: "\(directory)/journal")
            try first.enqueue(event)
        }
        #expect(Helpers.read(log) == nil)
        // Restart: the journal is replayed.
        let second = try runner(hooks, journal: "\(directory)/journal")
        try await second.drain()
        #expect(Helpers.lines(log) == ["\(event.id) sha256:new"])
        // Another restart: the completed event is gone for good.
        let third = try runner(hooks, journal: "\(directory)/journal")
        try await third.drain()
        #expect(Helpers.lines(log) == ["\(event.id) sha256:new"])
    }

    @Test(.timeLimit(.minutes(1)))
    func killMinus9DuringAHookRunsItAgainAfterRestartThenNeverAgain() async throws {
        let binary = try #require(Helpers.binary, "build satellite-lite first (swift build)")
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        Helpers.write("\(directory)/slow", "")
        // The first run blocks until killed; after the restart the same hook is quick.
        let command = "echo run $SATELLITE_EVENT_ID >> \(directory)/log; echo $$ > \(directory)/hookpid; "
            + "if [ -f \(directory)/slow ]; then sleep 30; fi"
        Helpers.write(
            "\(directory)/config.json",
            """
            { "storage": { "path": "\(directory)/store" },
              "hooks": [ { "on": "image-updated", "run": \(Helpers.jsonString(command)), "timeout": "60s" } ] }
            """)
        let script = """
            "$BIN" hooks run --config "$DIR/config.json" --event image-updated --image factory/a:1 --digest sha256:1 --journal \
                >/dev/null 2>&1 &
            agent=$!
            for i in $(seq 1 400); do [ -s "$DIR/hookpid" ] && break; sleep 0.05; done
            kill -9 $agent
            # The agent is gone; its hook lives on in its own process group (systemd would stop
            # the whole cgroup). Stop it the same way.
            kill -9 -$(cat "$DIR/hookpid")
            rm -f "$DIR/slow"
            echo restart
            "$BIN" hooks drain --config "$DIR/config.json"
            echo restart-again
            "$BIN" hooks drain --config "$DIR/config.json"
            """
        let result = await Helpers.shell(script, environment: ["BIN=\(binary)", "DIR=\(directory)"])
        #expect(result.status == .exited(0), "\(result.output)")
        let runs = Helpers.lines("\(directory)/log")
        #expect(runs.count == 2, "\(runs)")
        #expect(Set(runs).count == 1)  // the same event id both times
        #expect(result.output.contains("restart\n1 pending event(s), 1 hook run(s)"), "\(result.output)")
        #expect(result.output.contains("attempt 2"))
        #expect(result.output.contains("restart-again\n0 pending event(s), 0 hook run(s)"), "\(result.output)")
        let status = HookRunner.status(journalDirectory: "\(directory)/store/hooks")
        #expect(status.pending.isEmpty)
        #expect(status.recent.last?.outcome == .exited(0))
    }

    @Test func imageUpdatedOnlyForAnActualChangeOfDigest() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let runner = try runner([Helpers.hook(.imageUpdated, "echo $SATELLITE_DIGEST >> \(log)")], journal: "\(directory)/journal")
        func updated(_ digest: String, from previous: String) throws -> Bool {
            try runner.enqueue(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: digest, previousDigest: previous))
        }
        #expect(try updated("sha256:a", from: ""))
        #expect(try !updated("sha256:a", from: ""))  // a second pass before the hook ran
        #expect(try !updated("sha256:a", from: "sha256:a"))  // not a change
        #expect(try updated("sha256:b", from: "sha256:a"))
        #expect(try updated("sha256:a", from: "sha256:b"))  // back again: a real change
        try await runner.drain()
        #expect(Helpers.lines(log) == ["sha256:a", "sha256:b", "sha256:a"])
        #expect(try !updated("sha256:a", from: "sha256:a"))
        try await runner.drain()
        #expect(Helpers.lines(log).count == 3)
    }

    @Test func preparedEventsRunOnlyOnceCommitted() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let hooks = [Helpers.hook(.imageUpdated, "echo $SATELLITE_DIGEST >> \(log)")]
        let runner = try runner(hooks, journal: "\(directory)/journal")
        let first = try #require(try runner.prepare(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: "sha256:1")))
        try await runner.drain()
        #expect(Helpers.read(log) == nil)
        try runner.commit(first)
        try await runner.drain()
        #expect(Helpers.lines(log) == ["sha256:1"])

        let failed = try #require(try runner.prepare(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: "sha256:2")))
        try runner.abandon(failed)
        // Prepared, then the process died: the next start decides.
        _ = try runner.prepare(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: "sha256:3"))
        _ = try runner.prepare(HookEvent(kind: .imageUpdated, repository: "c/d", tag: "1", digest: "sha256:4"))
        let restarted = try self.runner(hooks, journal: "\(directory)/journal")
        let leftovers = try restarted.preparedEvents()
        #expect(leftovers.map(\.event.digest) == ["sha256:3", "sha256:4"])
        for prepared in leftovers {
            // "Did the tag move?": yes for a/b, no for c/d.
            if prepared.event.repository == "a/b" { try restarted.commit(prepared) } else { try restarted.abandon(prepared) }
        }
        #expect(try restarted.preparedEvents().isEmpty)
        try await restarted.drain()
        #expect(Helpers.lines(log) == ["sha256:1", "sha256:3"])
    }

    @Test(.timeLimit(.minutes(1)))
    func aHookInterruptedAgainAndAgainIsAbandoned() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        // Like a hook that restarts the agent itself: the agent stops every time it runs.
        let hooks = [
            Helpers.hook(.imageUpdated, "echo start >> \(log); sleep 30"),
            Helpers.hook(.imageUpdated, "echo second >> \(log)"),
        ]
        try runner(hooks, journal: "\(directory)/journal").enqueue(
            HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1", digest: "sha256:1"))
        for attempt in 1...3 {
            let runner = try runner(hooks, journal: "\(directory)/journal")
            let task = Task { try await runner.drain() }
            #expect(await Helpers.waitFor(seconds: 30) { Helpers.lines(log).count == attempt })
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(runner.status().recent.last?.outcome == .cancelled)
        }
        let runner = try runner(hooks, journal: "\(directory)/journal")
        try await runner.drain()
        #expect(Helpers.lines(log) == ["start", "start", "start", "second"])
        let recent = runner.status().recent
        #expect(recent.suffix(2).map(\.outcome) == [.abandoned(attempts: 3), .exited(0)])
        #expect(pendingFiles("\(directory)/journal").isEmpty)
    }

    @Test(.timeLimit(.minutes(1)))
    func runProcessesEventsAsTheyComeWithoutBlockingTheCaller() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let runner = try runner(
            [Helpers.hook(.imageUpdated, "sleep 0.5; echo $SATELLITE_TAG >> \(log)")], journal: "\(directory)/journal")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runner.run() }
            let start = MonotonicClock.now()
            for tag in ["1", "2", "3"] {
                try runner.enqueue(HookEvent(kind: .imageUpdated, repository: "a/b", tag: tag, digest: "sha256:\(tag)"))
            }
            // Journaling only, no hook waited for (three would take 1.5 s); loose, the machine is loaded.
            #expect(MonotonicClock.now() - start < 1_400_000_000)
            #expect(await Helpers.waitFor(seconds: 30) { Helpers.lines(log).count == 3 })
            #expect(Helpers.lines(log) == ["1", "2", "3"])
            // The hook wrote its line; its event leaves the journal once the shell is reaped.
            #expect(await Helpers.waitFor(seconds: 30) { runner.status().pending.isEmpty })
            // Still serving: a later event runs too.
            try runner.enqueue(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "4", digest: "sha256:4"))
            #expect(await Helpers.waitFor(seconds: 30) { Helpers.lines(log).count == 4 })
            group.cancelAll()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func twoProcessorsOnOneJournalRunEachEventOnce() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let log = "\(directory)/log"
        let hooks = [Helpers.hook(.imageUpdated, "echo $SATELLITE_TAG >> \(log)")]
        let a = try runner(hooks, journal: "\(directory)/journal")
        let b = try runner(hooks, journal: "\(directory)/journal")
        for tag in 1...6 {
            try (tag % 2 == 0 ? a : b).enqueue(
                HookEvent(kind: .imageUpdated, repository: "a/b", tag: "\(tag)", digest: "sha256:\(tag)"))
        }
        async let first: Void = a.drain()
        async let second: Void = b.drain()
        _ = try await (first, second)
        #expect(Helpers.lines(log) == ["1", "2", "3", "4", "5", "6"])
    }

    @Test func statusFromDiskShowsPendingEventsAndRecentRuns() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let journal = "\(directory)/journal"
        let runner = try runner([Helpers.hook(.syncFailed, "echo \"$SATELLITE_MESSAGE\"; exit 2")], journal: journal)
        let event = HookEvent(kind: .syncFailed, message: "upstream unreachable")
        try runner.enqueue(event)
        #expect(HookRunner.status(journalDirectory: journal).pending == [event])
        try await runner.drain()
        let status = HookRunner.status(journalDirectory: journal)
        #expect(status.pending.isEmpty)
        let run = try #require(status.recent.last)
        #expect(run.event == event)
        #expect(run.outcome == .exited(2))
        #expect(run.output == "upstream unreachable\n")
        #expect(run.duration > 0)
        #expect(!run.succeeded)
    }

    @Test func executeRunsWithoutAJournal() async {
        var configuration = HookRunner.Configuration(
            hooks: [
                Helpers.hook(.imageRemoved, "echo $SATELLITE_REGISTRY"),
                Helpers.hook(.imageRemoved, "sleep 5", timeout: 300_000_000),
            ],
            defaultTimeout: 10_000_000_000, registryAddress: "127.0.0.1:5000")
        configuration.killGracePeriod = 200_000_000
        let runs = await HookRunner.execute(
            HookEvent(kind: .imageRemoved, repository: "a/b", tag: "1"), configuration: configuration, logger: Helpers.logger)
        #expect(runs.map(\.outcome) == [.exited(0), .timedOut(signal: SIGTERM)])
        #expect(runs.first?.output == "127.0.0.1:5000\n")
    }
}
