import Testing
import TestSupport
import ContentStore
import OCICore

@testable import Sync

@Suite struct ProtocolParsingTests {
    @Test func headerValuesLoseTheirLineEnd() {
        // curl hands header lines over with "\r\n", which Swift reads as one Character.
        #expect("sha256:abc\r\n".trimmed(leading: false) == "sha256:abc")
        #expect("bytes 5-9/10\r\n".trimmed(leading: false) == "bytes 5-9/10")
    }

    @Test func contentRanges() {
        let range = ContentRange("bytes 100-199/1000\r\n")
        #expect(range?.start == 100)
        #expect(range?.end == 199)
        #expect(range?.total == 1000)
        #expect(ContentRange("bytes 100-199/*")?.total == nil)
        #expect(ContentRange("items 1-2/3") == nil)
        #expect(ContentRange("bytes x-y/z") == nil)
    }

    @Test func bearerChallenges() {
        let challenge = Challenge(#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#)
        #expect(challenge?.scheme == "bearer")
        #expect(challenge?.parameters["realm"] == "https://auth.example.com/token")
        #expect(challenge?.parameters["service"] == "registry.example.com")
        #expect(challenge?.parameters["scope"] == "repository:a/b:pull")
        #expect(Challenge(#"Basic realm="Registry Realm""#)?.scheme == "basic")
        #expect(Challenge("") == nil)
    }

    @Test func base64AndPercentEncoding() {
        #expect(Base64.encode(Array("robot$edge-01:s3cr3t".utf8)) == "cm9ib3QkZWRnZS0wMTpzM2NyM3Q=")
        #expect(Base64.encode(Array("a".utf8)) == "YQ==")
        #expect(PercentEncoding.encode("repository:a/b:pull") == "repository%3Aa%2Fb%3Apull")
    }

    @Test func harborRepositoriesLoseTheirHost() {
        #expect(DesiredStateSource.stripRegistryHost("harbor.example.com/proj/app") == "proj/app")
        #expect(DesiredStateSource.stripRegistryHost("https://harbor.example.com:8443/proj/app") == "proj/app")
        #expect(DesiredStateSource.stripRegistryHost("localhost/proj/app") == "proj/app")
        #expect(DesiredStateSource.stripRegistryHost("proj/app") == "proj/app")
    }

    @Test func imageLists() throws {
        let list = try DesiredStateSource.parseImageList(Array(#"["a/b:1", "c@sha256:\#(String(repeating: "0", count: 64))"]"#.utf8), source: "t")
        #expect(list.count == 2)
        let wrapped = try DesiredStateSource.parseImageList(Array(#"{"images": ["x:y"]}"#.utf8), source: "t")
        #expect(wrapped.first?.tag == "y")
        #expect(throws: SyncError.self) { try DesiredStateSource.parseImageList(Array("[1]".utf8), source: "t") }
    }

    @Test func tarGzipRoundTrip() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        TestEnvironment.write("\(directory)/artifacts.json", #"{"states":["satellite/group-state/g1/state:latest"]}"#)
        _ = try Subprocess.run(["tar", "-C", directory, "-czf", "\(directory)/layer.tar.gz", "artifacts.json"])
        let bytes = try PosixFile.readAll(path: "\(directory)/layer.tar.gz", limit: 1 << 20)
        let files = try Archive.untar(Archive.gunzip(bytes, limit: 1 << 20))
        #expect(files.map(\.name) == ["artifacts.json"])
        #expect(String(decoding: files[0].content, as: UTF8.self).contains("group-state"))
        #expect(throws: Archive.Error.self) { try Archive.gunzip(Array("not gzip".utf8), limit: 100) }
    }
}
