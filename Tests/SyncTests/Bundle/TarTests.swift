import OCICore
import Sync
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The bundle's tar writer and reader: round trips, pax for long names and sizes over
/// 8 GiB, and every refusal of the reader.
@Suite struct TarTests {
    /// Writes entries with `TarWriter`, returns the file path.
    func write(_ directory: String, _ body: (TarWriter) throws -> Void) throws -> String {
        let path = "\(directory)/t.tar"
        let fd = try PosixFile.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { PosixFile.close(fd) }
        let tar = TarWriter(fd: fd, path: path)
        try body(tar)
        return path
    }

    func entries(_ path: String) throws -> [(TarReader.Entry, [UInt8])] {
        let fd = try PosixFile.open(path, O_RDONLY)
        defer { PosixFile.close(fd) }
        let reader = try TarReader(fd: fd, path: path)
        var result: [(TarReader.Entry, [UInt8])] = []
        while let entry = try reader.next() {
            result.append((entry, try reader.readAll(limit: 1 << 20)))
        }
        return result
    }

    @Test func roundTripWithLongNameAndStreamedEntry() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let long = "blobs/" + String(repeating: "x", count: 150)
        let path = try write(directory) { tar in
            try tar.add("bundle.json", Array("{}".utf8))
            try tar.add(long, Array("long".utf8))
            try tar.begin("streamed", size: 1000)
            let chunk = [UInt8](repeating: 7, count: 600)
            try chunk.withUnsafeBytes { try tar.write($0) }
            try tar.rewindEntry()  // a transfer that starts over
            for _ in 0..<2 { try chunk.prefix(500).withUnsafeBytes { try tar.write($0) } }
            try tar.end()
            try tar.finish()
        }
        let read = try entries(path)
        #expect(read.map(\.0.name) == ["bundle.json", long, "streamed"])
        #expect(read[1].1 == Array("long".utf8))
        #expect(read[2].1 == [UInt8](repeating: 7, count: 1000))
        // GNU tar reads what we write.
        if TestEnvironment.hasProgram("tar") {
            let listing = try Subprocess.run(["tar", "tf", path])
            #expect(listing.status == 0)
            #expect(listing.output.contains(long), "\(listing.output)")
        }
    }

    @Test func sizesOver8GiBUseAPaxRecord() throws {
        let size: Int64 = 9 << 30
        let blocks = TarHeader(name: "blobs/sha256/big", size: size, kind: .file).encode()
        #expect(blocks.count == 3 * 512, "pax header, its record block, the ustar header")
        let pax = try #require(try TarHeader.decode(blocks[0..<512]))
        #expect(pax.kind == .paxExtended)
        let body = String(decoding: blocks[512..<(512 + Int(pax.size))], as: UTF8.self)
        // The record counts its own length: "19 size=9663676416\n" is 19 bytes.
        #expect(body == "19 size=9663676416\n")
        let header = try #require(try TarHeader.decode(blocks[1024..<1536]))
        #expect(header.size == TarHeader(name: "", size: 0, kind: .file).size + 0o77777777777)
    }

    @Test func writerRefusesMoreOrFewerBytesThanAnnounced() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        _ = try write(directory) { tar in
            try tar.begin("a", size: 2)
            #expect(throws: TarWriter.Error.self) { try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try tar.write($0) } }
            try [UInt8](repeating: 1, count: 1).withUnsafeBytes { try tar.write($0) }
            #expect(throws: TarWriter.Error.self) { try tar.end() }
        }
    }

    @Test(arguments: [
        ("../escape", "climbs out"), ("/etc/passwd", "absolute"), ("blobs/../../x", "climbs out"), ("a//b", "malformed"),
        ("./", "empty"),
    ])
    func unsafeNamesAreRefused(name: String, why: String) {
        let error = #expect(throws: TarReader.Error.self) { try TarReader.checkedName(name) }
        #expect(error?.description.contains(why) == true, "\(name): \(String(describing: error))")
    }

    @Test func safeNamesAreNormalised() throws {
        #expect(try TarReader.checkedName("./blobs/sha256/") == "blobs/sha256")
        #expect(try TarReader.checkedName("index.json") == "index.json")
    }

    /// A hand-made header of `type` named `name`, as another tool might write it.
    func rawEntry(_ name: String, type: UInt8, size: Int64 = 0) -> [UInt8] {
        var header = TarHeader(name: name, size: size, kind: .other(type)).encode()
        if type == UInt8(ascii: "0") { header = TarHeader(name: name, size: size, kind: .file).encode() }
        return header + [UInt8](repeating: 0x41, count: Int(size)) + [UInt8](repeating: 0, count: TarHeader.padding(size))
    }

    @Test(arguments: [
        (UInt8(ascii: "1"), "hard link"), (UInt8(ascii: "2"), "symbolic link"), (UInt8(ascii: "3"), "device"),
        (UInt8(ascii: "4"), "device"), (UInt8(ascii: "6"), "FIFO"), (UInt8(ascii: "L"), "GNU long name"),
    ])
    func linksDevicesAndFIFOsAreRefused(type: UInt8, what: String) throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        TestEnvironment.write("\(directory)/t.tar", "")
        let bytes = rawEntry("x", type: type) + [UInt8](repeating: 0, count: 1024)
        let fd = try PosixFile.open("\(directory)/t.tar", O_WRONLY)
        try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: "t.tar") }
        PosixFile.close(fd)
        let error = #expect(throws: TarReader.Error.self) { _ = try entries("\(directory)/t.tar") }
        #expect(error?.description.contains(what) == true, "\(String(describing: error))")
    }

    @Test func truncatedAndDamagedArchivesAreRefused() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let path = try write(directory) { tar in
            try tar.add("a", [UInt8](repeating: 1, count: 3000))
            try tar.finish()
        }
        let whole = try PosixFile.readAll(path: path, limit: 1 << 20)
        func check(_ bytes: [UInt8], _ why: String) throws {
            let cut = "\(directory)/cut.tar"
            try PosixFile.writeAtomically(cut, bytes, durable: false)
            let error = #expect(throws: TarReader.Error.self) { _ = try entries(cut) }
            #expect(error?.description.contains(why) == true, "\(String(describing: error))")
        }
        try check(Array(whole.prefix(2000)), "truncated")
        try check(Array(whole.prefix(512 + 3072)), "truncated")  // no end-of-archive marker
        var damaged = whole
        damaged[10] ^= 0x01
        try check(damaged, "checksum")
    }
}
