import JSONCoding
import Testing
import Trust

@Suite struct CosignVerifierTests {
    let trusted = try! PublicKey(pem: Array(Fixtures.trustedKey.utf8), name: "trusted.pub")
    let other = try! PublicKey(pem: Array(Fixtures.otherKey.utf8), name: "other.pub")

    var verifier: CosignVerifier { CosignVerifier(keys: [trusted]) }

    @Test func legacySignatureByTrustedKeyForThisDigestVerifies() throws {
        let key = try verifier.verify(
            .simpleSigning(payload: Array(Fixtures.simplePayload.utf8), signature: Fixtures.simpleSignature),
            digest: Fixtures.digest)
        #expect(key.name == "trusted.pub")
    }

    @Test func legacySignatureBySecondConfiguredKeyVerifies() throws {
        let key = try CosignVerifier(keys: [other, trusted]).verify(
            .simpleSigning(payload: Array(Fixtures.simplePayload.utf8), signature: Fixtures.simpleSignature),
            digest: Fixtures.digest)
        #expect(key.name == "trusted.pub")
    }

    @Test func legacySignatureByUnknownKeyIsUntrusted() {
        let error = #expect(throws: TrustError.self) {
            try verifier.verify(
                .simpleSigning(payload: Array(Fixtures.simplePayload.utf8), signature: Fixtures.simpleSignatureByOther),
                digest: Fixtures.digest)
        }
        #expect(error?.code == .untrusted)
    }

    @Test func replayedLegacySignatureOfAnotherDigestIsRefused() {
        let error = #expect(throws: TrustError.self) {
            try verifier.verify(
                .simpleSigning(payload: Array(Fixtures.replayedPayload.utf8), signature: Fixtures.replayedSignature),
                digest: Fixtures.digest)
        }
        #expect(error?.code == .wrongDigest)
    }

    @Test func payloadChangedAfterSigningIsUntrusted() {
        var payload = Array(Fixtures.simplePayload.utf8)
        payload.append(UInt8(ascii: " "))
        let error = #expect(throws: TrustError.self) {
            try verifier.verify(.simpleSigning(payload: payload, signature: Fixtures.simpleSignature), digest: Fixtures.digest)
        }
        #expect(error?.code == .untrusted)
    }

    @Test(arguments: ["", "not base64!", "MEUCIQ", "AAAA"])
    func malformedLegacySignatureIsRefused(signature: String) {
        #expect(throws: TrustError.self) {
            try verifier.verify(.simpleSigning(payload: Array(Fixtures.simplePayload.utf8), signature: signature), digest: Fixtures.digest)
        }
    }

    @Test func bundleByTrustedKeyForThisDigestVerifies() throws {
        let key = try verifier.verify(.bundle(Array(Fixtures.bundle.utf8)), digest: Fixtures.digest)
        #expect(key.name == "trusted.pub")
    }

    @Test func bundleByUnknownKeyIsUntrusted() {
        let error = #expect(throws: TrustError.self) {
            try verifier.verify(.bundle(Array(Fixtures.bundleByOther.utf8)), digest: Fixtures.digest)
        }
        #expect(error?.code == .untrusted)
    }

    @Test func replayedBundleOfAnotherDigestIsRefused() {
        let error = #expect(throws: TrustError.self) {
            try verifier.verify(.bundle(Array(Fixtures.replayedBundle.utf8)), digest: Fixtures.digest)
        }
        #expect(error?.code == .wrongDigest)
    }

    @Test func truncatedBundleIsMalformed() {
        let bytes = Array(Fixtures.bundle.utf8)
        for cut in [0, 1, bytes.count / 3, bytes.count / 2, bytes.count - 1] {
            let error = #expect(throws: TrustError.self) {
                try verifier.verify(.bundle(Array(bytes.prefix(cut))), digest: Fixtures.digest)
            }
            #expect(error?.code == .malformed)
        }
    }

    @Test func bundleWithSwappedPayloadTypeIsRefused() {
        // The type is part of the signed PAE: changing it breaks the signature.
        let text = Fixtures.bundle.replacing("application/vnd.in-toto+json", with: "application/json")
        #expect(throws: TrustError.self) {
            try verifier.verify(.bundle(Array(text.utf8)), digest: Fixtures.digest)
        }
    }

    @Test func verifyAnyPrefersTheReplayExplanationAndAcceptsAnyValidOne() {
        let replay = CosignSignature.simpleSigning(payload: Array(Fixtures.replayedPayload.utf8), signature: Fixtures.replayedSignature)
        let forged = CosignSignature.simpleSigning(payload: Array(Fixtures.simplePayload.utf8), signature: Fixtures.simpleSignatureByOther)
        let good = CosignSignature.bundle(Array(Fixtures.bundle.utf8))
        if case .failure(let error) = verifier.verifyAny([forged, replay], digest: Fixtures.digest) {
            #expect(error.code == .wrongDigest)
        } else {
            Issue.record("a forged and a replayed signature were accepted")
        }
        #expect((try? verifier.verifyAny([forged, replay, good], digest: Fixtures.digest).get())?.name == "trusted.pub")
        if case .failure(let error) = verifier.verifyAny([], digest: Fixtures.digest) {
            #expect(error.code == .unsigned)
        } else {
            Issue.record("no signature was accepted")
        }
    }

    @Test func keysOtherThanPEMP256AreRefused() {
        for pem in [Fixtures.p384Key, "", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"] {
            let error = #expect(throws: TrustError.self) { try PublicKey(pem: Array(pem.utf8), name: "k.pub") }
            #expect(error?.code == .badKey)
        }
    }

    @Test func legacyTagAndLayers() throws {
        #expect(CosignSignature.legacyTag(for: Fixtures.digest) == "sha256-\(Fixtures.digest.dropFirst(7)).sig")
        #expect(CosignSignature.legacyTag(for: "sha256:XYZ") == nil)
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:aa"},
            "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":242,"digest":"sha256:bb",
            "annotations":{"dev.cosignproject.cosign/signature":"MEUC"}}]}
            """
        let layers = try CosignSignature.simpleSigningLayers(manifest: Array(manifest.utf8))
        #expect(layers == [.init(digest: "sha256:bb", size: 242, signature: "MEUC")])
        let unannotated = manifest.replacing(#""annotations":{"dev.cosignproject.cosign/signature":"MEUC"}"#, with: #""annotations":{}"#)
        #expect(throws: TrustError.self) { try CosignSignature.simpleSigningLayers(manifest: Array(unannotated.utf8)) }
    }

    @Test(arguments: [
        ("factory/**", "factory/sensor", true), ("factory/**", "factory/a/b", true), ("factory/**", "factory", false),
        ("factory/*", "factory/a/b", false), ("factory/*", "factory/a", true), ("**", "x/y", true),
        ("library/nginx", "library/nginx", true), ("library/nginx", "library/nginx2", false),
    ])
    func policyGlob(pattern: String, repository: String, expected: Bool) {
        #expect(TrustPolicy.glob(pattern, matches: repository) == expected)
    }

    @Test func base64RoundTripsAndRefusesJunk() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            #expect(Base64.decode(Base64.encode(Array(text.utf8))) == Array(text.utf8))
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.decode("Zm9vYg") == Array("foob".utf8))
        for junk in ["Zm9v!", "Z", "Zm=v", "Zm9vYg=", "Zh=="] { #expect(Base64.decode(junk) == nil) }
    }
}

@Suite struct TrustPolicyEvaluateTests {
    let policy = TrustPolicy(rules: [
        .init(match: "factory/**", keys: [try! PublicKey(pem: Array(Fixtures.trustedKey.utf8), name: "trusted.pub")], action: .require)
    ])

    func legacy(_ payload: String, _ signature: String) -> TrustPolicy.Signatures {
        let manifest = #"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":\#(payload.utf8.count),"digest":"sha256:p","annotations":{"dev.cosignproject.cosign/signature":"\#(signature)"}}]}"#
        return .init(legacyManifest: { Array(manifest.utf8) }, referrers: { [] }, blob: { digest, _ in digest == "sha256:p" ? Array(payload.utf8) : nil })
    }

    func referrer(_ bundle: String) -> TrustPolicy.Signatures {
        let manifest = #"{"schemaVersion":2,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":\#(bundle.utf8.count),"digest":"sha256:b"}],"subject":{"digest":"x"}}"#
        return .init(legacyManifest: { nil }, referrers: { [Array(manifest.utf8)] }, blob: { digest, _ in digest == "sha256:b" ? Array(bundle.utf8) : nil })
    }

    @Test func verdicts() {
        let none = TrustPolicy.Signatures(legacyManifest: { nil }, referrers: { [] }, blob: { _, _ in nil })
        #expect(policy.evaluate(repository: "library/nginx", digest: Fixtures.digest, signatures: none) == .notCovered)
        #expect(policy.evaluate(repository: "factory/sensor", digest: Fixtures.digest, signatures: legacy(Fixtures.simplePayload, Fixtures.simpleSignature)) == .accepted(key: "trusted.pub"))
        #expect(policy.evaluate(repository: "factory/sensor", digest: Fixtures.digest, signatures: referrer(Fixtures.bundle)) == .accepted(key: "trusted.pub"))
        guard case .rejected(let unsigned, .require) = policy.evaluate(repository: "factory/sensor", digest: Fixtures.digest, signatures: none) else {
            Issue.record("unsigned accepted")
            return
        }
        #expect(unsigned.code == .unsigned)
        guard case .rejected(let replay, _) = policy.evaluate(repository: "factory/a/b", digest: Fixtures.digest, signatures: legacy(Fixtures.replayedPayload, Fixtures.replayedSignature)) else {
            Issue.record("replay accepted")
            return
        }
        #expect(replay.code == .wrongDigest)
        guard case .rejected(let forged, _) = policy.evaluate(repository: "factory/x", digest: Fixtures.digest, signatures: referrer(Fixtures.bundleByOther)) else {
            Issue.record("forgery accepted")
            return
        }
        #expect(forged.code == .untrusted)
        let missingPayload = TrustPolicy.Signatures(legacyManifest: legacy(Fixtures.simplePayload, Fixtures.simpleSignature).legacyManifest, referrers: { [] }, blob: { _, _ in nil })
        guard case .rejected(let missing, _) = policy.evaluate(repository: "factory/x", digest: Fixtures.digest, signatures: missingPayload) else {
            Issue.record("missing payload accepted")
            return
        }
        #expect(missing.code == .malformed)
    }

    @Test func signatureArtifactsAreRecognised() {
        #expect(TrustPolicy.isSignatureArtifact(tags: ["sha256-abc.sig"], manifest: []))
        #expect(!TrustPolicy.isSignatureArtifact(tags: ["v1", "sha256-abc.sig"], manifest: []))
        #expect(TrustPolicy.isSignatureArtifact(tags: [], manifest: Array(#"{"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","subject":{}}"#.utf8)))
        #expect(!TrustPolicy.isSignatureArtifact(tags: ["v1"], manifest: Array(#"{"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","subject":{}}"#.utf8)))
    }
}
