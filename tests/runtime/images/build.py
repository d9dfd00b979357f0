#!/usr/bin/env python3
"""Builds the runtime tier's test images from the sources in this directory and pushes
them, once, into a registry storage directory under the cache:

    pause    /pause (pause.c, static): sleeps until SIGTERM/SIGINT, reaps zombies as PID 1
    kubia    /kubia (kubia.c, static): HTTP on :8080, "You've hit <hostname>\\n"
    busybox  Debian's busybox-static with a link per applet (sh, ls, wget, nc, ...)

Each image is one gzip layer, written deterministically (sorted entries, owner 0, mtime
0), with an OCI config and manifest: the OCI layout is made here by hand (tar + sha256),
then `skopeo copy` pushes it into a docker-registry started for the purpose in a
private netns. The result lands in

    $KNODE_CACHE_DIR/runtime-images/<key>/{oci/<name>/, registry/, images.json}

where <key> hashes every file here, the busybox binary, gcc's version and the registry's
version: a second run with the same inputs only reads images.json. Tests serve
registry/ read-only (knode_runtime.Registry). Prints the cache directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "..", "support"))

BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = "1970-01-01T00:00:00Z"
LAYOUT_REF = "org.opencontainers.image.ref.name"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "absent"


def busybox_tag() -> str:
    """major.minor of the busybox the image carries (Debian 12: 1.35)."""
    out = _tool_version([BUSYBOX])
    first = out.splitlines()[0] if out else ""
    parts = first.split()
    ver = parts[1].lstrip("v") if len(parts) > 1 and parts[0] == "BusyBox" else "0.0"
    return ".".join(ver.split(".")[:2])


def cache_key() -> str:
    h = hashlib.sha256()
    for name in sorted(os.listdir(HERE)):
        p = os.path.join(HERE, name)
        if os.path.isfile(p) and not name.endswith(".pyc"):
            h.update(name.encode() + b"\0" + _file_sha256(p).encode() + b"\0")
    h.update(_file_sha256(BUSYBOX).encode() if os.path.exists(BUSYBOX) else b"no-busybox")
    h.update(_tool_version(["gcc", "-dumpfullversion"]).encode())
    h.update(_tool_version(["dpkg-query", "-W", "-f=${Version}", "docker-registry"]).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- layers


class Layer:
    """A deterministic tar: entries added in any order, written sorted by path."""

    def __init__(self):
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def _info(self, path: str, type_: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(path.strip("/"))
        ti.type, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = type_, mode, 0, 0, "", "", 0
        return ti

    def dir(self, path: str, mode: int = 0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.entries:
                self.entries[p] = (self._info(p, tarfile.DIRTYPE, mode if i == len(parts) else 0o755), None)

    def file(self, path: str, data: bytes, mode: int = 0o644):
        parent = os.path.dirname(path.strip("/"))
        if parent:
            self.dir(parent)
        ti = self._info(path, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.entries[path.strip("/")] = (ti, data)

    def symlink(self, path: str, target: str):
        parent = os.path.dirname(path.strip("/"))
        if parent:
            self.dir(parent)
        ti = self._info(path, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.entries[path.strip("/")] = (ti, None)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name in sorted(self.entries):
                ti, data = self.entries[name]
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def compile_static(src: str, out: str):
    subprocess.run(["gcc", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", out, src],
                   check=True, timeout=120)


def busybox_layer() -> Layer:
    layer = Layer()
    with open(BUSYBOX, "rb") as f:
        layer.file("bin/busybox", f.read(), 0o755)
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True,
                             timeout=20).stdout.split()
    for path in applets[:2000]:
        if path != "bin/busybox":
            layer.symlink(path, "/bin/busybox")
    for d in ("dev", "proc", "sys", "var", "home", "etc"):
        layer.dir(d)
    layer.dir("tmp", 0o1777)
    layer.dir("root", 0o700)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return layer


def image_specs(workdir: str) -> dict[str, dict]:
    """name -> tag, layer, image config (the `config` object of the OCI image config)."""
    pause_bin, kubia_bin = os.path.join(workdir, "pause"), os.path.join(workdir, "kubia")
    compile_static(os.path.join(HERE, "pause.c"), pause_bin)
    compile_static(os.path.join(HERE, "kubia.c"), kubia_bin)
    pause, kubia = Layer(), Layer()
    with open(pause_bin, "rb") as f:
        pause.file("pause", f.read(), 0o755)
    with open(kubia_bin, "rb") as f:
        kubia.file("kubia", f.read(), 0o755)
    return {
        "pause": {"tag": "3.10", "layer": pause, "source": "pause.c",
                  "config": {"Env": [PATH_ENV], "Entrypoint": ["/pause"], "WorkingDir": "/"}},
        "kubia": {"tag": "1", "layer": kubia, "source": "kubia.c",
                  "config": {"Env": [PATH_ENV], "Entrypoint": ["/kubia"], "WorkingDir": "/",
                             "ExposedPorts": {"8080/tcp": {}}}},
        "busybox": {"tag": busybox_tag(), "layer": busybox_layer(), "source": BUSYBOX,
                    "config": {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"}},
    }


def write_oci_layout(dest: str, tag: str, layer: Layer, config: dict, source: str) -> dict:
    """One image as an OCI layout in dest (index.json names it `tag`); returns digests."""
    tar = layer.tar()
    blob = _gzip(tar)
    cfg = json.dumps({
        "created": CREATED, "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [_sha256(tar)]},
        "history": [{"created": CREATED, "created_by": f"tests/runtime/images/build.py from {source}"}],
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": _sha256(cfg), "size": len(cfg)},
        "layers": [{"mediaType": MT_LAYER, "digest": _sha256(blob), "size": len(blob)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    blobs = os.path.join(dest, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    for data in (blob, cfg, manifest):
        with open(os.path.join(blobs, _sha256(data).split(":")[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": MT_MANIFEST, "digest": _sha256(manifest),
                                                      "size": len(manifest), "annotations": {LAYOUT_REF: tag}}]}, f)
    return {"manifest_digest": _sha256(manifest), "config_digest": _sha256(cfg), "layer_digest": _sha256(blob),
            "layer_size": len(blob), "diff_id": _sha256(tar)}


# --------------------------------------------------------------------------- push


def push_all(oci_root: str, storage: str, images: dict, workdir: str) -> float:
    """Pushes every image into a fresh registry storage; returns the registry's start time.

    The registry runs in a netns of its own (so port 5000 never clashes with anyone's)
    and every manifest is read back and compared with what was pushed."""
    import knode_runtime as rt

    ns = rt.Netns("imgbuild")
    ns.create()
    reg = None
    try:
        reg = rt.Registry(ns.name, workdir, storage=storage, readonly=False).start()
        for name, img in images.items():
            dest = f"docker://{rt.REGISTRY_ADDR}/{name}:{img['tag']}"
            rt.kn.run(rt.nsenter(ns.name) + ["skopeo", "--insecure-policy", "copy", "--quiet",
                                             "--dest-tls-verify=false",
                                             f"oci:{os.path.join(oci_root, name)}:{img['tag']}", dest], timeout=120)
            got = _manifest_digest(ns.name, name, img["tag"])
            if got != img["manifest_digest"]:
                raise RuntimeError(f"registry holds {got} for {name}:{img['tag']}, pushed {img['manifest_digest']}")
        return reg.start_seconds
    finally:
        if reg is not None:
            reg.stop()
        ns.delete()


def _manifest_digest(netns: str, name: str, tag: str) -> str:
    """sha256 of the manifest bytes the registry serves for name:tag (asking for OCI)."""
    import knode_runtime as rt

    def fetch():
        s = rt.kn.ns_socket(netns)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", 5000))
            s.sendall(f"GET /v2/{name}/manifests/{tag} HTTP/1.0\r\nHost: 127.0.0.1:5000\r\n"
                      f"Accept: {MT_MANIFEST}\r\n\r\n".encode())
            data = b""
            while len(data) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET manifest {name}:{tag}: {head.splitlines()[0] if head else b'no answer'}")
        return body

    return _sha256(fetch())


# --------------------------------------------------------------------------- entry


def ensure(cache: str, build: bool = True) -> dict:
    """images.json of the current sources' images, building them when absent."""
    import image_cache

    key = cache_key()

    def make(tmp: str, final: str) -> dict:
        t0 = time.monotonic()
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        out = {}
        for name, spec in image_specs(work).items():
            digests = write_oci_layout(os.path.join(tmp, "oci", name), spec["tag"], spec["layer"],
                                       spec["config"], spec["source"])
            out[name] = {"tag": spec["tag"], "ref": f"127.0.0.1:5000/{name}:{spec['tag']}", **digests}
        reg_secs = push_all(os.path.join(tmp, "oci"), os.path.join(tmp, "registry"), out, work)
        shutil.rmtree(work)
        # Older keys stay (a few MB each): another checkout with other sources may serve them.
        return {"key": key, "dir": final, "registry": os.path.join(final, "registry"), "images": out,
                "build_seconds": round(time.monotonic() - t0, 2), "registry_start_seconds": round(reg_secs, 3)}

    return image_cache.cached(os.path.join(cache, "runtime-images"), key, make if build else None,
                              "test images (run tests/runtime/images/build.py)")


def main() -> int:
    if os.geteuid() != 0:
        print("SKIP: building the test images needs root (a network namespace for the registry)")
        return 77
    missing = [t for t in ("gcc", "skopeo", "docker-registry", "ip", "nsenter") if shutil.which(t) is None]
    if not os.path.exists(BUSYBOX):
        missing.append(BUSYBOX)
    if missing:
        print(f"SKIP: missing {', '.join(missing)} (run scripts/runtime/install.sh)")
        return 77
    cache = os.environ.get("KNODE_CACHE_DIR") or "/var/cache/knode"
    t0 = time.monotonic()
    doc = ensure(cache)
    print(doc["dir"])
    secs = time.monotonic() - t0
    refs = ", ".join(i["ref"] for i in doc["images"].values())
    print(f"images: {refs} ({secs:.2f} s; built in {doc['build_seconds']} s, registry started in "
          f"{doc['registry_start_seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
