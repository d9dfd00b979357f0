"""The fixture of the kubelet's runtime tests: one node netns with a default route, a local
registry, a container runtime with knode-cni, and `knode agent` in that netns driving it
from a manifest directory. The runtime is one of two backends:

    containerd  a private containerd (tests/runtime/knode_runtime.py, flavor v2 or debian);
                knode talks CRI to it (--container-runtime-endpoint)
    docker      a private dockerd (tests/runtime/dockerd.py); knode drives it through its
                Docker backend (--container-runtime=docker --docker-endpoint)

    node netns knrt<pid>-node
      lo 127.0.0.1: docker-registry :5000, knode's /healthz :10248, read-only port :10255
      knup0 192.168.255.1/24 <-veth-> knup1 (both ends stay here), default via 192.168.255.254
      cni0 10.88.0.1/24 (knode-cni), pods 10.88.0.x
      containerd + shims, or dockerd + its containerd + shims; knode agent (kubelet + iptables proxy)

Everything lives under the work dir /tmp/knrt-<pid>-kt-XXXX (conflist, IPAM, manifests,
the kubelet's root and log root, the runtime's directories), so the harness's teardown
removes it. knode runs under `nsenter --net` only (never `ip netns exec`): the volumes it
mounts must stay in the root mount namespace, where the runtime and runc see them.

Every observation a test makes goes through real outputs: the PodList knode serves on
its read-only port, the runtime's own view (crictl on containerd's socket, the Engine API
on dockerd's: RuntimeView below, the same answers from both), HTTP to the pods, files on
disk.
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

import dockerd as dk  # noqa: E402  (tests/runtime/dockerd.py)
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
BACKENDS = ("containerd", "docker")


def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    return kn.wait_for(pred, timeout, what, interval)


def missing(backend: str, flavor: str, knode: str, knode_cni: str) -> list[str]:
    out = rt.missing_tools(flavor) if backend == "containerd" else dk.missing_tools()
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


# --------------------------------------------------------------------------- the runtime's view


class RuntimeView:
    """What the container runtime itself says about the node's pods, through its own tool,
    in one shape for both backends:

        sandbox    {"id", "name", "namespace", "uid", "ready": bool, "created": s}
        container  {"id", "name", "attempt", "state": running|exited|created|unknown,
                    "sandbox": id, "created": s}
        inspect    the container's fields plus {"pid", "started_at", "finished_at" (s, or
                    None before it happened), "exit_code", "image_refs": [the refs of its
                    image as the runtime knows them]}
    """

    scheme = ""  # containerID's scheme: "containerd://<id>", "docker://<id>"

    def sandboxes(self, pod_name: str) -> list[dict]:
        raise NotImplementedError

    def containers(self, pod_name: str) -> list[dict]:
        raise NotImplementedError

    def inspect(self, container_id: str) -> dict:
        raise NotImplementedError

    def sandbox_ip(self, sandbox_id: str) -> str:
        raise NotImplementedError

    def exec(self, container_id: str, cmd: list[str]) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def image_ids(self) -> list[str]:
        raise NotImplementedError

    def image(self, ref: str) -> dict:
        """{"id", "repo_digests"} of an image the runtime has."""
        raise NotImplementedError

    def all_sandbox_ids(self) -> list[str]:
        """Every sandbox the runtime has, whoever made it."""
        raise NotImplementedError

    # Containers of someone else's, made with the runtime's own tool, not by knode.

    def make_foreign(self, name: str, image: str, cmd: list[str], cgroup: str, start: bool = True,
                     lookalike: bool = False) -> str:
        """A container made the way a user would (`docker run`, `ctr run`); lookalike: as
        close to the kubelet's as that tool gets (dockerd: named like one; containerd: in
        the CRI's namespace k8s.io). Returns a handle for foreign_state()."""
        raise NotImplementedError

    def foreign_state(self, handle: str) -> tuple:
        """What would change if anything touched the container: its status, its process,
        its times and restart count; ("gone",) once it no longer exists."""
        raise NotImplementedError


def _seconds(value) -> Optional[float]:
    """A runtime timestamp in seconds, None for the zero time (not happened yet)."""
    t = ns_to_s(value)
    return t if t > 86400 else None


class CriView(RuntimeView):
    """crictl on containerd's socket."""

    scheme = "containerd"
    STATES = {"CONTAINER_RUNNING": "running", "CONTAINER_EXITED": "exited", "CONTAINER_CREATED": "created"}

    def __init__(self, containerd: rt.Containerd):
        self.cd = containerd

    def crictl(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return self.cd.crictl(*args, check=check, timeout=timeout)

    def sandboxes(self, pod_name):
        doc = self.cd.crictl_json("pods", "-o", "json", "--name", f"^{re.escape(pod_name)}$")
        return [{"id": s["id"], "name": s["metadata"]["name"], "namespace": s["metadata"]["namespace"],
                 "uid": s["metadata"]["uid"], "ready": s["state"] == "SANDBOX_READY",
                 "created": int(s["createdAt"]) / 1e9}
                for s in doc.get("items", []) if s["metadata"]["name"] == pod_name]

    def containers(self, pod_name):
        doc = self.cd.crictl_json("ps", "-a", "-o", "json", "--label", f"io.kubernetes.pod.name={pod_name}")
        return [{"id": c["id"], "name": c["metadata"]["name"], "attempt": c["metadata"].get("attempt", 0),
                 "state": self.STATES.get(c["state"], "unknown"), "sandbox": c["podSandboxId"],
                 "created": int(c["createdAt"]) / 1e9} for c in doc.get("containers", [])]

    def inspect(self, container_id):
        doc = self.cd.crictl_json("inspect", container_id)
        st = doc["status"]
        return {"id": st["id"], "name": st["metadata"]["name"], "attempt": st["metadata"].get("attempt", 0),
                "state": self.STATES.get(st["state"], "unknown"), "sandbox": doc.get("info", {}).get("sandboxID"),
                "created": _seconds(st["createdAt"]), "pid": doc.get("info", {}).get("pid"),
                "started_at": _seconds(st.get("startedAt", 0)), "finished_at": _seconds(st.get("finishedAt", 0)),
                "exit_code": st.get("exitCode"), "image_refs": [st["imageRef"]]}

    def sandbox_ip(self, sandbox_id):
        return self.cd.crictl_json("inspectp", sandbox_id)["status"]["network"]["ip"]

    def exec(self, container_id, cmd):
        return self.crictl("exec", container_id, *cmd, check=False)

    def image_ids(self):
        return self.crictl("images", "-q").stdout.split()

    def image(self, ref):
        st = self.cd.crictl_json("inspecti", ref)["status"]
        return {"id": st["id"], "repo_digests": st.get("repoDigests", [])}

    def all_sandbox_ids(self):
        return self.crictl("pods", "-q").stdout.split()

    def ctr(self, namespace: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        ctr = os.path.join(os.path.dirname(self.cd.binary), "ctr") if self.cd.flavor == "v2" else "ctr"
        return kn.run(rt.nsenter(self.cd.netns) + [ctr, "--address", self.cd.socket, "--namespace", namespace]
                      + list(args), check=check, timeout=60)

    def make_foreign(self, name, image, cmd, cgroup, start=True, lookalike=False):
        # Outside the CRI: containerd's namespace "default" (a `ctr run` user's), or k8s.io
        # without the CRI plugin's metadata. runc's state under the test's runc root.
        ns = "k8s.io" if lookalike else "default"
        self.ctr(ns, "images", "pull", "--plain-http", image)
        if start:
            self.ctr(ns, "run", "-d", "--runc-root", self.cd.runc_root, "--cgroup", cgroup, image, name, *cmd)
        else:
            self.ctr(ns, "containers", "create", "--runc-root", self.cd.runc_root, image, name, *cmd)  # no task
        return f"{ns}/{name}"

    def foreign_state(self, handle):
        ns, name = handle.split("/", 1)
        info = self.ctr(ns, "containers", "info", name, check=False)
        if info.returncode != 0:
            return ("gone",)
        c = json.loads(info.stdout)
        task = [l.split() for l in self.ctr(ns, "tasks", "ls").stdout.splitlines()[1:] if l.split()[:1] == [name]]
        status, pid = (task[0][2].lower(), int(task[0][1])) if task else ("created", 0)
        return (status, pid, proc_start_time(pid) if pid else None, c.get("CreatedAt"), c.get("UpdatedAt"))


class DockerView(RuntimeView):
    """The Engine API on dockerd's socket (what `docker ps`, `docker inspect`, `docker exec`
    ask). A pod is what the kubelet's labels say: the sandbox is the pause container
    (io.kubernetes.docker.type=podsandbox), the attempt is the last field of the name
    (k8s_<container>_<pod>_<ns>_<uid>_<attempt>, dockershim's scheme), and the pod's IP
    is the one on eth0 in the pause container's network namespace (network mode `none`:
    dockerd does not know it)."""

    scheme = "docker"
    STATES = {"running": "running", "exited": "exited", "dead": "exited", "created": "created"}

    def __init__(self, dockerd: dk.Dockerd):
        self.d = dockerd

    def _get(self, path: str, missing_ok: bool = False):
        status, body = self.d.api("GET", path)
        if status == 404 and missing_ok:
            return None
        if status != 200:
            raise AssertionError(f"dockerd GET {path}: {status} {body}")
        return body

    def _list(self, **labels) -> list[dict]:
        sel = [f"{k}={v}" for k, v in labels.items()]
        return self._get(f"/containers/json?all=1&filters={dk.filters(label=sel)}")

    @staticmethod
    def _attempt(name: str) -> int:
        parts = name.lstrip("/").split("_")
        return int(parts[5]) if len(parts) >= 6 and parts[5].isdigit() else 0

    def _inspect(self, container_id: str, missing_ok: bool = False) -> Optional[dict]:
        return self._get(f"/containers/{container_id}/json", missing_ok)

    # A listed container may be removed before it is inspected (knode removing a pod while
    # a test polls for that): it is skipped, as a later list would not show it.
    def sandboxes(self, pod_name):
        out = []
        for c in self._list(**{"io.kubernetes.pod.name": pod_name, "io.kubernetes.docker.type": "podsandbox"}):
            i = self._inspect(c["Id"], missing_ok=True)
            if i is None:
                continue
            labels = i["Config"]["Labels"] or {}
            out.append({"id": i["Id"], "name": labels.get("io.kubernetes.pod.name"),
                        "namespace": labels.get("io.kubernetes.pod.namespace"),
                        "uid": labels.get("io.kubernetes.pod.uid"), "ready": bool(i["State"]["Running"]),
                        "created": _seconds(i["Created"])})
        return out

    def containers(self, pod_name):
        out = []
        for c in self._list(**{"io.kubernetes.pod.name": pod_name, "io.kubernetes.docker.type": "container"}):
            i = self.inspect(c["Id"], missing_ok=True)
            if i is None:
                continue
            out.append({k: i[k] for k in ("id", "name", "attempt", "state", "sandbox", "created")})
        return out

    def inspect(self, container_id, missing_ok: bool = False):
        i = self._inspect(container_id, missing_ok)
        if i is None:
            return None
        labels = i["Config"]["Labels"] or {}
        img = self._get(f"/images/{i['Image']}/json")
        return {"id": i["Id"], "name": labels.get("io.kubernetes.container.name"), "attempt": self._attempt(i["Name"]),
                "state": self.STATES.get(i["State"]["Status"], "unknown"),
                "sandbox": labels.get("io.kubernetes.sandbox.id"), "created": _seconds(i["Created"]),
                "pid": i["State"]["Pid"], "started_at": _seconds(i["State"]["StartedAt"]),
                "finished_at": _seconds(i["State"]["FinishedAt"]), "exit_code": i["State"]["ExitCode"],
                "image_refs": [img["Id"]] + list(img.get("RepoDigests") or [])}

    def sandbox_ip(self, sandbox_id):
        pid = self._inspect(sandbox_id)["State"]["Pid"]
        out = kn.run(["nsenter", f"--net=/proc/{pid}/ns/net", "--", "ip", "-j", "-4", "addr", "show", "dev", "eth0"])
        return json.loads(out.stdout)[0]["addr_info"][0]["local"]

    def exec(self, container_id, cmd):
        return self.d.exec(container_id, list(cmd))

    def image_ids(self):
        return [i["Id"] for i in self._get("/images/json")]

    def image(self, ref):
        i = self._get(f"/images/{ref}/json")
        return {"id": i["Id"], "repo_digests": list(i.get("RepoDigests") or [])}

    def all_sandbox_ids(self):
        return [c["Id"] for c in self._get(f"/containers/json?all=1&filters="
                                           f"{dk.filters(label=['io.kubernetes.docker.type=podsandbox'])}")]

    def make_foreign(self, name, image, cmd, cgroup, start=True, lookalike=False):
        # `docker run`: no kubelet labels; the lookalike is named like a kubelet's container.
        if lookalike:
            name = f"k8s_app_{name}_default_0a0b_0"
        self.d.pull(image)
        status, made = self.d.api("POST", f"/containers/create?name={name}", {
            "Image": image, "Cmd": cmd, "Labels": {"owner": "someone-else"},
            "HostConfig": {"NetworkMode": "none", "CgroupParent": cgroup}})
        if status != 201:
            raise AssertionError(f"docker create {name}: {status} {made}")
        if start:
            status, body = self.d.api("POST", f"/containers/{made['Id']}/start")
            if status != 204:
                raise AssertionError(f"docker start {name}: {status} {body}")
        return made["Id"]

    def foreign_state(self, handle):
        status, i = self.d.api("GET", f"/containers/{handle}/json")
        if status == 404:
            return ("gone",)
        st = i["State"]
        return (st["Status"], st["Pid"], proc_start_time(st["Pid"]) if st["Pid"] else None, st["StartedAt"],
                st["FinishedAt"], i["RestartCount"])


# --------------------------------------------------------------------------- the node


class Node:
    """The test's node: netns, registry, the runtime (containerd or dockerd), knode.
    start() brings it all up; teardown() stops knode first (so it does not recreate what
    teardown removes), then everything the harness recorded, and fails on whatever is
    left. Works from any state."""

    def __init__(self, name: str, backend: str, flavor: str, knode: str, knode_cni: str, log_dir: str):
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: one of {BACKENDS}")
        self.name, self.backend, self.flavor = name, backend, flavor
        self.knode_bin, self.knode_cni = os.path.abspath(knode), os.path.abspath(knode_cni)
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.knode_log = os.path.join(log_dir, f"{name}.knode.log")
        self.runtime_log = os.path.join(log_dir, f"{name}.{'containerd' if backend == 'containerd' else 'dockerd'}.log")
        self.registry_log = os.path.join(log_dir, f"{name}.registry.log")
        for p in (self.knode_log, self.runtime_log, self.registry_log):
            if os.path.exists(p):
                os.unlink(p)
        self.images = rt.images(build=True)["images"]
        self.workdir = rt.make_workdir("kt")
        # The pods' cgroup parent (--cgroup-root): teardown empties and removes it.
        self.cgroup_parent = f"/{rt.PREFIX}{os.getpid()}-{os.path.basename(self.workdir)}"
        rt._update_state(self.workdir, cgroup_parent=self.cgroup_parent)
        self.netns: Optional[rt.Netns] = None
        self.registry: Optional[rt.Registry] = None
        self.containerd: Optional[rt.Containerd] = None
        self.dockerd: Optional[dk.Dockerd] = None
        self.runtime: Optional[RuntimeView] = None
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
        if self.backend == "containerd":
            self.containerd = rt.Containerd(self.workdir, ns, self.flavor, cni_bin_dirs=(self.cni_bin,),
                                            cni_conf_dir=self.cni_conf, log_path=self.runtime_log)
            self.containerd.cgroup_parent = self.cgroup_parent
            self.containerd.start()
            self.runtime = CriView(self.containerd)
            runtime_args = ["--container-runtime-endpoint", self.containerd.endpoint]
        else:
            # The Docker backend runs knode-cni itself, on the pause container's netns.
            self.dockerd = dk.Dockerd(self.workdir, ns, log_path=self.runtime_log).start()
            self.runtime = DockerView(self.dockerd)
            runtime_args = ["--container-runtime=docker", f"--docker-endpoint={self.dockerd.endpoint}",
                            "--pod-infra-container-image", self.images["pause"]["ref"],
                            "--cni-conf-dir", self.cni_conf, "--cni-bin-dir", self.cni_bin]
        args = ["agent", "--manifest-dir", self.manifests] + runtime_args + [
                "--cgroup-root", self.cgroup_parent,
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
            for daemon in (self.containerd, self.dockerd):
                if daemon is not None:
                    print(f"--- {self.backend} log ({self.runtime_log}), last 30 lines ---\n"
                          f"{daemon.log_tail(30)}\n---")
        problems = []
        if self.knode is not None:
            try:
                self.knode.stop(signal.SIGTERM, 10)
            except AssertionError as e:
                problems.append(str(e))
        # dockerd's teardown removes its containers through the API, then does what
        # knode_runtime's does (processes naming the work dir, cgroups, mounts, netns).
        problems += (dk.teardown if self.backend == "docker" else rt.teardown)(self.workdir, remove=False)
        if self.netns is not None:
            self.netns.delete()
        # Whatever the teardown did not report: a process, a mount, the netns, the cgroup.
        problems += [p for p in rt.leftovers(self.workdir, [self.netns.name] if self.netns else [],
                                             self.cgroup_parent) if p not in problems]
        if not problems:
            shutil.rmtree(self.workdir, ignore_errors=True)
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

    def metrics(self) -> dict[str, float]:
        """The kubelet's /metrics on the read-only port: series ("name{labels}") -> value."""
        r = rt.http_get(self.netns.name, "127.0.0.1", READ_ONLY_PORT, "/metrics", timeout=3)
        if r.status != 200:
            raise AssertionError(f"GET /metrics on the read-only port: {r.status} {r.body[:200]}")
        out = {}
        for line in r.body.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                out[series] = float(value)
        return out

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

    # ---- the runtime's view (RuntimeView: crictl or the Engine API)

    def cid(self, container_id: str) -> str:
        """A container's ID as the pod status names it: <scheme>://<id>."""
        return f"{self.runtime.scheme}://{container_id}"

    def sandboxes(self, name: str) -> list[dict]:
        """Every sandbox of the static pod `name`, any state, newest first."""
        return sorted(self.runtime.sandboxes(f"{name}-{NODE_NAME}"), key=lambda s: s["created"], reverse=True)

    def containers(self, name: str, container: Optional[str] = None) -> list[dict]:
        """Every container (any state) of the static pod `name`, oldest first."""
        items = self.runtime.containers(f"{name}-{NODE_NAME}")
        if container is not None:
            items = [c for c in items if c["name"] == container]
        return sorted(items, key=lambda c: c["created"])

    def inspect(self, container_id: str) -> dict:
        return self.runtime.inspect(container_id)

    def exec(self, container_id: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        p = self.runtime.exec(container_id, list(cmd))
        if check and p.returncode != 0:
            raise AssertionError(f"exec {list(cmd)} in {container_id[:12]}: exit {p.returncode}: {p.stderr.strip()}")
        return p

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
