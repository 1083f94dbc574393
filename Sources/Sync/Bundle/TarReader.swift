import OCICore

/// Reads a tar file front to back in one pass through one bounded buffer. Each entry's
/// name is checked before the caller sees it: absolute paths, `..` components, empty
/// names, links, devices, FIFOs and unknown entry types are refused, so nothing in an
/// archive can name a place outside the importer's control. pax `path`/`size` records
/// apply; GNU long-name entries are refused (ustar + pax is the format we write).
public final class TarReader {
    /// One entry: its name (normalised: no leading `./`), size and kind.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var size: Int64
        public var isDirectory: Bool
        /// File offset of its first data byte.
        public var dataOffset: Int64
    }

    /// Why the archive was refused.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public let path: String
    private let fd: Int32
    /// Total size of the file (reads past it are a truncated archive).
    public let fileSize: Int64
    /// The next byte to read.
    public private(set) var offset: Int64 = 0
    private var entry: Entry?
    private var finished = false

    /// Takes `fd` (open for reading); the caller closes it.
    public init(fd: Int32, path: String) throws {
        self.fd = fd
        self.path = path
        fileSize = try PosixFile.status(fd: fd, path: path).size
    }

    /// Bytes of the current entry not read yet.
    public var remaining: Int64 { entry.map { $0.dataOffset + $0.size - offset } ?? 0 }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: offset, path: path) }
        guard n == count else { throw Error("truncated: the file ends at byte \(offset + Int64(n)) inside an entry") }
        offset += Int64(count)
        return bytes
    }

    /// The next entry, after the rest of the current one; nil at the end-of-archive marker.
    ///
    /// Throws ``Error`` for a truncated or damaged archive or a refused entry.
    public func next() throws -> Entry? {
        if finished { return nil }
        if let entry {
            offset = entry.dataOffset + entry.size + Int64(TarHeader.padding(entry.size))
            self.entry = nil
        }
        var pax: [String: String] = [:]
        while true {
            guard offset + Int64(TarHeader.blockSize) <= fileSize else {
                throw Error("truncated: the file ends at byte \(fileSize) without the end-of-archive marker")
            }
            let block = try readExactly(TarHeader.blockSize)
            let decoded: TarHeader?
            do {
                decoded = try TarHeader.decode(block[...])
            } catch {
                throw Error("entry header at byte \(offset - Int64(TarHeader.blockSize)): \(error)")
            }
            guard var header = decoded else {
                finished = true
                return nil
            }
            switch header.kind {
            case .paxExtended, .paxGlobal:
                guard header.size <= 1 << 20 else { throw Error("pax header of \(header.size) bytes (at most 1 MiB)") }
                let body = try readExactly(Int(header.size))
                offset += Int64(TarHeader.padding(header.size))
                if header.kind == .paxExtended {
                    do {
                        pax.merge(try TarHeader.paxRecords(body)) { $1 }
                    } catch {
                        throw Error("\(error)")
                    }
                }
                continue
            case .other(let type):
                let what =
                    switch type {
                    case UInt8(ascii: "1"): "a hard link"
                    case UInt8(ascii: "2"): "a symbolic link"
                    case UInt8(ascii: "3"), UInt8(ascii: "4"): "a device"
                    case UInt8(ascii: "6"): "a FIFO"
                    case UInt8(ascii: "L"), UInt8(ascii: "K"): "a GNU long name"
                    default: "an entry of type \(String(decoding: [type], as: UTF8.self))"
                    }
                throw Error("\(header.name) is \(what): only files and directories are accepted")
            case .file, .directory:
                break
            }
            if let name = pax["path"] { header.name = name }
            if let text = pax["size"] {
                guard let size = Int64(text), size >= 0 else { throw Error("\(header.name): malformed pax size \(text)") }
                header.size = size
            }
            let name = try Self.checkedName(header.name)
            if header.kind == .directory { header.size = 0 }
            guard offset + header.size <= fileSize else {
                throw Error("truncated: \(name) needs \(header.size) bytes, the file ends \(fileSize - offset) bytes later")
            }
            let next = Entry(name: name, size: header.size, isDirectory: header.kind == .directory, dataOffset: offset)
            entry = next
            return next
        }
    }

    /// `name` without a leading `./` or trailing `/`; refuses absolute names, `..`
    /// components, empty names and NUL or backslash characters.
    ///
    /// Throws ``Error`` naming the entry.
    public static func checkedName(_ raw: String) throws -> String {
        var name = Substring(raw)
        while name.hasPrefix("./") { name = name.dropFirst(2) }
        while name.hasSuffix("/") { name = name.dropLast() }
        guard !raw.hasPrefix("/") else { throw Error("entry \"\(raw)\" has an absolute path") }
        guard !name.isEmpty, name != "." else { throw Error("entry \"\(raw)\" has an empty name") }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains("..") else { throw Error("entry \"\(raw)\" climbs out of the archive (..)") }
        guard !parts.contains(where: \.isEmpty), !name.contains("\\"), !name.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { throw Error("entry \"\(raw)\" has a malformed name") }
        return String(name)
    }

    /// Reads up to `buffer.count` bytes of the current entry; 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = Int(min(Int64(buffer.count), remaining))
        guard want > 0 else { return 0 }
        let n = try PosixFile.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset, path: path)
        guard n == want else { throw Error("truncated: the file ends at byte \(offset + Int64(n))") }
        offset += Int64(n)
        return n
    }

    /// Skips `count` bytes of the current entry without reading them.
    public func skip(_ count: Int64) {
        offset += max(0, min(count, remaining))
    }

    /// The whole current entry, when it is at most `limit` bytes.
    ///
    /// Throws ``Error`` when it is larger.
    public func readAll(limit: Int) throws -> [UInt8] {
        guard let entry, remaining <= Int64(limit) else {
            throw Error("\(entry?.name ?? "entry") is larger than \(limit) bytes")
        }
        return try readExactly(Int(remaining))
    }
}
