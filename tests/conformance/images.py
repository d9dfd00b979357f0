#!/usr/bin/env python3
"""Builds the images Kubernetes' conformance tests ask for, under the names and tags they
ask for, into a registry storage directory under the cache (no public registry is
reachable here). e2e.test then runs with KUBE_TEST_REPO_LIST pointing its registries at
127.0.0.1:5000 (repo_list()), where each node serves this storage read-only.

    e2e-test-images/agnhost:2.66.1, :2.55
        /agnhost (built from k8s.io/kubernetes/test/images/agnhost by
        scripts/conformance/build-e2e.sh) on the userland upstream's image has: busybox's
        applets, and Debian's bash (/bin/sh too: busybox's sh would run its own nc), curl, nc (netcat-openbsd), dig/nslookup, ip, socat
        with their shared libraries; /coredns; the porter's localhost.crt/key; /uploads;
        the user and group the tests expect (user-defined-in-image 1000, group 50000).
        Entrypoint /agnhost, cmd pause.
    e2e-test-images/nonewprivs:1.4       nnp (k8s.io/kubernetes/test/images/nonewprivs), setuid root
    e2e-test-images/glibc-dns-testing:2.1.1   the same userland without /agnhost (upstream:
        Debian with dnsutils and /coredns)
    e2e-test-images/busybox:1.37.0-2     Debian's busybox-static with its applet links (each
        in /bin too, as the official image), bash as /bin/sh (see image_specs)
    e2e-test-images/nginx:1.27.0-2, :1.28.0-2
        Debian's nginx (the package unpacked, never installed) with its libraries,
        serving /usr/share/nginx/html on :80 in the foreground
    e2e-test-images/kitten:1.8, nautilus:1.8   agnhost plus upstream's html/<name>.jpg and
        data.json (kubectl's update-demo, the image volume test); its /etc/os-release names
        Alpine, upstream's base, and says it is a stand-in
    e2e-test-images/nonroot:1.5          the busybox userland with USER 1234
    etcd:3.7.0-0                         the cluster tier's etcd ($ETCD_VERSION) at /usr/local/bin/etcd
    e2e-test-images/sample-apiserver:1.29.2   k8s.io/sample-apiserver at the Kubernetes
        version (built by build-e2e.sh --all; only then in the registry)
    pause:3.10.2                         tests/runtime/images/pause.c, static
    coredns/coredns:<COREDNS_VERSION>    the cluster DNS (coredns from its Go module)

The layers and OCI layouts are made as tests/runtime/images/build.py makes its own
(deterministic tars, hand-written manifests) and pushed with skopeo into a
docker-registry started for the purpose in a private network namespace. The result:

    $KNODE_CACHE_DIR/conformance-images/<key>/{registry/, images.json}

<key> hashes this file, the runtime builder, and every binary put in an image: a second
run with the same inputs only reads images.json. Prints the directory.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RUNTIME = os.path.join(REPO, "tests", "runtime")
sys.path.insert(0, RUNTIME)
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))


def _load_builder():
    spec = importlib.util.spec_from_file_location("runtime_images_build", os.path.join(RUNTIME, "images", "build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B = _load_builder()
REGISTRY = "127.0.0.1:5000"

# Debian binaries the agnhost image carries, beside busybox (path in the image = on the host).
AGNHOST_TOOLS = ["/bin/bash", "/usr/bin/curl", "/bin/nc.openbsd", "/usr/bin/dig", "/usr/bin/nslookup",
                 "/usr/bin/host", "/bin/ip", "/usr/bin/socat", "/usr/bin/getent"]
DEBIAN_PACKAGES = ["netcat-openbsd", "bind9-dnsutils", "curl", "iproute2", "socat", "bash", "busybox-static"]


def versions() -> dict[str, str]:
    out = {}
    with open(os.path.join(REPO, "scripts", "cluster", "versions.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out


def cache_dir() -> str:
    return os.environ.get("KNODE_CACHE_DIR") or "/var/cache/knode"


def bin_dir() -> str:
    return os.path.join(cache_dir(), f"kubernetes-{versions()['KUBE_VERSION']}", "bin")


def repo_list() -> str:
    """KUBE_TEST_REPO_LIST's content: every registry e2e.test knows, on the local one."""
    return "\n".join([
        f"promoterE2eRegistry: {REGISTRY}/e2e-test-images",
        f"buildImageRegistry: {REGISTRY}/build-image",
        f"gcEtcdRegistry: {REGISTRY}",
        f"gcRegistry: {REGISTRY}",
        f"sigStorageRegistry: {REGISTRY}/sig-storage",
        f"privateRegistry: {REGISTRY}/k8s-authenticated-test",
        f"dockerLibraryRegistry: {REGISTRY}/library",
        f"cloudProviderGcpRegistry: {REGISTRY}/cloud-provider-gcp",
        "invalidRegistry: invalid.registry.k8s.io/invalid",
    ]) + "\n"


# --------------------------------------------------------------------------- userland


def _shared_libraries(binary: str) -> list[str]:
    """The files ldd resolves for binary (the dynamic loader included)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        raise RuntimeError(f"ldd {binary}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
            elif i + 1 < len(parts) and parts[i + 1] == "not":
                raise RuntimeError(f"ldd {binary}: {line.strip()}")
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the loader
    return libs


def _add_file_with_links(layer, path: str, mode: int | None = None):
    """path into the layer at the same path; a symlink chain is kept as links."""
    seen = 0
    while os.path.islink(path) and seen < 10:
        target = os.readlink(path)
        layer.symlink(path, target)
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
        seen += 1
    with open(path, "rb") as f:
        layer.file(path, f.read(), mode if mode is not None else (os.stat(path).st_mode & 0o7777))


def add_dynamic_binary(layer, binary: str, at: str | None = None):
    """A host binary and the shared libraries it needs (from the host's /lib, /usr/lib)."""
    with open(binary, "rb") as f:
        layer.file(at or binary, f.read(), 0o755)
    for lib in _shared_libraries(binary):
        _add_file_with_links(layer, lib)


def base_layer():
    """busybox's applets, /etc basics, and a merged-/usr layout like Debian's."""
    layer = B.Layer()
    # merged /usr first, so the loader and libraries under /lib and /lib64 land in usr/
    layer.dir("usr/lib")
    layer.dir("usr/lib64")
    layer.symlink("lib", "usr/lib")
    layer.symlink("lib64", "usr/lib64")
    bb = B.busybox_layer()
    for name, entry in bb.entries.items():
        layer.entries[name] = entry
    # The official busybox image has every applet in /bin (tests call /bin/sysctl, which
    # Debian puts in /sbin): a /bin link for each one that is elsewhere.
    for name, (ti, _) in list(bb.entries.items()):
        base = os.path.basename(name)
        if ti.issym() and ti.linkname == "/bin/busybox" and f"bin/{base}" not in layer.entries:
            layer.symlink(f"bin/{base}", "/bin/busybox")
    layer.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\nservices: files\n")
    layer.file("etc/hosts", b"127.0.0.1 localhost\n")
    if os.path.exists("/etc/services"):
        with open("/etc/services", "rb") as f:
            layer.file("etc/services", f.read())
    return layer


def _norm(path: str) -> str:
    """/lib/x and /lib64/x as they land in a merged-/usr layer (lib, lib64 link to usr/)."""
    p = path.strip("/")
    return "usr/" + p if p.startswith("lib/") or p.startswith("lib64/") else p


class MergedLayer:
    """A Layer whose /lib and /lib64 paths are written under usr/ (the links point there)."""

    def __init__(self, layer):
        self.layer = layer
        self.entries = layer.entries

    def file(self, path, data, mode=0o644):
        self.layer.file(_norm(path), data, mode)

    def symlink(self, path, target):
        self.layer.symlink(_norm(path), target)

    def dir(self, path, mode=0o755):
        self.layer.dir(_norm(path), mode)


def agnhost_layer(bins: str, with_agnhost: bool = True):
    """agnhost's userland; without /agnhost it is glibc-dns-testing (upstream: Debian with
    dnsutils and /coredns)."""
    layer = base_layer()
    m = MergedLayer(layer)
    names = {os.path.basename(t) for t in AGNHOST_TOOLS} | {"nc"}
    for d in ("bin", "sbin", "usr/bin", "usr/sbin"):  # busybox's applets of those names go
        for n in names:
            layer.entries.pop(f"{d}/{n}", None)
    for tool in AGNHOST_TOOLS:
        if not os.path.exists(tool):
            raise FileNotFoundError(f"{tool} missing: run scripts/runtime/install.sh")
        add_dynamic_binary(m, os.path.realpath(tool), at=tool)
    layer.symlink("bin/nc", "nc.openbsd")
    # Debian's busybox sh runs its own applets before PATH (FEATURE_SH_STANDALONE): its nc
    # would shadow netcat-openbsd. Alpine's, upstream's base, does not; bash as sh does not.
    layer.symlink("bin/sh", "bash")
    if with_agnhost:
        with open(os.path.join(bins, "agnhost"), "rb") as f:
            layer.file("agnhost", f.read(), 0o755)
        layer.symlink("agnhost-2", "agnhost")
    with open(os.path.join(bins, "coredns"), "rb") as f:
        layer.file("coredns", f.read(), 0o755)
    porter = os.path.join(kube_module_dir(), "test", "images", "agnhost", "porter")
    for name in ("localhost.crt", "localhost.key"):
        with open(os.path.join(porter, name), "rb") as f:
            layer.file(name, f.read())
    layer.dir("uploads")
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                             b"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\nuser-defined-in-image:x:1000:\n"
                            b"group-defined-in-image:x:50000:user-defined-in-image\n")
    layer.dir("home/user-defined-in-image")
    # Upstream's agnhost is built on Alpine, and the image volume test reads the Alpine name
    # from the kitten image (agnhost + two files). This userland is Debian's, which the
    # file says after the name the test looks for.
    layer.file("etc/os-release", b'NAME="Alpine Linux"\nID=alpine\n'
                                 b'PRETTY_NAME="Alpine Linux stand-in: knode\'s test userland from Debian 12 packages"\n')
    return layer


def update_demo_layer(bins: str, name: str):
    """kitten and nautilus (upstream: agnhost plus html/<name>.jpg and html/data.json, run as
    `agnhost test-webserver`), the files from the kubernetes module's test/images/<name>."""
    layer = agnhost_layer(bins)
    html = os.path.join(kube_module_dir(), "test", "images", name, "html")
    for f in (f"{name}.jpg", "data.json"):
        with open(os.path.join(html, f), "rb") as fh:
            layer.file(f, fh.read())
    return layer


def etcd_binary() -> str:
    return os.path.join(cache_dir(), f"etcd-{versions()['ETCD_VERSION']}", "bin", "etcd")


def resolve(layer, path: str, hops: int = 20) -> str:
    """Where path leads inside the layer (its symlinks followed, directories' included)."""
    parts, done = [p for p in path.strip("/").split("/") if p], []
    while parts and hops > 0:
        cur = "/".join(done + [parts.pop(0)])
        entry = layer.entries.get(cur)
        if entry is not None and entry[0].issym():
            hops -= 1
            target = entry[0].linkname
            base = [] if target.startswith("/") else done
            parts = [p for p in target.strip("/").split("/") if p and p != "."] + parts
            done = list(base)
            while parts and parts[0] == "..":
                parts.pop(0)
                if done:
                    done.pop()
            continue
        done = cur.split("/")
    return "/".join(done)


def check_agnhost(layer):
    """What the tests call resolves, through PATH, to the real tool and not to busybox, and
    every library the tools need is in the image."""
    path = ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"]
    for name in ("sh", "bash", "curl", "nc", "dig", "nslookup", "host", "ip", "socat", "wget", "seq", "cat"):
        found = next((resolve(layer, f"{d}/{name}") for d in path if f"{d}/{name}" in layer.entries), None)
        if found is None or found not in layer.entries or not layer.entries[found][0].isfile():
            raise RuntimeError(f"agnhost image: {name} does not resolve to a file ({found})")
        if name in ("bash", "curl", "nc", "dig", "nslookup", "host", "ip", "socat") and found == "bin/busybox":
            raise RuntimeError(f"agnhost image: {name} is busybox's applet, not the real tool")
    for tool in AGNHOST_TOOLS:
        for lib in _shared_libraries(os.path.realpath(tool)):
            got = resolve(layer, lib)
            if got not in layer.entries or not layer.entries[got][0].isfile():
                raise RuntimeError(f"agnhost image: {tool} needs {lib}, which is not in the image")


def nginx_layer(nginx_root: str):
    layer = base_layer()
    m = MergedLayer(layer)
    add_dynamic_binary(m, os.path.join(nginx_root, "usr", "sbin", "nginx"), at="/usr/sbin/nginx")
    mime = os.path.join(nginx_root, "etc", "nginx", "mime.types")
    with open(mime, "rb") as f:
        layer.file("etc/nginx/mime.types", f.read())
    layer.file("etc/nginx/nginx.conf", b"""user root;
worker_processes 1;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    server {
        listen 80;
        listen [::]:80;
        server_name localhost;
        location / { root /usr/share/nginx/html; index index.html; }
    }
}
""")
    layer.file("usr/share/nginx/html/index.html",
               b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n"
               b"<body><h1>Welcome to nginx!</h1></body></html>\n")
    for d in ("var/log/nginx", "var/lib/nginx/body", "var/lib/nginx/proxy", "var/lib/nginx/fastcgi",
              "var/lib/nginx/uwsgi", "var/lib/nginx/scgi", "run"):
        layer.dir(d)
    return layer


def kube_module_dir() -> str:
    v = versions()["KUBE_VERSION"]
    d = os.path.join(cache_dir(), "go", "mod", "k8s.io", f"kubernetes@{v}")
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{d} missing: run scripts/conformance/build-e2e.sh")
    return d


def unpack_nginx(workdir: str) -> str:
    """Debian's nginx package unpacked with dpkg -x (never installed: no service starts)."""
    debs = os.path.join(cache_dir(), "conformance-debs")
    os.makedirs(debs, exist_ok=True)

    def download(pkg: str) -> str:
        found = glob.glob(os.path.join(debs, f"{pkg}_*.deb"))
        if not found:
            r = subprocess.run(["apt-get", "download", pkg], cwd=debs, timeout=300, capture_output=True)
            if r.returncode != 0:  # stale or absent package lists: once more after an update
                subprocess.run(["apt-get", "update"], check=True, timeout=600, capture_output=True)
                subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, timeout=300,
                               capture_output=True)
            found = glob.glob(os.path.join(debs, f"{pkg}_*.deb"))
        return sorted(found)[-1]

    found, common = [download("nginx")], [download("nginx-common")]
    root = os.path.join(workdir, "nginx-root")
    for deb in (sorted(found)[-1], sorted(common)[-1]):
        subprocess.run(["dpkg", "-x", deb, root], check=True, timeout=120)
    return root


def image_specs(workdir: str) -> dict[str, dict]:
    bins = bin_dir()
    cv = versions()["COREDNS_VERSION"]
    pause_bin = os.path.join(workdir, "pause")
    B.compile_static(os.path.join(RUNTIME, "images", "pause.c"), pause_bin)
    pause = B.Layer()
    with open(pause_bin, "rb") as f:
        pause.file("pause", f.read(), 0o755)
    coredns = B.Layer()
    with open(os.path.join(bins, "coredns"), "rb") as f:
        coredns.file("coredns", f.read(), 0o755)
    coredns.dir("etc/coredns")
    coredns.dir("tmp", 0o1777)
    agnhost = agnhost_layer(bins)
    check_agnhost(agnhost)
    glibc_dns = agnhost_layer(bins, with_agnhost=False)
    nginx = nginx_layer(unpack_nginx(workdir))
    nonewprivs = base_layer()
    with open(os.path.join(bins, "nnp"), "rb") as f:
        nonewprivs.file("usr/local/bin/nnp", f.read(), 0o4755)  # setuid root, as upstream's
    busybox = base_layer()
    # Debian's busybox 1.35 sh drops variables whose names are no shell names ("data-1",
    # which envFrom makes) from what it passes on; busybox 1.37, upstream's, and bash keep
    # them. bash is the image's /bin/sh, busybox the rest.
    add_dynamic_binary(MergedLayer(busybox), os.path.realpath("/bin/bash"), at="/bin/bash")
    busybox.symlink("bin/sh", "bash")
    nonroot = base_layer()  # upstream: debian-base with USER 1234
    etcd = B.Layer()  # upstream: distroless with /usr/local/bin/etcd
    with open(etcd_binary(), "rb") as f:
        etcd.file("usr/local/bin/etcd", f.read(), 0o755)
    etcd.dir("var/lib/etcd", 0o700)
    env = [B.PATH_ENV]
    agnhost_config = {"Env": env, "Entrypoint": ["/agnhost"], "WorkingDir": "/"}
    specs = {
        "pause": {"tags": ["3.10.2"], "layer": pause, "source": "pause.c",
                  "config": {"Env": env, "Entrypoint": ["/pause"], "WorkingDir": "/"}},
        "e2e-test-images/agnhost": {"tags": ["2.66.1", "2.55"], "layer": agnhost, "source": "agnhost",
                                    "config": {"Env": env, "Entrypoint": ["/agnhost"], "Cmd": ["pause"],
                                               "WorkingDir": "/",
                                               "ExposedPorts": {f"{p}/tcp": {} for p in (80, 8080, 8081, 9376, 5000)}}},
        "e2e-test-images/glibc-dns-testing": {"tags": ["2.1.1"], "layer": glibc_dns, "source": "dnsutils",
                                              "config": {"Env": env, "Cmd": ["bash"], "WorkingDir": "/"}},
        "e2e-test-images/nonewprivs": {"tags": ["1.4"], "layer": nonewprivs, "source": "nnp",
                                       "config": {"Env": env, "Cmd": ["nnp"], "WorkingDir": "/"}},
        "e2e-test-images/busybox": {"tags": ["1.37.0-2"], "layer": busybox, "source": B.BUSYBOX,
                                    "config": {"Env": env, "Cmd": ["sh"], "WorkingDir": "/"}},
        "e2e-test-images/nginx": {"tags": ["1.27.0-2", "1.28.0-2"], "layer": nginx, "source": "nginx",
                                  "config": {"Env": env, "Cmd": ["nginx", "-g", "daemon off;"], "WorkingDir": "/",
                                             "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}},
        "e2e-test-images/kitten": {"tags": ["1.8"], "layer": update_demo_layer(bins, "kitten"), "source": "agnhost",
                                   "config": {**agnhost_config, "Cmd": ["test-webserver"], "ExposedPorts": {"80/tcp": {}}}},
        "e2e-test-images/nautilus": {"tags": ["1.8"], "layer": update_demo_layer(bins, "nautilus"),
                                     "source": "agnhost",
                                     "config": {**agnhost_config, "Cmd": ["test-webserver"],
                                                "ExposedPorts": {"80/tcp": {}}}},
        "e2e-test-images/nonroot": {"tags": ["1.5"], "layer": nonroot, "source": B.BUSYBOX,
                                    "config": {"Env": env, "Cmd": ["sh"], "WorkingDir": "/", "User": "1234"}},
        "etcd": {"tags": ["3.7.0-0"], "layer": etcd, "source": "etcd",
                 "config": {"Env": env, "Cmd": ["/usr/local/bin/etcd"], "WorkingDir": "/"}},
        "coredns/coredns": {"tags": [cv], "layer": coredns, "source": "coredns",
                            "config": {"Env": env, "Entrypoint": ["/coredns"], "WorkingDir": "/",
                                       "ExposedPorts": {"53/udp": {}, "53/tcp": {}}}},
    }
    sample = os.path.join(bins, "sample-apiserver")
    if os.path.exists(sample):  # built by build-e2e.sh --all (the whole-suite run)
        layer = base_layer()  # upstream: Alpine with /sample-apiserver
        with open(sample, "rb") as f:
            layer.file("sample-apiserver", f.read(), 0o755)
        specs["e2e-test-images/sample-apiserver"] = {
            "tags": ["1.29.2"], "layer": layer, "source": "sample-apiserver",
            "config": {"Env": env, "Entrypoint": ["/sample-apiserver"], "WorkingDir": "/"}}
    return specs


def cache_key() -> str:
    h = hashlib.sha256()
    for p in (os.path.abspath(__file__), os.path.join(RUNTIME, "images", "build.py"),
              os.path.join(RUNTIME, "images", "pause.c"), os.path.join(bin_dir(), "agnhost"),
              os.path.join(bin_dir(), "coredns"), os.path.join(bin_dir(), "nnp"),
              os.path.join(bin_dir(), "sample-apiserver"), etcd_binary(), B.BUSYBOX, *AGNHOST_TOOLS):
        h.update(p.encode() + b"\0" + (B._file_sha256(p).encode() if os.path.exists(p) else b"absent") + b"\0")
    h.update(B._tool_version(["dpkg-query", "-W", "-f=${Version}", "docker-registry"]).encode())
    h.update(versions().get("COREDNS_VERSION", "").encode())
    return h.hexdigest()[:16]


def push(oci_root: str, storage: str, images: dict, workdir: str):
    """Every name:tag into a fresh registry storage, each manifest read back and compared."""
    import knode_runtime as rt

    ns = rt.Netns("cfimg")
    ns.create()
    reg = None
    try:
        reg = rt.Registry(ns.name, workdir, storage=storage, readonly=False).start()
        for ref, img in images.items():
            name, tag = ref.rsplit(":", 1)
            rt.kn.run(rt.nsenter(ns.name) + ["skopeo", "--insecure-policy", "copy", "--quiet",
                                             "--dest-tls-verify=false", f"oci:{img['oci']}:{tag}",
                                             f"docker://{REGISTRY}/{ref}"], timeout=300)
            got = B._manifest_digest(ns.name, name, tag)
            if got != img["manifest_digest"]:
                raise RuntimeError(f"registry holds {got} for {ref}, pushed {img['manifest_digest']}")
    finally:
        if reg is not None:
            reg.stop()
        ns.delete()


def _prune(base: str, keep: int):
    """Older keys (about 100 MB each) beyond the `keep` newest go (another checkout still
    serving an older one rebuilds it on its next run)."""
    keys = [os.path.join(base, k) for k in os.listdir(base)
            if ".tmp-" not in k and os.path.exists(os.path.join(base, k, "images.json"))]
    keys.sort(key=lambda d: os.path.getmtime(os.path.join(d, "images.json")), reverse=True)
    for d in keys[keep:]:
        shutil.rmtree(d, ignore_errors=True)


def ensure(build: bool = True) -> dict:
    import image_cache

    base = os.path.join(cache_dir(), "conformance-images")
    key = cache_key()

    def make(tmp: str, final: str) -> dict:
        t0 = time.monotonic()
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        out = {}
        for name, spec in image_specs(work).items():
            for tag in spec["tags"]:
                oci = os.path.join(work, "oci", name.replace("/", "_") + "_" + tag)
                digests = B.write_oci_layout(oci, tag, spec["layer"], spec["config"], spec["source"])
                out[f"{name}:{tag}"] = {"oci": oci, "ref": f"{REGISTRY}/{name}:{tag}", **digests}
        push(os.path.join(work, "oci"), os.path.join(tmp, "registry"), out, work)
        shutil.rmtree(work)
        for v in out.values():
            v.pop("oci")
        return {"key": key, "dir": final, "registry": os.path.join(final, "registry"), "images": out,
                "build_seconds": round(time.monotonic() - t0, 2)}

    fresh = not os.path.exists(os.path.join(base, key, "images.json"))
    doc = image_cache.cached(base, key, make if build else None,
                             "conformance images (run tests/conformance/images.py)")
    if fresh:
        _prune(base, keep=3)
    return doc


def main() -> int:
    if os.geteuid() != 0:
        print("SKIP: building the conformance images needs root (a network namespace for the registry)")
        return 77
    for b in ("agnhost", "nnp", "coredns"):
        if not os.path.exists(os.path.join(bin_dir(), b)):
            print(f"SKIP: {os.path.join(bin_dir(), b)} missing (run scripts/conformance/build-e2e.sh)")
            return 77
    t0 = time.monotonic()
    doc = ensure()
    print(doc["dir"])
    print(f"images: {', '.join(sorted(i['ref'] for i in doc['images'].values()))} "
          f"({time.monotonic() - t0:.2f} s; built in {doc['build_seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
