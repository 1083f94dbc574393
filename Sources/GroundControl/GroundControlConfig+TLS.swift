import FoundationEssentials
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL

extension GroundControlConfig {
    /// The HTTP server ground-control runs: HTTPS (Hummingbird's TLS over swift-nio-ssl,
    /// TLS 1.2 or newer) when `tls.certFile` and `tls.keyFile` name a PEM certificate chain
    /// and its key, plain HTTP/1.1 without them.
    /// - Throws: `ConfigError` when only one is given or either cannot be read.
    public func serverBuilder() throws -> HTTPServerBuilder {
        switch (tlsCertFile, tlsKeyFile) {
        case (nil, nil):
            return .http1()
        case (let cert?, let key?):
            let chain: [NIOSSLCertificate]
            do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
                throw ConfigError("tls.certFile \(cert): not a readable PEM certificate (\(error))")
            }
            guard !chain.isEmpty else { throw ConfigError("tls.certFile \(cert): no certificate in it") }
            let privateKey: NIOSSLPrivateKey
            do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
                throw ConfigError("tls.keyFile \(key): not a readable PEM private key (\(error))")
            }
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            tls.minimumTLSVersion = .tlsv12
            do { return try .tls(.http1(), tlsConfiguration: tls) } catch {
                throw ConfigError("tls: \(error)")
            }
        default:
            throw ConfigError("tls: certFile and keyFile go together")
        }
    }
}
