import CTLSServer
import Synchronization

/// A certificate/key pair that cannot serve: unreadable, not PEM, or not a pair.
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// One loaded certificate and key with its mbedTLS server config (immutable; shared by the
/// connections that started while it was current).
final class TLSServerContext: @unchecked Sendable {
    // @unchecked: the C config is read-only after creation and its random generator is
    // locked in C; its lifetime is this object's (each connection retains it in C too).
    let pointer: OpaquePointer
    let summary: String

    init(certFile: String, keyFile: String) throws(TLSConfigurationError) {
        var error = [CChar](repeating: 0, count: 1024)
        guard let pointer = ctls_server_config_new(certFile, keyFile, &error, error.count) else {
            throw TLSConfigurationError(description: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.pointer = pointer
        var text = [CChar](repeating: 0, count: 512)
        ctls_server_config_describe(pointer, &text, text.count)
        summary = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        ctls_server_config_release(pointer)
    }
}

/// `registry.tls`: the certificate the listener serves. ``reload(certFile:keyFile:)``
/// replaces it for new connections (renewed certificates, SIGHUP); connections already
/// open keep the one they started with. A pair that does not load leaves the current one.
public final class TLSCertificates: Sendable {
    private let current: Mutex<TLSServerContext>
    /// How long a client has to complete the handshake.
    public let handshakeTimeout: Duration

    /// Throws ``TLSConfigurationError`` naming the file that does not load.
    public init(certFile: String, keyFile: String, handshakeTimeout: Duration = .seconds(10)) throws(TLSConfigurationError) {
        current = Mutex(try TLSServerContext(certFile: certFile, keyFile: keyFile))
        self.handshakeTimeout = handshakeTimeout
    }

    /// Loads a new pair and makes it current; returns its summary (subject, expiry).
    ///
    /// Throws ``TLSConfigurationError`` and keeps the current pair when the new one does not load.
    @discardableResult
    public func reload(certFile: String, keyFile: String) throws(TLSConfigurationError) -> String {
        let context = try TLSServerContext(certFile: certFile, keyFile: keyFile)
        current.withLock { $0 = context }
        return context.summary
    }

    /// The subject and expiry of the certificate new connections get.
    public var summary: String { current.withLock { $0.summary } }

    /// The protocol versions served (what the linked mbedTLS supports).
    public static var protocols: String { String(cString: ctls_protocols()) }

    var context: TLSServerContext { current.withLock { $0 } }
}
