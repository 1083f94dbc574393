import CTLSVerify
import Testing

/// The host parsing behind the iPAddress subjectAltName check of the static (mbedTLS)
/// build; the check itself runs against a TLS registry in Tests/e2e/static_tls.sh.
@Suite struct TLSVerifyTests {
    func parse(_ host: String) -> [UInt8] {
        var peer = ctls_peer()
        ctls_peer_parse(&peer, host)
        return withUnsafeBytes(of: peer.address) { Array($0.prefix(Int(peer.length))) }
    }

    @Test func addressLiterals() {
        #expect(parse("10.0.0.5") == [10, 0, 0, 5])
        #expect(parse("127.0.0.1") == [127, 0, 0, 1])
        #expect(parse("[::1]") == Array(repeating: 0, count: 15) + [1])
        #expect(parse("::1") == Array(repeating: 0, count: 15) + [1])
        #expect(parse("[fe80::1%eth0]") == [0xfe, 0x80] + Array(repeating: 0, count: 13) + [1])
    }

    @Test func namesAreNotAddresses() {
        for host in ["harbor.example.com", "localhost", "10.0.0", "10.0.0.5.nip.io", "", "[", "[]", "1.2.3.256",
            String(repeating: "1", count: 100)] {
            #expect(parse(host).isEmpty, "\(host)")
        }
    }
}
