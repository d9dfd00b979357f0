#!/usr/bin/env python3
"""A private dockerd for the runtime tier, beside tests/runtime/knode_runtime.py's
registry and namespaces (stdlib only).

    node netns (the test's)
      lo 127.0.0.1, docker-registry 127.0.0.1:5000 (read-only, the cached test images)
      dockerd --iptables=false --ip-masq=false --bridge=none --ip-forward=false
              private --data-root, --exec-root, --pidfile, -H unix://WORKDIR/docker.sock
        its own containerd (WORKDIR/exec/containerd), shims, containers
      cni0 + veths + KNODE-CNI-* chains (knode-cni, run by the backend under test)

dockerd runs under `nsenter --net`: only the network namespace changes, so its mounts
(overlay2, shm, netns) stay in the root mount namespace under WORKDIR, where teardown can
unmount them. It never touches the root namespace's network: no bridge, no iptables, no
forwarding sysctl, and it sits in the test's namespace anyway. Its machine key goes to
WORKDIR (daemon.json "deprecated-key-path"), not /etc/docker/key.json.

teardown(workdir) removes every container through the API, then knode_runtime.teardown()
stops whatever process names WORKDIR (dockerd, its containerd, the shims), kills what is
left in the test's cgroup parent, unmounts, deletes the namespaces; then the shim sockets
dockerd's containerd 1.6 keeps in /run/containerd/s and the /run/docker/plugins directory
dockerd creates go, when this run made them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "runtime"))

import knode_runtime as rt  # noqa: E402

PLUGINS_DIR = "/run/docker/plugins"


def missing_tools() -> list[str]:
    out = []
    if os.geteuid() != 0:
        out.append("root (network namespaces, mounts, containers)")
    for tool in ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-registry", "ip", "nsenter",
                 "setpriv"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin") is None:
            out.append(f"`{tool}` (scripts/runtime/install.sh installs docker.io)")
    return out


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def api(sock: str, method: str, path: str, body=None, timeout: float = 30.0):
    """One Engine API call: (status, decoded JSON or text)."""
    c = _UnixHTTP(sock, timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data) if data else None
    except json.JSONDecodeError:
        return r.status, data.decode(errors="replace")


class Dockerd:
    def __init__(self, workdir: str, netns: str, cgroup_driver: str = "cgroupfs", tag: str = ""):
        self.workdir, self.netns, self.cgroup_driver = workdir, netns, cgroup_driver
        suffix = f"-{tag}" if tag else ""
        self.socket = os.path.join(workdir, f"docker{suffix}.sock")
        self.endpoint = f"unix://{self.socket}"
        self.data_root = os.path.join(workdir, f"data{suffix}")
        self.exec_root = os.path.join(workdir, f"x{suffix}")
        self.pidfile = os.path.join(workdir, f"docker{suffix}.pid")
        self.config = os.path.join(workdir, f"daemon{suffix}.json")
        self.log_path = os.path.join(workdir, f"dockerd{suffix}.log")
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds: Optional[float] = None

    def command(self) -> list[str]:
        return rt.nsenter(self.netns) + [
            "dockerd", "--config-file", self.config,
            "--iptables=false", "--ip-masq=false", "--bridge=none", "--ip-forward=false", "--ip6tables=false",
            "--data-root", self.data_root, "--exec-root", self.exec_root, "--pidfile", self.pidfile,
            "-H", self.endpoint,
            # Without CAP_SYS_RESOURCE it cannot lower its own (or containerd's) score.
            "--oom-score-adjust=0",
            "--exec-opt", f"native.cgroupdriver={self.cgroup_driver}",
        ]

    def start(self, timeout: float = 60.0) -> "Dockerd":
        with open(self.config, "w") as f:
            json.dump({"deprecated-key-path": os.path.join(self.workdir, "key.json")}, f)
        st = rt._load_state(self.workdir)
        if "docker_plugins_dir_existed" not in st:
            rt._update_state(self.workdir, docker_plugins_dir_existed=os.path.isdir(PLUGINS_DIR))
        sockets = sorted(set(st.get("dockerd_sockets", [])) | {self.socket})
        rt._update_state(self.workdir, dockerd_sockets=sockets)
        t0 = time.monotonic()
        self.proc = rt._spawn(self.command(), self.log_path)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"dockerd exited (rc {self.proc.returncode}):\n{self.log_tail()}")
            if not os.path.exists(self.socket):
                return False
            try:
                status, _ = api(self.socket, "GET", "/_ping", timeout=2)
            except OSError:
                return False
            return status == 200

        rt.kn.wait_for(up, timeout, f"dockerd to answer /_ping on {self.socket}", 0.05)
        self.start_seconds = time.monotonic() - t0
        return self

    def api(self, method: str, path: str, body=None, timeout: float = 30.0):
        return api(self.socket, method, path, body, timeout)

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


def _remove_containers(sock: str) -> list[str]:
    notes = []
    try:
        status, items = api(sock, "GET", "/containers/json?all=1", timeout=10)
    except OSError as e:
        return [f"dockerd on {sock} does not answer: {e}"]
    if status != 200:
        return [f"list containers: {status}"]
    for c in items[:1000]:
        try:
            s, body = api(sock, "DELETE", f"/containers/{c['Id']}?force=1&v=1", timeout=30)
        except OSError as e:  # a daemon that hangs: what follows kills it and its containers
            notes.append(f"remove {c['Id'][:12]}: {e}")
            break
        if s not in (204, 404):
            notes.append(f"remove {c['Id'][:12]}: {s} {body}")
    return notes


def teardown(workdir: str, remove: bool = True) -> list[str]:
    """Everything this harness (and knode_runtime's) started under workdir, gone. Returns
    what could not be cleaned."""
    workdir = os.path.realpath(workdir)
    st = rt._load_state(workdir)
    notes = []
    for sock in st.get("dockerd_sockets", []):
        if os.path.exists(sock) and rt.processes_mentioning(sock):
            notes += _remove_containers(sock)
    # Shim sockets of dockerd's containerd, from its bundles, before they are gone.
    shim_sockets = []
    for entry in sorted(os.listdir(workdir))[:100] if os.path.isdir(workdir) else []:
        state_dir = os.path.join(workdir, entry, "containerd", "daemon")
        if os.path.isdir(state_dir):
            shim_sockets += rt._shim_addresses(state_dir)
    problems = rt.teardown(workdir, remove=False)
    for s in shim_sockets:
        try:
            os.unlink(s)
        except FileNotFoundError:
            pass
    if st.get("docker_plugins_dir_existed") is False:
        for d in (PLUGINS_DIR, os.path.dirname(PLUGINS_DIR)):
            try:
                os.rmdir(d)  # only when empty: another dockerd may use it
            except OSError:
                pass
    if remove and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    if os.environ.get("KNODE_RUNTIME_VERBOSE"):
        for n in notes:
            print(f"teardown: {n}", file=sys.stderr)
    return problems
