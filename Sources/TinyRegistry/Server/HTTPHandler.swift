import ContentStore
import OCICore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One connection of the registry: turns HTTP request parts into calls on ``RegistryAPI``
/// (on the blocking pool) and writes the answers, streaming both ways through bounded
/// buffers.
///
/// Upload bodies are handed to the pool chunk by chunk on one chain of futures; while more
/// than `bufferCount` chunks wait for the disk, the handler stops reading from the socket, so
/// a fast client cannot make the process buffer a blob in memory.
final class HTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    struct Settings: Sendable {
        var bufferSize: Int
        var bufferCount: Int
        /// Send file bodies with sendfile(2); otherwise, and always for ranges beyond what
        /// `Int` indexes (32-bit targets), they are read in chunks on the pool.
        var useSendfile: Bool
    }

    /// The request being received.
    private final class Exchange {
        let request: Request
        let keepAlive: Bool
        var route: Route?
        var error: RegistryError?
        var handling: RegistryAPI.BodyHandling = .discard
        var body: ByteBuffer?
        var sink: EventLoopFuture<UploadSink>?
        /// The push authorisation still being checked (credentials hash on the pool); fails
        /// with the refusal after the failure delay.
        var gate: EventLoopFuture<Void>?
        var ended = false
        /// An answer was already sent (a too large body); the rest of the request is dropped.
        var answered = false

        init(request: Request, keepAlive: Bool) {
            self.request = request
            self.keepAlive = keepAlive
        }
    }

    private let api: RegistryAPI
    private let pool: NIOThreadPool
    private let settings: Settings
    private var exchange: Exchange?
    private var pendingChunks = 0
    private var readDeferred = false
    private var closing = false
    /// Responses being written (one, or two for a moment when a pipelined request's head
    /// arrives as the previous response ends).
    private var responding = 0
    /// What ``ConnectionTimeoutHandler`` was last told.
    private var phase = ConnectionPhase.idle

    init(api: RegistryAPI, pool: NIOThreadPool, settings: Settings) {
        self.api = api
        self.pool = pool
        self.settings = settings
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            receiveHead(context: context, head)
        case .body(let buffer):
            receiveBody(context: context, buffer)
        case .end:
            receiveEnd(context: context)
        }
        updatePhase(context: context)
    }

    /// Tells ``ConnectionTimeoutHandler`` (an outbound user event) when the connection
    /// changed between waiting for a request, reading a request body from the client, and
    /// working or writing (reads paused for the disk, the answer being made or sent), which
    /// no timeout may cut.
    private func updatePhase(context: ChannelHandlerContext) {
        let now: ConnectionPhase
        if let exchange, !exchange.ended, !exchange.answered, !readDeferred {
            now = .receiving
        } else if exchange != nil || responding > 0 {
            now = .busy
        } else {
            now = .idle
        }
        guard now != phase else { return }
        phase = now
        context.triggerUserOutboundEvent(now, promise: nil)
    }

    private func receiveHead(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let exchange = Exchange(request: Request(head: head), keepAlive: head.isKeepAlive)
        self.exchange = exchange
        do {
            let route = try Route.parse(path: exchange.request.path, method: head.method)
            exchange.route = route
            exchange.handling = RegistryAPI.bodyHandling(exchange.request, route)
            authorize(context: context, exchange, route: route)
        } catch let error as RegistryError {
            exchange.error = error
            return
        } catch {
            exchange.error = RegistryError(.unknown, "\(error)")
            return
        }
        if exchange.error == nil, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }),
            exchange.handling != .discard || exchange.request.contentLength.map({ $0 > 0 }) == true
        {
            // curl waits a second for this before sending a body over 1 MiB.
            if case .buffer(let limit) = exchange.handling, let length = exchange.request.contentLength, length > Int64(limit) {
                // Refused below instead.
            } else {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
        }
        switch exchange.handling {
        case .discard:
            break
        case .buffer(let limit):
            if let length = exchange.request.contentLength, length > Int64(limit) {
                // Refuse at once rather than read a hostile body: answer and close.
                exchange.answered = true
                let error = RegistryError(.sizeInvalid, "body of \(length) bytes exceeds the limit of \(limit)", status: .payloadTooLarge)
                send(context: context, .error(error), keepAlive: false)
            }
        case .stream:
            guard let route = exchange.route else { return }
            let api = self.api
            let request = exchange.request
            let pool = self.pool
            let eventLoop = context.eventLoop
            exchange.sink = (exchange.gate ?? eventLoop.makeSucceededVoidFuture()).flatMap {
                pool.runIfActive(eventLoop: eventLoop) {
                    try api.beginUpload(request, route: route)
                }
            }
        }
    }

    /// Applies `registry.push` before any of the body is read: a refusal turns the request
    /// into an error answer (its body dropped); credentials are checked on the pool, and a
    /// wrong password is answered only after the client's failure delay.
    private func authorize(context: ChannelHandlerContext, _ exchange: Exchange, route: Route) {
        let authorizer = api.authorizer
        switch authorizer.decide(exchange.request, route: route, remote: context.channel.remoteAddress) {
        case .allow:
            break
        case .deny(let error):
            exchange.error = error
            exchange.handling = .discard
        case .verify(let user, let password, let client):
            let eventLoop = context.eventLoop
            exchange.gate = pool.runIfActive(eventLoop: eventLoop) {
                authorizer.verify(user: user, password: password, client: client)
            }.flatMap { refusal in
                guard let (error, delay) = refusal else { return eventLoop.makeSucceededVoidFuture() }
                return eventLoop.scheduleTask(in: delay) {}.futureResult.flatMapThrowing { throw error }
            }
        }
    }

    private func receiveBody(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        guard let exchange, !exchange.answered else { return }
        switch exchange.handling {
        case .discard:
            break
        case .buffer(let limit):
            guard exchange.error == nil else { return }
            if (exchange.body?.readableBytes ?? 0) + buffer.readableBytes > limit {
                exchange.error = RegistryError(.sizeInvalid, "body exceeds the limit of \(limit) bytes", status: .payloadTooLarge)
                exchange.body = nil
                return
            }
            var buffer = buffer
            if exchange.body == nil {
                exchange.body = buffer
            } else {
                exchange.body?.writeBuffer(&buffer)
            }
        case .stream:
            guard let sink = exchange.sink else { return }
            api.metrics.recordReceived(Int64(buffer.readableBytes))
            pendingChunks += 1
            let pool = self.pool
            let eventLoop = context.eventLoop
            let next = sink.flatMap { sink in
                pool.runIfActive(eventLoop: eventLoop) {
                    sink.append(buffer)
                    return sink
                }
            }
            exchange.sink = next
            let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
            let loopContext = NIOLoopBound(context, eventLoop: eventLoop)
            next.whenComplete { _ in
                loopSelf.value.chunkDone(context: loopContext.value)
            }
        }
    }

    private func chunkDone(context: ChannelHandlerContext) {
        pendingChunks -= 1
        if readDeferred, pendingChunks < settings.bufferCount {
            readDeferred = false
            updatePhase(context: context)
            context.read()
        }
    }

    private func receiveEnd(context: ChannelHandlerContext) {
        guard let exchange else { return }
        exchange.ended = true
        if exchange.answered {
            self.exchange = nil
            return
        }
        let keepAlive = exchange.keepAlive
        let eventLoop = context.eventLoop
        let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: eventLoop)
        let answer: EventLoopFuture<Response>
        if let error = exchange.error {
            answer = eventLoop.makeSucceededFuture(.error(error))
        } else if let route = exchange.route {
            let api = self.api
            let pool = self.pool
            let request = exchange.request
            switch exchange.handling {
            case .stream:
                answer = (exchange.sink ?? eventLoop.makeFailedFuture(RegistryError(.unknown, "no upload")))
                    .flatMap { sink in pool.runIfActive(eventLoop: eventLoop) { sink.finish() } }
                    .flatMapErrorThrowing { error in
                        guard let error = error as? RegistryError else { return .error(.storage(error)) }
                        return .error(error)
                    }
            case .buffer, .discard:
                let body = exchange.body.map { Array($0.readableBytesView) } ?? []
                answer = (exchange.gate ?? eventLoop.makeSucceededVoidFuture()).flatMap {
                    api.respond(request, route: route, body: body, pool: pool, eventLoop: eventLoop)
                }.flatMapErrorThrowing { error in
                    guard let error = error as? RegistryError else { return .error(.storage(error)) }
                    return .error(error)
                }
            }
        } else {
            answer = eventLoop.makeSucceededFuture(.error(RegistryError(.unknown, "unroutable request")))
        }
        answer.whenSuccess { response in
            loopSelf.value.exchange = nil
            loopSelf.value.send(context: loopContext.value, response, keepAlive: keepAlive)
            loopSelf.value.updatePhase(context: loopContext.value)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange, !exchange.ended, let sink = exchange.sink {
            let pool = self.pool
            let eventLoop = context.eventLoop
            sink.whenSuccess { sink in
                _ = pool.runIfActive(eventLoop: eventLoop) { sink.abandon() }
            }
        }
        exchange = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if pendingChunks >= settings.bufferCount {
            readDeferred = true
            updatePhase(context: context)
        } else {
            context.read()
        }
    }

    private func send(context: ChannelHandlerContext, _ response: Response, keepAlive: Bool) {
        guard context.channel.isActive else {
            response.discard()
            return
        }
        api.metrics.recordResponse(status: response.status.code)
        responding += 1
        var head = HTTPResponseHead(version: .http1_1, status: response.status, headers: response.headers)
        head.headers.replaceOrAdd(name: "Docker-Distribution-API-Version", value: "registry/2.0")
        switch response.body {
        case .bytes(let buffer):
            head.headers.replaceOrAdd(name: "Content-Length", value: String(buffer.readableBytes))
        case .none:
            if !head.headers.contains(name: "Content-Length"), response.status != .noContent,
                response.status.code >= 200
            {
                head.headers.add(name: "Content-Length", value: "0")
            }
        case .file, .growing:
            break
        }
        if !keepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)

        let eventLoop = context.eventLoop
        let loopContext = NIOLoopBound(context, eventLoop: eventLoop)
        let sent: EventLoopFuture<Void>
        switch response.body {
        case .none:
            sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        case .bytes(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        case .file(let fd, let offset, let length):
            api.metrics.recordServed(length)
            if settings.useSendfile, offset + length <= Int64(Int.max) {
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
                let region = FileRegion(fileHandle: handle, readerIndex: Int(offset), endIndex: Int(offset + length))
                let body = context.write(wrapOutboundOut(.body(.fileRegion(region))))
                sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                body.and(sent).whenComplete { _ in try? handle.close() }
            } else {
                let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
                sent = BodyStreamer.send(.file(fd), context: context, pool: pool, settings: settings, offset: offset, length: length)
                    .flatMap { loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.end(nil))) }
                sent.whenComplete { _ in PosixFile.close(fd) }
            }
        case .growing(let blob, let offset, let length):
            api.metrics.recordServed(length)
            let reader = GrowingReader(blob: blob)
            let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
            sent = BodyStreamer.send(.growing(reader), context: context, pool: pool, settings: settings, offset: offset, length: length)
                .flatMap { loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.end(nil))) }
            sent.whenComplete { _ in
                reader.close()
                blob.removeReader()
            }
        }
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        sent.whenComplete { result in
            handler.value.responding -= 1
            handler.value.updatePhase(context: loopContext.value)
            if case .failure = result {
                loopContext.value.close(promise: nil)
            } else if !keepAlive {
                loopContext.value.close(promise: nil)
            }
        }
    }
}
