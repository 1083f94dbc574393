import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore
@testable import TinyRegistry

/// `registry.idleTimeout` and `registry.headerTimeout` over real loopback sockets (raw NIO
/// clients, curl, openssl s_client), plain and TLS, with 1 s timeouts: idle, trickling and
/// stalled connections are closed within a generous bound; busy ones (slow download, slow
/// upload, a body that follows a download) outlive 3 × the timeout untouched.
@Suite(.serialized) struct ConnectionTimeoutTests {
    static let short = ConnectionTimeouts(idle: .seconds(1), header: .seconds(1))
    /// How long a close the timeout causes may take on a loaded machine (it should take ~1 s).
    static let closeBound: Duration = .seconds(30)

    final class Server: Sendable {
        let directory = TestEnvironment.makeTemporaryDirectory("timeout-test")
        let server: RegistryServer
        let tls: Bool
        private let port = Mutex(0)

        init(
            timeouts: ConnectionTimeouts, maxConnections: Int = 64, tls: Bool = false,
            pullThrough: ((BlobStore) -> any PullThrough)? = nil
        ) throws {
            self.tls = tls
            let store = try BlobStore(
                configuration: .init(
                    root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 65536, uploadTimeout: 3_600_000_000_000,
                    fsyncInterval: 1 << 20))
            var certificates: TLSCertificates?
            if tls {
                try TLSServerTests.makePair(directory, "server")
                certificates = try TLSCertificates(certFile: "\(directory)/server.pem", keyFile: "\(directory)/server.key")
            }
            server = RegistryServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: maxConnections,
                    bufferSize: 65536, bufferCount: 4, tls: certificates, timeouts: timeouts),
                api: RegistryAPI(store: store, pullThrough: pullThrough?(store)), logger: Logger(label: "test"))
        }

        func start() async throws {
            let address = try await server.start()
            port.withLock { $0 = address.port ?? 0 }
        }

        var portNumber: Int { port.withLock { $0 } }
        var base: String { "\(tls ? "https" : "http")://127.0.0.1:\(portNumber)" }

        /// curl with `arguments`, on NIO's thread pool (it blocks its thread; the cooperative
        /// pool has two threads on this machine, which other suites need meanwhile). With
        /// `Connection: close`, so the server closes after the answer: curl's connection is
        /// never idle, whatever the machine's load, and the timeout counts stay exact.
        func curl(_ arguments: [String]) async throws -> Subprocess.Result {
            let prefix = ["curl", "-s", "-H", "Connection: close"] + (tls ? ["--cacert", "\(directory)/server.pem"] : [])
            return try await NIOThreadPool.singleton.runIfActive { try Subprocess.run(prefix + arguments, timeout: 120) }
        }

        func sh(_ script: String) async throws -> Subprocess.Result {
            try await NIOThreadPool.singleton.runIfActive { try Subprocess.run(["bash", "-c", script], timeout: 120) }
        }

        /// `satellite_http_timeout_closes_total`.
        var timeoutCloses: Int {
            let text = server.api.metrics.render(store: server.api.store)
            for line in text.split(separator: "\n") where line.hasPrefix("satellite_http_timeout_closes_total ") {
                return Int(line.split(separator: " ").last ?? "") ?? -1
            }
            return -1
        }

        func stop() async {
            await server.shutdown()
            TestEnvironment.removeTree(directory)
        }
    }

    /// A raw TCP client on NIO (blocks no thread): sends what the test says, keeps what
    /// arrives, and shows when the server closed the connection.
    final class RawClient: Sendable {
        let channel: any Channel
        private let received: Received

        private init(channel: any Channel, received: Received) {
            self.channel = channel
            self.received = received
        }

        static func connect(port: Int) async throws -> RawClient {
            let received = Received()
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            return RawClient(channel: channel, received: received)
        }

        func send(_ text: String) async throws {
            try await channel.writeAndFlush(ByteBuffer(string: text)).get()
        }

        var text: String { String(decoding: received.bytes.withLock { $0 }, as: UTF8.self) }

        /// Polls until `condition` holds or `limit` passed; returns whether it held.
        func wait(within limit: Duration, until condition: () -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + limit
            while ContinuousClock.now < deadline {
                if condition() { return true }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return condition()
        }

        func close() async {
            try? await channel.close()
        }
    }

    final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: Received

        init(received: Received) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.bytes.withLock { $0 += buffer.readableBytesView }
        }
    }

    /// Every slot held by idle clients (silent since the connect, or kept alive after a
    /// request): they are closed and a new client gets in. A connection accepted while the
    /// timeouts were off keeps that (a reload changes new connections only).
    @Test func idleClientsLoseTheirSlotsAndNewClientsGetIn() async throws {
        let s = try Server(timeouts: .init(idle: nil, header: nil), maxConnections: 4)
        try await s.start()
        // Answered, so the server has surely set it up (with the timeouts off) before the change.
        let early = try await RawClient.connect(port: s.portNumber)
        try await early.send("GET /v2/ HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await early.wait(within: Self.closeBound) { early.text.hasPrefix("HTTP/1.1 200") }, "\(early.text)")
        s.server.updateTimeouts(Self.short)

        let keptAlive = try await RawClient.connect(port: s.portNumber)
        try await keptAlive.send("GET /v2/ HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await keptAlive.wait(within: Self.closeBound) { keptAlive.text.hasPrefix("HTTP/1.1 200") }, "\(keptAlive.text)")
        let silent = [try await RawClient.connect(port: s.portNumber), try await RawClient.connect(port: s.portNumber)]
        // Counted by the server as it closes them (the clients' own event loop may be slow to
        // see it while the whole suite runs).
        #expect(
            await keptAlive.wait(within: Self.closeBound) { s.timeoutCloses == 3 },
            "idle connections still open after \(Self.closeBound): \(s.timeoutCloses) closed, \(silent.count + 1) idle")
        // Their slots are free again (the one that stayed open holds the fourth).
        let get = try await s.curl(["-o", "/dev/null", "-w", "%{http_code}", "\(s.base)/v2/"])
        #expect(get.output == "200", "\(get)")
        #expect(early.channel.isActive, "a connection accepted with the timeouts off was closed")
        #expect(s.timeoutCloses == 3)
        await early.close()
        await s.stop()
    }

    /// Headers trickling in (a line every 300 ms, never the blank line) are cut at the header
    /// timeout; a request body that stops arriving is cut at the idle timeout, and the upload
    /// session keeps what arrived.
    @Test func tricklingHeadersAndStalledBodiesAreCut() async throws {
        let s = try Server(timeouts: Self.short)
        try await s.start()
        let trickle = try await RawClient.connect(port: s.portNumber)
        try await trickle.send("GET /v2/ HTTP/1.1\r\nHost: t\r\n")
        var lines = 0
        let start = ContinuousClock.now
        while s.timeoutCloses < 1, trickle.channel.isActive, ContinuousClock.now - start < Self.closeBound {
            try? await trickle.send("X-Slow-\(lines): 1\r\n")
            lines += 1
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(s.timeoutCloses == 1, "headers trickling for \(Self.closeBound) were not cut (\(lines) lines sent)")
        #expect(!trickle.text.contains("HTTP/1.1 200"), "the trickled request was answered: \(trickle.text)")

        let session = try await s.curl(["-D", "-", "-o", "/dev/null", "-X", "POST", "\(s.base)/v2/t/b/blobs/uploads/"])
        let location = try #require(
            session.output.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst(9).trimmed(),
            "\(session)")
        let stalled = try await RawClient.connect(port: s.portNumber)
        try await stalled.send(
            "PATCH \(location) HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789")
        #expect(await stalled.wait(within: Self.closeBound) { s.timeoutCloses == 2 }, "a stalled body kept its connection")
        let status = try await s.curl(["-D", "-", "-o", "/dev/null", "\(s.base)\(location)"])
        #expect(status.output.contains("204"), "\(status)")
        #expect(status.output.lowercased().contains("range: 0-9"), "the session lost what arrived: \(status)")
        #expect(s.timeoutCloses == 2)
        await s.stop()
    }

    /// An upload whose body arrives steadily but slowly (128 KiB every 100 ms, 4 MiB: over 3 s,
    /// 3 × the 1 s idle timeout, from Python's socket and ssl modules) and a 16 MiB pull at
    /// 3 MiB/s (curl --limit-rate: more than the socket buffers hold, so the server writes
    /// for seconds) are not cut. Plain HTTP serves with sendfile, TLS by reads on the pool.
    /// (Once the last bytes of a response are in the kernel's buffers the connection counts
    /// as idle, as in Go's net/http; its close then follows the data.)
    @Test(arguments: [false, true])
    func slowUploadsAndDownloadsOutliveTheTimeout(tls: Bool) async throws {
        let s = try Server(timeouts: Self.short, tls: tls)
        try await s.start()
        let session = try await s.curl(["-D", "-", "-o", "/dev/null", "-X", "POST", "\(s.base)/v2/t/slow/blobs/uploads/"])
        let location = try #require(
            session.output.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst(9).trimmed(),
            "\(session)")
        TestEnvironment.write("\(s.directory)/paced.py", Self.pacedUpload)
        let ca = tls ? "\(s.directory)/server.pem" : "-"
        let upload = try await s.sh("python3 '\(s.directory)/paced.py' 127.0.0.1 \(s.portNumber) '\(location)' 4194304 '\(ca)'")
        #expect(upload.output.hasPrefix("HTTP/1.1 202 "), "slow upload: \(upload)")
        #expect(upload.output.contains("range: 0-4194303"), "slow upload: \(upload)")
        let took = upload.output.split(separator: " ").last.flatMap { Double($0.trimmed()) } ?? 0
        #expect(took >= 3, "the upload was not slow: \(upload)")
        #expect(s.timeoutCloses == 0, "a connection was closed by the timeout during a slow upload")

        let blob = "\(s.directory)/blob"
        let digest = "sha256:" + (try await s.sh("head -c 16777216 /dev/urandom > '\(blob)' && sha256sum '\(blob)' | cut -d' ' -f1")).output.trimmed()
        let push = try await s.curl([
            "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Content-Type: application/octet-stream",
            "--data-binary", "@\(blob)", "\(s.base)/v2/t/b/blobs/uploads/?digest=\(digest)",
        ])
        #expect(push.output == "201", "push: \(push)")
        let out = "\(s.directory)/out"
        let pull = try await s.curl(["--limit-rate", "3M", "-o", out, "-w", "%{http_code} %{time_total}", "\(s.base)/v2/t/b/blobs/\(digest)"])
        let pulled = pull.output.split(separator: " ")
        #expect(pull.status == 0 && pulled.first == "200", "slow pull: \(pull)")
        // The premise, not the finding: the server wrote for longer than the 1 s timeout. curl's
        // --limit-rate averages and bursts (16 MiB at 3 MiB/s took 2.5 s once, on a loaded run).
        #expect((Double(pulled.last ?? "") ?? 0) >= 1.5, "the pull was not slow: \(pull)")
        #expect(try await s.sh("cmp '\(blob)' '\(out)'").status == 0, "the slow pull was cut or changed")
        await s.stop()
    }

    /// PATCH HOST PORT PATH SIZE CA|-: the body in 128 KiB pieces every 100 ms; prints the
    /// status line, the Range header (lower case) and the seconds the body took.
    static let pacedUpload = """
        import socket, ssl, sys, time
        host, port, path, size, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
        s = socket.create_connection((host, port), timeout=60)
        if ca != "-":
            s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
        s.sendall(f"PATCH {path} HTTP/1.1\\r\\nHost: {host}\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: {size}\\r\\nConnection: close\\r\\n\\r\\n".encode())
        piece = bytes(range(256)) * 512
        start, sent = time.monotonic(), 0
        while sent < size:
            n = min(len(piece), size - sent)
            s.sendall(piece[:n])
            sent += n
            time.sleep(0.1)
        took = time.monotonic() - start
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        lines = data.decode(errors="replace").split("\\r\\n")
        print(lines[0], " ".join(l.lower() for l in lines if l.lower().startswith("range:")), f"{took:.2f}")

        """

    /// A body that follows a download the server waits on (no byte either way for 1.5 s,
    /// twice, with a 1 s idle timeout) is not cut.
    @Test func aBodyThatFollowsADownloadOutlivesTheTimeout() async throws {
        let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let digest = ContentHasher.digest(of: content)
        let fed = Mutex<FedPullThrough?>(nil)
        let s = try Server(timeouts: Self.short) { store in
            let pullThrough = FedPullThrough(blob: GrowingBlob(digest: digest, size: Int64(content.count), store: store))
            fed.withLock { $0 = pullThrough }
            return pullThrough
        }
        try await s.start()
        let blob = try #require(fed.withLock { $0 }).blob
        let ingest = try #require(try await s.server.api.store.claimDownload(digest))
        let out = "\(s.directory)/out"
        let client = Task { try await s.curl(["-N", "-o", out, "-w", "%{http_code}", "\(s.base)/v2/proxied/app/blobs/\(digest)"]) }
        for piece in stride(from: 0, to: content.count, by: 100_000) {
            try await Task.sleep(for: .milliseconds(1500))
            try ingest.write(Array(content[piece..<min(piece + 100_000, content.count)]))
            blob.advance(to: ingest.offset)
        }
        try ingest.commit(expected: digest, verified: { blob.finish() })
        let result = try await client.value
        #expect(result.status == 0 && result.output == "200", "\(result)")
        let got = try PosixFile.readAll(path: out, limit: 1 << 20)
        #expect(got.count == content.count && ContentHasher.digest(of: got) == digest)
        #expect(s.timeoutCloses == 0)
        await s.stop()
    }

    /// TLS: a client that completes the handshake and then sends nothing (openssl s_client)
    /// is closed at the idle timeout, not at the handshake timeout (10 s) or never.
    @Test func idleAfterTheHandshakeIsClosed() async throws {
        let s = try Server(timeouts: Self.short, tls: true)
        try await s.start()
        // s_client exits when the server closes; `timeout 20` would end it otherwise (124).
        let run = try await s.sh(
            "start=$(date +%s%N); timeout 20 openssl s_client -quiet -CAfile '\(s.directory)/server.pem' -connect 127.0.0.1:\(s.portNumber) "
                + "< <(sleep 12 2> /dev/null) > /dev/null 2>&1; rc=$?; echo \"$rc $(( ($(date +%s%N) - start) / 1000000 ))\"")
        let fields = run.output.trimmed().split(separator: " ")
        #expect(fields.first != "124", "s_client still connected after 20 s: \(run)")
        #expect((Int(fields.last ?? "") ?? .max) < 10_000, "closed only after \(fields.last ?? "?") ms")
        #expect(s.timeoutCloses == 1)
        await s.stop()
    }
}
