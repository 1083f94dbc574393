import ContentStore
import Logging
import NIOPosix
import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `peers.discover`: every satellite broadcasts a small UDP announcement of its registry URL
/// every ``interval`` (`SATPEER1 <id> <url> <ts> <nonce> <hmac>`, ``PeerProof``) and listens
/// for the others'. An announcement counts only when its HMAC proves the site secret and its
/// timestamp is within the proof window; a peer that stays silent expires from the
/// ``PeerSet``. No external service, no multicast routing: one broadcast domain, the LAN.
public final class PeerDiscovery: Sendable {
    public let peers: PeerSet
    public let port: Int
    public let address: String
    public let interval: Int64
    private let id: String
    private let logger: Logger
    private let socketFD: Int32
    private let pool: NIOThreadPool
    private let stopped = Atomic<Bool>(false)
    private let ignored = Atomic<Int64>(0)

    /// Opens the UDP socket on `port` (all interfaces).
    ///
    /// Throws ``PosixError`` when the port cannot be bound.
    public init(peers: PeerSet, port: Int, address: String, interval: Int64 = 2_000_000_000, logger: Logger) throws {
        self.peers = peers
        self.port = port
        self.address = address
        self.interval = interval
        self.logger = logger
        id = PosixFile.randomToken()
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else { throw PosixError("socket", path: "udp:\(port)") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = in_port_t(UInt16(port).bigEndian)
        local.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let error = PosixError("bind", path: "udp:\(port)")
            PosixFile.close(fd)
            throw error
        }
        socketFD = fd
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Announcements dropped (no valid proof, outside the window, garbage).
    public var ignoredCount: Int64 { ignored.load(ordering: .relaxed) }

    /// Listens and announces until ``stop()``.
    public func start() {
        pool.submit { [self] _ in receiveLoop() }
        Task.detached { [self] in
            while !stopped.load(ordering: .relaxed) {
                announce()
                try? await Task.sleep(nanoseconds: UInt64(interval))
            }
        }
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    private func announce() {
        let datagram = peers.proof.announcement(id: id, url: peers.selfURL)
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, address, &target.sin_addr)
        let sent = datagram.withUnsafeBytes { bytes in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socketFD, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if sent < 0 { logger.debug("cannot send a peer announcement", metadata: ["errno": "\(errno)"]) }
    }

    static func address(_ address: sockaddr_in) -> String {
        let ip = UInt32(bigEndian: address.sin_addr.s_addr)
        return "\(ip >> 24).\(ip >> 16 & 0xff).\(ip >> 8 & 0xff).\(ip & 0xff)"
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 1500)
        while !stopped.load(ordering: .relaxed) {
            var sender = sockaddr_in()
            var senderLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &sender) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(socketFD, raw.baseAddress, raw.count, 0, $0, &senderLength) }
                }
            }
            guard n > 0 else { continue }
            let bytes = Array(buffer[0..<n])
            guard let (peerID, url) = peers.proof.parseAnnouncement(bytes) else {
                let count = ignored.wrappingAdd(1, ordering: .relaxed).newValue
                // The first few, then every hundredth: a noisy LAN must not flood the log.
                if count <= 3 || count % 100 == 0 {
                    logger.warning(
                        "ignored a peer announcement without a valid proof of the site secret",
                        metadata: ["from": "\(Self.address(sender))", "ignored": "\(count)"])
                }
                continue
            }
            if peerID == id { continue }
            if !peers.known.contains(PeerSet.normalize(url)), PeerSet.normalize(url) != peers.selfURL {
                logger.info("peer discovered", metadata: ["peer": "\(url)"])
            }
            peers.heard(url)
        }
        PosixFile.close(socketFD)
    }
}
