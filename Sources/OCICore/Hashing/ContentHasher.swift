import CMbedTLS
import CSHA256

/// Streaming content hashing: feed bytes as they arrive, then take the digest.
///
/// sha256 is what every image uses; sha512 is supported because the OCI spec allows it.
/// sha256 runs on the CPU's SHA instructions where it has them (x86 SHA-NI, ARMv8 crypto
/// extensions: 4-6x mbedTLS's speed, which bounds a sync on a local link), else on mbedTLS,
/// the only crypto in the static binary. `SATELLITE_SHA256=mbedtls` forces mbedTLS.
///
/// A hasher is used by one transfer at a time: the store serialises every operation on an
/// upload or download, so it may move between threads but is never touched by two at once.
public final class ContentHasher: @unchecked Sendable {
    public let algorithm: Digest.Algorithm
    private let state: State

    private enum State {
        case hardware(UnsafeMutablePointer<csha256_ctx>)
        case sha256(UnsafeMutablePointer<mbedtls_sha256_context>)
        case sha512(UnsafeMutablePointer<mbedtls_sha512_context>)
    }

    public convenience init(_ algorithm: Digest.Algorithm = .sha256) {
        self.init(algorithm, hardware: Self.hardwareAvailable)
    }

    /// `hardware: false` forces mbedTLS (tests compare the two).
    init(_ algorithm: Digest.Algorithm, hardware: Bool) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256 where hardware && Self.hardwareAvailable:
            let context = UnsafeMutablePointer<csha256_ctx>.allocate(capacity: 1)
            csha256_init(context)
            state = .hardware(context)
        case .sha256:
            let context = UnsafeMutablePointer<mbedtls_sha256_context>.allocate(capacity: 1)
            cmbedtls_sha256_init(context)
            _ = cmbedtls_sha256_starts(context)
            state = .sha256(context)
        case .sha512:
            let context = UnsafeMutablePointer<mbedtls_sha512_context>.allocate(capacity: 1)
            cmbedtls_sha512_init(context)
            _ = cmbedtls_sha512_starts(context)
            state = .sha512(context)
        }
    }

    /// Whether sha256 runs on SHA instructions in this process.
    public static let hardwareAvailable = csha256_available() != 0

    /// The sha256 backend in use: "sha-ni", "armv8-ce" or "mbedtls".
    public static var backend: String {
        hardwareAvailable ? String(cString: csha256_backend()) : "mbedtls"
    }

    deinit {
        switch state {
        case .hardware(let context):
            context.deallocate()
        case .sha256(let context):
            cmbedtls_sha256_free(context)
            context.deallocate()
        case .sha512(let context):
            cmbedtls_sha512_free(context)
            context.deallocate()
        }
    }

    /// Forgets everything fed so far.
    public func reset() {
        switch state {
        case .hardware(let context): csha256_init(context)
        case .sha256(let context): _ = cmbedtls_sha256_starts(context)
        case .sha512(let context): _ = cmbedtls_sha512_starts(context)
        }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let input = base.assumingMemoryBound(to: UInt8.self)
        switch state {
        case .hardware(let context): csha256_update(context, input, bytes.count)
        case .sha256(let context): _ = cmbedtls_sha256_update(context, input, bytes.count)
        case .sha512(let context): _ = cmbedtls_sha512_update(context, input, bytes.count)
        }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything fed so far. The hasher can keep going afterwards.
    public func digest() -> Digest {
        switch state {
        case .hardware(let context):
            var output = [UInt8](repeating: 0, count: 32)
            csha256_digest(context, &output)
            return Digest(.sha256, bytes: output)
        case .sha256(let context):
            let copy = UnsafeMutablePointer<mbedtls_sha256_context>.allocate(capacity: 1)
            defer { copy.deallocate() }
            cmbedtls_sha256_init(copy)
            defer { cmbedtls_sha256_free(copy) }
            cmbedtls_sha256_clone(copy, context)
            var output = [UInt8](repeating: 0, count: 32)
            _ = cmbedtls_sha256_finish(copy, &output)
            return Digest(.sha256, bytes: output)
        case .sha512(let context):
            let copy = UnsafeMutablePointer<mbedtls_sha512_context>.allocate(capacity: 1)
            defer { copy.deallocate() }
            cmbedtls_sha512_init(copy)
            defer { cmbedtls_sha512_free(copy) }
            cmbedtls_sha512_clone(copy, context)
            var output = [UInt8](repeating: 0, count: 64)
            _ = cmbedtls_sha512_finish(copy, &output)
            return Digest(.sha512, bytes: output)
        }
    }

    public static func digest(of bytes: [UInt8], algorithm: Digest.Algorithm = .sha256) -> Digest {
        let hasher = ContentHasher(algorithm)
        hasher.update(bytes)
        return hasher.digest()
    }
}
