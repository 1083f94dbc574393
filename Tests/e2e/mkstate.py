#!/usr/bin/env python3
"""Build a Harbor Satellite state artifact as an OCI image layout. Stdlib only.

Usage:
  mkstate.py [--docker] [--name artifacts.json] (--json FILE|- | --raw FILE) oci:DIR:TAG|dir:DIR

The image has one tar.gz layer holding a single file (--name, default
artifacts.json) with the JSON document read from FILE ('-' = stdin), and an
image config whose rootfs.diff_ids names the uncompressed tar. --docker uses
Docker schema2 media types (what go-containerregistry's `empty.Image` +
`mutate.AppendLayers` produce, as Harbor Satellite's ground control does);
the default is OCI media types. Output is an OCI layout (oci:DIR:TAG) or a
containers/image `dir:` directory (dir:DIR; use it with --docker: skopeo's
oci: transport ignores non-OCI manifests in index.json). Push it with
`skopeo copy --preserve-digests oci:DIR:TAG|dir:DIR docker://HOST/REPO:TAG`.

The JSON is re-serialised compactly; --raw puts FILE's bytes in unchanged
(for malformed-state tests). Documents used:
  group state:     {"group": "g1", "registry": "http://host:port",
                    "artifacts": [{"repository": "proj/app", "tag": ["v1"],
                                   "digest": "sha256:...", "type": "IMAGE",
                                   "deleted": false}, ...]}
  satellite state: {"states": ["satellite/group-state/g1/state:latest", ...],
                    "config": "satellite/config-state/NAME/state:latest"}

Prints the manifest digest on stdout.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = 1704067200
OCI = {
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}
DOCKER = {
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkimage import Layout, canon  # noqa: E402  (the OCI layout writer of the image builder)


class DirLayout(Layout):
    """containers/image's dir: transport: blobs named by hex, straight in DIR."""

    def __init__(self, path):
        self.path = path
        self.blobdir = path
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "version"), "w") as f:
            f.write("Directory Transport Version: 1.1\n")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ref", help="oci:DIR:TAG")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--json", help="file with the JSON document, or -")
    src.add_argument("--raw", help="file whose bytes go into the layer unchanged")
    ap.add_argument("--name", default="artifacts.json")
    ap.add_argument("--docker", action="store_true", help="Docker schema2 media types")
    a = ap.parse_args(argv)
    dir_transport = a.ref.startswith("dir:")
    if dir_transport:
        path, tag = a.ref[4:], None
    else:
        ref = a.ref[4:] if a.ref.startswith("oci:") else a.ref
        if ":" not in ref:
            raise SystemExit("reference must be oci:DIR:TAG or dir:DIR")
        path, tag = ref.rsplit(":", 1)
    if a.raw is not None:
        with open(a.raw, "rb") as f:
            doc = f.read()
    else:
        raw = sys.stdin.read() if a.json == "-" else open(a.json).read()
        doc = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    mt = DOCKER if a.docker else OCI

    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(a.name)
        ti.size, ti.mode, ti.mtime = len(doc), 0o644, EPOCH
        tf.addfile(ti, io.BytesIO(doc))
    tar = tbuf.getvalue()
    gz = gzip.compress(tar, compresslevel=6, mtime=0)

    layout = DirLayout(path) if dir_transport else Layout(path)
    layer = layout.put(gz, mt["layer"])
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}
    cdesc = layout.put(canon(config), mt["config"])
    manifest = {"schemaVersion": 2, "mediaType": mt["manifest"], "config": cdesc, "layers": [layer]}
    mbytes = canon(manifest)
    mdesc = layout.put(mbytes, mt["manifest"])
    if dir_transport:
        with open(os.path.join(path, "manifest.json"), "wb") as f:
            f.write(mbytes)
    else:
        layout.tag(mdesc, tag)
    print(mdesc["digest"])


if __name__ == "__main__":
    main(sys.argv[1:])
