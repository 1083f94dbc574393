import Testing

@testable import SatelliteConfig

@Suite struct UnitsTests {
    @Test(arguments: [
        ("512MiB", Int64(512 << 20)), ("4GB", 4_000_000_000), ("1.5GiB", Int64(3 << 29)), ("1048576", 1_048_576),
        ("100 kB", 100_000), ("8gib", Int64(8) << 30), ("3TiB", Int64(3) << 40),
    ])
    func sizes(text: String, bytes: Int64) {
        #expect(Units.parseSize(text) == bytes)
    }

    @Test(arguments: ["", "MiB", "-5MiB", "12 parsecs", "1e3", "99999999999TiB"])
    func badSizes(text: String) {
        #expect(Units.parseSize(text) == nil)
    }

    @Test func rates() {
        #expect(Units.parseRate("2MB/s") == 2_000_000)
        #expect(Units.parseRate("16Mbit/s") == 2_000_000)
        #expect(Units.parseRate("512KiB/s") == 524_288)
        #expect(Units.parseRate("0") == 0)
        #expect(Units.parseRate("2MB") == nil)
        #expect(Units.parseRate("fast/s") == nil)
    }

    @Test func durations() {
        #expect(Units.parseDuration("30s") == 30_000_000_000)
        #expect(Units.parseDuration("5m") == 300_000_000_000)
        #expect(Units.parseDuration("1h30m") == 5_400_000_000_000)
        #expect(Units.parseDuration("250ms") == 250_000_000)
        #expect(Units.parseDuration("5") == nil)
        #expect(Units.parseDuration("5 minutes") == nil)
        #expect(Units.formatDuration(5_400_000_000_000) == "1h30m")
    }

    @Test func formatting() {
        #expect(Units.formatSize(512) == "512 B")
        #expect(Units.formatSize(1536) == "1.5 KiB")
        #expect(Units.formatSize(Int64(8) << 30) == "8 GiB")
    }
}
