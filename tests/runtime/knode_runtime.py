#!/usr/bin/env python3
"""Runtime-tier harness: a real containerd (v2 built from its module, or Debian's 1.6) and
a local registry, started by the test itself inside a network namespace of its own.

    node netns (the test's)                       pod netns (containerd makes one per pod)
      lo 127.0.0.1                                  eth0 10.88.0.x  <-- veth -->  cni0 10.88.0.1
      docker-registry on 127.0.0.1:5000 (read-only, serving the cached images)
      containerd (private root, state, socket, config under WORKDIR) and its shims
      cni0 bridge, veths, knode-cni's iptables chains

containerd runs under `nsenter --net=/run/netns/NAME`: only the network namespace
changes, so its mounts (snapshots, pod netns, shm) stay in the root mount namespace,
under WORKDIR, where teardown() can unmount them. Everything the harness starts is
recorded in WORKDIR/harness.json, so `teardown(WORKDIR)` can clean up from another
process too (the CLI below, or the next run after a SIGKILL).

As a library (see smoke_test.py):

    rt = knode_runtime
    workdir = rt.make_workdir("v2")
    ns = rt.Netns("node", workdir=workdir).create()
    reg = rt.Registry(ns.name, workdir); reg.start()
    cd = rt.Containerd(workdir, ns.name, flavor="v2", cni_bin_dirs=[dir_of_knode_cni],
                       cni_conf_dir=conf_dir); cd.start()
    cd.crictl("pull", rt.image_ref("kubia"))
    ...
    cd.stop(); reg.stop(); ns.delete()        # or rt.teardown(workdir)

As a command (scripts/runtime/containerd.sh wraps it):

    knode_runtime.py start --dir DIR [--flavor v2|debian] [--netns NAME]
                           [--cni-bin-dir D ...] [--cni-conf-dir D] [--no-registry]
    knode_runtime.py stop --dir DIR

Every wait is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import knode_netns as kn  # noqa: E402  (run, wait_for, in_netns: shared with the netns tier)

PREFIX = "knrt"  # namespaces knrt<pid>-<role>, work dirs /tmp/knrt-<pid>-*
NETNS_DIR = "/run/netns"
STATE_FILE = "harness.json"
REGISTRY_ADDR = "127.0.0.1:5000"
FLAVORS = ("v2", "debian")
# A unix socket path holds at most 107 bytes; the v2 shims' sockets are WORKDIR/s/<64 hex>.
MAX_WORKDIR_LEN = 40


# --------------------------------------------------------------------------- paths


def cache_dir() -> str:
    return os.environ.get("KNODE_CACHE_DIR") or "/var/cache/knode"


def versions() -> dict[str, str]:
    """The pins of scripts/runtime/versions.env (the file install.sh sources)."""
    out = {}
    with open(os.path.join(REPO, "scripts", "runtime", "versions.env")) as f:
        for line in f:
            m = re.fullmatch(r"([A-Z_]+)=(\S+)", line.strip())
            if m:
                out[m.group(1)] = m.group(2)
    return out


def containerd_v2_bin_dir() -> str:
    return os.path.join(cache_dir(), f"containerd-{versions()['CONTAINERD_VERSION']}", "bin")


def crictl_path() -> str:
    return os.path.join(cache_dir(), f"cri-tools-{versions()['CRI_TOOLS_VERSION']}", "bin", "crictl")


def containerd_path(flavor: str) -> str:
    if flavor == "v2":
        return os.path.join(containerd_v2_bin_dir(), "containerd")
    return shutil.which("containerd", path="/usr/bin:/usr/local/bin:/bin") or "/usr/bin/containerd"


def runc_path() -> Optional[str]:
    return shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin")


def missing_tools(flavor: str, registry: bool = True, crictl: bool = True) -> list[str]:
    """What this machine lacks to run `flavor`; empty when everything is there. Without
    `crictl`, Debian's containerd is checked with its own `ctr` (the demo needs no Go build)."""
    out = []
    if os.geteuid() != 0:
        out.append("root (network namespaces, mounts, containers)")
    for tool in ("ip", "nsenter", "setpriv", "umount"):
        if shutil.which(tool) is None:
            out.append(f"`{tool}`")
    if not os.access(containerd_path(flavor), os.X_OK):
        out.append(f"containerd ({containerd_path(flavor)}; run scripts/runtime/install.sh)")
    shim_dir = containerd_v2_bin_dir() if flavor == "v2" else "/usr/bin"
    if not os.access(os.path.join(shim_dir, "containerd-shim-runc-v2"), os.X_OK):
        out.append(f"containerd-shim-runc-v2 in {shim_dir}")
    if runc_path() is None:
        out.append("runc")
    if (crictl or flavor == "v2") and not os.access(crictl_path(), os.X_OK):
        out.append(f"crictl ({crictl_path()}; run scripts/runtime/install.sh)")
    if registry and shutil.which("docker-registry") is None:
        out.append("docker-registry")
    if flavor == "debian" and not os.access("/usr/lib/cni/loopback", os.X_OK):
        out.append("/usr/lib/cni/loopback (containernetworking-plugins; containerd 1.6 needs it)")
    return out


# --------------------------------------------------------------------------- images


def images(build: bool = True) -> dict:
    """The test images' manifest (images.json): refs, digests, the registry storage.

    Builds them first when the cache has none for the current sources (build=True)."""
    sys.path.insert(0, os.path.join(HERE, "images"))
    import build as image_build  # noqa: E402  (imported late: build.py imports this module)

    return image_build.ensure(cache_dir(), build=build)


def image_ref(name: str) -> str:
    """The registry reference of a test image: pause, kubia or busybox."""
    return images(build=False)["images"][name]["ref"]


# --------------------------------------------------------------------------- state file


def _load_state(workdir: str) -> dict:
    try:
        with open(os.path.join(workdir, STATE_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _update_state(workdir: str, **fields):
    st = _load_state(workdir)
    st.update(fields)
    tmp = os.path.join(workdir, f".{STATE_FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(st, f, indent=1)
    os.rename(tmp, os.path.join(workdir, STATE_FILE))


def make_workdir(tag: str) -> str:
    """A short private directory /tmp/knrt-<pid>-<tag>-XXXX (short: unix socket paths)."""
    d = tempfile.mkdtemp(prefix=f"{PREFIX}-{os.getpid()}-{tag}-", dir="/tmp")
    _update_state(d, owner_pid=os.getpid(), tied=True)
    return d


# --------------------------------------------------------------------------- processes


def _spawn(cmd: list[str], log_path: str, env: Optional[dict] = None, tied: bool = True) -> subprocess.Popen:
    """Starts cmd with its output in log_path. tied: it gets SIGKILL when this thread's
    process dies (setpriv --pdeathsig), so a test killed by CTest leaves no daemon; an
    untied one runs in its own session and outlives its starter (the CLI)."""
    prefix = ["setpriv", "--pdeathsig", "KILL"] if tied else []
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(prefix + cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=not tied)
    finally:
        log.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _reap(pid: int):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_pid(pid: int, timeout: float, sig: int = signal.SIGTERM) -> bool:
    """Signals pid, waits up to timeout for it to go, then SIGKILLs. True when it is gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of every process whose command line contains text (a private path)."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if text in cmd and _alive(int(entry)):
            out.append((int(entry), cmd))
    return out


def processes_in_netns(inode: int) -> list[tuple[int, str]]:
    """(pid, cmdline) of every process whose network namespace has this inode."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino != inode or not _alive(int(entry)):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out.append((int(entry), f.read().replace(b"\0", b" ").decode(errors="replace").strip()))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def mounts_under(path: str) -> list[str]:
    """Mount points at or under path, deepest first (as /proc/self/mountinfo lists them)."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=lambda m: (-m.count("/"), m))


def unmount_all(path: str) -> list[str]:
    """Unmounts everything under path (a few rounds: stacked mounts); returns what remains."""
    for _ in range(8):
        mps = mounts_under(path)
        if not mps:
            return []
        for mp in mps:
            if kn.run(["umount", mp], check=False).returncode != 0:
                kn.run(["umount", "-l", mp], check=False)
    return mounts_under(path)


# --------------------------------------------------------------------------- netns


class Netns:
    """A network namespace named knrt<pid>-<role>, with lo up. Given a workdir, it is
    recorded there before it exists, so teardown(workdir) deletes it too."""

    def __init__(self, role: str, name: Optional[str] = None, workdir: Optional[str] = None):
        self.name = name or f"{PREFIX}{os.getpid()}-{role}"
        self.path = os.path.join(NETNS_DIR, self.name)
        self.workdir = workdir
        self.inode: Optional[int] = None

    def create(self) -> "Netns":
        if self.workdir:
            owned = _load_state(self.workdir).get("created_netns", [])
            _update_state(self.workdir, created_netns=sorted(set(owned) | {self.name}))
        kn.run(["ip", "netns", "add", self.name])
        self.inode = os.stat(self.path).st_ino
        kn.run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        return self

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def delete(self):
        if self.exists():
            kn.run(["ip", "netns", "del", self.name], check=False)


def nsenter(netns: str) -> list[str]:
    """The prefix that runs a command in netns only (mounts stay in the root mount ns)."""
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--"]


def http_get(netns: str, host: str, port: int, path: str = "/", timeout: float = 3.0) -> kn.Reply:
    return kn.http_get(netns, host, port, path, timeout=timeout)


# --------------------------------------------------------------------------- registry


class Registry:
    """Debian's docker-registry on 127.0.0.1:5000 inside netns.

    By default it serves the cached image storage read-only (maintenance.readonly), so
    any number of tests share one storage directory and none can change it."""

    def __init__(self, netns: str, workdir: str, storage: Optional[str] = None, readonly: bool = True,
                 addr: str = REGISTRY_ADDR, log_path: Optional[str] = None, tied: bool = True):
        self.netns, self.workdir, self.readonly, self.addr, self.tied = netns, workdir, readonly, addr, tied
        self.storage = storage or images()["registry"]
        self.config = os.path.join(workdir, "registry.yml")
        self.log_path = log_path or os.path.join(workdir, "registry.log")
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds: Optional[float] = None

    def _write_config(self):
        readonly = "true" if self.readonly else "false"
        text = f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {self.storage}
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: {readonly}
http:
  addr: {self.addr}
  secret: knode-runtime-tests
"""
        with open(self.config, "w") as f:
            f.write(text)

    def start(self, timeout: float = 20.0) -> "Registry":
        self._write_config()
        t0 = time.monotonic()
        self.proc = _spawn(nsenter(self.netns) + ["docker-registry", "serve", self.config], self.log_path,
                           tied=self.tied)
        _update_state(self.workdir, registry_pid=self.proc.pid)
        host, port = self.addr.rsplit(":", 1)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited (rc {self.proc.returncode}): {self.log_tail()}")
            r = http_get(self.netns, host, int(port), "/v2/", timeout=1)
            return r.status == 200

        kn.wait_for(up, timeout, f"docker-registry to answer GET /v2/ on {self.addr} in {self.netns}", 0.02)
        self.start_seconds = time.monotonic() - t0
        return self

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc.pid, 5)
            self.proc.wait(5)
            self.proc = None


# --------------------------------------------------------------------------- containerd


class Containerd:
    """A containerd of one flavor ("v2": built from its module, in the cache; "debian":
    /usr/bin/containerd 1.6) running in netns, everything private under workdir:

        workdir/config.toml     root/  state/  containerd.sock  certs.d/  runc/  s/ (v2 shims)
        workdir/cni-bin/        (debian only: knode-cni's dirs + Debian's loopback, merged)

    The CRI plugin uses the cgroupfs driver, restrict_oom_score_adj, the local pause image,
    the caller's CNI bin dirs and conf dir, and the registry over plain HTTP."""

    def __init__(self, workdir: str, netns: str, flavor: str = "v2", cni_bin_dirs: tuple[str, ...] = (),
                 cni_conf_dir: Optional[str] = None, registry: str = REGISTRY_ADDR,
                 sandbox_image: Optional[str] = None, log_path: Optional[str] = None, tied: bool = True):
        if flavor not in FLAVORS:
            raise ValueError(f"flavor {flavor!r}: one of {FLAVORS}")
        workdir = os.path.realpath(workdir)
        if len(workdir) > MAX_WORKDIR_LEN:
            raise ValueError(f"workdir {workdir} is longer than {MAX_WORKDIR_LEN} characters "
                             "(unix socket paths under it would not fit)")
        self.workdir, self.netns, self.flavor, self.tied = workdir, netns, flavor, tied
        self.cni_bin_dirs = [os.path.realpath(d) for d in cni_bin_dirs]
        self.cni_conf_dir = os.path.realpath(cni_conf_dir) if cni_conf_dir else os.path.join(workdir, "net.d")
        self.registry = registry
        self.sandbox_image = sandbox_image or image_ref("pause")
        self.root = os.path.join(workdir, "root")
        self.state = os.path.join(workdir, "state")
        self.socket = os.path.join(workdir, "containerd.sock")
        self.endpoint = f"unix://{self.socket}"
        self.config = os.path.join(workdir, "config.toml")
        self.certs_dir = os.path.join(workdir, "certs.d")
        self.runc_root = os.path.join(workdir, "runc")
        self.shim_socket_dir = os.path.join(workdir, "s")
        self.log_path = log_path or os.path.join(workdir, "containerd.log")
        self.crictl_config = os.path.join(workdir, "crictl.yaml")
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds: Optional[float] = None
        self.binary = containerd_path(flavor)
        self.crictl_binary = crictl_path()
        # With the cgroupfs driver the CRI client names the pod's cgroup parent; tests use
        # this one so teardown can find and remove whatever lands in it.
        self.cgroup_parent = f"/{PREFIX}{os.getpid()}-{os.path.basename(workdir)}"

    # ---- config

    def _cni_bin_dirs_for_flavor(self) -> list[str]:
        if self.flavor == "v2":
            return self.cni_bin_dirs  # loopback is internal (use_internal_loopback)
        # 1.6 takes one bin_dir and always runs the `loopback` plugin for lo: merge the
        # caller's plugins and Debian's loopback into one directory of links.
        merged = os.path.join(self.workdir, "cni-bin")
        os.makedirs(merged, exist_ok=True)
        for d in self.cni_bin_dirs:
            for name in sorted(os.listdir(d))[:1000]:
                src = os.path.join(d, name)
                dst = os.path.join(merged, name)
                if os.path.isfile(src) and os.access(src, os.X_OK) and not os.path.lexists(dst):
                    os.symlink(src, dst)
        if not os.path.lexists(os.path.join(merged, "loopback")):
            os.symlink("/usr/lib/cni/loopback", os.path.join(merged, "loopback"))
        return [merged]

    def _write_hosts_toml(self):
        d = os.path.join(self.certs_dir, self.registry)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "hosts.toml"), "w") as f:
            f.write(f'server = "http://{self.registry}"\n\n[host."http://{self.registry}"]\n'
                    '  capabilities = ["pull", "resolve"]\n')

    def config_text(self) -> str:
        runc = runc_path()
        bin_dirs = self._cni_bin_dirs_for_flavor()
        q = json.dumps  # TOML basic strings are JSON strings for these paths
        if self.flavor == "v2":
            cri_rt = "plugins.'io.containerd.cri.v1.runtime'"
            cri_img = "plugins.'io.containerd.cri.v1.images'"
            return f"""version = 3
root = {q(self.root)}
state = {q(self.state)}
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = {q(self.socket)}

[{cri_rt}]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  cdi_spec_dirs = []

[{cri_rt}.containerd]
  default_runtime_name = "runc"

[{cri_rt}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri_rt}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = {q(runc)}
  Root = {q(self.runc_root)}

[{cri_rt}.cni]
  bin_dirs = {q(bin_dirs)}
  conf_dir = {q(self.cni_conf_dir)}
  max_conf_num = 1
  use_internal_loopback = true

[{cri_img}]
  snapshotter = "overlayfs"

[{cri_img}.pinned_images]
  sandbox = {q(self.sandbox_image)}

[{cri_img}.registry]
  config_path = {q(self.certs_dir)}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.transfer.v1.local']
  config_path = {q(self.certs_dir)}

[plugins.'io.containerd.shim.v1.manager']
  socket_dir = {q(self.shim_socket_dir)}

[plugins.'io.containerd.internal.v1.opt']
  path = {q(os.path.join(self.root, "opt"))}

[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = {q(os.path.join(self.root, "image-verifier"))}
"""
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = {q(self.root)}
state = {q(self.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {q(self.socket)}

[{cri}]
  sandbox_image = {q(self.sandbox_image)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  systemd_cgroup = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  default_runtime_name = "runc"
  snapshotter = "overlayfs"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = {q(runc)}
  Root = {q(self.runc_root)}

[{cri}.cni]
  bin_dir = {q(bin_dirs[0])}
  conf_dir = {q(self.cni_conf_dir)}
  max_conf_num = 1

[{cri}.registry]
  config_path = {q(self.certs_dir)}

[plugins."io.containerd.internal.v1.opt"]
  path = {q(os.path.join(self.root, "opt"))}
"""

    # ---- lifecycle

    def env(self) -> dict:
        """containerd finds its shim through PATH: the flavor's own shim first."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTAINERD_", "CRI_"))}
        first = containerd_v2_bin_dir() if self.flavor == "v2" else "/usr/bin"
        env["PATH"] = f"{first}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return env

    def start(self, timeout: float = 60.0, network_ready: bool = True) -> "Containerd":
        """Starts containerd; returns when the CRI answers (and reports NetworkReady,
        when network_ready: the CNI config loaded)."""
        for d in (self.root, self.state, self.cni_conf_dir):
            os.makedirs(d, exist_ok=True)
        self._write_hosts_toml()
        with open(self.crictl_config, "w") as f:
            f.write(f"runtime-endpoint: {self.endpoint}\nimage-endpoint: {self.endpoint}\ntimeout: 30\n")
        with open(self.config, "w") as f:
            f.write(self.config_text())
        _update_state(self.workdir, containerd_socket=self.socket, containerd_flavor=self.flavor,
                      netns=self.netns, runc_root=self.runc_root, cgroup_parent=self.cgroup_parent,
                      crictl=self.crictl_binary)
        t0 = time.monotonic()
        self.proc = _spawn(nsenter(self.netns) + [self.binary, "--config", self.config], self.log_path,
                           env=self.env(), tied=self.tied)
        _update_state(self.workdir, containerd_pid=self.proc.pid)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited (rc {self.proc.returncode}):\n{self.log_tail()}")
            if not os.path.exists(self.socket):
                return False
            if not os.access(self.crictl_binary, os.X_OK):
                # No crictl (the demo builds nothing with Go): the daemon answering will do.
                ctr = shutil.which("ctr", path="/usr/bin:/usr/local/bin") or "ctr"
                return kn.run([ctr, "--address", self.socket, "version"], check=False, timeout=5).returncode == 0
            p = self.crictl("info", check=False, timeout=5)
            if p.returncode != 0:
                return False
            conds = {c["type"]: c["status"] for c in json.loads(p.stdout)["status"]["conditions"]}
            return conds.get("RuntimeReady") and (conds.get("NetworkReady") or not network_ready)

        try:
            kn.wait_for(ready, timeout, f"containerd ({self.flavor}) to answer CRI on {self.socket}", 0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}\ncontainerd log tail:\n{self.log_tail()}") from None
        self.start_seconds = time.monotonic() - t0
        return self

    def crictl(self, *args: str, check: bool = True, timeout: float = 60.0,
               input: Optional[str] = None) -> subprocess.CompletedProcess:
        """crictl on this containerd's socket, run inside netns (the streaming server of
        exec/attach listens on that namespace's 127.0.0.1)."""
        cmd = nsenter(self.netns) + [self.crictl_binary, "--config", self.crictl_config,
                                     "--timeout", f"{int(max(timeout - 2, 2))}s"] + list(args)
        return kn.run(cmd, check=check, timeout=timeout, input=input)

    def crictl_json(self, *args: str, timeout: float = 60.0):
        return json.loads(self.crictl(*args, timeout=timeout).stdout)

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> list[str]:
        """teardown() of this workdir; the proc handle is reaped here too."""
        problems = teardown(self.workdir, remove=False)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                problems.append(f"containerd pid {self.proc.pid} did not exit")
            self.proc = None
        return problems


# --------------------------------------------------------------------------- teardown


def _shim_addresses(state_dir: str) -> list[str]:
    """Socket files the shims of this containerd listen on (from their bundles), so they
    can be removed even when a shim had to be killed (1.6 keeps them in /run/containerd/s)."""
    out = []
    task_dir = os.path.join(state_dir, "io.containerd.runtime.v2.task")
    if not os.path.isdir(task_dir):
        return out
    for ns in sorted(os.listdir(task_dir))[:100]:
        nsdir = os.path.join(task_dir, ns)
        for cid in sorted(os.listdir(nsdir))[:10000] if os.path.isdir(nsdir) else []:
            for fname in ("address", "bootstrap.json"):  # 1.6 / 2.x
                try:
                    with open(os.path.join(nsdir, cid, fname)) as f:
                        addr = f.read().strip()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if fname == "bootstrap.json":
                    try:
                        addr = json.loads(addr).get("address", "")
                    except json.JSONDecodeError:
                        continue
                if addr.startswith("unix://"):
                    out.append(addr[len("unix://"):])
    return out


def _sandbox_ids(state_dir: str) -> list[str]:
    d = os.path.join(state_dir, "io.containerd.grpc.v1.cri", "sandboxes")
    return sorted(os.listdir(d))[:10000] if os.path.isdir(d) else []


def _remove_cni_cache(sandbox_ids: list[str]):
    """libcni (inside containerd) caches each attachment's result in /var/lib/cni/results
    as <network>-<sandbox id>-<ifname>; a pod that never got its CNI DEL leaves its files."""
    d = "/var/lib/cni/results"
    if not sandbox_ids or not os.path.isdir(d):
        return
    ids = set(sandbox_ids)
    for name in sorted(os.listdir(d))[:100000]:
        if any(part in ids for part in name.split("-")):
            try:
                os.unlink(os.path.join(d, name))
            except FileNotFoundError:
                pass


def _crictl_graceful(st: dict, log: list[str]):
    """Stops and removes every pod through the CRI (CNI DEL runs: veths, IPAM, chains)."""
    cmd = nsenter(st["netns"]) + [st["crictl"], "--config", os.path.join(os.path.dirname(st["containerd_socket"]),
                                                                          "crictl.yaml"), "--timeout", "20s"]
    p = kn.run(cmd + ["pods", "-q"], check=False, timeout=25)
    if p.returncode != 0:
        log.append(f"crictl pods: {p.stderr.strip()}")
        return
    for pod in p.stdout.split()[:200]:
        for verb in ("stopp", "rmp"):
            q = kn.run(cmd + [verb, pod], check=False, timeout=25)
            if q.returncode != 0:
                log.append(f"crictl {verb} {pod}: {q.stderr.strip()}")


def _remove_cgroup(parent: str) -> list[str]:
    """Kills what is left in the cgroup `parent` (every v1 hierarchy and the unified one)
    and removes its directories bottom-up. Returns the directories that remain."""
    remain = []
    base = "/sys/fs/cgroup"
    if not parent or not os.path.isdir(base):
        return remain
    for hier in sorted(os.listdir(base))[:32]:
        top = os.path.join(base, hier, parent.lstrip("/"))
        if not os.path.isdir(top):
            continue
        dirs = [dp for dp, _, _ in os.walk(top)]
        for d in sorted(dirs, key=lambda x: -x.count("/")):
            for _ in range(50):  # bounded: ~2.5 s per directory
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        pids = [int(x) for x in f.read().split()]
                except (FileNotFoundError, ValueError):
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            if os.path.isdir(d):
                remain.append(d)
    return remain


def teardown(workdir: str, remove: bool = True) -> list[str]:
    """Stops everything harness.json in workdir records, in order: pods through the CRI,
    containerd, its shims, leftover runc containers, the registry, processes still naming
    workdir, the cgroup parent, every mount under workdir, shim sockets, namespaces the
    harness made; then removes workdir (remove=True). Returns what could not be cleaned
    (empty on success). Safe to call twice."""
    workdir = os.path.realpath(workdir)
    st = _load_state(workdir)
    problems: list[str] = []
    notes: list[str] = []
    shim_sockets = _shim_addresses(os.path.join(workdir, "state"))
    sandboxes = _sandbox_ids(os.path.join(workdir, "state"))

    # A recorded pid counts only while its command line still names workdir: after a
    # reboot or a long time the number may belong to someone else's process.
    def ours(pid) -> bool:
        return bool(pid) and any(p == pid for p, _ in processes_mentioning(workdir))

    cd_pid = st.get("containerd_pid") if ours(st.get("containerd_pid")) else None
    graceful = False
    if cd_pid and st.get("containerd_socket") and os.path.exists(st["containerd_socket"]):
        if st.get("netns") and os.path.exists(os.path.join(NETNS_DIR, st["netns"])):
            _crictl_graceful(st, notes)
            graceful = True
    if cd_pid and not _stop_pid(cd_pid, 10):
        problems.append(f"containerd pid {cd_pid} survived SIGKILL")

    # Shims: a shim exits once containerd deleted its tasks (the graceful pass); without
    # that pass it waits for a containerd that will not come back.
    if st.get("containerd_socket"):
        deadline = time.monotonic() + (3 if graceful else 0)
        while processes_mentioning(st["containerd_socket"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, _ in processes_mentioning(st["containerd_socket"]):
            _stop_pid(pid, 1, signal.SIGKILL)

    # Containers whose shim is gone: runc (private root) still knows them.
    runc = runc_path()
    runc_root = st.get("runc_root") or os.path.join(workdir, "runc")
    if runc and os.path.isdir(runc_root):
        for ns in sorted(os.listdir(runc_root))[:100]:
            root = os.path.join(runc_root, ns)
            p = kn.run([runc, "--root", root, "list", "-q"], check=False)
            for cid in p.stdout.split()[:1000]:
                kn.run([runc, "--root", root, "kill", cid, "KILL"], check=False)
                q = kn.run([runc, "--root", root, "delete", "--force", cid], check=False)
                if q.returncode != 0:
                    notes.append(f"runc delete {cid}: {q.stderr.strip()}")

    if ours(st.get("registry_pid")):
        _stop_pid(st["registry_pid"], 5)
    for pid, cmd in processes_mentioning(workdir):
        if not _stop_pid(pid, 3):
            problems.append(f"process {pid} ({cmd}) survived SIGKILL")

    problems += [f"cgroup {d} remains" for d in _remove_cgroup(st.get("cgroup_parent", ""))]
    problems += [f"mount {m} remains" for m in unmount_all(workdir)]
    if st.get("containerd_socket"):  # left when containerd was SIGKILLed
        shim_sockets += [st["containerd_socket"], st["containerd_socket"] + ".ttrpc"]
    for s in shim_sockets:  # this containerd's own shims' (from its bundles), wherever they are
        try:
            os.unlink(s)
        except FileNotFoundError:
            pass
    _remove_cni_cache(sandboxes)
    for ns in st.get("created_netns", []):
        if os.path.exists(os.path.join(NETNS_DIR, ns)):
            if kn.run(["ip", "netns", "del", ns], check=False).returncode != 0:
                problems.append(f"netns {ns} remains")
    if remove and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    if os.environ.get("KNODE_RUNTIME_VERBOSE"):
        for n in notes:
            print(f"teardown: {n}", file=sys.stderr)
    return problems


def remove_stale():
    """Tears down what test runs killed outright (SIGKILL) left: their work dirs
    /tmp/knrt-<pid>-* and namespaces knrt<pid>-*, when that pid is gone."""
    for entry in sorted(os.listdir("/tmp"))[:10000]:
        m = re.fullmatch(rf"{PREFIX}-(\d+)-.+", entry)
        if m and not _alive(int(m.group(1))):  # a zombie owner counts as gone
            d = os.path.join("/tmp", entry)
            if _load_state(d).get("tied", True):
                teardown(d)
    if os.path.isdir(NETNS_DIR):
        for name in sorted(os.listdir(NETNS_DIR))[:10000]:
            m = re.fullmatch(rf"{PREFIX}(\d+)-[a-z0-9-]+", name)
            if m and not _alive(int(m.group(1))):
                kn.run(["ip", "netns", "del", name], check=False)


# --------------------------------------------------------------------------- CLI


def _cli_start(a) -> int:
    missing = missing_tools(a.flavor, registry=not a.no_registry, crictl=False)
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    os.makedirs(a.dir, exist_ok=True)
    workdir = os.path.realpath(a.dir)
    if _load_state(workdir).get("containerd_pid") and _alive(_load_state(workdir)["containerd_pid"]):
        print(f"{workdir} already has a running containerd; stop it first", file=sys.stderr)
        return 1
    _update_state(workdir, owner_pid=os.getpid(), tied=False)
    created = []
    netns = a.netns
    if not netns:
        netns = f"{PREFIX}-cli-{os.path.basename(workdir)[:20]}"
    if not os.path.exists(os.path.join(NETNS_DIR, netns)):
        Netns("", name=netns).create()
        created.append(netns)
    _update_state(workdir, created_netns=created, netns=netns)
    try:
        if not a.no_registry:
            reg = Registry(netns, workdir, tied=False).start()
            print(f"registry: {REGISTRY_ADDR} in netns {netns} (up in {reg.start_seconds:.2f} s)", file=sys.stderr)
        cd = Containerd(workdir, netns, a.flavor, cni_bin_dirs=tuple(a.cni_bin_dir), cni_conf_dir=a.cni_conf_dir,
                        tied=False)
        cd.start(network_ready=bool(a.cni_bin_dir))
    except BaseException:
        teardown(workdir, remove=False)
        raise
    print(f"containerd ({a.flavor}) up in {cd.start_seconds:.2f} s, log {cd.log_path}", file=sys.stderr)
    print(f"KNODE_RT_NETNS={netns}")
    print(f"CONTAINER_RUNTIME_ENDPOINT={cd.endpoint}")
    print(f"KNODE_RT_CGROUP_PARENT={cd.cgroup_parent}")
    print(f"KNODE_RT_CRICTL=\"{' '.join(nsenter(netns))} {cd.crictl_binary} --config {cd.crictl_config}\"")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Start/stop a private containerd (+ local registry) in a netns.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--dir", required=True, help=f"private directory (at most {MAX_WORKDIR_LEN} characters)")
    s.add_argument("--flavor", choices=FLAVORS, default="v2")
    s.add_argument("--netns", help="existing network namespace (default: a new one, removed by stop)")
    s.add_argument("--cni-bin-dir", action="append", default=[], help="CNI plugin directory (repeatable)")
    s.add_argument("--cni-conf-dir", help="CNI config directory (default: DIR/net.d)")
    s.add_argument("--no-registry", action="store_true", help="do not start the local registry")
    t = sub.add_parser("stop")
    t.add_argument("--dir", required=True)
    t.add_argument("--keep", action="store_true", help="keep DIR (logs) after cleaning up")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    if a.cmd == "start":
        return _cli_start(a)
    problems = teardown(a.dir, remove=not a.keep)
    for p in problems:
        print(f"left behind: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
