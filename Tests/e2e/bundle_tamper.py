#!/usr/bin/env python3
"""Damaged copies of a satellite-lite bundle for the e2e refusal tests (standard library only).

  bundle_tamper.py flip IN OUT             one byte of the last blob's data flipped
  bundle_tamper.py resign IN OUT KEY.pem   bundle.json.sig replaced by a signature of another key
  bundle_tamper.py inject IN OUT NAME      an extra entry NAME (e.g. ../escape) after the signature
  bundle_tamper.py link IN OUT             an extra symbolic link entry after the signature
"""
import base64, io, shutil, subprocess, sys, tarfile


def flip(src, dst):
    shutil.copyfile(src, dst)
    with tarfile.open(src) as tar:
        last = [m for m in tar.getmembers() if m.name.startswith("blobs/")][-1]
        offset = last.offset_data + last.size // 2
    with open(dst, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def rewrite(src, dst, edit):
    with tarfile.open(src) as tar, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        for member in tar.getmembers():
            data = tar.extractfile(member).read() if member.isfile() else None
            data = edit(member, data, out)
            if data is not None:
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))


def main():
    cmd, src, dst = sys.argv[1:4]
    if cmd == "flip":
        flip(src, dst)
    elif cmd == "resign":
        key = sys.argv[4]

        def edit(member, data, out):
            if member.name == "bundle.json":
                edit.document = data
            if member.name == "bundle.json.sig":
                der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=edit.document,
                                     capture_output=True, check=True).stdout
                return base64.b64encode(der) + b"\n"
            return data
        rewrite(src, dst, edit)
    elif cmd in ("inject", "link"):
        name = sys.argv[4] if cmd == "inject" else "evil-link"

        def edit(member, data, out):
            if member.name == "oci-layout":
                extra = tarfile.TarInfo(name)
                if cmd == "link":
                    extra.type = tarfile.SYMTYPE
                    extra.linkname = "/etc/passwd"
                    out.addfile(extra)
                else:
                    payload = b"escaped\n"
                    extra.size = len(payload)
                    out.addfile(extra, io.BytesIO(payload))
            return data
        rewrite(src, dst, edit)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
