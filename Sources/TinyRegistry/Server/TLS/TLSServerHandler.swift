import CTLSServer
import NIOCore

/// TLS for one connection of the registry listener, over mbedTLS (``TLSCertificates``):
/// ciphertext from the socket is decrypted into the HTTP pipeline, everything the pipeline
/// writes is encrypted. All buffers are bounded: mbedTLS's own record buffers, a 20 KiB
/// inbound and a 64 KiB outbound ciphertext buffer in C, and at most one socket read of
/// ciphertext here. A client that does not complete the handshake within the timeout, or
/// sends anything that is not TLS, is disconnected; a plain HTTP request gets a plain 400
/// first, so a client that forgot `https://` learns why.
///
/// File regions (sendfile) cannot pass through TLS: the server serves blobs by reads on
/// the pool when TLS is on.
final class TLSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum State {
        case handshaking
        case open
        /// close_notify sent or received, or an error: nothing more is encrypted.
        case closed
    }

    /// Sent down the pipeline (a user inbound event) when the handshake completed: the
    /// listener's idle timeout counts from here (``ConnectionTimeoutHandler``).
    struct HandshakeCompleted: Sendable {}

    /// The plaintext one `mbedtls_ssl_read` / `mbedtls_ssl_write` call handles (one record).
    static let recordSize = 16384

    private let context: TLSServerContext
    private let handshakeTimeout: TimeAmount
    private let onFailure: @Sendable (String) -> Void
    private var connection: OpaquePointer?
    private var state = State.handshaking
    private var firstByteSeen = false
    private var timeout: Scheduled<Void>?
    /// Writes the pipeline made before the handshake completed.
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var readSinceComplete = false

    /// `onFailure` gets a one-line reason for each connection that fails TLS (for the logs
    /// and metrics).
    init(certificates: TLSCertificates, onFailure: @escaping @Sendable (String) -> Void) {
        context = certificates.context
        handshakeTimeout = .nanoseconds(Int64(certificates.handshakeTimeout.components.seconds) * 1_000_000_000
            + certificates.handshakeTimeout.components.attoseconds / 1_000_000_000)
        self.onFailure = onFailure
    }

    deinit {
        ctls_conn_free(connection)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection = ctls_conn_new(self.context.pointer)
        if connection == nil {
            onFailure("cannot allocate a TLS connection")
            context.close(promise: nil)
            return
        }
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loopSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            guard case .handshaking = loopSelf.value.state else { return }
            loopSelf.value.fail(context: loopContext.value, reason: "TLS handshake not completed in time")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    private func release() {
        timeout?.cancel()
        timeout = nil
        state = .closed
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(ChannelError.ioOnClosedChannel) }
        ctls_conn_free(connection)
        connection = nil
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard connection != nil, state != .closed else { return }
        if !firstByteSeen, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            firstByteSeen = true
            // Every TLS connection starts with a handshake record (content type 22).
            if first != 0x16 {
                refuseNonTLS(context: context, first: first)
                return
            }
        }
        pump(context: context, ciphertext: &buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if readSinceComplete {
            readSinceComplete = false
            context.fireChannelReadComplete()
        }
    }

    /// Feeds `ciphertext` to mbedTLS and drives the handshake or decrypts, until all of it
    /// is consumed.
    private func pump(context: ChannelHandlerContext, ciphertext: inout ByteBuffer) {
        // Whether the last round took no input although some was left: mbedTLS then wants
        // more than the inbound buffer holds, which a valid record never does.
        var stalled = false
        while let connection, state != .closed {
            if ciphertext.readableBytes > 0 {
                let taken = ciphertext.withUnsafeReadableBytes { raw -> Int in
                    guard let base = raw.baseAddress else { return 0 }
                    return ctls_conn_feed(connection, base.assumingMemoryBound(to: UInt8.self), raw.count)
                }
                ciphertext.moveReaderIndex(forwardBy: taken)
                if taken == 0 {
                    if stalled {
                        fail(context: context, reason: "TLS input not consumed (record larger than the inbound buffer)")
                        return
                    }
                    stalled = true
                } else {
                    stalled = false
                }
            }
            if case .handshaking = state {
                let result = ctls_conn_handshake(connection)
                sendCiphertext(context: context, promise: nil, flush: true)
                if result == 0 {
                    state = .open
                    timeout?.cancel()
                    timeout = nil
                    let writes = pendingWrites
                    pendingWrites = []
                    for (buffer, promise) in writes { encrypt(context: context, buffer, promise: promise) }
                    if !writes.isEmpty { context.flush() }
                    context.fireUserInboundEventTriggered(HandshakeCompleted())
                    if self.connection == nil || state == .closed { return }
                    continue
                }
                guard result == CTLS_WANT_READ || result == CTLS_WANT_WRITE else {
                    fail(context: context, reason: "TLS handshake failed: \(Self.describe(result))")
                    return
                }
                // The outbound buffer was full and is now written: go on with the flight.
                if result == CTLS_WANT_WRITE { continue }
                if ciphertext.readableBytes == 0 { return }
                continue
            }
            // Open: decrypt every complete record.
            while true {
                var plain = context.channel.allocator.buffer(capacity: Self.recordSize)
                var result: Int32 = 0
                plain.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.recordSize) { raw in
                    guard let base = raw.baseAddress else { return 0 }
                    result = ctls_conn_read(connection, base.assumingMemoryBound(to: UInt8.self), min(raw.count, Self.recordSize))
                    return result > 0 ? Int(result) : 0
                }
                if result > 0 {
                    readSinceComplete = true
                    context.fireChannelRead(wrapInboundOut(plain))
                    // The pipeline may have closed the connection in the meantime.
                    if self.connection == nil || state == .closed { return }
                    continue
                }
                if result == CTLS_WANT_READ || result == CTLS_WANT_WRITE { break }
                if result == CTLS_CLOSED {
                    // The client's close_notify: answer with ours, then close.
                    closeNotifyAndClose(context: context, mode: .all, promise: nil)
                } else {
                    fail(context: context, reason: "TLS record rejected: \(Self.describe(result))")
                }
                return
            }
            if ciphertext.readableBytes == 0 { return }
        }
    }

    /// The first byte is not a TLS handshake record: a plain HTTP request gets a plain 400
    /// (in the OCI error format), anything else is simply disconnected.
    private func refuseNonTLS(context: ChannelHandlerContext, first: UInt8) {
        state = .closed
        timeout?.cancel()
        let isLetter = (first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A)
        onFailure(isLetter ? "plain HTTP sent to the TLS listener" : "not a TLS handshake (first byte \(first))")
        guard isLetter else {
            context.close(promise: nil)
            return
        }
        let error = RegistryError(.unsupported, "this registry serves HTTPS only: use https:// (and the registry's CA)")
        let body = error.json
        var response = context.channel.allocator.buffer(capacity: 256 + body.count)
        response.writeString(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        response.writeBytes(body)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(response))).whenComplete { _ in
            loopContext.value.close(promise: nil)
        }
    }

    private func fail(context: ChannelHandlerContext, reason: String) {
        state = .closed
        onFailure(reason)
        // Whatever alert mbedTLS queued (e.g. handshake_failure) goes out before the close.
        sendCiphertext(context: context, promise: nil, flush: true)
        context.close(promise: nil)
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .byteBuffer(let buffer):
            switch state {
            case .handshaking:
                pendingWrites.append((buffer, promise))
            case .open:
                encrypt(context: context, buffer, promise: promise)
            case .closed:
                promise?.fail(ChannelError.ioOnClosedChannel)
            }
        case .fileRegion:
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if case .open = state { context.flush() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .open = state, mode == .all {
            closeNotifyAndClose(context: context, mode: mode, promise: promise)
        } else {
            context.close(mode: mode, promise: promise)
        }
    }

    private func closeNotifyAndClose(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        state = .closed
        if let connection {
            _ = ctls_conn_close_notify(connection)
        }
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let sent = context.eventLoop.makePromise(of: Void.self)
        sendCiphertext(context: context, promise: sent, flush: true)
        sent.futureResult.whenComplete { _ in
            loopContext.value.close(mode: mode, promise: promise)
        }
    }

    /// Encrypts `buffer` record by record and writes the ciphertext; `promise` completes
    /// with the write of its last byte.
    private func encrypt(context: ChannelHandlerContext, _ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let connection else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var buffer = buffer
        while buffer.readableBytes > 0 {
            let result = buffer.withUnsafeReadableBytes { raw -> Int32 in
                guard let base = raw.baseAddress else { return 0 }
                return ctls_conn_write(connection, base.assumingMemoryBound(to: UInt8.self), min(raw.count, Self.recordSize))
            }
            if result > 0 {
                buffer.moveReaderIndex(forwardBy: Int(result))
            } else if result != CTLS_WANT_WRITE {
                promise?.fail(ChannelError.ioOnClosedChannel)
                fail(context: context, reason: "TLS write failed: \(Self.describe(result))")
                return
            }
            // Keep mbedTLS's outbound buffer short: move it to the channel after each record.
            if ctls_conn_outbound_pending(connection) >= 4 * Self.recordSize || result == CTLS_WANT_WRITE {
                sendCiphertext(context: context, promise: nil, flush: false)
            }
        }
        if ctls_conn_outbound_pending(connection) > 0 {
            sendCiphertext(context: context, promise: promise, flush: false)
        } else {
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        }
    }

    /// Writes the ciphertext mbedTLS produced (handshake messages, records, alerts).
    private func sendCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: Bool) {
        guard let connection else {
            promise?.succeed()
            return
        }
        let pending = ctls_conn_outbound_pending(connection)
        guard pending > 0 else {
            if flush { context.flush() }
            promise?.succeed()
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            guard let base = raw.baseAddress else { return 0 }
            return ctls_conn_take_outbound(connection, base.assumingMemoryBound(to: UInt8.self), pending)
        }
        if flush {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(out)), promise: promise)
        } else {
            context.write(wrapOutboundOut(.byteBuffer(out)), promise: promise)
        }
    }

    static func describe(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 200)
        ctls_strerror(code, &text, text.count)
        let message = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(message) (-0x\(String(-Int(code), radix: 16)))"
    }
}
