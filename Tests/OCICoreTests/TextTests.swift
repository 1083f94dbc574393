import Testing

@testable import OCICore

/// The byte-wise substring helpers that keep _StringProcessing out of the static binary.
@Suite struct TextTests {
    @Test func containsText() {
        #expect("application/vnd.oci.image.layer.nondistributable.v1.tar".containsText(".nondistributable."))
        #expect(!"application/vnd.oci.image.layer.v1.tar".containsText(".nondistributable."))
        #expect("abc".containsText(""))
        #expect("abc".containsText("abc"))
        #expect(!"ab".containsText("abc"))
        #expect("aaab".containsText("aab"))
        #expect("Raspberry Pi 4 Model B Rev 1.4".dropFirst(10).containsText("Pi 4"))
        #expect("naïve café".containsText("café"))
    }

    @Test func replacingText() {
        #expect(#"a\b"c"#.replacingText("\\", with: "\\\\").replacingText("\"", with: "\\\"") == #"a\\b\"c"#)
        #expect(#"x\\\\y"#.replacingText("\\\\", with: "\\") == #"x\\y"#)
        #expect("aaa".replacingText("aa", with: "b") == "ba")
        #expect("abc".replacingText("", with: "x") == "abc")
        #expect("".replacingText("a", with: "b") == "")
        #expect("héllo".replacingText("é", with: "e") == "hello")
    }
}
