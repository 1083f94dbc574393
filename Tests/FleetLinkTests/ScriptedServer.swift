import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback HTTP server whose answers a test scripts, for the fleet link's client logic
/// (fallbacks, refresh, backoff). It records every request it saw. Not a Ground Control:
/// the end-to-end tests run the real one.
final class ScriptedServer: Sendable {
    struct Seen: Sendable {
        var method: String
        var path: String
        var authorization: String?
        var body: [UInt8]
    }

    struct Answer: Sendable {
        var status: Int
        var body: String
        var headers: [(String, String)] = []
    }

    typealias Script = @Sendable (Seen) -> Answer

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: any Channel
    let seen = Mutex<[Seen]>([])
    let script: Mutex<Script>

    var port: Int { channel.localAddress?.port ?? 0 }
    var url: String { "http://127.0.0.1:\(port)" }
    var requests: [Seen] { seen.withLock { $0 } }

    init(_ script: @escaping Script) async throws {
        self.script = Mutex(script)
        let box = Box()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.server.withLock { $0 = self }
    }

    func setScript(_ script: @escaping Script) { self.script.withLock { $0 = script } }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class Box: Sendable {
        let server = Mutex<ScriptedServer?>(nil)
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {  // one per connection, on its event loop
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let box: Box
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(box: Box) { self.box = box }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head, let server = box.server.withLock({ $0 }) else { return }
                let seen = Seen(method: "\(head.method)", path: head.uri, authorization: head.headers.first(name: "authorization"), body: body)
                server.seen.withLock { $0.append(seen) }
                let answer = server.script.withLock { $0 }(seen)
                var headers = HTTPHeaders([("content-length", "\(answer.body.utf8.count)"), ("content-type", "application/json")])
                for (name, value) in answer.headers { headers.add(name: name, value: value) }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: answer.status), headers: headers))), promise: nil)
                var buffer = context.channel.allocator.buffer(capacity: answer.body.utf8.count)
                buffer.writeString(answer.body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
