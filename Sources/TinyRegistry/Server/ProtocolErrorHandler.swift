import ContentStore
import OCICore
import NIOCore
import NIOHTTP1

/// Answers requests the HTTP parser rejects (garbage request lines, bad Content-Length, header
/// bombs) with a 400 carrying OCI error JSON, then lets the connection close. Replaces
/// SwiftNIO's handler, which sends an empty 400.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInFlight = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // Only possible when no other response has started; the decoder closes the channel
        // right after this returns.
        if !responseInFlight {
            let body = ByteBuffer(
                bytes: RegistryError(.unsupported, "malformed HTTP request: \(parserError)", status: .badRequest).json)
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code < 200:
            break
        case .head:
            responseInFlight = true
        case .body:
            break
        case .end:
            responseInFlight = false
        }
        context.write(data, promise: promise)
    }
}
