import OCICore
import CSatelliteSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One shell command run as a hook: `/bin/sh -c COMMAND` in a process group of its own, with
/// exactly the environment it is given, stdin from /dev/null, stdout and stderr captured
/// into a bounded ``OutputTail``, and a timeout that terminates the whole group (TERM, then
/// KILL after a grace period).
///
/// When the shell exits the hook is over: processes it left in the background are not
/// waited for (they lose their stdout/stderr) and are not killed; only a timeout or a
/// cancellation kills the group.
public enum HookProcess {
    public struct Options: Sendable {
        /// Nanoseconds the command may run before its process group gets SIGTERM.
        public var timeout: Int64
        /// Nanoseconds between SIGTERM and SIGKILL.
        public var killGracePeriod: Int64 = 5_000_000_000
        /// Bytes of output kept (the tail); the rest is read and dropped.
        public var outputLimit: Int = 64 * 1024
        public var workingDirectory: String = "/"
        public var shell: String = "/bin/sh"

        public init(timeout: Int64) {
            self.timeout = timeout
        }
    }

    /// How a hook ended.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        /// The shell exited with this status.
        case exited(Int32)
        /// The shell was killed by this signal (not by us).
        case signaled(Int32)
        /// The timeout passed; the group was sent TERM, and KILL if `signal` is SIGKILL.
        case timedOut(signal: Int32)
        /// The task running the hook was cancelled; the group was terminated.
        case cancelled
        /// The command could not be started.
        case failedToStart(String)
        /// The process died this many times while the hook ran; it is not tried again.
        case abandoned(attempts: Int)

        public var succeeded: Bool { self == .exited(0) }

        public var description: String {
            switch self {
            case .exited(let code): "exit \(code)"
            case .signaled(let signal): "killed by signal \(signal)"
            case .timedOut(let signal):
                "timed out; process group terminated (\(signal == SIGKILL ? "SIGKILL after SIGTERM" : "SIGTERM"))"
            case .cancelled: "cancelled; process group terminated"
            case .failedToStart(let reason): "could not start: \(reason)"
            case .abandoned(let attempts): "abandoned after \(attempts) interrupted attempts"
            }
        }
    }

    public struct Result: Sendable {
        public var outcome: Outcome
        public var output: OutputTail
        /// Nanoseconds from start to the end of the shell.
        public var duration: Int64
        /// The shell's pid, which is also its process group id (0 if it did not start).
        public var pid: Int32
    }

    /// A system call that failed before the command ran.
    public struct SpawnError: Error, Sendable, CustomStringConvertible {
        public var operation: String
        public var code: Int32

        public var description: String { "\(operation): \(String(cString: strerror(code)))" }
    }

    /// Runs `command` on a dedicated thread and returns how it ended. Cancelling the calling
    /// task terminates the process group (TERM, then KILL) and returns ``Outcome/cancelled``.
    ///
    /// - Parameter environment: `NAME=value` strings; the hook sees exactly these.
    public static func run(command: String, environment: [String], options: Options) async -> Result {
        let cancel = CancelFlag()
        return await withTaskCancellationHandler {
            do {
                return try await BlockingThread.run {
                    runBlocking(command: command, environment: environment, options: options, cancel: cancel)
                }
            } catch {
                return Result(
                    outcome: .failedToStart("\(error)"), output: OutputTail(limit: 0), duration: 0, pid: 0)
            }
        } onCancel: {
            cancel.flag.store(true, ordering: .relaxed)
        }
    }

    /// Set from any thread to stop the process; read by the thread that waits for it.
    final class CancelFlag: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// Polling interval of the wait loop while output is flowing or the child runs.
    private static let tick: Int64 = 20_000_000
    /// After the shell exits, how long to keep reading output still in the pipe.
    private static let linger: Int64 = 100_000_000

    static func runBlocking(command: String, environment: [String], options: Options, cancel: CancelFlag) -> Result {
        let start = MonotonicClock.now()
        var output = OutputTail(limit: options.outputLimit)
        func failed(_ operation: String, _ code: Int32) -> Result {
            Result(
                outcome: .failedToStart(SpawnError(operation: operation, code: code).description), output: output,
                duration: MonotonicClock.now() - start, pid: 0)
        }

        var fds: [Int32] = [-1, -1]
        guard csystem_pipe_cloexec(&fds) == 0 else { return failed("pipe", errno) }
        let readEnd = fds[0]
        let writeEnd = fds[1]
        defer { close(readEnd) }
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)

        let spawned = spawn(
            shell: options.shell, command: command, environment: environment,
            workingDirectory: options.workingDirectory, outputFD: writeEnd)
        // The child holds its own copies of the write end; ours must go so that EOF comes.
        close(writeEnd)
        let pid: pid_t
        switch spawned {
        case .success(let child): pid = child
        case .failure(let error): return failed(error.operation, error.code)
        }

        var waitStatus: Int32 = 0
        var reaped = false
        var statusLost = false
        var exitedAt: Int64 = 0
        var pipeOpen = true
        var termSentAt: Int64?
        var killSent = false
        var cancelled = false
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)

        /// Reads what the pipe holds now (at most 1 MiB per call, so the clock is checked).
        func drainPipe() {
            var budget = 1 << 20
            while pipeOpen && budget > 0 {
                let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n > 0 {
                    chunk.withUnsafeBytes { output.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    budget -= n
                } else if n == 0 {
                    pipeOpen = false
                } else if errno == EINTR {
                    continue
                } else {
                    if errno != EAGAIN && errno != EWOULDBLOCK { pipeOpen = false }
                    return
                }
            }
        }

        /// Waits up to `nanoseconds` for output. Once the pipe is closed there is nothing to
        /// wait on but the clock: short sleeps first, since the shell usually exits right
        /// after closing its output.
        var closedSleeps: Int32 = 0
        func pause(_ nanoseconds: Int64) {
            let milliseconds = Int32(max(1, min(nanoseconds / 1_000_000, 1000)))
            if pipeOpen {
                var entry = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, milliseconds)
            } else {
                closedSleeps += 1
                _ = poll(nil, 0, min(milliseconds, closedSleeps))
            }
        }

        /// True once no live process is left in the group. Zombies still count for kill(2),
        /// and an orphan stays a zombie as long as whoever adopted it (PID 1 in a container
        /// may not reap) lets it, so /proc decides when kill(2) says the group is there.
        var lastScan: Int64 = 0
        func groupGone() -> Bool {
            if kill(-pid, 0) != 0 && errno == ESRCH { return true }
            let now = MonotonicClock.now()
            guard now - lastScan >= 100_000_000 else { return false }
            lastScan = now
            return !ProcessTable.hasLiveMember(processGroup: pid)
        }

        while true {
            drainPipe()
            let now = MonotonicClock.now()
            if !reaped {
                let r = waitpid(pid, &waitStatus, WNOHANG)
                if r == pid {
                    reaped = true
                    exitedAt = now
                } else if r < 0 && errno == ECHILD {
                    // Someone else reaped it (SIGCHLD ignored in this process).
                    reaped = true
                    statusLost = true
                    exitedAt = now
                }
            }
            if let termSentAt {
                // Terminating: done when the group is empty; KILL after the grace period;
                // after KILL, done once the shell is reaped (orphans may stay zombies if
                // nobody reaps them, and would keep the group "alive" forever).
                if reaped && (groupGone() || killSent) { break }
                if !killSent && now - termSentAt >= options.killGracePeriod {
                    kill(-pid, SIGKILL)
                    killSent = true
                }
                if killSent && now - termSentAt >= options.killGracePeriod + 5_000_000_000 {
                    break  // the shell is stuck in the kernel; give up waiting for it
                }
                pause(tick)
                continue
            }
            if reaped {
                if !pipeOpen || now - exitedAt >= linger { break }
                pause(linger - (now - exitedAt))
                continue
            }
            if cancel.flag.load(ordering: .relaxed) || now - start >= options.timeout {
                cancelled = cancel.flag.load(ordering: .relaxed)
                kill(-pid, SIGTERM)
                termSentAt = now
                continue
            }
            pause(min(tick, options.timeout - (now - start)))
        }
        drainPipe()

        // A terminated hook took until its group was gone (or given up on), not just its shell.
        let duration = (reaped && termSentAt == nil ? exitedAt : MonotonicClock.now()) - start
        let outcome: Outcome
        if cancelled {
            outcome = .cancelled
        } else if termSentAt != nil {
            outcome = .timedOut(signal: killSent ? SIGKILL : SIGTERM)
        } else if statusLost {
            outcome = .failedToStart("its exit status was lost: another waiter reaped pid \(pid)")
        } else if waitStatus & 0x7f == 0 {
            outcome = .exited((waitStatus >> 8) & 0xff)
        } else {
            outcome = .signaled(waitStatus & 0x7f)
        }
        return Result(outcome: outcome, output: output, duration: duration, pid: pid)
    }

    /// posix_spawn of `shell -c command`: own process group, default signal dispositions
    /// and an empty signal mask (the agent ignores SIGPIPE and SIGTERM; exec would pass
    /// that on), stdin /dev/null, stdout and stderr to `outputFD`.
    private static func spawn(
        shell: String, command: String, environment: [String], workingDirectory: String, outputFD: Int32
    ) -> Swift.Result<pid_t, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 1)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 2)
        var arguments = [shell, "-c", command]
        if csystem_spawn_addchdir(&actions, workingDirectory) == ENOSYS {
            // Portable fallback: a first shell changes directory, then becomes `sh -c command`.
            arguments = [shell, "-c", "cd -- \"$1\" && exec \"$0\" -c \"$2\"", shell, workingDirectory, command]
        }
        // Descriptors opened without O_CLOEXEC elsewhere (libraries, or inherited from
        // whoever started the agent) must not leak into hooks. (Not on C libraries without
        // addclosefrom: there only close-on-exec descriptors stay out.)
        _ = csystem_spawn_addclosefrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = CStringArray(arguments)
        let envp = CStringArray(environment)
        var pid: pid_t = 0
        let rc = argv.withPointers { argvPointer in
            envp.withPointers { envpPointer in
                posix_spawn(&pid, shell, &actions, &attributes, argvPointer, envpPointer)
            }
        }
        guard rc == 0 else { return .failure(SpawnError(operation: "posix_spawn \(shell)", code: rc)) }
        return .success(pid)
    }
}

/// A NULL-terminated array of C strings, freed on deinit.
private final class CStringArray {
    private let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: count + 1)
        for (index, string) in strings.enumerated() { (pointers + index).initialize(to: strdup(string)) }
        (pointers + count).initialize(to: nil)
    }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        body(UnsafePointer(pointers))
    }

    deinit {
        for index in 0..<count { free(pointers[index]) }
        pointers.deinitialize(count: count + 1)
        pointers.deallocate()
    }
}

/// A look at /proc (Linux) for the members of a process group.
enum ProcessTable {
    /// Whether a process that is not a zombie belongs to `processGroup`. Without a readable
    /// /proc, assumes yes.
    static func hasLiveMember(processGroup: pid_t) -> Bool {
        guard let directory = opendir("/proc") else { return true }
        defer { closedir(directory) }
        var buffer = [UInt8](repeating: 0, count: 512)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let first = name.utf8.first, first >= 0x30, first <= 0x39 else { continue }
            let fd = open("/proc/\(name)/stat", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard count > 0 else { continue }
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            guard let paren = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")) else { continue }
            let fields = buffer[(paren + 1)..<count].split(separator: UInt8(ascii: " "))
            guard fields.count >= 3, let group = Int32(String(decoding: fields[2], as: UTF8.self)) else { continue }
            if group == processGroup && fields[0].first != UInt8(ascii: "Z") { return true }
        }
        return false
    }
}
