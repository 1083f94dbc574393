#!/usr/bin/env python3
"""Sign an image in a registry the way cosign does, with a key made by openssl.

  cosign_sign.py legacy URL REPO DIGEST KEY.pem [--names DIGEST2]
  cosign_sign.py bundle URL REPO DIGEST KEY.pem [--names DIGEST2]

legacy: pushes the simple-signing payload (sigstore/sigstore pkg/signature/payload) as a
layer of media type application/vnd.dev.cosign.simplesigning.v1+json with the base64 DER
ECDSA signature in the dev.cosignproject.cosign/signature annotation, in a manifest tagged
sha256-<hex>.sig (cosign pkg/oci/static, pkg/cosign/verify.go).
bundle: pushes a sigstore bundle v0.3 (DSSE envelope over an in-toto Statement v1 naming
the digest) as an OCI 1.1 referrer whose subject is the image (cosign --new-bundle-format).
--names makes the signed payload name another digest: a replayed signature.
Signatures are `openssl dgst -sha256 -sign` (ASN.1 DER), what cosign's ECDSA signer writes.
Standard library only; prints the signature manifest's digest.
"""
import argparse, base64, hashlib, json, subprocess, sys, urllib.request

def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(r, timeout=30) as resp:
        return resp.status, dict(resp.headers), resp.read()

def put_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    # POST then PUT: docker-registry 2.8 ignores ?digest= on the POST (no monolithic upload).
    _, headers, _ = req("POST", f"{base}/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
    location = headers.get("Location") or headers.get("location")
    if location.startswith("/"):
        location = base + location
    location += ("&" if "?" in location else "?") + "digest=" + digest
    req("PUT", location, data, {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    return {"digest": digest, "size": len(data)}

def sign(key, data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data, capture_output=True, check=True).stdout

def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["legacy", "bundle"])
    p.add_argument("url"); p.add_argument("repo"); p.add_argument("digest"); p.add_argument("key")
    p.add_argument("--names", help="digest the payload names (default: DIGEST)")
    a = p.parse_args()
    named = a.names or a.digest
    config = put_blob(a.url, a.repo, b"{}")
    if a.kind == "legacy":
        payload = json.dumps({"critical": {"identity": {"docker-reference": a.repo},
                                           "image": {"docker-manifest-digest": named},
                                           "type": "cosign container image signature"},
                              "optional": None}, separators=(",", ":")).encode()
        layer = put_blob(a.url, a.repo, payload)
        layer.update(mediaType="application/vnd.dev.cosign.simplesigning.v1+json",
                     annotations={"dev.cosignproject.cosign/signature": base64.b64encode(sign(a.key, payload)).decode()})
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"), "layers": [layer]}
        reference = "sha256-" + a.digest.split(":", 1)[1] + ".sig"
    else:
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                                "subject": [{"name": a.repo, "digest": {"sha256": named.split(":", 1)[1]}}],
                                "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}},
                               separators=(",", ":")).encode()
        ptype = b"application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(statement), statement)
        bundle = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                             "verificationMaterial": {"publicKey": {"hint": "e2e"}, "tlogEntries": []},
                             "dsseEnvelope": {"payload": base64.b64encode(statement).decode(), "payloadType": ptype.decode(),
                                              "signatures": [{"sig": base64.b64encode(sign(a.key, pae)).decode(), "keyid": ""}]}},
                            separators=(",", ":")).encode()
        layer = put_blob(a.url, a.repo, bundle)
        layer.update(mediaType="application/vnd.dev.sigstore.bundle.v0.3+json")
        _, headers, body = req("GET", f"{a.url}/v2/{a.repo}/manifests/{a.digest}",
                               headers={"Accept": "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"})
        subject_type = json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config["digest"], "size": config["size"]},
                    "layers": [layer],
                    "subject": {"mediaType": subject_type, "digest": a.digest, "size": len(body)}}
        reference = None
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req("PUT", f"{a.url}/v2/{a.repo}/manifests/{reference or digest}", data,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    print(digest)

if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line with the cause
        print(f"cosign_sign.py: {e}", file=sys.stderr)
        sys.exit(1)
