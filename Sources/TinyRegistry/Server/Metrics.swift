import ContentStore
import OCICore
import Synchronization

/// Counters for `GET /metrics` (Prometheus text format).
public final class Metrics: Sendable {
    private struct Counters {
        var requestsByStatus: [UInt: Int64] = [:]
        var bytesServed: Int64 = 0
        var bytesReceived: Int64 = 0
        var connections: Int64 = 0
        var peerRequests: Int64 = 0
        var peerBytesServed: Int64 = 0
        var tlsFailures: Int64 = 0
        var timeoutCloses: Int64 = 0
    }

    private let counters = Mutex(Counters())
    /// Extra metric lines from other parts of the process (sync, GC, hooks).
    private let providers = Mutex<[@Sendable () -> String]>([])

    public init() {}

    func recordResponse(status: UInt) {
        counters.withLock { $0.requestsByStatus[status, default: 0] += 1 }
    }

    /// Body bytes sent to registry clients so far (the LAN side of the link accounting).
    public var bytesServed: Int64 { counters.withLock { $0.bytesServed } }

    func recordServed(_ bytes: Int64) {
        counters.withLock { $0.bytesServed += bytes }
    }

    /// A blob answer to another satellite of the site (peer endpoint): `bytes` of body.
    func recordPeerServed(_ bytes: Int64) {
        counters.withLock {
            $0.peerRequests += 1
            $0.peerBytesServed += bytes
        }
    }

    func recordReceived(_ bytes: Int64) {
        counters.withLock { $0.bytesReceived += bytes }
    }

    func recordConnection() {
        counters.withLock { $0.connections += 1 }
    }

    func recordTLSFailure() {
        counters.withLock { $0.tlsFailures += 1 }
    }

    /// A connection closed by `registry.idleTimeout` or `registry.headerTimeout`.
    func recordTimeoutClose() {
        counters.withLock { $0.timeoutCloses += 1 }
    }

    /// Adds a source of further metric lines (already in Prometheus text format).
    public func addProvider(_ provider: @escaping @Sendable () -> String) {
        providers.withLock { $0.append(provider) }
    }

    func render(store: BlobStore) -> String {
        let snapshot = counters.withLock { $0 }
        var text = "# HELP satellite_http_requests_total Registry requests answered, by HTTP status.\n"
        text += "# TYPE satellite_http_requests_total counter\n"
        for (status, count) in snapshot.requestsByStatus.sorted(by: { $0.key < $1.key }) {
            text += "satellite_http_requests_total{status=\"\(status)\"} \(count)\n"
        }
        text += "# HELP satellite_http_served_bytes_total Body bytes sent to registry clients.\n"
        text += "# TYPE satellite_http_served_bytes_total counter\n"
        text += "satellite_http_served_bytes_total \(snapshot.bytesServed)\n"
        text += "# HELP satellite_http_received_bytes_total Blob bytes received by pushes.\n"
        text += "# TYPE satellite_http_received_bytes_total counter\n"
        text += "satellite_http_received_bytes_total \(snapshot.bytesReceived)\n"
        text += "# HELP satellite_http_connections_total Connections accepted.\n"
        text += "# TYPE satellite_http_connections_total counter\n"
        text += "satellite_http_connections_total \(snapshot.connections)\n"
        text += "# HELP satellite_peer_served_bytes_total Blob bytes answered to other satellites of the site (LAN).\n"
        text += "# TYPE satellite_peer_served_bytes_total counter\n"
        text += "satellite_peer_served_bytes_total \(snapshot.peerBytesServed)\n"
        text += "# HELP satellite_peer_blob_requests_total Blob answers to other satellites of the site.\n"
        text += "# TYPE satellite_peer_blob_requests_total counter\n"
        text += "satellite_peer_blob_requests_total \(snapshot.peerRequests)\n"
        text += "# HELP satellite_tls_failures_total Connections closed before or during TLS: failed or slow handshakes, plain HTTP, bad records.\n"
        text += "# TYPE satellite_tls_failures_total counter\n"
        text += "satellite_tls_failures_total \(snapshot.tlsFailures)\n"
        text += "# HELP satellite_http_timeout_closes_total Connections closed for holding a slot unused: idle, headers or a request body not arriving in time.\n"
        text += "# TYPE satellite_http_timeout_closes_total counter\n"
        text += "satellite_http_timeout_closes_total \(snapshot.timeoutCloses)\n"
        for provider in providers.withLock({ $0 }) { text += provider() }
        return text
    }
}
