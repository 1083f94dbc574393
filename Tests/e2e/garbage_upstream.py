#!/usr/bin/env python3
"""A registry upstream that answers garbage, for the proxy's bad-input tests. Stdlib only.

Usage: garbage_upstream.py --port-file F

Serves /v2/ and, per repository g/<case>, a valid image manifest (one 100000-byte layer
of known content) and then misbehaves as <case> says:
  good         everything correct (the control)
  baddigest    the manifest's Docker-Content-Digest header names another digest
  hugemanifest the manifest body never ends (no Content-Length)
  redirect     the manifest redirects to itself, forever
  endless      the layer's GET body never ends (no Content-Length)
  shortlen     the layer's GET announces and sends 100 bytes fewer than the manifest says
  wronglen     the layer's GET announces 100 bytes more than it sends, then closes (the
               bytes it did send are the right ones: they may verify)
Prints nothing; writes the bound port to F.
"""
import argparse
import hashlib
import http.server
import json
import socketserver

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


def image(case):
    """The layer (its content differs per case, so no two cases share a blob) and manifest."""
    seed = sum(case.encode()) % 251
    layer = bytes((i * 7 + seed) % 251 for i in range(100000))
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}],
    }).encode()
    return layer, layer_digest, manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=(), length=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def endless(self, headers=()):
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(100000):
                self.wfile.write(chunk)
        except OSError:
            pass
        self.close_connection = True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in ("/v2", "/v2/"):
            return self.send(200, b"{}", [("Content-Type", "application/json")])
        parts = path.split("/")
        if len(parts) < 6 or parts[1] != "v2" or parts[2] != "g":
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}')
        case, kind, ref = parts[3], parts[4], parts[5]
        LAYER, LAYER_DIGEST, MANIFEST, MANIFEST_DIGEST = image(case)
        mt = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")]
        if kind == "manifests":
            if case == "redirect":
                return self.send(302, b"", [("Location", self.path)])
            if case == "hugemanifest" and self.command == "GET":
                return self.endless(mt)
            digest = "sha256:" + "0" * 64 if case == "baddigest" else MANIFEST_DIGEST
            return self.send(200, MANIFEST, mt + [("Docker-Content-Digest", digest)])
        if kind == "blobs":
            body = {CONFIG_DIGEST: CONFIG, LAYER_DIGEST: LAYER}.get(ref)
            if body is None:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')
            hdrs = [("Docker-Content-Digest", ref), ("Content-Type", "application/octet-stream")]
            if ref == LAYER_DIGEST and self.command == "GET":
                if case == "endless":
                    return self.endless(hdrs)
                if case == "shortlen":
                    return self.send(200, body[:-100], hdrs)
                if case == "wronglen":
                    self.send(200, body, hdrs, length=len(body) + 100)
                    self.close_connection = True
                    return
            return self.send(200, body, hdrs)
        return self.send(404, b"")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
