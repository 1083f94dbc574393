import NIOCore
import Synchronization

/// `registry.idleTimeout` and `registry.headerTimeout`: how long a connection may hold a
/// slot without a request in progress. nil turns a timeout off.
public struct ConnectionTimeouts: Sendable, Equatable {
    /// No request in progress and no request byte arriving (between keep-alive requests,
    /// after the TLS handshake, or a request body that stopped arriving).
    public var idle: Duration?
    /// From the first byte of a request to the end of its headers.
    public var header: Duration?

    public init(idle: Duration? = .seconds(60), header: Duration? = .seconds(10)) {
        self.idle = idle
        self.header = header
    }

    /// The defaults: 60 s idle (Go net/http's `IdleTimeout` as distribution sets it), 10 s
    /// for the headers of a request.
    public static let standard = ConnectionTimeouts()
}

/// What the request on a connection is doing, sent by ``HTTPHandler`` as an outbound user
/// event to ``ConnectionTimeoutHandler`` whenever it changes.
enum ConnectionPhase: Sendable, Equatable {
    /// No request in progress: waiting for the next one.
    case idle
    /// Reading a request body from the client (the connection reads).
    case receiving
    /// The server is working or writing: computing the answer, waiting for the disk,
    /// a body that follows a download, or a response the client is reading.
    case busy
}

/// Closes a connection that holds its slot without using it: no request for
/// ``ConnectionTimeouts/idle`` (counted from the connect, the end of the TLS handshake,
/// or the end of the last response), headers not complete ``ConnectionTimeouts/header``
/// after their first byte, or a request body from which nothing arrived for
/// ``ConnectionTimeouts/idle``. Time in which the server works or writes (``ConnectionPhase/busy``)
/// never counts, however long: a slow reader of a large blob, a body that follows an upstream
/// download, an upload whose chunks wait for the disk.
///
/// Sits between the TLS handler (or the socket) and the HTTP decoder, so it sees the
/// request's plaintext bytes as they arrive; ``HTTPHandler`` tells it the request's phase.
/// One timer per connection, re-armed on phase changes only; body bytes just move a
/// timestamp that the timer checks when it fires.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum Reason: String, Sendable {
        case idle = "idle"
        case header = "request headers not complete in time"
        case body = "request body stalled"
    }

    private enum State {
        /// Before the TLS handshake completed (its own timeout applies).
        case handshaking
        /// No request in progress since `since`.
        case waiting(since: NIODeadline)
        /// The first byte of a request arrived at `since`; its headers have not.
        case header(since: NIODeadline)
        /// Reading a request body; the last bytes arrived at `lastRead`.
        case receiving
        case busy
        case closed
    }

    private let idle: TimeAmount?
    private let header: TimeAmount?
    private let onTimeout: @Sendable (Reason) -> Void
    private var state: State
    private var lastRead = NIODeadline.now()
    private var timer: Scheduled<Void>?

    /// `awaitHandshake`: counting starts at ``TLSServerHandler/HandshakeCompleted`` rather
    /// than when the connection opens. `onTimeout` is told each close (metrics, logs).
    init(timeouts: ConnectionTimeouts, awaitHandshake: Bool, onTimeout: @escaping @Sendable (Reason) -> Void) {
        idle = timeouts.idle.map(Self.amount)
        header = timeouts.header.map(Self.amount)
        self.onTimeout = onTimeout
        state = awaitHandshake ? .handshaking : .waiting(since: .now())
    }

    static func amount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if case .waiting = state { enterWaiting(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        state = .closed
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        state = .closed
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSServerHandler.HandshakeCompleted, case .handshaking = state {
            enterWaiting(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .waiting:
            // The next request begins: its headers have `header` from now.
            let now = NIODeadline.now()
            state = .header(since: now)
            arm(context: context, at: header.map { now + $0 })
        case .receiving:
            lastRead = .now()
        case .handshaking, .header, .busy, .closed:
            break
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let phase = event as? ConnectionPhase else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        if case .closed = state { return }
        switch phase {
        case .idle:
            enterWaiting(context: context)
        case .receiving:
            state = .receiving
            lastRead = .now()
            arm(context: context, at: idle.map { lastRead + $0 })
        case .busy:
            state = .busy
            cancelTimer()
        }
    }

    private func enterWaiting(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        state = .waiting(since: now)
        arm(context: context, at: idle.map { now + $0 })
    }

    /// The deadline of the current state, nil when nothing counts.
    private var deadline: NIODeadline? {
        switch state {
        case .waiting(let since): idle.map { since + $0 }
        case .header(let since): header.map { since + $0 }
        case .receiving: idle.map { lastRead + $0 }
        case .handshaking, .busy, .closed: nil
        }
    }

    private func arm(context: ChannelHandlerContext, at deadline: NIODeadline?) {
        cancelTimer()
        guard let deadline else { return }
        let loopSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopSelf.value.timerFired(context: loopContext.value)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let deadline else { return }
        if deadline > .now() {
            // Body bytes arrived since the timer was set: wait for the rest of the time.
            arm(context: context, at: deadline)
            return
        }
        let reason: Reason
        switch state {
        case .header: reason = .header
        case .receiving: reason = .body
        default: reason = .idle
        }
        state = .closed
        onTimeout(reason)
        context.close(promise: nil)
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}
