import Testing

@testable import ContentStore
@testable import OCICore

@Suite struct PeerProofTests {
    /// RFC 4231, test cases 2 and 6 (a key longer than the block).
    @Test func hmacMatchesRFC4231() {
        #expect(
            HMAC.sha256Hex(key: Array("Jefe".utf8), message: "what do ya want for nothing?")
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            HMAC.sha256Hex(
                key: [UInt8](repeating: 0xaa, count: 131), message: "Test Using Larger Than Block-Size Key - Hash Key First")
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func aRequestProofIsAcceptedOnceForItsPathOnly() {
        let proof = PeerProof(secret: Array("a site secret of some length".utf8))
        let header = proof.authorization(method: "GET", path: "/peer/v1/blobs/sha256:ab", now: 1000)
        #expect(!header.contains("secret"))
        #expect(!proof.verify(authorization: header, method: "GET", path: "/peer/v1/blobs/sha256:cd", now: 1000))
        #expect(!proof.verify(authorization: header, method: "HEAD", path: "/peer/v1/blobs/sha256:ab", now: 1000))
        #expect(proof.verify(authorization: header, method: "GET", path: "/peer/v1/blobs/sha256:ab", now: 1010))
        // The same nonce again: a replay.
        #expect(!proof.verify(authorization: header, method: "GET", path: "/peer/v1/blobs/sha256:ab", now: 1010))
    }

    @Test func staleForgedAndMalformedProofsAreRefused() {
        let proof = PeerProof(secret: Array("a site secret of some length".utf8))
        let other = PeerProof(secret: Array("another site's secret, as long".utf8))
        let path = "/peer/v1/blobs/sha256:ab"
        let old = proof.authorization(method: "GET", path: path, now: 1000)
        #expect(!proof.verify(authorization: old, method: "GET", path: path, now: 1000 + PeerProof.window + 1))
        let forged = other.authorization(method: "GET", path: path, now: 1000)
        #expect(!proof.verify(authorization: forged, method: "GET", path: path, now: 1000))
        for garbage in ["", "Bearer x", "SatellitePeer ", "SatellitePeer ts=1000", "SatellitePeer ts=x,nonce=12345678,mac=00"] {
            #expect(!proof.verify(authorization: garbage, method: "GET", path: path, now: 1000))
        }
    }

    @Test func announcementsNeedTheSecretAndAFreshTimestamp() {
        let proof = PeerProof(secret: Array("a site secret of some length".utf8))
        let other = PeerProof(secret: Array("another site's secret, as long".utf8))
        let datagram = proof.announcement(id: "abc", url: "http://10.0.0.11:5000", now: 5000)
        let parsed = proof.parseAnnouncement(datagram, now: 5001)
        #expect(parsed?.id == "abc")
        #expect(parsed?.url == "http://10.0.0.11:5000")
        #expect(other.parseAnnouncement(datagram, now: 5001) == nil)
        #expect(proof.parseAnnouncement(datagram, now: 5000 + PeerProof.window + 1) == nil)
        var tampered = datagram
        if let index = tampered.firstIndex(of: UInt8(ascii: "1")) { tampered[index] = UInt8(ascii: "2") }
        #expect(proof.parseAnnouncement(tampered, now: 5001) == nil)
        #expect(proof.parseAnnouncement(Array("SATPEER1 a b c d e f".utf8), now: 5001) == nil)
    }
}
