import NIOCore
import NIOHTTP1
import NIOPosix

@main struct Probe {
    static func main() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.configureHTTPServerPipeline() }
        }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        print(channel.localAddress?.port ?? 0)
        try channel.close().wait()
    }
}
