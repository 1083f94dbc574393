import Testing

@testable import OCICore

@Suite struct UTCTimeTests {
    @Test func formatsAsGoMarshalsTime() {
        #expect(UTCTime.rfc3339(0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.rfc3339(1_796_487_612) == "2026-12-05T16:20:12Z")
        #expect(UTCTime.rfc3339(milliseconds: 1_796_487_612_034) == "2026-12-05T16:20:12.034Z")
        #expect(UTCTime.rfc3339(milliseconds: 1_500) == "1970-01-01T00:00:01.500Z")
        #expect(UTCTime.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(UTCTime.compact(1_796_487_612) == "20261205T162012Z")
    }

    @Test func parsesZuluFractionsAndOffsets() {
        #expect(UTCTime.parse("2026-12-05T16:20:12Z") == 1_796_487_612)
        #expect(UTCTime.parse("2026-12-05T16:20:12.034Z") == 1_796_487_612)
        #expect(UTCTime.parse("2026-12-05T17:20:12+01:00") == 1_796_487_612)
        #expect(UTCTime.parse("2026-12-05T11:50:12.5-04:30") == 1_796_487_612)
        #expect(UTCTime.parse("2024-02-29T00:00:00Z") == 1_709_164_800)
        for seconds: Int64 in [0, 951_782_400, 1_796_487_612, 4_102_444_799] {
            #expect(UTCTime.parse(UTCTime.rfc3339(seconds)) == seconds)
        }
    }

    @Test func refusesWhatIsNotRFC3339() {
        for text in [
            "", "2026-12-05", "2026-12-05 16:20:12Z", "2026-13-05T16:20:12Z", "2026-12-05T24:00:00Z",
            "2026-12-05T16:20:12", "2026-12-05T16:20:12.Z", "2026-12-05T16:20:12+0100", "2026-12-05T16:20:12Zjunk",
            "２026-12-05T16:20:12Z",
        ] {
            #expect(UTCTime.parse(text) == nil, "\(text)")
        }
    }

    @Test func percentEncodingRoundTrips() {
        #expect(PercentEncoding.encode("name=robot$edge-01 a/b~") == "name%3Drobot%24edge-01%20a%2Fb~")
        #expect(PercentEncoding.decode("name%3Drobot%24edge-01%20a%2Fb~") == "name=robot$edge-01 a/b~")
        #expect(PercentEncoding.decode("a+b%2Bc", plusIsSpace: true) == "a b+c")
        #expect(PercentEncoding.decode("a+b") == "a+b")
        #expect(PercentEncoding.decode("%zz") == nil)
        #expect(PercentEncoding.decode("%") == nil)
        #expect(PercentEncoding.decode("%ff") == nil, "invalid UTF-8")
    }
}
