import JSONCoding
import Testing

@Suite struct JSONCoderTests {
    struct Sample: Codable, Equatable {
        struct Inner: Codable, Equatable {
            var digest: String
            var size: Int64
        }
        var name: String
        var count: Int
        var ratio: Double
        var flag: Bool
        var optional: String?
        var items: [Inner]
        var map: [String: Int]
    }

    @Test func roundTrip() throws {
        let sample = Sample(
            name: "a \"quoted\" \\ name\n\u{1F680}", count: -3, ratio: 0.25, flag: true, optional: nil,
            items: [.init(digest: "sha256:ab", size: Int64.max)], map: ["x": 1])
        let bytes = try JSONCoder.encode(sample)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains("optional"), "nil optionals are left out: \(text)")
        #expect(text.contains("9223372036854775807"), "64-bit integers keep every digit")
        #expect(try JSONCoder.decode(Sample.self, from: bytes) == sample)
    }

    @Test func parsesWhatOtherEncodersWrite() throws {
        let text = #" { "name" : "\u00e9\ud83d\ude80\/", "count": 7, "ratio": 1e-3, "flag": false, "optional": null, "items": [], "map": {}, "extra": [1, {"deep": true}] } "#
        let sample = try JSONCoder.decode(Sample.self, from: Array(text.utf8))
        #expect(sample.name == "é🚀/")
        #expect(sample.ratio == 0.001)
        #expect(sample.optional == nil)
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "\"unterminated", "tru", "01x", "01", "-", "1.", "1e", "\"\\x\"", "\"\u{01}\"", "[1] 2",
        "\"\\ud800\"", String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func malformedDocumentsAreRejected(text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(Array(text.utf8)) }
    }

    @Test func wrongShapesAreDecodingErrors() {
        #expect(throws: DecodingError.self) { try JSONCoder.decode(Sample.Inner.self, from: Array(#"{"digest": 1, "size": 2}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONCoder.decode(Sample.Inner.self, from: Array(#"{"digest": "x"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONCoder.decode(UInt8.self, from: Array("300".utf8)) }
    }

    @Test func prettyAndSorted() throws {
        let text = String(decoding: try JSONCoder.encode(["b": 1, "a": 2], pretty: true, sortedKeys: true), as: UTF8.self)
        #expect(text == "{\n  \"a\": 2,\n  \"b\": 1\n}")
    }
}
