import Testing

@testable import OCICore

@Suite struct NamesTests {
    @Test(arguments: ["library/nginx", "a", "a/b/c", "my-org/my_app", "a__b", "a--b", "x.y/z-1"])
    func validNames(name: String) {
        #expect(RepositoryName(name) != nil)
    }

    @Test(arguments: [
        "", "..", "../etc", "a/../b", "a/./b", "/a", "a/", "a//b", "A", "a_", "_a", "a.", "a%2e%2e", "a/.hidden",
        "a___b", "a..b", "a b", "a\u{0}b", String(repeating: "a", count: 256),
    ])
    func invalidNames(name: String) {
        #expect(RepositoryName(name) == nil)
    }

    @Test func digests() {
        let hex = String(repeating: "ab", count: 32)
        #expect(Digest("sha256:\(hex)")?.hex == hex)
        #expect(Digest("sha256:\(hex.uppercased())") == nil)
        #expect(Digest("sha256:\(hex.dropLast())") == nil)
        #expect(Digest("sha256:../../\(hex.dropFirst(6))") == nil)
        #expect(Digest("md5:\(hex)") == nil)
        #expect(Digest("sha512:\(hex)\(hex)")?.algorithm == .sha512)
    }

    @Test func tags() {
        #expect(Reference.isValidTag("v1.2.3_rc-1"))
        #expect(!Reference.isValidTag(".hidden"))
        #expect(!Reference.isValidTag(".."))
        #expect(!Reference.isValidTag("-x"))
        #expect(!Reference.isValidTag("a/b"))
        #expect(!Reference.isValidTag(String(repeating: "a", count: 129)))
    }

    @Test func imageReferences() {
        let hex = String(repeating: "0", count: 64)
        #expect(ImageReference("library/nginx:1.27")?.tag == "1.27")
        #expect(ImageReference("library/nginx")?.tag == "latest")
        #expect(ImageReference("app@sha256:\(hex)")?.tag == nil)
        #expect(ImageReference("app:v1@sha256:\(hex)")?.digest != nil)
        #expect(ImageReference("App:v1") == nil)
        #expect(ImageReference("app:v1@sha256:bad") == nil)
    }

    @Test func hashingVectors() {
        #expect(ContentHasher.digest(of: Array("abc".utf8)).description
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ContentHasher.digest(of: []).description
            == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentHasher.digest(of: Array("abc".utf8), algorithm: .sha512).hex.hasPrefix("ddaf35a193617aba"))
    }
}
