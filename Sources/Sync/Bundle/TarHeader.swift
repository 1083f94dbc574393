/// One 512-byte POSIX ustar header, with the pax extended records (`path`, `size`) that
/// carry what ustar cannot: names over 100 bytes and sizes of 8 GiB and more.
/// No Foundation; both directions, for the bundle's streaming writer and reader.
public struct TarHeader: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file
        case directory
        /// A pax extended header for the next entry (`x`).
        case paxExtended
        /// A pax global header (`g`): its records are ignored.
        case paxGlobal
        /// Anything else (links, devices, FIFOs, GNU long names): refused by the reader.
        case other(UInt8)
    }

    public var name: String
    public var size: Int64
    public var kind: Kind
    public var mode: Int64 = 0o644
    public var mtime: Int64 = 0

    public static let blockSize = 512
    /// The largest size the 12-byte octal field holds (8 GiB - 1).
    static let maxOctalSize: Int64 = 0o77777777777

    public init(name: String, size: Int64, kind: Kind, mtime: Int64 = 0) {
        self.name = name
        self.size = size
        self.kind = kind
        self.mtime = mtime
    }

    /// What a reader found wrong.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Writing

    /// The blocks for this entry's header: a pax header first when the name or size does
    /// not fit ustar, then the ustar header.
    public func encode() -> [UInt8] {
        var records: [(String, String)] = []
        let nameBytes = Array(name.utf8)
        if nameBytes.count > 100 { records.append(("path", name)) }
        if size > Self.maxOctalSize { records.append(("size", String(size))) }
        var out: [UInt8] = []
        if !records.isEmpty {
            var body: [UInt8] = []
            for (key, value) in records { body += Self.paxRecord(key, value) }
            out += Self.ustar(name: Array("././@PaxHeader".utf8), size: Int64(body.count), type: UInt8(ascii: "x"), mode: 0o644, mtime: mtime)
            out += body
            out += [UInt8](repeating: 0, count: Self.padding(Int64(body.count)))
        }
        let type: UInt8 =
            switch kind {
            case .file: UInt8(ascii: "0")
            case .directory: UInt8(ascii: "5")
            case .paxExtended: UInt8(ascii: "x")
            case .paxGlobal: UInt8(ascii: "g")
            case .other(let byte): byte
            }
        out += Self.ustar(
            name: Array(nameBytes.prefix(100)), size: min(size, Self.maxOctalSize), type: type, mode: mode, mtime: mtime)
        return out
    }

    /// `"<length> key=value\n"`, the length counting itself.
    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let rest = " \(key)=\(value)\n".utf8.count
        var length = rest + 1
        while String(length).utf8.count + rest != length { length += 1 }
        return Array("\(length) \(key)=\(value)\n".utf8)
    }

    /// Zero bytes after `size` bytes of data up to the next block.
    public static func padding(_ size: Int64) -> Int {
        let rest = Int(size % Int64(blockSize))
        return rest == 0 ? 0 : blockSize - rest
    }

    static func ustar(name: [UInt8], size: Int64, type: UInt8, mode: Int64, mtime: Int64) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) {
            for (i, byte) in bytes.enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = Array(String(value, radix: 8).utf8)
            return [UInt8](repeating: UInt8(ascii: "0"), count: max(0, width - 1 - digits.count)) + digits + [0]
        }
        put(name, at: 0)
        put(octal(mode, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(max(0, mtime), width: 12), at: 136)
        block[156] = type
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        put(Array("root".utf8), at: 265)
        put(Array("root".utf8), at: 297)
        // The checksum is computed with its own field as eight spaces.
        put([UInt8](repeating: 0x20, count: 8), at: 148)
        let sum = block.reduce(0) { $0 + Int64($1) }
        put(octal(sum, width: 7) + [0x20], at: 148)
        return block
    }

    // MARK: Reading

    /// Parses one header block; nil for an all-zero block (the end-of-archive marker).
    ///
    /// Throws ``Error`` for a bad checksum, an unknown format or a malformed number.
    public static func decode(_ block: ArraySlice<UInt8>) throws(Error) -> TarHeader? {
        guard block.count == blockSize else { throw Error("short header block") }
        let b = Array(block)
        if b.allSatisfy({ $0 == 0 }) { return nil }
        let magic = Array(b[257..<263])
        guard magic == Array("ustar".utf8) + [0] || magic == Array("ustar ".utf8) else {
            throw Error("not a ustar header (an unknown tar format, or not a tar file)")
        }
        let stored = try number(b[148..<156], field: "checksum")
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (i, byte) in b.enumerated() {
            let value = (148..<156).contains(i) ? 0x20 : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else { throw Error("header checksum mismatch (a damaged tar)") }
        var name = string(b[0..<100])
        let prefix = magic == Array("ustar".utf8) + [0] ? string(b[345..<500]) : ""
        if !prefix.isEmpty { name = "\(prefix)/\(name)" }
        let size = try number(b[124..<136], field: "size")
        guard size >= 0 else { throw Error("negative size for \(name)") }
        let type = b[156]
        let kind: Kind =
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
            case UInt8(ascii: "5"): .directory
            case UInt8(ascii: "x"): .paxExtended
            case UInt8(ascii: "g"): .paxGlobal
            default: .other(type)
            }
        var header = TarHeader(name: name, size: size, kind: kind, mtime: (try? number(b[136..<148], field: "mtime")) ?? 0)
        header.mode = (try? number(b[100..<108], field: "mode")) ?? 0
        return header
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// An octal field (NUL/space padded), or GNU's base-256 form for large values.
    static func number(_ bytes: ArraySlice<UInt8>, field: String) throws(Error) -> Int64 {
        if let first = bytes.first, first & 0x80 != 0 {
            guard first == 0x80 else { throw Error("negative or oversized \(field) field") }
            var value: Int64 = 0
            for byte in bytes.dropFirst() {
                guard value <= Int64.max >> 8 else { throw Error("oversized \(field) field") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value <= Int64.max >> 3 else { throw Error("oversized \(field) field") }
                value = value << 3 | Int64(byte - UInt8(ascii: "0"))
                seenDigit = true
            case 0, 0x20:
                if seenDigit { return value }
            default:
                throw Error("malformed \(field) field")
            }
        }
        return value
    }

    /// The `path` and `size` records of a pax extended header's body.
    ///
    /// Throws ``Error`` when a record is malformed.
    static func paxRecords(_ body: [UInt8]) throws(Error) -> [String: String] {
        var result: [String: String] = [:]
        var index = 0
        while index < body.count {
            guard let space = body[index...].firstIndex(of: 0x20) else { throw Error("malformed pax record") }
            guard let length = Int(String(decoding: body[index..<space], as: UTF8.self)), length > 0,
                index + length <= body.count, body[index + length - 1] == 0x0a
            else { throw Error("malformed pax record") }
            let record = body[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else { throw Error("malformed pax record") }
            result[String(decoding: record[record.startIndex..<equals], as: UTF8.self)] =
                String(decoding: record[(equals + 1)...], as: UTF8.self)
            index += length
        }
        return result
    }
}
