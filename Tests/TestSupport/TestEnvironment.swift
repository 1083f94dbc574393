#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Paths and resources for tests: the repository, the built binary, temp dirs, free ports.
public enum TestEnvironment {
    /// The repository root (where Package.swift is).
    public static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 {
            if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) }
        }
        return path
    }()

    /// The satellite-lite binary next to the running test bundle (`swift build` puts them in
    /// one folder), or SATELLITE_LITE_BIN.
    public static var binary: String {
        if let env = getenv("SATELLITE_LITE_BIN") { return String(cString: env) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            var path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            while let slash = path.lastIndex(of: "/") {
                path = String(path[..<slash])
                let candidate = "\(path)/satellite-lite"
                if access(candidate, X_OK) == 0 { return candidate }
                if path.hasSuffix(".build") { break }
            }
        }
        return "\(repositoryRoot)/.build/debug/satellite-lite"
    }

    /// A new empty directory under /tmp.
    public static func makeTemporaryDirectory(_ prefix: String = "satellite-test") -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { return "/tmp/\(prefix)-\(getpid())-\(random())" }
        return String(cString: result)
    }

    public static func removeTree(_ path: String) {
        _ = try? Subprocess.run(["rm", "-rf", path])
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Writes a text file.
    public static func write(_ path: String, _ text: String) {
        guard let file = fopen(path, "w") else { return }
        fputs(text, file)
        fclose(file)
    }

    public static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether a program is on PATH.
    public static func hasProgram(_ name: String) -> Bool {
        (try? Subprocess.run(["sh", "-c", "command -v \(name)"]).status) == 0
    }

    /// Sleeps for `seconds`.
    public static func sleep(_ seconds: Double) {
        usleep(UInt32(seconds * 1_000_000))
    }
}

/// A satellite-lite process started by a test on its own port and store.
public final class SatelliteProcess: @unchecked Sendable {
    public let directory: String
    public let port: Int
    public let configPath: String
    public private(set) var child: Subprocess.Child?
    public var address: String { "127.0.0.1:\(port)" }
    public var storePath: String { "\(directory)/store" }
    public var logPath: String { "\(directory)/satellite.log" }

    /// Writes a config (`extra` JSON members are added at the top level) and starts `serve`.
    public init(extraConfig: String = "", command: String = "serve") throws {
        directory = TestEnvironment.makeTemporaryDirectory("satellite-e2e")
        port = TestEnvironment.freePort()
        configPath = "\(directory)/config.json"
        var config = """
            {"profile": "generic-amd64", "storage": {"path": "\(directory)/store"}, \
            "registry": {"listen": "127.0.0.1:\(port)"}
            """
        if !extraConfig.isEmpty { config += ", \(extraConfig)" }
        config += "}"
        TestEnvironment.write(configPath, config)
        try start(command: command)
    }

    public func start(command: String = "serve") throws {
        child = try Subprocess.spawn([TestEnvironment.binary, command, "--config", configPath], logPath: logPath)
        for _ in 0..<100 {
            if (try? Subprocess.run(["curl", "-sf", "-o", "/dev/null", "http://\(address)/v2/"]).status) == 0 { return }
            TestEnvironment.sleep(0.05)
        }
        throw Subprocess.SpawnError(message: "satellite-lite did not start: \(TestEnvironment.read(logPath) ?? "")")
    }

    /// Stops the process with `signal` (SIGTERM by default) and waits for it.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        guard let child else { return 0 }
        child.signal(signal)
        self.child = nil
        return child.wait()
    }

    deinit {
        stop(signal: SIGKILL)
        TestEnvironment.removeTree(directory)
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace and newlines.
    public func trimmed() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
