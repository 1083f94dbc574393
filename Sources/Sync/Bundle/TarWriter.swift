import OCICore

/// Writes a tar file front to back through a file descriptor: one entry at a time, its
/// header, then its data as it arrives (never whole in memory), then the padding. The
/// current entry can be rewound to its first data byte (a blob transfer that starts over).
public final class TarWriter {
    public let path: String
    private let fd: Int32
    /// Bytes written to the file so far.
    public private(set) var offset: Int64 = 0
    private var current: (name: String, size: Int64, dataStart: Int64)?

    /// Takes `fd` (open for writing, empty); the caller closes it.
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// What went wrong while writing.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        try PosixFile.pwriteAll(fd, bytes, at: offset, path: path)
        offset += Int64(bytes.count)
    }

    private func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Starts entry `name` of `size` bytes.
    public func begin(_ name: String, size: Int64, mtime: Int64 = 0) throws {
        guard current == nil else { throw Error(description: "tar entry \(current?.name ?? "") not finished") }
        try append(TarHeader(name: name, size: size, kind: .file, mtime: mtime).encode())
        current = (name, size, offset)
    }

    /// Bytes of the current entry written so far.
    public var entryOffset: Int64 { current.map { offset - $0.dataStart } ?? 0 }

    /// Appends data to the current entry.
    ///
    /// Throws ``Error`` when it would exceed the announced size.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let entry = current else { throw Error(description: "no tar entry open") }
        guard offset - entry.dataStart + Int64(bytes.count) <= entry.size else {
            throw Error(description: "\(entry.name): more than the \(entry.size) bytes announced")
        }
        try append(bytes)
    }

    /// Drops the data of the current entry written so far: it starts again at its first byte.
    public func rewindEntry() throws {
        guard let entry = current else { return }
        try PosixFile.truncate(fd, to: entry.dataStart, path: path)
        offset = entry.dataStart
    }

    /// Ends the current entry (its padding).
    ///
    /// Throws ``Error`` when fewer bytes than announced were written.
    public func end() throws {
        guard let entry = current else { return }
        let written = offset - entry.dataStart
        guard written == entry.size else {
            throw Error(description: "\(entry.name): \(written) bytes written, \(entry.size) announced")
        }
        current = nil
        try append([UInt8](repeating: 0, count: TarHeader.padding(entry.size)))
    }

    /// One whole small entry.
    public func add(_ name: String, _ bytes: [UInt8], mtime: Int64 = 0) throws {
        try begin(name, size: Int64(bytes.count), mtime: mtime)
        try bytes.withUnsafeBytes { try write($0) }
        try end()
    }

    /// The end-of-archive marker: two zero blocks.
    public func finish() throws {
        guard current == nil else { throw Error(description: "tar entry \(current?.name ?? "") not finished") }
        try append([UInt8](repeating: 0, count: 2 * TarHeader.blockSize))
    }
}
