#!/usr/bin/env python3
"""Tiny Docker registry token server (distribution `auth: token:`), stdlib only.

Usage:
  tokenserver.py keygen DIR
      Create DIR/key.pem (RSA 2048), DIR/cert.pem (self-signed; give it to the
      registry as `rootcertbundle`) and print the libtrust key id.
  tokenserver.py serve --dir DIR --port P --user USER --password-file F
                       [--issuer ISS] [--service SVC] [--log FILE]
      Serve GET /token?service=..&scope=..[&scope=..] on 127.0.0.1:P.
      Requests must carry Basic credentials USER:<content of F>; anything else
      gets 401. Every requested scope is granted in full. Tokens are RS256 JWTs
      signed with `openssl dgst -sha256 -sign DIR/key.pem`, with the header
      `kid` set to the libtrust key id of the public key (docker-registry 2.8
      looks the signing key up by it among the certs of rootcertbundle).

libtrust key id: base32 (RFC 4648, no padding) of the first 240 bits of
sha256(DER SubjectPublicKeyInfo), in groups of 4 characters joined by ':'.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(der_spki):
    s = base64.b32encode(hashlib.sha256(der_spki).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def public_der(keyfile):
    return subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout", "-outform", "DER"],
                          check=True, capture_output=True).stdout


def keygen(d):
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=e2e-token-issuer"], check=True, capture_output=True)
    print(libtrust_kid(public_der(key)))


class Signer:
    def __init__(self, keyfile, issuer, service):
        self.keyfile = keyfile
        self.issuer = issuer
        self.service = service
        self.kid = libtrust_kid(public_der(keyfile))
        self.lock = threading.Lock()
        self.counter = 0

    def token(self, subject, access):
        now = int(time.time())
        with self.lock:
            self.counter += 1
            jti = "%d-%d" % (now, self.counter)
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": jti, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.keyfile],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        return signing_input + "." + b64url(sig)


def parse_scope(scope):
    # "repository:name/with/slashes:pull,push" (the name itself has no ':' here)
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
    return {"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]}


def make_handler(signer, user, password, logf):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            if logf:
                with open(logf, "a") as f:
                    f.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

        def reply(self, code, obj, extra=()):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self.reply(404, {"error": "not found"})
            auth = self.headers.get("Authorization", "")
            ok = False
            if auth.lower().startswith("basic "):
                try:
                    u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
                    ok = (u == user and p == password)
                except Exception:
                    ok = False
            if not ok:
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                  [("WWW-Authenticate", 'Basic realm="e2e-token"')])
            q = urllib.parse.parse_qs(url.query)
            access = []
            for s in q.get("scope", []):
                for one in s.split(" "):
                    p = parse_scope(one)
                    if p:
                        access.append(p)
            tok = signer.token(user, access)
            self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    return Handler


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password-file", required=True)
    s.add_argument("--issuer", default="e2e-issuer")
    s.add_argument("--service", default="e2e-registry")
    s.add_argument("--log", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "keygen":
        return keygen(a.dir)
    with open(a.password_file) as f:
        password = f.read().strip()
    signer = Signer(os.path.join(a.dir, "key.pem"), a.issuer, a.service)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port),
                                          make_handler(signer, a.user, password, a.log))
    srv.daemon_threads = True
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
