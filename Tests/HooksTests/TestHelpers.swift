import Logging
import SatelliteConfig

@testable import Hooks
@testable import RuntimeConfig
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Temp dirs, files and a shell for the hooks tests (no Foundation).
enum Helpers {
    static func temporaryDirectory(_ prefix: String = "hooks-test") -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { return "/tmp/\(prefix)-\(getpid())-\(random())" }
        return String(cString: result)
    }

    static func remove(_ path: String) {
        try? PosixFileTree.remove(path)
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ path: String, _ text: String) {
        if let slash = path.lastIndex(of: "/") { _ = try? PosixFileTree.makeDirectories(String(path[..<slash])) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    static func lines(_ path: String) -> [String] {
        (read(path) ?? "").split(separator: "\n").map(String.init)
    }

    /// Runs a shell script (through HookProcess: own process group, bounded time).
    static func shell(_ script: String, environment: [String] = [], timeout: Int64 = 60_000_000_000) async -> (
        status: HookProcess.Outcome, output: String
    ) {
        var options = HookProcess.Options(timeout: timeout)
        options.outputLimit = 1 << 20
        options.killGracePeriod = 1_000_000_000
        let result = await HookProcess.run(
            command: script, environment: ["PATH=\(HookEvent.path)", "HOME=/"] + environment, options: options)
        return (result.outcome, result.output.text)
    }

    /// Whether a process is alive: present in /proc and not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = read("/proc/\(pid)/stat"), let paren = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: paren)...].drop(while: { $0 == " " }).first
        return state != "Z"
    }

    static var logger: Logger {
        var logger = Logger(label: "hooks-test") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = .critical
        return logger
    }

    static func hook(_ on: ConfigFile.Event, _ run: String, match: String? = nil, timeout: Int64? = nil) -> ConfigFile.Hook {
        var text = "{\"on\": \"\(on.rawValue)\", \"run\": \(jsonString(run))"
        if let match { text += ", \"match\": \(jsonString(match))" }
        text += "}"
        // Hooks have no public memberwise init: build them through the config parser.
        guard let config = try? ConfigFile(text: "{\"hooks\": [\(text)]}", source: "test"), var hook = config.hooks.first
        else { fatalError("bad test hook \(text)") }
        hook.timeout = timeout
        return hook
    }

    static func jsonString(_ text: String) -> String {
        var result = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result + "\""
    }

    /// The satellite-lite binary next to the test bundle (SATELLITE_LITE_BIN overrides).
    static var binary: String? {
        if let env = getenv("SATELLITE_LITE_BIN") { return String(cString: env) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        var path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while let slash = path.lastIndex(of: "/") {
            path = String(path[..<slash])
            if access("\(path)/satellite-lite", X_OK) == 0 { return "\(path)/satellite-lite" }
            if path.isEmpty || path.hasSuffix("/.build") { break }
        }
        return nil
    }

    /// Sleeps in a task-friendly way.
    static func sleep(milliseconds: UInt64) async {
        try? await Task.sleep(nanoseconds: milliseconds * 1_000_000)
    }

    /// Polls `condition` every 20 ms for up to `seconds`.
    static func waitFor(seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = MonotonicClock.now() + Int64(seconds * 1e9)
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            await sleep(milliseconds: 20)
        }
        return condition()
    }
}

/// Recursive remove and mkdir -p for test files.
enum PosixFileTree {
    static func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { try remove("\(path)/\(name)") }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func makeDirectories(_ path: String) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/\(part)"
            mkdir(current, 0o755)
        }
    }
}
