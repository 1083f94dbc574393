import Testing
import Trust

/// Signatures made by a real `cosign` (not by our openssl fixtures), taken byte for byte from
/// containers/image's test fixtures (https://github.com/containers/image, Apache-2.0, commit
/// df7e80d2): `signature/fixtures/cosign.pub` with `dir-img-cosign-valid/signature-1`, and
/// `cosign2.pub` with `dir-img-cosign-key-rekor-valid/signature-1` (their "\0sigstore-json"
/// files hold the simple-signing payload cosign signed and the value of the layer's
/// `dev.cosignproject.cosign/signature` annotation). The manifest digests are the sha256 of
/// the `manifest.json` beside each signature. `openssl dgst -sha256 -verify` accepts both.
enum RealCosign {
    static let key1 = """
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0
vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==
-----END PUBLIC KEY-----
"""
    static let digest1 = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    static let payload1 = #"{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/cosign-signed-single-sample"},"image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"},"type":"cosign container image signature"},"optional":null}"#
    static let signature1 = "MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4uP4h+IpwKTE6ClR"

    static let key2 = """
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwOkOF9xpfG8ghueIhnZ66ooujwt1
+ReV3HupgKnGFYnEh3Hh1YTg5L6kN1Yakkt5WltRoav8/R3hpCtUO3Rldw==
-----END PUBLIC KEY-----
"""
    static let digest2 = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
    static let payload2 = #"{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/cosign-signed/key-1"},"image":{"docker-manifest-digest":"sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"},"type":"cosign container image signature"},"optional":null}"#
    static let signature2 = "MEUCIQClOJvH+5f5Gr+FLd1c+NS/a+TJQ+BDDoJcnlD0FKqI3AIgPVcMB5yb/JdtohCSzrxATJX6UcyWO+uAWO8Q7CNGnRQ="
}

@Suite struct RealCosignFixtureTests {
    let key1 = try! PublicKey(pem: Array(RealCosign.key1.utf8), name: "cosign.pub")
    let key2 = try! PublicKey(pem: Array(RealCosign.key2.utf8), name: "cosign2.pub")

    @Test func signatureByRealCosignVerifiesForItsDigest() throws {
        let key = try CosignVerifier(keys: [key1]).verify(
            .simpleSigning(payload: Array(RealCosign.payload1.utf8), signature: RealCosign.signature1),
            digest: RealCosign.digest1)
        #expect(key.name == "cosign.pub")
    }

    @Test func secondRealSignatureVerifiesWithItsOwnKeyAmongSeveral() throws {
        let key = try CosignVerifier(keys: [key1, key2]).verify(
            .simpleSigning(payload: Array(RealCosign.payload2.utf8), signature: RealCosign.signature2),
            digest: RealCosign.digest2)
        #expect(key.name == "cosign2.pub")
    }

    @Test func realSignatureByAKeyNotListedIsUntrusted() {
        let error = #expect(throws: TrustError.self) {
            try CosignVerifier(keys: [key2]).verify(
                .simpleSigning(payload: Array(RealCosign.payload1.utf8), signature: RealCosign.signature1),
                digest: RealCosign.digest1)
        }
        #expect(error?.code == .untrusted)
    }

    @Test func realSignatureReplayedForAnotherDigestIsRefused() {
        let error = #expect(throws: TrustError.self) {
            try CosignVerifier(keys: [key1, key2]).verify(
                .simpleSigning(payload: Array(RealCosign.payload1.utf8), signature: RealCosign.signature1),
                digest: RealCosign.digest2)
        }
        #expect(error?.code == .wrongDigest)
    }
}
