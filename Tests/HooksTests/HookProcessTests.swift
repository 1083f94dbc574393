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

@Suite struct HookProcessTests {
    private func options(timeout seconds: Double, grace: Double = 0.5, outputLimit: Int = 64 * 1024) -> HookProcess.Options {
        var options = HookProcess.Options(timeout: Int64(seconds * 1e9))
        options.killGracePeriod = Int64(grace * 1e9)
        options.outputLimit = outputLimit
        return options
    }

    @Test func exactEnvironmentWorkingDirectoryAndStdin() async {
        let event = HookEvent(
            kind: .imageUpdated, repository: "factory/sensor", tag: "1.2", digest: "sha256:new", previousDigest: "sha256:old")
        // The test process has plenty of variables of its own; none may reach the hook.
        setenv("SATELLITE_TEST_LEAK", "leaked", 1)
        let result = await HookProcess.run(
            command: "env | sort; echo cwd=$(pwd); cat; echo stdin-done",
            environment: event.environment(registry: "127.0.0.1:5000"), options: options(timeout: 10))
        #expect(result.outcome == .exited(0))
        let lines = result.output.text.split(separator: "\n").map(String.init)
        let variables = lines.filter { $0.contains("=") && !$0.hasPrefix("cwd=") }
        #expect(
            variables == [
                "HOME=/",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "PWD=/",  // set by the shell itself
                "SATELLITE_DIGEST=sha256:new",
                "SATELLITE_EVENT=image-updated",
                "SATELLITE_EVENT_ID=\(event.id)",
                "SATELLITE_IMAGE=factory/sensor:1.2",
                "SATELLITE_MESSAGE=",
                "SATELLITE_PREVIOUS_DIGEST=sha256:old",
                "SATELLITE_REGISTRY=127.0.0.1:5000",
                "SATELLITE_REPOSITORY=factory/sensor",
                "SATELLITE_TAG=1.2",
            ])
        #expect(lines.contains("cwd=/"))
        #expect(lines.last == "stdin-done")  // stdin is /dev/null: cat returns at once
    }

    /// A descriptor the agent holds without close-on-exec (inherited, or opened by a
    /// library) does not reach the hook; the working directory is set by posix_spawn.
    @Test func noInheritedDescriptorsAndWorkingDirectory() async {
        let leaked = open("/dev/null", O_RDONLY)  // no O_CLOEXEC
        #expect(leaked > 2)
        defer { close(leaked) }
        var o = options(timeout: 10)
        o.workingDirectory = "/tmp"
        let result = await HookProcess.run(
            command: "if [ -e /proc/$$/fd/\(leaked) ]; then echo leaked; else echo clean; fi; pwd", environment: [], options: o)
        #expect(result.outcome == .exited(0))
        #expect(result.output.text == "clean\n/tmp\n", "\(result.output.text)")
    }

    @Test func exitStatusSignalAndStderr() async {
        let failed = await HookProcess.run(command: "echo out; echo err >&2; exit 3", environment: [], options: options(timeout: 10))
        #expect(failed.outcome == .exited(3))
        #expect(failed.output.text == "out\nerr\n")
        let killed = await HookProcess.run(command: "kill -9 $$", environment: [], options: options(timeout: 10))
        #expect(killed.outcome == .signaled(SIGKILL))
        let missing = await HookProcess.run(command: "exit 0", environment: [], options: {
            var o = options(timeout: 10)
            o.shell = "/nonexistent/sh"
            return o
        }())
        if case .failedToStart = missing.outcome {} else { Issue.record("expected failedToStart, got \(missing.outcome)") }
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        // A background child that would outlive its shell, and the shell waiting for it.
        let start = MonotonicClock.now()
        let result = await HookProcess.run(
            command: "sleep 300 & echo $! > \(directory)/child; echo started; wait",
            environment: ["PATH=\(HookEvent.path)"], options: options(timeout: 1))
        let elapsed = Double(MonotonicClock.now() - start) / 1e9
        #expect(result.outcome == .timedOut(signal: SIGTERM))
        #expect(result.output.text == "started\n")
        // The timeout fired (sleep 300 would take 300 s); no tighter upper bound: a loaded
        // machine delays the timer and the reap by seconds (CI saw 4.7 s on 2 cores).
        #expect(elapsed >= 1 && elapsed < 60)
        let child = try #require(Int32(Helpers.lines("\(directory)/child").first ?? ""))
        #expect(await Helpers.waitFor(seconds: 30) { !Helpers.isAlive(child) })
    }

    @Test func termIsFollowedByKillAfterTheGracePeriod() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        // The child ignores SIGTERM (inherited through exec by sleep): only SIGKILL ends it.
        let start = MonotonicClock.now()
        let result = await HookProcess.run(
            command: "sh -c 'trap \"\" TERM; sleep 300' & echo $! > \(directory)/child; wait",
            environment: ["PATH=\(HookEvent.path)"], options: options(timeout: 1, grace: 0.5))
        let elapsed = Double(MonotonicClock.now() - start) / 1e9
        #expect(result.outcome == .timedOut(signal: SIGKILL))
        #expect(elapsed >= 1.5 && elapsed < 60)
        let child = try #require(Int32(Helpers.lines("\(directory)/child").first ?? ""))
        #expect(await Helpers.waitFor(seconds: 30) { !Helpers.isAlive(child) })
    }

    @Test func outputIsBoundedAndDrained() async {
        // 20 MB through the pipe: the hook must never block on it, and only the tail is kept.
        let result = await HookProcess.run(
            command: "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo THE-END",
            environment: ["PATH=\(HookEvent.path)"], options: options(timeout: 30, outputLimit: 4096))
        #expect(result.outcome == .exited(0))
        #expect(result.output.totalBytes == 20_000_000 + 1 + 8)
        #expect(result.output.bytes.count == 4096)
        #expect(result.output.text.hasSuffix("xxx\nTHE-END\n"))
        #expect(result.output.droppedBytes == 20_000_009 - 4096)
    }

    @Test func cancellationTerminatesTheGroup() async throws {
        let directory = Helpers.temporaryDirectory()
        defer { Helpers.remove(directory) }
        let task = Task {
            await HookProcess.run(
                command: "sleep 300 & echo $! > \(directory)/child; wait", environment: ["PATH=\(HookEvent.path)"],
                options: options(timeout: 60))
        }
        #expect(await Helpers.waitFor(seconds: 30) { Helpers.read("\(directory)/child") != nil })
        task.cancel()
        let result = await task.value
        #expect(result.outcome == .cancelled)
        let child = try #require(Int32(Helpers.lines("\(directory)/child").first ?? ""))
        #expect(await Helpers.waitFor(seconds: 30) { !Helpers.isAlive(child) })
    }

    @Test func backgroundProcessHoldingThePipeDoesNotHoldTheHook() async {
        // The shell exits at once; its background child keeps stdout open for 20 s. The hook
        // must end with the shell, long before the child: the bound is loose on purpose (a
        // loaded 2-core CI machine took 2.6 s once), the child's 20 s is what it must not wait.
        let start = MonotonicClock.now()
        let result = await HookProcess.run(
            command: "(sleep 20; echo late) & echo early", environment: ["PATH=\(HookEvent.path)"],
            options: options(timeout: 30))
        #expect(result.outcome == .exited(0))
        #expect(result.output.text == "early\n")
        #expect(MonotonicClock.now() - start < 10_000_000_000)
    }

    @Test func outputTailKeepsTheLastBytes() {
        var tail = OutputTail(limit: 5)
        tail.append(Array("abc".utf8))
        #expect(tail.text == "abc")
        tail.append(Array("defg".utf8))
        #expect(tail.text == "cdefg")
        tail.append(Array("0123456789".utf8))
        #expect(tail.text == "56789")
        tail.append(Array("x".utf8))
        #expect(tail.text == "6789x")
        #expect(tail.totalBytes == 18)
        #expect(tail.droppedBytes == 13)
    }
}
