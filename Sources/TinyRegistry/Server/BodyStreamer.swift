import ContentStore
import OCICore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Sends a response body that is not sent whole in one go: a file range read on the pool one
/// buffer at a time (no sendfile: TLS, or offsets an `Int` cannot hold on 32-bit targets),
/// or a range of a blob the pull-through is still downloading (``GrowingBlob``), sent as it
/// is written.
///
/// Each piece is written before the next is read, so a slow client holds at most one buffer
/// (with sendfile: none). The whole body is one promise and the pieces are plain callbacks:
/// nothing accumulates per piece. (A chain of futures, one per piece, kept every piece's
/// future and closure alive until the body ended: 20 clients following one 256 MiB transfer
/// held tens of MiB that way.)
///
/// Confined to the connection's event loop (every method runs there), hence `@unchecked`.
final class BodyStreamer: @unchecked Sendable {
    enum Source {
        /// An open file holding the whole range (closed by the caller).
        case file(Int32)
        /// A blob still being written by the pull-through.
        case growing(GrowingReader)
    }

    private let context: ChannelHandlerContext
    private let eventLoop: any EventLoop
    private let pool: NIOThreadPool
    private let source: Source
    private let bufferSize: Int64
    private let useSendfile: Bool
    private let promise: EventLoopPromise<Void>
    private var offset: Int64
    private let end: Int64

    private init(
        _ source: Source, context: ChannelHandlerContext, pool: NIOThreadPool, settings: HTTPHandler.Settings, offset: Int64,
        length: Int64
    ) {
        self.context = context
        eventLoop = context.eventLoop
        self.pool = pool
        self.source = source
        bufferSize = Int64(max(4096, settings.bufferSize))
        useSendfile = settings.useSendfile
        promise = context.eventLoop.makePromise(of: Void.self)
        self.offset = offset
        end = offset + length
    }

    /// Sends `length` bytes of `source` from `offset` as body parts; succeeds when the last
    /// is written, fails (which cuts the response) on a read error, a closed connection or a
    /// failed transfer. Call on the connection's event loop.
    static func send(
        _ source: Source, context: ChannelHandlerContext, pool: NIOThreadPool, settings: HTTPHandler.Settings, offset: Int64,
        length: Int64
    ) -> EventLoopFuture<Void> {
        let streamer = BodyStreamer(source, context: context, pool: pool, settings: settings, offset: offset, length: length)
        streamer.next()
        return streamer.promise.futureResult
    }

    /// Sends the next piece, or completes.
    private func next() {
        guard offset < end else {
            promise.succeed(())
            return
        }
        switch source {
        case .file(let fd):
            sendBuffer(upTo: end, read: { fd }, shortRead: .fail)
        case .growing(let reader):
            // Back on the loop in any case: the transfer's thread calls this, and an
            // immediate answer must not grow the stack piece after piece.
            let eventLoop = self.eventLoop
            reader.blob.whenReadable(after: offset) { status in
                eventLoop.execute { self.readable(status, reader) }
            }
        }
    }

    private func readable(_ status: GrowingBlob.Status, _ reader: GrowingReader) {
        let written: Int64
        switch status {
        case .failed(let reason):
            promise.fail(GrowingReader.Failure(reason: reason))
            return
        case .complete:
            written = reader.blob.size
        case .available(let bytes):
            written = bytes
        }
        let upTo = min(written, end)
        guard upTo > offset else {
            // The transfer started over (an upstream that ignored a range): wait again.
            retryLater()
            return
        }
        if useSendfile, upTo <= Int64(Int.max) {
            sendRegion(reader, upTo: upTo)
        } else {
            sendBuffer(upTo: upTo, read: { try reader.descriptor() }, shortRead: .wait)
        }
    }

    /// Everything written so far in one sendfile(2) from the page cache: no copy through
    /// user space, no buffer per client.
    private func sendRegion(_ reader: GrowingReader, upTo: Int64) {
        if let handle = reader.openedHandle {
            writeRegion(handle, upTo: upTo)
            return
        }
        // The file is opened on the pool once; every later piece goes straight out.
        pool.runIfActive(eventLoop: eventLoop) { try reader.handle() }.whenComplete { result in
            switch result {
            case .success(let handle): self.writeRegion(handle, upTo: upTo)
            case .failure(let error): self.promise.fail(error)
            }
        }
    }

    private func writeRegion(_ handle: NIOFileHandle, upTo: Int64) {
        let region = FileRegion(fileHandle: handle, readerIndex: Int(offset), endIndex: Int(upTo))
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.fileRegion(region)))).whenComplete { result in
            switch result {
            case .success:
                self.offset = upTo
                self.next()
            case .failure(let error):
                self.promise.fail(error)
            }
        }
    }

    private enum ShortRead {
        /// A stored file ended early: an I/O error.
        case fail
        /// A growing file is shorter than announced (the transfer started over): wait.
        case wait
    }

    /// Reads one buffer on the pool and writes it.
    private func sendBuffer(upTo: Int64, read descriptor: @escaping @Sendable () throws -> Int32, shortRead: ShortRead) {
        let want = Int(min(bufferSize, upTo - offset))
        let at = offset
        let allocator = context.channel.allocator
        pool.runIfActive(eventLoop: eventLoop) { () throws -> ByteBuffer in
            var buffer = allocator.buffer(capacity: want)
            let fd = try descriptor()
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                try PosixFile.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]), at: at, path: "blob")
            }
            return buffer
        }.whenComplete { result in
            switch result {
            case .failure(let error):
                self.promise.fail(error)
            case .success(let buffer):
                let n = Int64(buffer.readableBytes)
                guard n > 0 else {
                    switch shortRead {
                    case .fail: self.promise.fail(PosixError("read", path: "blob", code: 5))
                    case .wait: self.retryLater()
                    }
                    return
                }
                self.context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer)))).whenComplete { result in
                    switch result {
                    case .success:
                        self.offset = at + n
                        self.next()
                    case .failure(let error):
                        self.promise.fail(error)
                    }
                }
            }
        }
    }

    private func retryLater() {
        eventLoop.scheduleTask(in: .milliseconds(20)) { self.next() }
    }
}

/// One response's descriptor of a growing blob, opened at the first read. Used by one
/// ``BodyStreamer`` (each read waits for the previous write), hence `@unchecked`.
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
