import Logging
import NIOCore
import NIOPosix
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@testable import ContentStore
@testable import OCICore
@testable import TinyRegistry

/// The registry over real loopback, driven by curl (a real HTTP client).
@Suite(.serialized) struct RegistryServerTests {
    final class Harness: @unchecked Sendable {
        let directory = TestEnvironment.makeTemporaryDirectory("registry-test")
        let server: RegistryServer
        var base = ""

        init(useSendfile: Bool) throws {
            let store = try BlobStore(
                configuration: .init(
                    root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 16384, uploadTimeout: 3_600_000_000_000,
                    fsyncInterval: 1 << 20))
            server = RegistryServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: 64,
                    bufferSize: 16384, bufferCount: 4, useSendfile: useSendfile),
                api: RegistryAPI(store: store), logger: Logger(label: "test"))
        }

        func start() async throws {
            let address = try await server.start()
            base = "http://127.0.0.1:\(address.port ?? 0)"
        }

        /// curl with `arguments`; returns status code and body.
        func curl(_ arguments: [String]) throws -> (status: Int, body: String, headers: String) {
            let headerFile = "\(directory)/headers-\(PosixFile.randomToken())"
            let result = try Subprocess.run(
                ["curl", "-s", "-D", headerFile, "-o", "/dev/stdout", "-w", "\n%{http_code}"] + arguments, timeout: 120)
            let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
            let status = Int(lines.last ?? "") ?? 0
            let body = lines.dropLast().joined(separator: "\n")
            let headers = TestEnvironment.read(headerFile) ?? ""
            return (status, body, headers)
        }

        func header(_ headers: String, _ name: String) -> String? {
            for line in headers.split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                    return parts[1].trimmed()
                }
            }
            return nil
        }

        func stop() async {
            await server.shutdown()
            TestEnvironment.removeTree(directory)
        }
    }

    /// The watchdog's liveness check: a blocked event loop or a blocked I/O pool fails it
    /// within the timeout, and it passes again once they are free.
    @Test func livenessCheck() async throws {
        let harness = try Harness(useSendfile: true)
        try await harness.start()
        #expect(await harness.server.isResponsive(timeout: .seconds(5)))

        // The loop is blocked for 3 s: an answer well before that (the check's timeout is
        // 300 ms; 2.5 s leaves room for a loaded machine) shows the check did not wait for it.
        harness.server.group.next().execute { usleep(3_000_000) }
        let start = ContinuousClock.now
        #expect(await !harness.server.isResponsive(timeout: .milliseconds(300)), "a blocked event loop fails the check")
        #expect(ContinuousClock.now - start < .milliseconds(2500), "within its timeout, not when the loop is free")
        try await Task.sleep(for: .seconds(3.5))
        #expect(await harness.server.isResponsive(timeout: .seconds(5)))

        // Both I/O threads busy: the pool's probe waits.
        for _ in 0..<2 { _ = harness.server.pool.runIfActive(eventLoop: harness.server.group.next()) { usleep(1_500_000) } }
        #expect(await !harness.server.isResponsive(timeout: .milliseconds(300)), "a blocked I/O pool fails the check")
        try await Task.sleep(for: .seconds(2))
        #expect(await harness.server.isResponsive(timeout: .seconds(5)))
        await harness.stop()
        #expect(await harness.server.isResponsive(timeout: .milliseconds(100)), "stopped: nothing to check")
    }

    @Test(arguments: [true, false])
    func chunkedPushPullAndRanges(useSendfile: Bool) async throws {
        let h = try Harness(useSendfile: useSendfile)
        try await h.start()
        defer { Task { await h.stop() } }
        let blob = "\(h.directory)/blob"
        _ = try Subprocess.run(["sh", "-c", "head -c 300000 /dev/urandom > \(blob)"])
        let digest = "sha256:" + (try Subprocess.run(["sh", "-c", "sha256sum \(blob) | cut -d' ' -f1"]).output.trimmed())
        _ = try Subprocess.run(["sh", "-c", "head -c 100000 \(blob) > \(blob).1; tail -c 200000 \(blob) > \(blob).2"])

        let start = try h.curl(["-X", "POST", "\(h.base)/v2/edge/app/blobs/uploads/"])
        #expect(start.status == 202)
        let location = try #require(h.header(start.headers, "Location"))
        let first = try h.curl([
            "-X", "PATCH", "-H", "Content-Type: application/octet-stream", "-H", "Content-Range: 0-99999",
            "--data-binary", "@\(blob).1", "\(h.base)\(location)",
        ])
        #expect(first.status == 202)
        #expect(h.header(first.headers, "Range") == "0-99999")
        // Out of order: the session is at 100000, not 5.
        let wrong = try h.curl([
            "-X", "PATCH", "-H", "Content-Range: 5-200004", "--data-binary", "@\(blob).2", "\(h.base)\(location)",
        ])
        #expect(wrong.status == 416)
        let finish = try h.curl([
            "-X", "PUT", "-H", "Content-Range: 100000-299999", "--data-binary", "@\(blob).2",
            "\(h.base)\(location)?digest=\(digest)",
        ])
        #expect(finish.status == 201)
        #expect(h.header(finish.headers, "Docker-Content-Digest") == digest)

        let pulled = "\(h.directory)/pulled"
        let pull = try Subprocess.run(["curl", "-sf", "-o", pulled, "\(h.base)/v2/edge/app/blobs/\(digest)"])
        #expect(pull.status == 0)
        #expect(try Subprocess.run(["cmp", blob, pulled]).status == 0)

        let range = try h.curl(["-H", "Range: bytes=1000-1999", "-o", "\(pulled).r", "\(h.base)/v2/edge/app/blobs/\(digest)"])
        #expect(range.status == 206)
        #expect(h.header(range.headers, "Content-Range") == "bytes 1000-1999/300000")
        let bad = try h.curl(["-H", "Range: bytes=400000-", "\(h.base)/v2/edge/app/blobs/\(digest)"])
        #expect(bad.status == 416)
        // Another repository does not see the blob.
        #expect(try h.curl(["-I", "\(h.base)/v2/other/blobs/\(digest)"]).status == 404)
    }

    @Test func manifestsTagsAndErrors() async throws {
        let h = try Harness(useSendfile: true)
        try await h.start()
        defer { Task { await h.stop() } }
        let config = #"{"architecture":"amd64","os":"linux"}"#
        let configFile = "\(h.directory)/config"
        TestEnvironment.write(configFile, config)
        let configDigest = "sha256:" + (try Subprocess.run(["sh", "-c", "sha256sum \(configFile) | cut -d' ' -f1"]).output.trimmed())
        let monolithic = try h.curl([
            "-X", "POST", "--data-binary", "@\(configFile)", "\(h.base)/v2/edge/app/blobs/uploads/?digest=\(configDigest)",
        ])
        #expect(monolithic.status == 201)

        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.utf8.count)},"layers":[]}
            """
        let manifestFile = "\(h.directory)/manifest"
        TestEnvironment.write(manifestFile, manifest)
        for tag in ["v3", "v1", "v2"] {
            let put = try h.curl([
                "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifestFile)",
                "\(h.base)/v2/edge/app/manifests/\(tag)",
            ])
            #expect(put.status == 201)
        }
        let page = try h.curl(["\(h.base)/v2/edge/app/tags/list?n=2"])
        #expect(page.body.contains(#""tags":["v1","v2"]"#), "\(page.body)")
        #expect(h.header(page.headers, "Link")?.contains("last=v2") == true)
        let get = try h.curl(["\(h.base)/v2/edge/app/manifests/v1"])
        #expect(get.status == 200)
        #expect(get.body == manifest)
        #expect(h.header(get.headers, "Content-Type") == "application/vnd.oci.image.manifest.v1+json")

        // A manifest naming a blob the repository does not have.
        let missing = manifest.replacingFirst(configDigest, with: "sha256:" + String(repeating: "0", count: 64))
        TestEnvironment.write(manifestFile, missing)
        let rejected = try h.curl([
            "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifestFile)",
            "\(h.base)/v2/edge/app/manifests/broken",
        ])
        #expect(rejected.status == 400)
        #expect(rejected.body.contains("MANIFEST_BLOB_UNKNOWN"))

        // Oversized and malformed manifests.
        _ = try Subprocess.run(["sh", "-c", "head -c 5000000 /dev/zero > \(h.directory)/huge"])
        let huge = try h.curl(["-X", "PUT", "--data-binary", "@\(h.directory)/huge", "\(h.base)/v2/edge/app/manifests/huge"])
        #expect(huge.status == 413)
        TestEnvironment.write(manifestFile, "{not json")
        let malformed = try h.curl(["-X", "PUT", "--data-binary", "@\(manifestFile)", "\(h.base)/v2/edge/app/manifests/bad"])
        #expect(malformed.status == 400)
        #expect(malformed.body.contains("MANIFEST_INVALID"))

        // Traversal never reaches the disk, and the server keeps serving.
        let traversal = try h.curl(["--path-as-is", "\(h.base)/v2/../../etc/passwd/manifests/latest"])
        #expect((400..<500).contains(traversal.status))
        let encoded = try h.curl(["\(h.base)/v2/edge%2F..%2F..%2Fx/manifests/latest"])
        #expect((400..<500).contains(encoded.status))
        #expect(try h.curl(["\(h.base)/v2/"]).status == 200)
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        let parts = split(separator: Substring(target), maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return self }
        return parts[0] + replacement + parts[1]
    }
}
