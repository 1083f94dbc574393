// Corpus in the style of nst/JSONTestSuite (y_ must parse, n_ must be refused, i_ our choice).
// Cases written by hand for this project; no code copied.
import Foundation
import JSONCoding
import Testing

@Suite struct JSONCorpusTests {
    static let accepted: [String] = [
        "[]", "{}", "0", "-0", "1e400", "1e-400", "-1E+2", "1.5e-3", "18446744073709551615", "\"\"",
        "[[],{}]", " \t\r\n[1] \n", "{\"a\":1,\"a\":2}", "\"\\ud83d\\ude80\"", "\"\\u0000\"", "\"\\/\\b\\f\\n\\r\\t\"",
        "true", "false", "null", "[1,2,3]", "{\"k\":[{\"n\":null}]}", "\"é🚀\"",
    ]
    static let refused: [String] = [
        "", " ", "-", "01", "-01", "1.", ".5", "1e", "+1", "[1,]", "{\"a\":1,}", "[1] x", "{\"a\"}", "\u{FEFF}[]",
        "\"\u{01}\"", "\"\t\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\x\"", "[", "{", "nul", "NaN", "Infinity", "[1 2]",
        "'a'", "\u{0C}[]", "[\"a\"\"b\"]",
    ]

    @Test(arguments: accepted) func y(text: String) throws {
        _ = try JSON.parse(Array(text.utf8))
        // Differential: Foundation accepts the same document.
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil || text.contains("1e400") || text.contains("1e-400"))
    }

    @Test(arguments: refused) func n(text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(Array(text.utf8)) }
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [[0x22, 0xff, 0x22], [0x22, 0xc3, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0xff], [0x5b, 0x5d, 0x80]] {
            #expect(throws: JSONError.self) { try JSON.parse(bytes) }
        }
    }

    @Test func deepNestingIsAClearErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSON.parse(Array(deep.utf8)) }
    }

    @Test func uint64AboveInt64Max() throws {
        let bytes = Array("18446744073709551615".utf8)
        #expect(try JSONCoder.decode(UInt64.self, from: bytes) == UInt64.max)
        #expect(throws: DecodingError.self) { try JSONCoder.decode(Int64.self, from: bytes) }
    }

    @Test func duplicateKeysLastWins() throws {
        #expect(try JSON.parse(Array(#"{"a":1,"a":2}"#.utf8))["a"] == .number("2"))
    }

    @Test func longStringRoundTrips() throws {
        let s = String(repeating: "ab\"\\\u{1}é", count: 50_000)
        #expect(try JSONCoder.decode(String.self, from: JSONCoder.encode(s)) == s)
    }
}
