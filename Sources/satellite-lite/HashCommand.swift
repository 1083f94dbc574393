import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `satellite-lite hash FILE…`: the digest of files through the store's hashing backend, with
/// its speed: the measurement behind the choice of backend (`SATELLITE_SHA256=mbedtls`
/// forces mbedTLS for comparison).
struct HashCommand: CLICommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "hash", abstract: "Hash files with the store's SHA-256 backend and report its speed.", hidden: true,
            options: [.value("algorithm", "algorithm", help: "Algorithm: sha256 (default) or sha512.")],
            positional: PositionalSpec(name: "file", help: "Files to hash."))
    }

    var files: [String]
    var algorithm: Digest.Algorithm

    init(_ arguments: ParsedArguments) throws {
        files = arguments.positionals
        let name = arguments.value("algorithm") ?? "sha256"
        guard let algorithm = Digest.Algorithm(rawValue: name) else {
            throw ValidationError("--algorithm must be sha256 or sha512, not \"\(name)\"")
        }
        self.algorithm = algorithm
    }

    func run() throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for file in files {
            let fd = try PosixFile.open(file, O_RDONLY)
            defer { PosixFile.close(fd) }
            let hasher = ContentHasher(algorithm)
            var offset: Int64 = 0
            var hashing: Int64 = 0
            while true {
                let n = try buffer.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: offset, path: file) }
                if n == 0 { break }
                let start = Self.now()
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                hashing += Self.now() - start
                offset += Int64(n)
            }
            let rate = hashing > 0 ? Double(offset) / (Double(hashing) / 1e9) / 1e6 : 0
            let backend = algorithm == .sha256 ? ContentHasher.backend : "mbedtls"
            print("\(hasher.digest())  \(file)  \(offset) bytes, \(backend) \(Int(rate)) MB/s")
        }
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
