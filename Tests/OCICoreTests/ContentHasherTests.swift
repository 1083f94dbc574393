import Testing

@testable import OCICore

@Suite struct ContentHasherTests {
    /// FIPS 180-2 vectors, through whichever backend this CPU gets.
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func vectors(input: String, hex: String) {
        for hardware in [true, false] {
            let hasher = ContentHasher(.sha256, hardware: hardware)
            hasher.update(Array(input.utf8))
            #expect(hasher.digest().hex == hex)
        }
    }

    @Test func millionAs() {
        let hasher = ContentHasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        #expect(hasher.digest().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// The hardware backend against mbedTLS on random data, in random-sized pieces that cross
    /// block boundaries, including a digest taken midway (the hasher keeps going).
    @Test func hardwareMatchesMbedTLS() {
        var generator = SystemRandomNumberGenerator()
        for length in [1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 65_537, 1_000_003] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let hardware = ContentHasher(.sha256, hardware: true)
            let software = ContentHasher(.sha256, hardware: false)
            var offset = 0
            while offset < data.count {
                let step = min(data.count - offset, Int.random(in: 1...5000, using: &generator))
                hardware.update(Array(data[offset..<offset + step]))
                software.update(Array(data[offset..<offset + step]))
                offset += step
                if offset == data.count / 2 { #expect(hardware.digest() == software.digest()) }
            }
            #expect(hardware.digest() == software.digest(), "length \(length)")
        }
    }

    @Test func backendIsReported() {
        #expect(["sha-ni", "armv8-ce", "mbedtls"].contains(ContentHasher.backend))
    }
}
