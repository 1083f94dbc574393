import OCICore
/// The last `limit` bytes a process wrote, plus a count of everything it wrote: a hook that
/// prints a gigabyte costs `limit` bytes of memory and nothing on disk.
public struct OutputTail: Sendable, Equatable {
    public let limit: Int
    /// Every byte written, kept or not.
    public private(set) var totalBytes: Int64 = 0
    private var ring: [UInt8] = []
    /// Where the next byte goes once the ring is full.
    private var next = 0

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        totalBytes += Int64(bytes.count)
        guard limit > 0 else { return }
        var input = bytes[...]
        if input.count >= limit {
            ring = Array(input.suffix(limit))
            next = 0
            return
        }
        if ring.count < limit {
            let room = limit - ring.count
            ring.append(contentsOf: input.prefix(room))
            input = input.dropFirst(room)
        }
        for byte in input {
            ring[next] = byte
            next = (next + 1) % limit
        }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The kept bytes, oldest first.
    public var bytes: [UInt8] {
        guard ring.count == limit, next > 0 else { return ring }
        return Array(ring[next...] + ring[..<next])
    }

    /// Bytes written but no longer kept.
    public var droppedBytes: Int64 { totalBytes - Int64(ring.count) }

    /// The kept bytes as text (invalid UTF-8, e.g. a character cut in half, becomes U+FFFD).
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}
