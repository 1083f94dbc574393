import Testing
import Trust

/// The private-key side (bundle signing) against the public-key side that verifies.
@Suite struct PrivateKeyTests {
    // A throwaway test key pair (openssl ecparam -name prime256v1 -genkey -noout; openssl ec -pubout;
    // openssl pkcs8 -topk8 -nocrypt for the PKCS#8 form of the same key).
    static let sec1 = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIElh/KMvulPkrcp/THNvBTqCQSV/FZfL4DD471WwCyPEoAoGCCqGSM49
        AwEHoUQDQgAEYBC/8X7yjLtRryRIC4FFRoeajZjEP8ddw7WXNTq+apj9csR13iZr
        r8f61s46ngiSAYR1ZuisDjRdu6+VXB4kyw==
        -----END EC PRIVATE KEY-----

        """
    static let pkcs8 = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSWH8oy+6U+Styn9M
        c28FOoJBJX8Vl8vgMPjvVbALI8ShRANCAARgEL/xfvKMu1GvJEgLgUVGh5qNmMQ/
        x13DtZc1Or5qmP1yxHXeJmuvx/rWzjqeCJIBhHVm6KwONF27r5VcHiTL
        -----END PRIVATE KEY-----

        """
    static let publicKey = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYBC/8X7yjLtRryRIC4FFRoeajZjE
        P8ddw7WXNTq+apj9csR13iZrr8f61s46ngiSAYR1ZuisDjRdu6+VXB4kyw==
        -----END PUBLIC KEY-----

        """
    static let p384 = """
        -----BEGIN EC PRIVATE KEY-----
        MIGkAgEBBDDb4/3+YzpbzOXYdw/40s/8hJo5feSkIs3j3KCS5lyVlyFN7pllOfnT
        i0arau/jnNGgBwYFK4EEACKhZANiAATM9c8XQcED0ddmSsEQVfUAtVQZwtul6x8f
        Lwf1C1a56e/xmW1LpNBPlTgBRkRLh0sKaWY/YuHpp3CqnTm3mI5hsOZNBUCNJ3Fi
        ThEm5IrOd7GO68UzbLBQ7hLEssq8QoE=
        -----END EC PRIVATE KEY-----

        """

    @Test(arguments: [sec1, pkcs8]) func signatureVerifiesWithThePublicHalf(pem: String) throws {
        let key = try PrivateKey(pem: Array(pem.utf8), name: "bundle.key")
        let verifier = try PublicKey(pem: Array(Self.publicKey.utf8), name: "bundle.pub")
        let message = Array("{\"sequence\": 1}".utf8)
        let signature = try key.sign(message)
        #expect(verifier.verifies(signature, over: message))
        #expect(!verifier.verifies(signature, over: message + [0x20]), "another message")
        #expect(key.keyID == verifier.keyID)
        #expect(key.keyID.hasPrefix("sha256:") && key.keyID.count == 71)
        // Debian's mbedTLS signs deterministically (RFC 6979): a second signature of the same
        // message need not differ; it must verify as well.
        let again = try key.sign(message)
        #expect(verifier.verifies(again, over: message))
    }

    @Test func otherKeyDoesNotVerify() throws {
        let key = try PrivateKey(pem: Array(Self.sec1.utf8), name: "bundle.key")
        let other = try PublicKey(pem: Array(Fixtures.trustedKey.utf8), name: "trusted.pub")
        let message = Array("payload".utf8)
        #expect(!other.verifies(try key.sign(message), over: message))
        #expect(other.keyID != key.keyID)
    }

    @Test func publicKeysAndOtherCurvesAreRefused() {
        let asPublic = #expect(throws: TrustError.self) { try PrivateKey(pem: Array(Self.publicKey.utf8), name: "bundle.pub") }
        #expect(asPublic?.code == .badKey)
        #expect(asPublic?.message.contains("private key") == true, "\(String(describing: asPublic))")
        let p384 = #expect(throws: TrustError.self) { try PrivateKey(pem: Array(Self.p384.utf8), name: "p384.key") }
        #expect(p384?.message.contains("P-256") == true, "\(String(describing: p384))")
        #expect(throws: TrustError.self) { try PrivateKey(pem: Array("not a key".utf8), name: "junk") }
    }
}
