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
                sent = streamFile(context: context, fd: fd, offset: offset, remaining: length)
                    .flatMap { loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.end(nil))) }
                sent.whenComplete { _ in PosixFile.close(fd) }
            }
        case .growing(let blob, let offset, let length):
            api.metrics.recordServed(length)
            let reader = GrowingReader(blob: blob)
            let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
            sent = streamGrowing(context: context, reader: reader, offset: offset, remaining: length)
                .flatMap { loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.end(nil))) }
            sent.whenComplete { _ in
                reader.close()
                blob.removeReader()
            }
        }
        sent.whenComplete { result in
            if case .failure = result {
                loopContext.value.close(promise: nil)
            } else if !keepAlive {
                loopContext.value.close(promise: nil)
            }
        }
    }

    /// Sends a range of a blob the pull-through is still downloading: waits until the bytes
    /// are written, reads them on the pool one buffer at a time and writes each before the
    /// next (so a slow client holds one buffer, never the blob). Fails, which cuts the
    /// response, when the transfer fails: the client never sees a valid completion of content
    /// that did not verify.
    private func streamGrowing(context: ChannelHandlerContext, reader: GrowingReader, offset: Int64, remaining: Int64)
        -> EventLoopFuture<Void>
    {
        let eventLoop = context.eventLoop
        guard remaining > 0 else { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        let pool = self.pool
        let bufferSize = Int64(settings.bufferSize)
        let allocator = context.channel.allocator
        let loopContext = NIOLoopBound(context, eventLoop: eventLoop)
        let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
        let blob = reader.blob
        let useSendfile = settings.useSendfile
        blob.whenReadable(after: offset) { status in
            let end: Int64
            switch status {
            case .failed(let reason):
                promise.fail(GrowingReader.Failure(reason: reason))
                return
            case .complete:
                end = blob.size
            case .available(let written):
                end = written
            }
            if useSendfile, end - offset > 0, offset + remaining <= Int64(Int.max) {
                // Everything written so far goes out in one sendfile(2) from the page cache:
                // no copy through user space, no buffer per client.
                let upTo = offset + min(end - offset, remaining)
                // The file is opened on the pool once; every later wake-up goes straight to
                // the event loop.
                let opened = reader.openedHandle.map { eventLoop.makeSucceededFuture($0) }
                    ?? pool.runIfActive(eventLoop: eventLoop) { try reader.handle() }
                opened.flatMap { handle -> EventLoopFuture<Void> in
                    let region = FileRegion(fileHandle: handle, readerIndex: Int(offset), endIndex: Int(upTo))
                    return loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.body(.fileRegion(region)))).flatMap {
                        loopSelf.value.streamGrowing(
                            context: loopContext.value, reader: reader, offset: upTo, remaining: remaining - (upTo - offset))
                    }
                }.cascade(to: promise)
                return
            }
            let want = Int(min(bufferSize, end - offset, remaining))
            pool.runIfActive(eventLoop: eventLoop) { () throws -> ByteBuffer in
                var buffer = allocator.buffer(capacity: want)
                guard want > 0 else { return buffer }
                let fd = try reader.descriptor()
                _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                    try PosixFile.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]), at: offset, path: "blob")
                }
                return buffer
            }.flatMap { buffer -> EventLoopFuture<Void> in
                let n = Int64(buffer.readableBytes)
                guard n > 0 else {
                    // The file is shorter than announced: the transfer started over (an
                    // upstream that ignored a range). Wait for the bytes again.
                    return eventLoop.scheduleTask(in: .milliseconds(20)) {}.futureResult.flatMap {
                        loopSelf.value.streamGrowing(context: loopContext.value, reader: reader, offset: offset, remaining: remaining)
                    }
                }
                return loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.body(.byteBuffer(buffer)))).flatMap {
                    loopSelf.value.streamGrowing(context: loopContext.value, reader: reader, offset: offset + n, remaining: remaining - n)
                }
            }.cascade(to: promise)
        }
        return promise.futureResult
    }

    /// Sends a file range by reading it on the pool one buffer at a time (no sendfile): for
    /// offsets an `Int` cannot hold on 32-bit targets.
    private func streamFile(context: ChannelHandlerContext, fd: Int32, offset: Int64, remaining: Int64) -> EventLoopFuture<Void> {
        let eventLoop = context.eventLoop
        guard remaining > 0 else { return eventLoop.makeSucceededVoidFuture() }
        let size = Int(min(Int64(settings.bufferSize), remaining))
        let allocator = context.channel.allocator
        let loopContext = NIOLoopBound(context, eventLoop: eventLoop)
        let loopSelf = NIOLoopBound(self, eventLoop: eventLoop)
        return pool.runIfActive(eventLoop: eventLoop) { () throws -> ByteBuffer in
            var buffer = allocator.buffer(capacity: size)
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                try PosixFile.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: raw[0..<size]), at: offset, path: "blob")
            }
            guard n > 0 else { throw PosixError("read", path: "blob", code: 5) }
            return buffer
        }.flatMap { buffer in
            let n = Int64(buffer.readableBytes)
            return loopContext.value.writeAndFlush(loopSelf.value.wrapOutboundOut(.body(.byteBuffer(buffer)))).flatMap {
                loopSelf.value.streamFile(context: loopContext.value, fd: fd, offset: offset + n, remaining: remaining - n)
            }
        }
    }
}

/// One response's descriptor of a growing blob, opened at the first read. Used by one chain
/// of futures at a time (each read waits for the previous write), hence `@unchecked`.
final class GrowingReader: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var reason: String
        var description: String { "proxied transfer failed: \(reason)" }
    }

    let blob: GrowingBlob
    private var fd: Int32 = -1

    init(blob: GrowingBlob) {
        self.blob = blob
    }

    private let opened = Mutex<NIOFileHandle?>(nil)
    private var fileHandle: NIOFileHandle? {
        get { opened.withLock { $0 } }
        set { opened.withLock { $0 = newValue } }
    }

    /// The handle once ``handle()`` opened it.
    var openedHandle: NIOFileHandle? { fileHandle }

    func descriptor() throws -> Int32 {
        if fd < 0 { fd = try blob.open() }
        return fd
    }

    /// The descriptor as NIO's handle, for sendfile regions (which it then owns).
    func handle() throws -> NIOFileHandle {
        if let fileHandle { return fileHandle }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: try descriptor())
        fileHandle = handle
        return handle
    }

    func close() {
        if let fileHandle {
            try? fileHandle.close()
        } else if fd >= 0 {
            PosixFile.close(fd)
        }
        fileHandle = nil
        fd = -1
    }
}
