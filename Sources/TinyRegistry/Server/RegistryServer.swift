import ContentStore
import OCICore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The registry listener: SwiftNIO HTTP/1.1 with the event-loop and blocking threads, the
/// connection limit and the buffers of the hardware profile.
public final class RegistryServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var eventLoopThreads: Int
        public var blockingThreads: Int
        public var maxConnections: Int
        public var bufferSize: Int
        public var bufferCount: Int
        /// Serve file bodies with sendfile(2) (off only to exercise the chunked path).
        public var useSendfile: Bool
        /// HTTPS (`registry.tls`); file bodies are then read on the pool, never sendfile'd.
        public var tls: TLSCertificates?
        /// `registry.idleTimeout` and `registry.headerTimeout` at start
        /// (``RegistryServer/updateTimeouts(_:)`` changes them for new connections).
        public var timeouts: ConnectionTimeouts

        public init(
            host: String, port: Int, eventLoopThreads: Int, blockingThreads: Int, maxConnections: Int,
            bufferSize: Int, bufferCount: Int, useSendfile: Bool = true, tls: TLSCertificates? = nil,
            timeouts: ConnectionTimeouts = .standard
        ) {
            self.host = host
            self.port = port
            self.eventLoopThreads = eventLoopThreads
            self.blockingThreads = blockingThreads
            self.maxConnections = maxConnections
            self.bufferSize = bufferSize
            self.bufferCount = bufferCount
            self.useSendfile = useSendfile
            self.tls = tls
            self.timeouts = timeouts
        }
    }

    public let configuration: Configuration
    public let api: RegistryAPI
    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    private let channel = Mutex<(any Channel)?>(nil)
    private let openConnections = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let logger: Logger
    private let timeouts: Mutex<ConnectionTimeouts>

    public init(configuration: Configuration, api: RegistryAPI, logger: Logger) {
        self.configuration = configuration
        self.api = api
        self.logger = logger
        timeouts = Mutex(configuration.timeouts)
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        pool = NIOThreadPool(numberOfThreads: configuration.blockingThreads)
    }

    /// The idle and header timeouts new connections get.
    public var currentTimeouts: ConnectionTimeouts { timeouts.withLock { $0 } }

    /// Replaces the idle and header timeouts for connections accepted from now on (SIGHUP);
    /// open connections keep the ones they started with.
    public func updateTimeouts(_ new: ConnectionTimeouts) {
        timeouts.withLock { $0 = new }
    }

    /// Binds the listener and starts serving; returns the bound address (port 0 picks one).
    ///
    /// Throws when the address cannot be bound (in use, no permission).
    @discardableResult
    public func start() async throws -> SocketAddress {
        pool.start()
        api.store.recover()
        let settings = HTTPHandler.Settings(
            bufferSize: configuration.bufferSize, bufferCount: configuration.bufferCount,
            useSendfile: configuration.useSendfile && configuration.tls == nil)
        let api = self.api
        let pool = self.pool
        let maxConnections = configuration.maxConnections
        let tls = configuration.tls
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(
                    minimum: 1024, initial: min(configuration.bufferSize, 65536), maximum: configuration.bufferSize))
            .childChannelInitializer { [self] channel in
                let open = self.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in
                    self.openConnections.wrappingSubtract(1, ordering: .relaxed)
                }
                api.metrics.recordConnection()
                let timeouts = self.timeouts.withLock { $0 }
                return channel.eventLoop.makeCompletedFuture {
                    let remote = channel.remoteAddress.map { "\($0)" } ?? "?"
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            TLSServerHandler(certificates: tls) { reason in
                                api.metrics.recordTLSFailure()
                                logger.debug("TLS connection refused", metadata: ["client": "\(remote)", "reason": "\(reason)"])
                            })
                    }
                    // Between TLS (plaintext) and the HTTP decoder: sees request bytes arrive.
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionTimeoutHandler(timeouts: timeouts, awaitHandshake: tls != nil) { reason in
                            api.metrics.recordTimeoutClose()
                            logger.debug("connection closed", metadata: ["client": "\(remote)", "reason": "\(reason.rawValue)"])
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(ProtocolErrorHandler())
                    if open > maxConnections {
                        try channel.pipeline.syncOperations.addHandler(OverloadHandler())
                    } else {
                        try channel.pipeline.syncOperations.addHandler(HTTPHandler(api: api, pool: pool, settings: settings))
                    }
                }
            }
        let bound = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        channel.withLock { $0 = bound }
        // Upload sessions a client abandoned are purged while serving, not only at start.
        let store = api.store
        let every = TimeAmount.nanoseconds(max(60_000_000_000, store.configuration.uploadTimeout / 4))
        bound.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            _ = pool.runIfActive(eventLoop: bound.eventLoop) { store.purgeAbandonedUploads() }
        }
        guard let address = bound.localAddress else {
            throw RegistryError(.unknown, "listener has no local address")
        }
        if let tls {
            logger.info(
                "registry serving HTTPS", metadata: ["listen": "\(address)", "store": "\(api.store.root)", "certificate": "\(tls.summary)", "protocols": "\(TLSCertificates.protocols)"])
        } else {
            logger.info("registry serving", metadata: ["listen": "\(address)", "store": "\(api.store.root)"])
        }
        return address
    }

    /// Whether every event loop and the blocking-I/O pool run a no-op within `timeout`: the
    /// liveness check behind the systemd watchdog (a loop stuck in a blocking call or a
    /// busy handler answers no one, so the service should be restarted). True once stopped.
    public func isResponsive(timeout: Duration) async -> Bool {
        guard !stopped.load(ordering: .acquiring) else { return true }
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        guard let first = loops.first else { return true }
        var probes = loops.map { loop in loop.submit {} }
        probes.append(pool.runIfActive(eventLoop: first) {})
        let all = EventLoopFuture.andAllSucceed(probes, on: first)
        let outcome = FirstOutcome()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            // Whichever comes first answers: the probes, or the deadline. A hung loop never
            // completes its probe; its callback is then simply never called.
            all.whenComplete { result in
                if outcome.claim() { continuation.resume(returning: (try? result.get()) != nil) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if outcome.claim() { continuation.resume(returning: false) }
            }
        }
    }

    /// Waits until the listener is closed.
    public func waitUntilClosed() async throws {
        guard let channel = channel.withLock({ $0 }) else { return }
        try await channel.closeFuture.get()
    }

    /// Stops accepting, then closes the event loops and the pool. Only the first call does
    /// anything; later calls return at once.
    public func shutdown() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let channel = channel.withLock({ $0 }) {
            try? await channel.close()
        }
        try? await group.shutdownGracefully()
        try? await pool.shutdownGracefully()
    }
}

/// Answers every request on a connection over the limit with 429 and closes it.
final class OverloadHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let error = RegistryError(.tooManyRequests, "too many connections; retry later")
        let body = ByteBuffer(bytes: error.json)
        var head = HTTPResponseHead(version: .http1_1, status: error.status)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        head.headers.add(name: "Retry-After", value: "1")
        head.headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            loopContext.value.close(promise: nil)
        }
    }
}

/// Lets exactly one of several racing callers through.
private final class FirstOutcome: Sendable {
    private let taken = Atomic<Bool>(false)

    func claim() -> Bool {
        !taken.exchange(true, ordering: .acquiringAndReleasing)
    }
}
