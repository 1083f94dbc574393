import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

@main struct Probe {
    static func main() throws {
        let args = CommandLine.arguments
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(args[1]).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: args[2], format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            }
        }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        print(channel.localAddress?.port ?? 0)
        try channel.close().wait()
    }
}
