#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs real programs from tests (clients such as curl and skopeo, or the satellite-lite
/// binary) with posix_spawn: no Foundation.
public enum Subprocess {
    public struct Result: Sendable, CustomStringConvertible {
        public var status: Int32
        public var output: String

        public var description: String { "exit \(status): \(output.suffix(4000))" }
    }

    /// Runs `arguments` (the first is looked up in PATH), waits, and returns the exit status
    /// and the combined stdout/stderr. `timeout` seconds bound the run (the child is killed).
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Int = 600) throws -> Result {
        let child = try spawn(arguments, environment: environment, captureOutput: true)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = monotonicSeconds() + Double(timeout)
        var fds = [pollfd(fd: child.outputFD, events: Int16(POLLIN), revents: 0)]
        var timedOut = false
        while true {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 {
                kill(child.pid, SIGKILL)
                timedOut = true
                break
            }
            let ready = poll(&fds, 1, Int32(min(remaining, 1) * 1000))
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { continue }
            let n = read(child.outputFD, &buffer, buffer.count)
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        close(child.outputFD)
        let status = child.wait()
        var text = String(decoding: output, as: UTF8.self)
        if timedOut {
            // Either the child ran too long, or it exited and something it started still
            // holds its output open: both are failures of the run.
            text += "\n[Subprocess: no end of output after \(timeout) s; killed]"
            return Result(status: status == 0 ? 124 : status, output: text)
        }
        return Result(status: status, output: text)
    }

    /// A started child process.
    public struct Child: Sendable {
        public let pid: pid_t
        /// Read end of the child's stdout+stderr when captured, else -1.
        public let outputFD: Int32

        /// Waits for the child; returns its exit status (128+signal when killed).
        @discardableResult
        public func wait() -> Int32 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            if status & 0x7f == 0 { return (status >> 8) & 0xff }
            return 128 + (status & 0x7f)
        }

        public func signal(_ number: Int32) {
            kill(pid, number)
        }
    }

    /// Starts a process. With `captureOutput`, stdout and stderr go to a pipe (read it, or it
    /// fills); with `logPath`, to that file; else to /dev/null.
    public static func spawn(
        _ arguments: [String], environment: [String: String] = [:], captureOutput: Bool = false, logPath: String? = nil
    ) throws -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeFDs: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&pipeFDs) == 0 else { throw SpawnError(message: "pipe failed") }
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
            posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
            posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        } else {
            let path = logPath ?? "/dev/null"
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var env: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                env[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            index += 1
        }
        for (key, value) in environment { env[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        // The test process's threads block signals (Swift Testing, Dispatch); a child would
        // inherit that mask and then ignore SIGTERM, outliving its script and holding the
        // output pipe. Children start with an empty mask and default dispositions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        if captureOutput { close(pipeFDs[1]) }
        guard result == 0 else {
            if captureOutput { close(pipeFDs[0]) }
            throw SpawnError(message: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        return Child(pid: pid, outputFD: captureOutput ? pipeFDs[0] : -1)
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

extension Subprocess {
    /// ``run(_:environment:timeout:)`` on a thread of its own: the calling task waits without
    /// holding one of the cooperative pool's threads (two on a 2-core machine) for the
    /// minutes an end-to-end script runs, which starved the unit suites running beside it.
    public static func runOffPool(_ arguments: [String], environment: [String: String] = [:], timeout: Int = 600) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            OwnThread.start {
                continuation.resume(with: Swift.Result { try run(arguments, environment: environment, timeout: timeout) })
            }
        }
    }
}

/// A detached POSIX thread for one blocking job.
enum OwnThread {
    private final class Job {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    static func start(_ body: @escaping @Sendable () -> Void) {
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { raw in
                if let raw { Unmanaged<Job>.fromOpaque(raw).takeRetainedValue().body() }
                return nil
            }, job)
        if started == 0 {
            pthread_detach(thread)
        } else {
            // No thread: run it here rather than never.
            Unmanaged<Job>.fromOpaque(job).takeRetainedValue().body()
        }
    }
}
