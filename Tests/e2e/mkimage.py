#!/usr/bin/env python3
"""Create OCI image layouts (oci:DIR:TAG) without docker. Standard library only.

Usage:
  mkimage.py single [--platform linux/amd64] [--layers 2] [--size 65536]
                    [--seed S] oci:DIR:TAG
  mkimage.py index  [--platforms linux/amd64,linux/arm64/v8,linux/arm/v7]
                    [--layers 2] [--size 65536] [--seed S] oci:DIR:TAG

Each layer is a real gzip-compressed tar archive containing a directory, a
data file of --size bytes, a text file and a symlink.  The config JSON has
rootfs.diff_ids set to the sha256 of each *uncompressed* tar.  Content is
derived from --seed (default: random, so every run pushes new blobs); with a
fixed seed the output is byte-for-byte reproducible.  Each platform gets
distinct layers, so every per-platform manifest is distinct.

The layout follows the OCI image-layout spec: `oci-layout`, `index.json`
and `blobs/sha256/<hex>`.  index.json references the image (manifest or
image index) with the annotation org.opencontainers.image.ref.name=TAG; an
existing layout is extended (a descriptor with the same tag is replaced).

Prints the digest of the tagged manifest/index on stdout.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"
EPOCH = 1704067200  # CREATED as unix time


def canon(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class Layout:
    def __init__(self, path):
        self.path = path
        self.blobdir = os.path.join(path, "blobs", "sha256")
        os.makedirs(self.blobdir, exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def put(self, data, media_type, **extra):
        hexd = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.blobdir, hexd)
        if not os.path.exists(p):
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        desc = {"mediaType": media_type, "digest": "sha256:" + hexd, "size": len(data)}
        desc.update(extra)
        return desc

    def tag(self, desc, tag):
        ip = os.path.join(self.path, "index.json")
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}
        if os.path.exists(ip):
            with open(ip) as f:
                index = json.load(f)
            index["manifests"] = [m for m in index.get("manifests", [])
                                  if m.get("annotations", {}).get(REF_NAME) != tag]
        d = dict(desc)
        d["annotations"] = {REF_NAME: tag}
        index["manifests"].append(d)
        with open(ip + ".tmp", "w") as f:
            json.dump(index, f, indent=2, sort_keys=True)
        os.replace(ip + ".tmp", ip)


def make_layer(rng, idx, size, label):
    """Return (gzip_bytes, diff_id) of a small tar archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=None, kind=tarfile.REGTYPE, mode=0o644, link=""):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.mtime = EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.linkname = link
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
        d = "layer%d" % idx
        add(d + "/", kind=tarfile.DIRTYPE, mode=0o755)
        add(d + "/data.bin", rng.randbytes(size))
        add(d + "/README.txt",
            ("e2e layer %d for %s\nnonce %s\n" % (idx, label, rng.getrandbits(64))).encode())
        add(d + "/latest", kind=tarfile.SYMTYPE, mode=0o777, link="data.bin")
        add("etc/", kind=tarfile.DIRTYPE, mode=0o755)
        add("etc/e2e-layer%d" % idx, ("%s %d\n" % (label, idx)).encode())
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    return gz, "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_platform(s):
    parts = s.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit("bad platform %r (want os/arch[/variant])" % s)
    p = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        p["variant"] = parts[2]
    return p


def make_image(layout, rng, platform, layers, size):
    label = "/".join([platform["os"], platform["architecture"]] +
                     ([platform["variant"]] if "variant" in platform else []))
    layer_descs, diff_ids, history = [], [], []
    for i in range(layers):
        gz, diff_id = make_layer(rng, i, size, label)
        layer_descs.append(layout.put(gz, MT_LAYER_GZ))
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": "mkimage.py layer %d (%s)" % (i, label)})
    config = {
        "created": CREATED,
        "architecture": platform["architecture"],
        "os": platform["os"],
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"e2e.platform": label},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if "variant" in platform:
        config["variant"] = platform["variant"]
    cdesc = layout.put(canon(config), MT_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": cdesc,
        "layers": layer_descs,
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    return layout.put(canon(manifest), MT_MANIFEST)


def parse_ref(ref):
    if ref.startswith("oci:"):
        ref = ref[4:]
    if ":" not in ref:
        raise SystemExit("reference must be [oci:]DIR:TAG, got %r" % ref)
    path, tag = ref.rsplit(":", 1)
    if not path or not tag:
        raise SystemExit("reference must be [oci:]DIR:TAG, got %r" % ref)
    return path, tag


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("single", "index"):
        sp = sub.add_parser(name)
        sp.add_argument("ref", help="oci:DIR:TAG")
        sp.add_argument("--layers", type=int, default=2)
        sp.add_argument("--size", type=int, default=64 * 1024,
                        help="bytes of data per layer (default 65536)")
        sp.add_argument("--seed", default=None, help="deterministic content seed")
        if name == "single":
            sp.add_argument("--platform", default="linux/amd64", help="os/arch[/variant]")
        else:
            sp.add_argument("--platforms", default="linux/amd64,linux/arm64/v8,linux/arm/v7")
    a = ap.parse_args(argv)
    if a.layers < 1 or a.size < 0:
        raise SystemExit("--layers must be >= 1 and --size >= 0")
    seed = a.seed if a.seed is not None else os.urandom(16).hex()
    path, tag = parse_ref(a.ref)
    layout = Layout(path)
    if a.cmd == "single":
        desc = make_image(layout, random.Random("%s|single" % seed),
                          parse_platform(a.platform), a.layers, a.size)
        desc["platform"] = parse_platform(a.platform)
    else:
        entries = []
        for ps in a.platforms.split(","):
            plat = parse_platform(ps)
            d = make_image(layout, random.Random("%s|%s" % (seed, ps)), plat, a.layers, a.size)
            d["platform"] = plat
            entries.append(d)
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries,
                 "annotations": {"org.opencontainers.image.created": CREATED}}
        desc = layout.put(canon(index), MT_INDEX)
    layout.tag(desc, tag)
    print(desc["digest"])


if __name__ == "__main__":
    main(sys.argv[1:])
