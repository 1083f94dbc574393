import OCICore
import CZlib

/// gzip and tar, enough to read a Harbor Satellite state artifact's layer (a small tar.gz
/// holding one JSON document).
enum Archive {
    enum Error: Swift.Error, CustomStringConvertible {
        case gzip(String)
        case tar(String)

        var description: String {
            switch self {
            case .gzip(let message): "not a valid gzip stream: \(message)"
            case .tar(let message): "not a valid tar archive: \(message)"
            }
        }
    }

    /// Inflates a gzip stream, refusing output above `limit` bytes.
    static func gunzip(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header.
        guard czlib_inflate_init2(&stream, 16 + 15) == Z_OK else { throw Error.gzip("inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            while true {
                let result: Int32 = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                output.append(contentsOf: chunk[0..<produced])
                if output.count > limit { return Z_BUF_ERROR }
                if result == Z_STREAM_END { return Z_STREAM_END }
                if result != Z_OK { return result }
                if stream.avail_in == 0 && produced == 0 { return Z_DATA_ERROR }
            }
        }
        guard status == Z_STREAM_END else {
            throw Error.gzip(output.count > limit ? "larger than \(limit) bytes" : "zlib error \(status)")
        }
        return output
    }

    /// The regular files of a tar archive, by name.
    static func untar(_ data: [UInt8]) throws -> [(name: String, content: [UInt8])] {
        var files: [(String, [UInt8])] = []
        var offset = 0
        while offset + 512 <= data.count {
            let header = data[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { break }
            func field(_ start: Int, _ length: Int) -> String {
                let bytes = data[(offset + start)..<(offset + start + length)].prefix(while: { $0 != 0 })
                return String(decoding: bytes, as: UTF8.self)
            }
            var name = field(0, 100)
            let prefix = field(345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
            let sizeText = field(124, 12).trimmed(leading: false).trimmed(trailing: false)
            guard let size = Int(sizeText, radix: 8), size >= 0 else { throw Error.tar("bad size field \"\(sizeText)\"") }
            let type = data[offset + 156]
            let start = offset + 512
            guard start + size <= data.count else { throw Error.tar("truncated entry \(name)") }
            if type == UInt8(ascii: "0") || type == 0 {
                files.append((name, Array(data[start..<start + size])))
            }
            offset = start + (size + 511) / 512 * 512
        }
        return files
    }
}
