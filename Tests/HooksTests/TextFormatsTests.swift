import JSONCoding
import Testing

@testable import Hooks
@testable import RuntimeConfig
import OCICore

@Suite struct TextFormatsTests {
    @Test func orderedJSONKeepsOrderNumbersAndEscapes() throws {
        let text = #"{"b": 1.50, "a": [true, false, null, -2e-3], "s": "q\"\\\/\n\u0001\ud83d\ude00", "o": {}, "e": []}"#
        let value = try JSON.parse(Array(text.utf8))
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.0) == ["b", "a", "s", "o", "e"])
        #expect(value["b"] == .number("1.50"))
        #expect(value["s"] == .string("q\"\\/\n\u{01}😀"))
        let formatted = value.formatted()
        #expect(
            formatted == """
                {
                  "b": 1.50,
                  "a": [
                    true,
                    false,
                    null,
                    -2e-3
                  ],
                  "s": "q\\"\\\\/\\n\\u0001😀",
                  "o": {},
                  "e": []
                }

                """)
        #expect(try JSON.parse(Array(formatted.utf8)) == value)
    }

    @Test(arguments: ["", "{", "{\"a\" 1}", "[1,]", "01", "\"\\x\"", "{} x", "\"a\nb\"", "nul"])
    func orderedJSONRejectsInvalidText(text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(Array(text.utf8)) }
    }

    @Test func indentationUnitComesFromTheFile() {
        #expect(JSON.indentationUnit(of: Array("{\n    \"a\": 1\n}".utf8)) == "    ")
        #expect(JSON.indentationUnit(of: Array("{\n\t\"a\": 1\n}".utf8)) == "\t")
        #expect(JSON.indentationUnit(of: Array("{\"a\": 1}".utf8)) == "  ")
    }

    @Test func unifiedDiffHunks() {
        let old = (1...20).map { "line \($0)" }.joined(separator: "\n") + "\n"
        var lines = (1...20).map { "line \($0)" }
        lines[1] = "changed 2"
        lines.insert("inserted", at: 15)
        let new = lines.joined(separator: "\n") + "\n"
        #expect(
            UnifiedDiff.make(old: old, new: new, oldName: "a", newName: "b") == """
                --- a
                +++ b
                @@ -1,5 +1,5 @@
                 line 1
                -line 2
                +changed 2
                 line 3
                 line 4
                 line 5
                @@ -13,6 +13,7 @@
                 line 13
                 line 14
                 line 15
                +inserted
                 line 16
                 line 17
                 line 18

                """)
        #expect(UnifiedDiff.make(old: old, new: old, oldName: "a", newName: "b") == "")
        #expect(UnifiedDiff.make(old: "", new: "x\n", oldName: "/dev/null", newName: "b") == "--- /dev/null\n+++ b\n@@ -0,0 +1 @@\n+x\n")
    }

    @Test func yamlKeysAndScalars() throws {
        #expect(RegistriesYAML.key("docker.io:")?.key == "docker.io")
        #expect(RegistriesYAML.key("registry.lab:5000:")?.key == "registry.lab:5000")
        #expect(RegistriesYAML.key("\"a:b\": x # c").map { [$0.key, $0.rest] } == ["a:b", "x"])
        #expect(RegistriesYAML.key("'it''s': 'v'")?.key == "it's")
        #expect(RegistriesYAML.key("- item") == nil)
        #expect(RegistriesYAML.key("http://x") == nil)
        #expect(try RegistriesYAML.scalar("'a # b' # c", line: 1) == "a # b")
        #expect(try RegistriesYAML.scalar("http://x:5000 # c", line: 1) == "http://x:5000")
        #expect(try RegistriesYAML.splitFlow("\"a\", 'b' , c", line: 1) == ["a", "b", "c"])
        #expect(RegistriesYAML.quoted("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(throws: RegistriesYAML.Refusal.self) { try RegistriesYAML.scalar("*alias", line: 3) }
    }
}
