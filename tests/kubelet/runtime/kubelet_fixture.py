"""The fixture of the kubelet's runtime tests: one node netns with a default route, a local
registry, a private containerd (tests/runtime/knode_runtime.py) with knode-cni, and
`knode agent` in that netns driving it from a manifest directory.

    node netns knrt<pid>-node
      lo 127.0.0.1: docker-registry :5000, knode's /healthz :10248, read-only port :10255
      knup0 192.168.255.1/24 <-veth-> knup1 (both ends stay here), default via 192.168.255.254
      cni0 10.88.0.1/24 (knode-cni), pods 10.88.0.x
      containerd + shims, knode agent (kubelet + iptables proxy)

Everything lives under the work dir /tmp/knrt-<pid>-kt-XXXX (conflist, IPAM, manifests,
the kubelet's root and log root), so rt.teardown(workdir) removes it. knode runs under
`nsenter --net` only (never `ip netns exec`): the volumes it mounts must stay in the root
mount namespace, where containerd and runc see them.

Every observation a test makes goes through real outputs: the PodList knode serves on
its read-only port, crictl on containerd's socket, HTTP to the pods, files on disk.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "runtime"))

import knode_runtime as rt  # noqa: E402
from knode_runtime import kn  # noqa: E402  (tests/support/knode_netns.py)

POD_CIDR = "10.88.0.0/24"
CLUSTER_CIDR = "10.88.0.0/16"
NODE_IP = "192.168.255.1"
NODE_GW = "192.168.255.254"
NODE_NAME = "node1"
HEALTHZ_PORT = 10248
READ_ONLY_PORT = 10255
SKIP = 77


def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    return kn.wait_for(pred, timeout, what, interval)


def missing(flavor: str, knode: str, knode_cni: str) -> list[str]:
    out = rt.missing_tools(flavor)
    if shutil.which("iptables-legacy-save") is None:
        out.append("iptables-legacy-save")
    for what, path in (("knode", knode), ("knode-cni", knode_cni)):
        if not path or not os.access(path, os.X_OK):
            out.append(f"{what} binary ({path!r}; build the {what} target)")
    return out


# --------------------------------------------------------------------------- manifests


def _yaml_list(items: list[str], indent: str) -> str:
    return "".join(f"{indent}- {json.dumps(i)}\n" for i in items)


def container(name: str, image: str, command: Optional[list[str]] = None, extra: str = "") -> str:
    """One container entry of a pod manifest (YAML, indented for `spec.containers`).
    `extra` is more YAML at the container's level, unindented."""
    text = f"  - name: {name}\n    image: {image}\n"
    if command:
        text += "    command:\n" + _yaml_list(command, "    ")
    for line in extra.strip("\n").splitlines():
        text += f"    {line}\n"
    return text


def pod(name: str, containers: str, spec_extra: str = "", labels: Optional[dict] = None,
        init_containers: str = "", namespace: str = "default") -> str:
    labels = labels or {"app": name}
    text = (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n"
            + "".join(f"    {k}: {v}\n" for k, v in labels.items()) + "spec:\n")
    for line in spec_extra.strip("\n").splitlines():
        text += f"  {line}\n"
    if init_containers:
        text += "  initContainers:\n" + init_containers
    return text + "  containers:\n" + containers


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# --------------------------------------------------------------------------- knode


class KnodeProcess:
    """`knode agent` in the node netns (nsenter --net only), its output in log_path.
    It dies with the test process (setpriv --pdeathsig KILL), even when the test is killed."""

    def __init__(self, binary: str, netns: str, args: list[str], log_path: str):
        self.binary, self.netns, self.args, self.log_path = binary, netns, args, log_path
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log_path, "ab") as log:
            log.write(f"==== knode start #{self.starts + 1}: {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL"] + rt.nsenter(self.netns)
                                         + [self.binary] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> Optional[int]:
        """Signals knode and waits for it to exit; SIGKILL after timeout. Its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"knode did not exit within {timeout:.0f}s of signal {sig}")
        return self.proc.returncode


# --------------------------------------------------------------------------- the node


class Node:
    """The test's node: netns, registry, containerd, knode. start() brings it all up;
    teardown() stops knode first (so it does not recreate what teardown removes), then
    everything the harness recorded. Works from any state."""

    def __init__(self, name: str, flavor: str, knode: str, knode_cni: str, log_dir: str):
        self.name, self.flavor = name, flavor
        self.knode_bin, self.knode_cni = os.path.abspath(knode), os.path.abspath(knode_cni)
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.knode_log = os.path.join(log_dir, f"{name}.knode.log")
        self.containerd_log = os.path.join(log_dir, f"{name}.containerd.log")
        self.registry_log = os.path.join(log_dir, f"{name}.registry.log")
        for p in (self.knode_log, self.containerd_log, self.registry_log):
            if os.path.exists(p):
                os.unlink(p)
        self.images = rt.images(build=True)["images"]
        self.workdir = rt.make_workdir("kt")
        self.netns: Optional[rt.Netns] = None
        self.registry: Optional[rt.Registry] = None
        self.containerd: Optional[rt.Containerd] = None
        self.knode: Optional[KnodeProcess] = None
        self.manifests = os.path.join(self.workdir, "manifests")
        self.ipam_dir = os.path.join(self.workdir, "ipam")
        self.cni_conf = os.path.join(self.workdir, "net.d")
        self.cni_bin = os.path.join(self.workdir, "cni-plugins")
        self.root_dir = os.path.join(self.workdir, "kubelet")
        self.log_root = os.path.join(self.workdir, "logs")

    # ---- bring-up

    def start(self, knode: bool = True, knode_extra: tuple[str, ...] = (), make_root_dir: bool = True) -> "Node":
        """make_root_dir: create --root-dir beforehand, as a packaged install has
        /var/lib/kubelet (test_root_dir_created starts without it)."""
        self.netns = rt.Netns("node", workdir=self.workdir).create()
        ns = self.netns.name
        # A default route, as any node has: traffic the node sends to a ClusterIP needs a
        # route before the nat table's DNAT rewrites it. Both ends stay in the netns.
        kn.run(["ip", "-n", ns, "link", "add", "knup0", "type", "veth", "peer", "name", "knup1"])
        kn.run(["ip", "-n", ns, "addr", "add", f"{NODE_IP}/24", "dev", "knup0"])
        kn.run(["ip", "-n", ns, "link", "set", "knup0", "up"])
        kn.run(["ip", "-n", ns, "link", "set", "knup1", "up"])
        kn.run(["ip", "-n", ns, "route", "add", "default", "via", NODE_GW, "dev", "knup0"])
        os.makedirs(self.cni_bin)
        os.symlink(self.knode_cni, os.path.join(self.cni_bin, "knode-cni"))
        kn.run([self.knode_cni, "--write-conflist", "--pod-cidr", POD_CIDR, "--data-dir", self.ipam_dir,
                "--out", os.path.join(self.cni_conf, "10-knode.conflist")])
        os.makedirs(self.manifests)
        if make_root_dir:
            os.makedirs(self.root_dir)
        self.registry = rt.Registry(ns, self.workdir, log_path=self.registry_log).start()
        self.containerd = rt.Containerd(self.workdir, ns, self.flavor, cni_bin_dirs=(self.cni_bin,),
                                        cni_conf_dir=self.cni_conf, log_path=self.containerd_log).start()
        args = ["agent", "--manifest-dir", self.manifests,
                "--container-runtime-endpoint", self.containerd.endpoint,
                "--cgroup-root", self.containerd.cgroup_parent,
                "--root-dir", self.root_dir, "--log-root", self.log_root,
                "--hostname-override", NODE_NAME, "--file-check-frequency", "1s",
                "--proxy-mode", "iptables", "--cluster-cidr", CLUSTER_CIDR, "-v=2"] + list(knode_extra)
        self.knode = KnodeProcess(self.knode_bin, ns, args, self.knode_log)
        if knode:
            self.start_knode()
        return self

    def start_knode(self, timeout: float = 30.0):
        self.knode.start()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30.0):
        def healthy():
            self.check_knode_alive()
            return self.healthz().status == 200

        try:
            wait_for(healthy, timeout, f"knode's kubelet /healthz on 127.0.0.1:{HEALTHZ_PORT} to answer 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\nknode log tail:\n{self.knode.tail()}") from None

    def check_knode_alive(self):
        if not self.knode.alive():
            rc = self.knode.proc.returncode if self.knode.proc else None
            raise AssertionError(f"knode exited (rc {rc}); log tail:\n{self.knode.tail()}")

    def healthz(self) -> kn.Reply:
        return rt.http_get(self.netns.name, "127.0.0.1", HEALTHZ_PORT, "/healthz", timeout=2)

    # ---- teardown

    def teardown(self, failed: bool) -> list[str]:
        if failed:
            if self.knode is not None:
                print(f"\n--- knode log ({self.knode_log}), last 80 lines ---\n{self.knode.tail(80)}\n---")
            if self.containerd is not None:
                print(f"--- containerd log ({self.containerd_log}), last 30 lines ---\n"
                      f"{self.containerd.log_tail(30)}\n---")
        problems = []
        if self.knode is not None:
            try:
                self.knode.stop(signal.SIGTERM, 10)
            except AssertionError as e:
                problems.append(str(e))
        problems += rt.teardown(self.workdir)
        if self.netns is not None:
            self.netns.delete()
        return problems

    # ---- manifests

    def write(self, name: str, text: str):
        """Writes a manifest atomically (write, then rename into the directory)."""
        tmp = os.path.join(self.workdir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.manifests, name))

    def delete(self, name: str):
        os.unlink(os.path.join(self.manifests, name))

    # ---- what knode serves

    def pod_list(self) -> dict:
        r = rt.http_get(self.netns.name, "127.0.0.1", READ_ONLY_PORT, "/pods", timeout=3)
        if r.status != 200:
            raise AssertionError(f"GET /pods on the read-only port: {r.status} {r.body[:200]}")
        doc = json.loads(r.body)
        assert doc.get("kind") == "PodList", doc
        return doc

    def pods(self) -> dict[str, dict]:
        """name -> Pod (with status) as knode serves them on its read-only port."""
        return {p["metadata"]["name"]: p for p in self.pod_list().get("items", [])}

    def pod(self, name: str) -> Optional[dict]:
        """A static pod by its manifest name (served as <name>-node1)."""
        return self.pods().get(f"{name}-{NODE_NAME}")

    def wait_pod(self, name: str, pred: Callable[[dict], object], timeout: float, what: str,
                 interval: float = 0.1) -> dict:
        """Polls /pods until pred(pod) is truthy; the pod. The failure shows its last status."""
        last: dict = {}

        def check():
            self.check_knode_alive()
            p = self.pod(name)
            if p is None:
                return None
            last["pod"] = p
            return p if pred(p) else None

        try:
            return wait_for(check, timeout, f"pod {name}-{NODE_NAME}: {what}", interval)
        except AssertionError as e:
            status = json.dumps(last.get("pod", {}).get("status"), indent=1)
            raise AssertionError(f"{e}\nlast status served on /pods: {status}") from None

    def wait_running_ready(self, name: str, timeout: float = 30.0) -> dict:
        return self.wait_pod(name, lambda p: p["status"].get("phase") == "Running" and condition(p, "Ready") == "True",
                             timeout, "phase Running and Ready")

    # ---- the runtime's view

    def crictl(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return self.containerd.crictl(*args, check=check, timeout=timeout)

    def crictl_json(self, *args: str):
        return self.containerd.crictl_json(*args)

    def sandboxes(self, name: str) -> list[dict]:
        """Every sandbox of the static pod `name`, any state, newest first."""
        doc = self.crictl_json("pods", "-o", "json", "--name", f"^{re.escape(name)}-{NODE_NAME}$")
        items = [s for s in doc.get("items", []) if s["metadata"]["name"] == f"{name}-{NODE_NAME}"]
        return sorted(items, key=lambda s: int(s["createdAt"]), reverse=True)

    def containers(self, name: str, container: Optional[str] = None) -> list[dict]:
        """Every container (any state) of the static pod `name`, oldest first."""
        doc = self.crictl_json("ps", "-a", "-o", "json", "--label", f"io.kubernetes.pod.name={name}-{NODE_NAME}")
        items = doc.get("containers", [])
        if container is not None:
            items = [c for c in items if c["metadata"]["name"] == container]
        return sorted(items, key=lambda c: int(c["createdAt"]))

    def inspect(self, container_id: str) -> dict:
        return self.crictl_json("inspect", container_id)

    def exec(self, container_id: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.crictl("exec", container_id, *cmd, check=check)

    def http(self, host: str, port: int, path: str = "/", timeout: float = 2.0) -> kn.Reply:
        return rt.http_get(self.netns.name, host, port, path, timeout=timeout)

    def registry_lines(self, pattern: str) -> list[str]:
        try:
            with open(self.registry_log, errors="replace") as f:
                return [l for l in f.read().splitlines() if re.search(pattern, l)]
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------------- status helpers


def condition(p: dict, type_: str) -> Optional[str]:
    for c in p.get("status", {}).get("conditions", []) or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def condition_of(p: dict, type_: str) -> dict:
    for c in p.get("status", {}).get("conditions", []) or []:
        if c.get("type") == type_:
            return c
    return {}


def cstatus(p: dict, name: str, init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    for s in p.get("status", {}).get(key, []) or []:
        if s.get("name") == name:
            return s
    return {}


def raw_id(container_id: str) -> str:
    return container_id.split("://", 1)[1] if "://" in container_id else container_id


def pid_alive(pid: int) -> bool:
    return rt._alive(pid)


def proc_start_time(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def ns_to_s(value) -> float:
    """A runtime timestamp in seconds since the epoch: crictl prints nanoseconds (ps, pods)
    or RFC 3339 with a fraction (inspect)."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value) / 1e9
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", str(value))
    if not m:
        raise ValueError(f"not a timestamp: {value!r}")
    whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float("0." + (m.group(2) or "0"))
