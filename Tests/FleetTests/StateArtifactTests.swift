@testable import Fleet
import JSONCoding
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

enum StateArtifactTestError: Error { case cannotWrite(String) }

@Suite struct StateArtifactTests {
    @Test func crc32KnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    /// gunzip and tar (the system's) read the layer back; so does the edge's state reader.
    @Test(arguments: [0, 1, 511, 512, 70_000, 140_000])
    func layerReadsBackWithSystemTools(size: Int) throws {
        let document = (0..<size).map { UInt8(ascii: "a") &+ UInt8($0 % 26) }
        let artifact = StateArtifact(document: document, sha256: { _ in String(repeating: "0", count: 64) })
        let dir = TestEnvironment.makeTemporaryDirectory("fleet-artifact")
        defer { TestEnvironment.removeTree(dir) }
        try writeFile(dir + "/layer.tar.gz", artifact.layer)
        try writeFile(dir + "/expected.json", document)
        let listing = try Subprocess.run(["/bin/sh", "-c", "cd \(dir) && gzip -t layer.tar.gz && tar -tvzf layer.tar.gz"])
        #expect(listing.status == 0, "\(listing)")
        #expect(listing.output.contains("artifacts.json"))
        let compare = try Subprocess.run(["/bin/sh", "-c", "cd \(dir) && tar -xzOf layer.tar.gz artifacts.json | cmp - expected.json"])
        #expect(compare.status == 0, "\(compare)")
    }

    @Test func deterministicAndManifestNamesItsParts() throws {
        let document = Array(#"{"states":["a"]}"#.utf8)
        var hashes: [[UInt8]] = []
        let artifact = StateArtifact(document: document) { bytes in
            hashes.append(bytes)
            return String(hashes.count, radix: 16).padding(64)
        }
        let again = StateArtifact(document: document) { _ in "x" }
        #expect(artifact.layer == again.layer)
        let manifest = try JSON.parse(artifact.manifest)
        #expect(manifest["mediaType"] == .string(StateArtifact.manifestMediaType))
        #expect(manifest["config"]?["digest"] == .string(artifact.configDigest))
        guard case .array(let layers)? = manifest["layers"] else {
            Issue.record("no layers")
            return
        }
        #expect(layers.count == 1)
        #expect(layers.first?["size"] == .number(String(artifact.layer.count)))
        let config = try JSON.parse(artifact.config)
        #expect(config["rootfs"]?["type"] == .string("layers"))
    }

    func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        guard let file = fopen(path, "wb") else { throw StateArtifactTestError.cannotWrite(path) }
        defer { fclose(file) }
        #expect(bytes.isEmpty || fwrite(bytes, 1, bytes.count, file) == bytes.count)
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
