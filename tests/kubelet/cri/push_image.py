#!/usr/bin/env python3
"""Builds a small image from the host's static busybox and pushes it to a registry over
the Docker Registry HTTP API v2 (no registry client needed):

    push_image.py 127.0.0.1:5000 busybox 1.37

The image has /bin/busybox with a few applet links, and sleeps forever by default."""
import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.request

APPLETS = ["sh", "sleep", "cat", "echo", "ls", "grep", "wc"]


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def layer_tar(busybox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d in ["bin", "tmp", "etc", "proc", "sys", "dev"]:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            t.addfile(ti)
        t.add(busybox, arcname="bin/busybox")
        for app in APPLETS:
            ti = tarfile.TarInfo("bin/" + app)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            t.addfile(ti)
    return buf.getvalue()


def main():
    registry, repo, tag = sys.argv[1:4]
    busybox = sys.argv[4] if len(sys.argv) > 4 else "/bin/busybox"
    raw = layer_tar(busybox)
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sleep", "2147483647"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
    }).encode()
    base = f"http://{registry}/v2/{repo}"

    def put_blob(blob):
        r = urllib.request.urlopen(urllib.request.Request(base + "/blobs/uploads/", method="POST"))
        loc = r.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{registry}" + loc
        loc += ("&" if "?" in loc else "?") + "digest=" + digest(blob)
        urllib.request.urlopen(urllib.request.Request(
            loc, data=blob, method="PUT", headers={"Content-Type": "application/octet-stream"}))

    put_blob(layer)
    put_blob(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer), "size": len(layer)}],
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{base}/manifests/{tag}", data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    print(f"pushed {registry}/{repo}:{tag} {digest(manifest)}")


if __name__ == "__main__":
    main()
