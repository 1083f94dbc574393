import JSONCoding

/// A state artifact as Ground Control pushes it: an image with one tar.gz layer holding
/// `artifacts.json`, as go-containerregistry's `crane.Image(map[string][]byte{"artifacts.json": …})`
/// builds it for Harbor Satellite (Docker schema 2 media types, a minimal image config).
///
/// The bytes are deterministic (tar mtime 0, gzip without a timestamp), so an unchanged
/// document gives an unchanged digest and a publisher can skip the push.
public struct StateArtifact: Sendable, Equatable {
    public static let fileName = "artifacts.json"
    public static let manifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
    public static let configMediaType = "application/vnd.docker.container.image.v1+json"
    public static let layerMediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// The `artifacts.json` document.
    public var document: [UInt8]
    /// The tar.gz layer.
    public var layer: [UInt8]
    public var layerDigest: String
    /// The image config (names the uncompressed tar's digest in `rootfs.diff_ids`).
    public var config: [UInt8]
    public var configDigest: String
    /// The image manifest.
    public var manifest: [UInt8]
    public var manifestDigest: String

    /// Builds the artifact for `document`.
    ///
    /// - Parameter sha256: the lower-case hex SHA-256 of its argument (each side brings its
    ///   own hashing: swift-crypto in ground-control, the hardware hash on the edge).
    public init(document: [UInt8], sha256: ([UInt8]) -> String) {
        self.document = document
        let tar = Self.tar(fileName: Self.fileName, content: document)
        layer = Gzip.stored(tar)
        layerDigest = "sha256:" + sha256(layer)
        let diffID = "sha256:" + sha256(tar)
        config = JSON.object([
            ("architecture", .string("")),
            ("os", .string("")),
            ("config", .object([])),
            ("rootfs", .object([("type", .string("layers")), ("diff_ids", .array([.string(diffID)]))])),
        ]).serialized()
        configDigest = "sha256:" + sha256(config)
        manifest = JSON.object([
            ("schemaVersion", .number("2")),
            ("mediaType", .string(Self.manifestMediaType)),
            (
                "config",
                .object([
                    ("mediaType", .string(Self.configMediaType)), ("size", .number(String(config.count))),
                    ("digest", .string(configDigest)),
                ])
            ),
            (
                "layers",
                .array([
                    .object([
                        ("mediaType", .string(Self.layerMediaType)), ("size", .number(String(layer.count))),
                        ("digest", .string(layerDigest)),
                    ])
                ])
            ),
        ]).serialized()
        manifestDigest = "sha256:" + sha256(manifest)
    }

    /// A POSIX ustar archive holding one regular file (mode 0644, owner 0, mtime 0).
    static func tar(fileName: String, content: [UInt8]) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, byte) in text.utf8.prefix(width).enumerated() { header[offset + i] = byte }
        }
        func octal(_ value: Int, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(fileName, at: 0, width: 100)
        put(octal(0o644, width: 8), at: 100, width: 7)
        put(octal(0, width: 8), at: 108, width: 7)
        put(octal(0, width: 8), at: 116, width: 7)
        put(octal(content.count, width: 12), at: 124, width: 11)
        put(octal(0, width: 12), at: 136, width: 11)
        put("        ", at: 148, width: 8)
        header[156] = UInt8(ascii: "0")
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(checksum, width: 7), at: 148, width: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        var out = header
        out += content
        out += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
        out += [UInt8](repeating: 0, count: 1024)
        return out
    }
}

/// gzip (RFC 1952) with stored deflate blocks: no compressor needed, readable by every
/// gunzip; state documents are a few kilobytes, so compression would gain nothing.
enum Gzip {
    static func stored(_ data: [UInt8]) -> [UInt8] {
        // No mtime, no name, OS = unknown: the same input always gives the same bytes.
        var out: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final = offset + length == data.count
            out.append(final ? 0x01 : 0x00)
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8((~length >> 8) & 0xff)]
            out += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        let crc = CRC32.checksum(data)
        let size = UInt32(truncatingIfNeeded: data.count)
        for value in [crc, size] {
            out += [UInt8(value & 0xff), UInt8((value >> 8) & 0xff), UInt8((value >> 16) & 0xff), UInt8(value >> 24)]
        }
        return out
    }
}

/// CRC-32 (IEEE 802.3, the polynomial gzip uses).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var c = UInt32(index)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
