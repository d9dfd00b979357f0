#!/usr/bin/env python3
"""knode's kubelet and the upstream kubelet side by side, on one containerd (issue 13,
"Performance"). Python stdlib only, on the runtime tier's harness
(tests/runtime/knode_runtime.py). As root:

    bench/kubelet/run_kubelet_bench.py [--knode build/cmd/knode] [--knode-cni build/cni/knode-cni]
        [--kubelet PATH] [--agents knode,kubelet] [--reps-1 N] [--reps-30 N] [--pods 30]
        [--steady-seconds 60] [--json FILE] [--keep-logs DIR]

One run:
  1. a network namespace "node" (lo, a veth pair whose both ends stay in it, a default
     route over it), the local registry with the test images, containerd v2 (the harness's,
     built from its module) with knode-cni on a conflist written once, so both agents get
     the same CNI config; the kubia and pause images pulled once through the CRI before any
     agent starts (the pull is timed and printed on its own, it is not in the figures);
  2. for each agent in turn (knode, then the upstream kubelet standalone): start it on an
     empty manifest directory, wait for its /healthz and a settle time, then
       - for 1 pod and for N pods: write the manifests at once (renamed into the directory
         one after the other), and measure the time until the runtime lists every
         container RUNNING (ListContainers through knode_cri_count, one CRI connection kept
         open, polled every --poll-interval, the same for both agents);
         remove the manifests and wait until the runtime has no running container and no
         ready sandbox of them; repeat;
       - write N pods, wait until they run, then sample the agent's RSS (VmRSS) every second
         and its CPU seconds (utime+stime, children included) over --steady-seconds, from
         /proc/<pid>;
     then stop the agent (SIGTERM), remove every pod through the CRI, and check the runtime
     is empty, so the next agent starts from a clean runtime;
  3. print a markdown table, both agents side by side with the ratio; tear everything down.

`--agents knode,kubelet,knode-docker` adds knode's Docker backend (issue 14) as a third
column: a dockerd of the run's own in the same namespace (tests/runtime/dockerd.py: no
bridge, no iptables, private roots and socket), pause and kubia pulled into it first,
knode with --container-runtime=docker running knode-cni itself on the same conflist; its
pods are observed through dockerd's Engine API (`GET /containers/json`, running containers
labelled with the run's namespace) instead of ListContainers.

The upstream kubelet runs in a mount namespace of its own (slave propagation: it still
sees what containerd mounts): a tmpfs on /var/log there takes its /var/log/containers
links, and private files bound over the six kernel tunables it sets at start
(vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops,
kernel.keys.root_maxkeys, kernel.keys.root_maxbytes) take its writes, so the shared host
is not changed. Nothing of that is on the measured path.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "runtime"))

import dockerd as dk  # noqa: E402
import knode_runtime as rt  # noqa: E402

KUBE_VERSION = "v1.37.2"
NODE_NAME = "kbnode"
POD_CIDR = "10.88.0.0/22"  # 1022 addresses: pods of several trials may overlap while one ends
HEALTHZ_PORT = 10248
READ_ONLY_PORT = 10255  # knode's: its /metrics counts the runtime calls (asked only between runs)
# The node netns' uplink: a veth pair with both ends inside it, so the agents find a
# default route and a node IP without any link to the root namespace.
UPLINK = ("kbup0", "192.168.222.1/30", "kbup1", "192.168.222.2/30", "192.168.222.2")
SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- /proc


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of pid (its waited-for children count too)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def proc_threads(pid: int) -> int:
    return proc_status_kb(pid, "Threads")


def thread_states(pid: int) -> list[str]:
    """'tid state wchan' of each thread of pid (why a process does not exit)."""
    out = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except FileNotFoundError:
        return ["(gone)"]
    for tid in tids[:64]:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read().strip() or "-"
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out.append(f"{tid} {comm} {st} {wchan}")
    return out


def runtime_cpu(workdir: str, docker_markers: tuple = (), docker: bool = False) -> dict[tuple[int, int], float]:
    """CPU seconds (children included) of each containerd process of this run: containerd
    itself (which also reaps the CNI plugin runs) and its shims (which reap runc), and
    dockerd with its own containerd and shims when the Docker backend runs, keyed by
    (pid, start time) so a reused pid is not mistaken for the same process."""
    out = {}
    for pid, cmd in rt.processes_mentioning(workdir):
        try:
            with open(f"/proc/{pid}/stat") as f:
                comm_end = f.read()
            comm = comm_end[comm_end.index("(") + 1:comm_end.rindex(")")]
            if not comm.startswith(("containerd", "dockerd")):
                continue
            # Only the runtime the agent drives: dockerd's own containerd and shims name
            # its roots; the other runtime idles meanwhile.
            of_docker = comm.startswith("dockerd") or any(m in cmd for m in docker_markers)
            if of_docker != docker:
                continue
            fields = comm_end.rsplit(")", 1)[1].split()
            out[(pid, int(fields[19]))] = sum(int(x) for x in fields[11:15]) / CLK_TCK
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return out


def children_cpu() -> float:
    """CPU seconds of this script's finished children: the `crictl` polls (the observer)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_delta(before: dict, after: dict) -> float:
    """CPU spent between two runtime_cpu() snapshots by the processes alive at the end
    (a shim that exited in between takes its share with it: this is a lower bound)."""
    return sum(v - before.get(k, 0.0) for k, v in after.items())


def cpu_by_process() -> dict[tuple[int, int], tuple[str, float, float]]:
    """Every process's and kernel thread's (comm, own CPU seconds, its waited-for
    children's), keyed by (pid, start time): where a start's CPU went (--cpu-by-comm)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                st = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st.rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / CLK_TCK
        kids = (int(fields[13]) + int(fields[14])) / CLK_TCK
        out[(int(name), int(fields[19]))] = (comm, own, kids)
    return out


def cpu_by_comm(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds spent between two cpu_by_process() snapshots, by comm; what reaped
    children spent is "<parent>'s children" (a process that exited and was not reaped by
    one alive at the end is missing: a lower bound)."""
    out: dict[str, float] = {}
    for k, (comm, own, kids) in after.items():
        _, own0, kids0 = before.get(k, (comm, 0.0, 0.0))
        for key, v in ((comm, own - own0), (f"{comm}'s children", kids - kids0)):
            if v > 0:
                out[key] = out.get(key, 0.0) + v
    return out


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_jiffies() -> list[int]:
    """The machine's jiffies over all CPUs by STAT_FIELDS, from /proc/stat's first line
    (steal is time the hypervisor gave elsewhere)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def machine_cpu(before: list[int], after: list[int]) -> dict[str, float]:
    """Seconds by kind between two cpu_jiffies(), with "busy" (all but idle and iowait)
    and "idle_share"."""
    out = {k: (b - a) / CLK_TCK for k, a, b in zip(STAT_FIELDS, before, after)}
    total = sum(out.values())
    idle = out["idle"] + out["iowait"]
    out["busy"] = total - idle
    out["idle_share"] = idle / total if total > 0 else 0.0
    return out


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of them at or below it."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


# --------------------------------------------------------------------------- agents


class Agent:
    """One kubelet under test: started in the node netns on its own manifest directory."""

    key = ""
    title = ""
    runtime = "cri"  # what the bench observes: containerd through crictl, or "docker"

    def __init__(self, bench: "Bench"):
        self.bench = bench
        self.proc: Optional[subprocess.Popen] = None
        self.version = ""

    # Everything of an agent lives under the bench's private work directory, which exists
    # only once the bench is set up.
    @property
    def dir(self) -> str:
        if not os.path.isabs(self.bench.workdir):
            raise BenchError("the work directory is not set up yet")
        return os.path.join(self.bench.workdir, self.key)

    @property
    def manifests(self) -> str:
        return os.path.join(self.dir, "manifests")

    @property
    def staging(self) -> str:  # same filesystem as manifests: rename is atomic
        return os.path.join(self.dir, "staging")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, f"{self.key}.log")

    def command(self) -> list[str]:
        raise NotImplementedError

    def runtime_calls(self) -> dict[str, float]:
        """The agent's runtime calls so far, by operation type; empty when it does not say."""
        return {}

    def prepare(self):
        for d in (self.manifests, self.staging):
            os.makedirs(d, exist_ok=True)

    def start(self) -> float:
        """Starts the agent; returns the seconds until its /healthz answered 200."""
        self.prepare()
        t0 = time.monotonic()
        self.proc = rt._spawn(self.command(), self.log_path)
        pid = self.proc.pid

        def healthy():
            if self.proc.poll() is not None:
                raise BenchError(f"{self.title} exited (rc {self.proc.returncode}); log tail:\n{self.log_tail()}")
            r = rt.http_get(self.bench.node.name, "127.0.0.1", HEALTHZ_PORT, "/healthz", timeout=1)
            return r.status == 200

        try:
            rt.kn.wait_for(healthy, 120, f"{self.title} /healthz on 127.0.0.1:{HEALTHZ_PORT}", 0.05)
        except AssertionError as e:
            raise BenchError(f"{e}\nlog tail:\n{self.log_tail()}") from None
        # The pid we measure must be the agent itself: setpriv, nsenter, unshare and sh exec.
        with open(f"/proc/{pid}/comm") as f:
            self.comm = f.read().strip()
        return time.monotonic() - t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[dict]:
        """SIGTERM, then SIGKILL after 15 s. Returns how the agent stopped: the seconds it
        took, and, when it outlived SIGTERM, what its threads were doing (state, wchan)."""
        if self.proc is None:
            return None
        out: dict = {"signal": "SIGTERM"}
        if self.proc.poll() is None:
            pid = self.proc.pid
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                out["threads_after_sigterm"] = thread_states(pid)
                out["signal"] = "SIGKILL"
                self.proc.kill()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    out["threads_after_sigkill"] = thread_states(pid)
                    log(f"{self.title} (pid {pid}) outlived SIGKILL by 30 s: {out['threads_after_sigkill']}")
                    raise BenchError(f"{self.title} pid {pid} does not exit after SIGKILL") from None
            out["seconds"] = time.monotonic() - t0
        self.proc = None
        return out

    def log_tail(self, n: int = 25) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


class Knode(Agent):
    key = "knode"
    title = "knode"

    def __init__(self, bench, binary: str):
        super().__init__(bench)
        self.binary = os.path.realpath(binary)
        p = rt.kn.run([self.binary, "--version"], check=False)
        self.version = (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "?"

    def runtime_calls(self) -> dict[str, float]:
        """kubelet_runtime_operations_total by operation type, from knode's read-only port."""
        r = rt.http_get(self.bench.node.name, "127.0.0.1", READ_ONLY_PORT, "/metrics", timeout=3)
        if r.status != 200:
            return {}
        out = {}
        prefix = 'kubelet_runtime_operations_total{operation_type="'
        for line in r.body.splitlines():
            if line.startswith(prefix):
                series, _, value = line.rpartition(" ")
                out[series[len(prefix):-2]] = float(value)
        return out

    def command(self) -> list[str]:
        cd = self.bench.containerd
        # No --pod-cidr: the conflist containerd reads is written once for both agents
        # (with a private IPAM directory), so knode must not rewrite it.
        return rt.nsenter(self.bench.node.name) + [
            self.binary, "kubelet",
            "--manifest-dir", self.manifests,
            "--container-runtime-endpoint", cd.endpoint,
            "--cgroup-driver", "cgroupfs",
            "--cgroup-root", cd.cgroup_parent,
            "--root-dir", os.path.join(self.dir, "root"),
            "--log-root", os.path.join(self.dir, "logs"),
            "--hostname-override", NODE_NAME,
            "--healthz-port", str(HEALTHZ_PORT),
            "--read-only-port", str(READ_ONLY_PORT),
        ] + self.bench.args.knode_arg


class KnodeDocker(Knode):
    """knode's Docker backend (issue 14) on the run's dockerd: knode runs knode-cni itself,
    on the same conflist (and IPAM directory) containerd uses for the other agents."""

    key = "knode-docker"
    title = "knode on dockerd"
    runtime = "docker"

    def command(self) -> list[str]:
        b = self.bench
        return rt.nsenter(b.node.name) + [
            self.binary, "kubelet",
            "--manifest-dir", self.manifests,
            "--container-runtime=docker", f"--docker-endpoint={b.dockerd.endpoint}",
            "--pod-infra-container-image", b.images["images"]["pause"]["ref"],
            "--cni-conf-dir", b.cni_conf, "--cni-bin-dir", b.cni_bin,
            "--cgroup-driver", "cgroupfs",
            "--cgroup-root", b.containerd.cgroup_parent,
            "--root-dir", os.path.join(self.dir, "root"),
            "--log-root", os.path.join(self.dir, "logs"),
            "--hostname-override", NODE_NAME,
            "--healthz-port", str(HEALTHZ_PORT),
            "--read-only-port", str(READ_ONLY_PORT),
        ] + b.args.knode_arg


class UpstreamKubelet(Agent):
    key = "kubelet"
    title = f"kubelet {KUBE_VERSION}"

    def __init__(self, bench, binary: str):
        super().__init__(bench)
        self.binary = os.path.realpath(binary)
        self.version = rt.kn.run([self.binary, "--version"]).stdout.strip()

    def prepare(self):
        super().prepare()
        for d in ("root", "pki", "pod-logs", "sysctl"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for s in SYSCTLS:  # the host's current values, in private files the kubelet may change
            with open(f"/proc/sys/{s}") as src, open(os.path.join(self.dir, "sysctl", s.replace("/", ".")), "w") as dst:
                dst.write(src.read())
        # podLogsDir exists only in the config file (containerd, in the root mount
        # namespace, writes the logs where the kubelet says: not in the host's /var/log).
        # Every other setting is a flag. A config file brings the v1beta1 defaults, which
        # differ from the flags' in authentication and authorization (webhooks, which need
        # an API server): the file sets the flags' defaults back (options.go,
        # applyLegacyDefaults), so the kubelet runs as with flags alone.
        with open(os.path.join(self.dir, "config.yaml"), "w") as f:
            f.write("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                    f"podLogsDir: {os.path.join(self.dir, 'pod-logs')}\n"
                    "authentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: false\n"
                    "authorization:\n  mode: AlwaysAllow\n")

    def command(self) -> list[str]:
        cd = self.bench.containerd
        flags = [
            f"--config={os.path.join(self.dir, 'config.yaml')}",
            f"--pod-manifest-path={self.manifests}",
            f"--container-runtime-endpoint={cd.endpoint}",
            # the flags this host needs (cgroup v1, swap, no systemd; /work/shared/CONTROL-PLANE.md)
            "--fail-cgroupv1=false", "--fail-swap-on=false", "--cgroups-per-qos=false",
            "--enforce-node-allocatable=", "--eviction-hard=", "--read-only-port=0",
            "--cgroup-driver=cgroupfs", f"--cgroup-root={cd.cgroup_parent}",
            f"--root-dir={os.path.join(self.dir, 'root')}", f"--cert-dir={os.path.join(self.dir, 'pki')}",
            f"--hostname-override={NODE_NAME}",
            # Without a node IP, every admission and pod sync builds the standalone Node
            # object by resolving the node name through DNS (nodestatus.NodeAddress,
            # net.LookupIP), which in this netns times out after 10 s, once per pod, in
            # the sync loop. A real node resolves its name at once; --node-ip is what an
            # operator would set.
            f"--node-ip={UPLINK[1].split('/')[0]}",
            "--healthz-bind-address=127.0.0.1", f"--healthz-port={HEALTHZ_PORT}",
        ] + self.bench.args.kubelet_arg
        binds = "".join(f'mount --bind "$1/sysctl/{s.replace("/", ".")}" /proc/sys/{s} && ' for s in SYSCTLS)
        script = f'mount -t tmpfs -o mode=0755 kbench-varlog /var/log && {binds}shift && exec "$@"'
        return rt.nsenter(self.bench.node.name) + [
            "unshare", "--mount", "--propagation", "slave", "--",
            "sh", "-c", script, "sh", self.dir, self.binary] + flags


# --------------------------------------------------------------------------- bench


def manifest(name: str, namespace: str, image: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "kbench"}},
        "spec": {"containers": [{"name": "kubia", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "ports": [{"containerPort": 8080}]}]},
    }, indent=1) + "\n"


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = ""
        self.node: Optional[rt.Netns] = None
        self.registry: Optional[rt.Registry] = None
        self.containerd: Optional[rt.Containerd] = None
        self.dockerd: Optional[dk.Dockerd] = None
        self.agents: list[Agent] = []
        self.trial_no = 0
        self.poll_seconds: list[float] = []  # how long one poll takes: the resolution
        self.unanswered: list[str] = []  # crictl calls that failed or timed out (retried)
        self.results: dict = {"agents": {}}
        self.current: Optional[Agent] = None  # the agent whose runtime the polls ask
        self.observer: Optional[subprocess.Popen] = None  # knode_cri_count on containerd

    # ---- runtime

    def setup(self):
        self.images = rt.images(build=True)
        self.kubia = self.images["images"]["kubia"]["ref"]
        self.workdir = rt.make_workdir("kb")
        self.node = rt.Netns("kbench", workdir=self.workdir).create()
        n = self.node.name
        a, a_ip, b, b_ip, gw = UPLINK
        for cmd in (["link", "add", a, "type", "veth", "peer", "name", b],
                    ["addr", "add", a_ip, "dev", a], ["addr", "add", b_ip, "dev", b],
                    ["link", "set", a, "up"], ["link", "set", b, "up"],
                    ["route", "add", "default", "via", gw, "dev", a]):
            rt.kn.run(["ip", "-n", n] + cmd)
        cni_bin = self.cni_bin = os.path.join(self.workdir, "cni-plugins")
        os.makedirs(cni_bin)
        os.symlink(os.path.realpath(self.args.knode_cni), os.path.join(cni_bin, "knode-cni"))
        conf = self.cni_conf = os.path.join(self.workdir, "net.d")
        rt.kn.run([self.args.knode_cni, "--write-conflist", "--pod-cidr", POD_CIDR,
                   "--data-dir", os.path.join(self.workdir, "ipam"), "--out", os.path.join(conf, "10-knode.conflist")])
        self.registry = rt.Registry(n, self.workdir).start()
        self.containerd = rt.Containerd(self.workdir, n, "v2", cni_bin_dirs=(cni_bin,), cni_conf_dir=conf).start()
        # The observer: one process with one connection to containerd for the whole run
        # (its CPU is counted with the observer's, as the crictl children it replaces).
        self.observer = subprocess.Popen([self.args.cri_count, "--endpoint", self.containerd.endpoint],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ver = self.containerd.crictl("version").stdout
        self.results["containerd"] = next((l.split(":", 1)[1].strip() for l in ver.splitlines()
                                           if l.startswith("RuntimeVersion")), "?")
        pulls = {}
        for img in ("pause", "kubia"):
            t0 = time.monotonic()
            self.containerd.crictl("pull", self.images["images"][img]["ref"])
            pulls[img] = time.monotonic() - t0
        self.results["pull_seconds"] = pulls
        log(f"containerd {self.results['containerd']} up in {self.containerd.start_seconds:.2f} s; "
            f"pulled pause in {pulls['pause']:.2f} s, kubia in {pulls['kubia']:.2f} s (not in the figures)")
        if any(a.runtime == "docker" for a in self.agents):
            self.dockerd = dk.Dockerd(self.workdir, n).start()
            status, ver = self.dockerd.api("GET", "/version")
            self.results["dockerd"] = f"{ver.get('Version', '?')} (API {ver.get('ApiVersion', '?')})" \
                if status == 200 else "?"
            for img in ("pause", "kubia"):
                self.dockerd.pull(self.images["images"][img]["ref"])
            log(f"dockerd {self.results['dockerd']} up in {self.dockerd.start_seconds:.2f} s; images pulled")

    def crictl_json(self, *args) -> dict:
        return json.loads(self.containerd.crictl(*args, "-o", "json", timeout=30).stdout)

    def docker_count(self, namespace: str, kind: str) -> int:
        """Running containers (kind "container") or pause containers ("podsandbox") of
        namespace's pods on dockerd, as its Engine API lists them; -1 when it did not answer."""
        q = dk.filters(label=[f"io.kubernetes.pod.namespace={namespace}", f"io.kubernetes.docker.type={kind}"],
                       status=["running"])
        try:
            status, doc = self.dockerd.api("GET", f"/containers/json?filters={q}", timeout=30)
        except OSError as e:
            self.unanswered.append(str(e)[-200:])
            return -1
        if status != 200:
            self.unanswered.append(f"GET /containers/json: {status}")
            return -1
        return len(doc)

    def running_containers(self, namespace: str) -> int:
        """How many containers of namespace's pods the runtime lists RUNNING; -1 when the
        runtime did not answer (a busy machine): the caller polls again, within its
        own deadline."""
        if self.current is not None and self.current.runtime == "docker":
            return self.docker_count(namespace, "container")
        return self.cri_count("running", namespace)

    def observer_cpu(self) -> float:
        """CPU seconds of the observer: knode_cri_count and any finished `crictl`."""
        own = 0.0
        if self.observer is not None and self.observer.poll() is None:
            own = proc_cpu_seconds(self.observer.pid)
        return children_cpu() + own

    def cri_count(self, what: str, namespace: str) -> int:
        """Asks the observer (knode_cri_count, one CRI connection kept open) how many
        containers run ("running") or sandboxes are ready ("ready") in namespace; -1 when
        the runtime did not answer."""
        if self.observer is None or self.observer.poll() is not None:
            raise BenchError(f"the CRI observer {self.args.cri_count} is not running")
        self.observer.stdin.write(f"{what} {namespace}\n")
        self.observer.stdin.flush()
        answer = self.observer.stdout.readline().strip()
        if not answer:
            raise BenchError(f"the CRI observer {self.args.cri_count} exited")
        n, _, err = answer.partition(" ")
        if int(n) < 0:
            self.unanswered.append(err[-200:])
            return -1
        return int(n)

    def ready_sandboxes(self, namespace: str) -> int:
        if self.current is not None and self.current.runtime == "docker":
            return self.docker_count(namespace, "podsandbox")
        return self.cri_count("ready", namespace)

    def clean_runtime(self) -> list[str]:
        """Stops and removes every pod through the CRI; returns what the runtime still lists."""
        cd = self.containerd
        for pod in cd.crictl("pods", "-q", timeout=30).stdout.split():
            cd.crictl("stopp", pod, check=False, timeout=60)
            cd.crictl("rmp", "-f", pod, check=False, timeout=60)
        left = [f"container {c}" for c in cd.crictl("ps", "-a", "-q", timeout=30).stdout.split()]
        left += [f"sandbox {p}" for p in cd.crictl("pods", "-q", timeout=30).stdout.split()]
        if self.dockerd is not None:
            q = dk.filters(label=["io.kubernetes.docker.type"])
            try:
                status, doc = self.dockerd.api("GET", f"/containers/json?all=1&filters={q}", timeout=30)
                for c in doc if status == 200 else []:
                    self.dockerd.api("DELETE", f"/containers/{c['Id']}?force=1&v=1", timeout=60)
                status, doc = self.dockerd.api("GET", f"/containers/json?all=1&filters={q}", timeout=30)
                left += [f"docker container {c['Id'][:12]}" for c in doc] if status == 200 else [f"dockerd: {status}"]
            except OSError as e:
                left.append(f"dockerd did not answer: {e}")
        # what the agents' pod cgroups left (empty directories) under the shared parent
        base = "/sys/fs/cgroup"
        for hier in sorted(os.listdir(base)):
            top = os.path.join(base, hier, cd.cgroup_parent.lstrip("/"))
            if os.path.isdir(top):
                for dp in sorted((d for d, _, _ in os.walk(top) if d != top), key=lambda x: -x.count("/")):
                    try:
                        os.rmdir(dp)
                    except OSError:
                        left.append(f"cgroup {dp}")
        return left

    # ---- one trial

    def write_pods(self, agent: Agent, count: int, namespace: str) -> tuple[float, list[str]]:
        """Writes `count` manifests into the agent's directory at once; returns the time the
        first one appeared (time.monotonic()) and the file names."""
        names = []
        for i in range(count):
            name = f"kb-{i:02d}.json"
            with open(os.path.join(agent.staging, name), "w") as f:
                f.write(manifest(f"kb-{i:02d}", namespace, self.kubia))
            names.append(name)
        t0 = time.monotonic()
        for name in names:
            os.rename(os.path.join(agent.staging, name), os.path.join(agent.manifests, name))
        return t0, names

    def wait_running(self, agent: Agent, namespace: str, count: int, t0: float) -> float:
        deadline = t0 + self.args.trial_timeout
        seen = 0
        while True:
            p0 = time.monotonic()
            seen = self.running_containers(namespace)
            now = time.monotonic()
            self.poll_seconds.append(now - p0)
            if seen >= count:
                return now - t0
            if not agent.alive():
                raise BenchError(f"{agent.title} exited (rc {agent.proc.returncode}); log tail:\n{agent.log_tail()}")
            if now > deadline:
                raise BenchError(f"{agent.title}: {seen}/{count} containers of {namespace} running after "
                                 f"{self.args.trial_timeout:.0f} s\n{self.runtime_listing(agent)}\n"
                                 f"log tail:\n{agent.log_tail()}")
            time.sleep(self.args.poll_interval)

    def runtime_listing(self, agent: Agent) -> str:
        """What the agent's runtime lists, for an error message."""
        try:
            if agent.runtime == "docker":
                status, doc = self.dockerd.api("GET", "/containers/json?all=1", timeout=30)
                return "dockerd containers:\n" + "\n".join(
                    f"{c['Id'][:12]} {c.get('State')} {c.get('Names')}" for c in (doc if status == 200 else []))
            ps = self.containerd.crictl("ps", "-a", timeout=30).stdout
            pods = self.containerd.crictl("pods", timeout=30).stdout
            return f"crictl ps -a:\n{ps}\ncrictl pods:\n{pods}"
        except (OSError, subprocess.TimeoutExpired, RuntimeError) as e:
            return f"(the runtime did not answer: {e})"

    def remove_pods(self, agent: Agent, namespace: str, names: list[str]) -> float:
        t0 = time.monotonic()
        for name in names:
            os.unlink(os.path.join(agent.manifests, name))
        deadline = t0 + self.args.trial_timeout
        while self.running_containers(namespace) != 0 or self.ready_sandboxes(namespace) != 0:
            if not agent.alive():
                raise BenchError(f"{agent.title} exited (rc {agent.proc.returncode}); log tail:\n{agent.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{agent.title}: the pods of {namespace} still run {self.args.trial_timeout:.0f} s "
                                 f"after their manifests were removed\n{self.runtime_listing(agent)}\n"
                                 f"log tail:\n{agent.log_tail()}")
            time.sleep(0.2)
        return time.monotonic() - t0

    def trial(self, agent: Agent, count: int) -> dict:
        self.trial_no += 1
        ns = f"kbench-t{self.trial_no:03d}"
        d = self.dockerd
        markers = (d.socket, d.data_root, d.exec_root) if d is not None else ()
        docker = agent.runtime == "docker"
        calls0 = agent.runtime_calls()  # asked outside the agent's CPU window
        rt0, a0, o0 = runtime_cpu(self.workdir, markers, docker), proc_cpu_seconds(agent.proc.pid), self.observer_cpu()
        by0 = cpu_by_process() if self.args.cpu_by_comm else {}
        j0 = cpu_jiffies()
        t0, names = self.write_pods(agent, count, ns)
        start = self.wait_running(agent, ns, count, t0)
        j1 = cpu_jiffies()
        by_comm = cpu_by_comm(by0, cpu_by_process()) if self.args.cpu_by_comm else {}
        rt1, a1, o1 = runtime_cpu(self.workdir, markers, docker), proc_cpu_seconds(agent.proc.pid), self.observer_cpu()
        calls1 = agent.runtime_calls()
        calls = {op: n - calls0.get(op, 0) for op, n in calls1.items() if n - calls0.get(op, 0) > 0}
        machine = machine_cpu(j0, j1)
        # kubia runs as PID 1: a SIGTERM that arrives before it installs its handler (the
        # first milliseconds) is ignored and the pod takes its 30 s grace period to go.
        time.sleep(0.3)
        stop = self.remove_pods(agent, ns, names)
        time.sleep(self.args.pause)
        return {"namespace": ns, "pods": count, "start_seconds": start, "remove_seconds": stop,
                "agent_cpu_seconds": a1 - a0, "runtime_cpu_seconds": cpu_delta(rt0, rt1),
                "observer_cpu_seconds": o1 - o0, "machine_idle_share": machine["idle_share"],
                "machine_cpu_seconds": machine["busy"],
                "machine_seconds_by_kind": {k: machine[k] for k in STAT_FIELDS},
                **({"cpu_by_comm": by_comm} if by_comm else {}),
                **({"runtime_calls": calls} if calls else {})}

    # ---- one agent

    def run_agent(self, agent: Agent) -> dict:
        self.current = agent
        res: dict = {"title": agent.title, "version": agent.version, "runtime": agent.runtime}
        left = self.clean_runtime()
        if left:
            raise BenchError(f"the runtime is not clean before {agent.title}: {left}")
        log(f"{agent.title}: starting ({agent.version})")
        self.poll_seconds, self.unanswered = [], []
        res["healthz_seconds"] = agent.start()
        pid = agent.proc.pid
        res["comm"] = agent.comm
        log(f"{agent.title}: pid {pid} ({agent.comm}) healthy after {res['healthz_seconds']:.2f} s; "
            f"settling {self.args.settle:.0f} s")
        time.sleep(self.args.settle)
        # One pod first, not counted: whatever an agent does once (first sandbox, caches)
        # is not in the figures of either.
        res["warmup"] = self.trial(agent, 1)
        log(f"{agent.title}: warm-up pod running after {res['warmup']['start_seconds']:.3f} s (not counted)")
        cpu0 = proc_cpu_seconds(pid)
        for count, reps in ((1, self.args.reps_1), (self.args.pods, self.args.reps_30)):
            samples = []
            for r in range(reps):
                t = self.trial(agent, count)
                samples.append(t)
                log(f"{agent.title}: {count} pod(s), run {r + 1}/{reps}: all running after "
                    f"{t['start_seconds']:.3f} s (gone {t['remove_seconds']:.2f} s after removal); load {loadavg()}")
            res[f"pods_{count}"] = samples
        res["cpu_seconds_trials"] = proc_cpu_seconds(pid) - cpu0
        res["poll_seconds_median"] = statistics.median(self.poll_seconds)

        # steady state: N pods running, the agent left alone for --steady-seconds
        self.trial_no += 1
        ns = f"kbench-steady{self.trial_no:03d}"
        t0, names = self.write_pods(agent, self.args.pods, ns)
        res["steady_start_seconds"] = self.wait_running(agent, ns, self.args.pods, t0)
        time.sleep(self.args.pause)
        rss, cpu_start, w0 = [], proc_cpu_seconds(pid), time.monotonic()
        end = w0 + self.args.steady_seconds
        while time.monotonic() < end:
            rss.append(proc_status_kb(pid, "VmRSS"))
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        res["steady_cpu_seconds"] = proc_cpu_seconds(pid) - cpu_start
        res["steady_wall_seconds"] = time.monotonic() - w0
        rss.append(proc_status_kb(pid, "VmRSS"))
        res["steady_rss_kb"] = rss
        res["vm_hwm_kb"] = proc_status_kb(pid, "VmHWM")
        res["threads"] = proc_threads(pid)
        res["steady_running_at_end"] = self.running_containers(ns)
        res["cpu_seconds_total"] = proc_cpu_seconds(pid)
        log(f"{agent.title}: {self.args.pods} pods for {res['steady_wall_seconds']:.0f} s: RSS "
            f"{statistics.median(rss) / 1000:.1f} MB (median), {res['steady_cpu_seconds']:.2f} CPU s")
        res["steady_remove_seconds"] = self.remove_pods(agent, ns, names)
        time.sleep(self.args.pause)
        res["stop"] = agent.stop()
        if res["stop"].get("signal") != "SIGTERM":
            log(f"{agent.title} did not exit within 15 s of SIGTERM; its threads then: "
                f"{res['stop'].get('threads_after_sigterm')}")
        left = self.clean_runtime()
        if left:
            raise BenchError(f"the runtime is not clean after {agent.title}: {left}")
        res["crictl_unanswered"] = self.unanswered
        if self.unanswered:
            log(f"{agent.title}: {len(self.unanswered)} crictl calls failed or timed out and were retried; "
                f"first: {self.unanswered[0]}")
        log(f"{agent.title}: stopped; runtime clean")
        return res

    def run(self):
        self.setup()
        self.results.update({
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "load_start": loadavg(),
            "pods": self.args.pods, "reps_1": self.args.reps_1, "reps_30": self.args.reps_30,
            "steady_seconds": self.args.steady_seconds, "poll_interval": self.args.poll_interval,
        })
        for agent in self.agents:
            self.results["agents"][agent.key] = self.run_agent(agent)
        self.results["load_end"] = loadavg()

    def teardown(self) -> list[str]:
        if self.observer is not None:
            self.observer.stdin.close()
            try:
                self.observer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.observer.kill()
                self.observer.wait()
        for agent in self.agents:
            try:
                agent.stop()
            except Exception as e:  # keep tearing down
                log(f"stopping {agent.title}: {e!r}")
        if self.args.keep_logs and self.workdir:
            os.makedirs(self.args.keep_logs, exist_ok=True)
            for agent in self.agents:
                if os.path.exists(agent.log_path):
                    shutil.copy(agent.log_path, self.args.keep_logs)
            for f in ("containerd.log", "registry.log"):
                if os.path.exists(os.path.join(self.workdir, f)):
                    shutil.copy(os.path.join(self.workdir, f), self.args.keep_logs)
        problems = []
        if self.workdir:
            problems = (dk.teardown if self.dockerd is not None else rt.teardown)(self.workdir)
        if self.node is not None:
            self.node.delete()
        return problems


# --------------------------------------------------------------------------- report


def table(res: dict) -> str:
    agents = [res["agents"][k] for k in ("knode", "kubelet", "knode-docker") if k in res["agents"]]
    n = res["pods"]

    def row(label, fn, fmt, ratio=True):
        vals = [fn(a) for a in agents]
        cells = [fmt.format(v) for v in vals]
        r = ""
        if ratio and len(vals) >= 2 and vals[0] and keys[:2] == ["knode", "kubelet"]:
            r = f"{vals[1] / vals[0]:.1f}×"
        return f"| {label} | " + " | ".join(cells) + (f" | {r} |" if with_ratio else " |")

    def starts(a, c):
        return [t["start_seconds"] for t in a[f"pods_{c}"]]

    keys = [k for k in ("knode", "kubelet", "knode-docker") if k in res["agents"]]
    with_ratio = keys[:2] == ["knode", "kubelet"]
    head = "| | " + " | ".join(a["title"] for a in agents) + (" | kubelet ÷ knode |" if with_ratio else " |")
    sep = "|---|" + "---:|" * len(agents) + ("---:|" if with_ratio else "")
    r1, rn = res["reps_1"], res["reps_30"]
    lines = [head, sep,
             row(f"1 pod, manifest → running: median (n={r1})", lambda a: statistics.median(starts(a, 1)), "{:.2f} s"),
             row(f"1 pod: p99 (n={r1})", lambda a: percentile(starts(a, 1), 0.99), "{:.2f} s"),
             row(f"{n} pods at once, manifests → all running: median (n={rn})",
                 lambda a: statistics.median(starts(a, n)), "{:.2f} s"),
             row(f"{n} pods at once: p99 (n={rn})", lambda a: percentile(starts(a, n), 0.99), "{:.2f} s"),
             row(f"{n} pods: the agent's CPU seconds per start, median",
                 lambda a: statistics.median(t["agent_cpu_seconds"] for t in a[f"pods_{n}"]), "{:.2f}"),
             row(f"{n} pods: the runtime's CPU seconds per start (containerd or dockerd, shims, runc; "
                 "containerd's CNI runs included, the Docker backend's are knode's), median",
                 lambda a: statistics.median(t["runtime_cpu_seconds"] for t in a[f"pods_{n}"]), "{:.2f}"),
             row(f"{n} pods: the observer's (knode_cri_count; 0 for dockerd, asked in-process) CPU seconds "
                 "per start, median",
                 lambda a: statistics.median(t["observer_cpu_seconds"] for t in a[f"pods_{n}"]), "{:.2f}",
                 ratio=False),
             row(f"{n} pods: the machine's idle share while they started (all CPUs, /proc/stat), median",
                 lambda a: statistics.median(t.get("machine_idle_share", 0.0) for t in a[f"pods_{n}"]) * 100,
                 "{:.0f} %", ratio=False),
             row(f"RSS with {n} pods running, median over {res['steady_seconds']:.0f} s",
                 lambda a: statistics.median(a["steady_rss_kb"]) * 1024 / 1e6, "{:.1f} MB"),
             row("peak RSS of the whole run (VmHWM)", lambda a: a["vm_hwm_kb"] * 1024 / 1e6, "{:.1f} MB"),
             row(f"CPU seconds in those {res['steady_seconds']:.0f} s", lambda a: a["steady_cpu_seconds"], "{:.2f}"),
             row("CPU seconds over all the start/stop runs", lambda a: a["cpu_seconds_trials"], "{:.1f}"),
             row("threads", lambda a: a["threads"], "{}", ratio=False),
             row("(one poll of the runtime took, median)", lambda a: a["poll_seconds_median"], "{:.3f} s",
                 ratio=False)]
    return "\n".join(lines)


def verdict(res: dict) -> list[str]:
    out = []
    n = res["pods"]
    for a in res["agents"].values():
        trials = [t for t in a[f"pods_{n}"] if t.get("runtime_calls")]
        if not trials:
            continue
        ops = sorted({op for t in trials for op in t["runtime_calls"]})
        med = {op: statistics.median(t["runtime_calls"].get(op, 0) for t in trials) for op in ops}
        out.append(f"- {a['title']}: runtime calls per {n}-pod start (its kubelet_runtime_operations_total, "
                   f"median of {len(trials)}): {sum(med.values()):.0f} in all, "
                   + ", ".join(f"{op} {v:.0f}" for op, v in sorted(med.items(), key=lambda kv: -kv[1])))
    for a in res["agents"].values():
        if a["steady_running_at_end"] != res["pods"]:
            out.append(f"- {a['title']}: only {a['steady_running_at_end']} of {res['pods']} containers were "
                       "running at the end of the steady window")
        if a.get("stop") and a["stop"].get("signal") != "SIGTERM":
            out.append(f"- {a['title']} did not exit within 15 s of SIGTERM (SIGKILLed); its threads: "
                       f"{a['stop'].get('threads_after_sigterm')}")
        if a.get("crictl_unanswered"):
            out.append(f"- while {a['title']} ran, {len(a['crictl_unanswered'])} `crictl` calls timed out or "
                       "failed and were retried (the runtime was slow to answer)")
    k = res["agents"].get("knode")
    u = res["agents"].get("kubelet")
    n = res["pods"]
    if k:
        p99 = percentile([t["start_seconds"] for t in k[f"pods_{n}"]], 0.99)
        rss = statistics.median(k["steady_rss_kb"]) * 1024 / 1e6
        out.append(f"- knode p99 for {n} pods ≤ 2 s: {'met' if p99 <= 2 else 'NOT met'} ({p99:.2f} s)")
        if u:
            up99 = percentile([t["start_seconds"] for t in u[f"pods_{n}"]], 0.99)
            out.append(f"- knode ahead of the upstream kubelet at p99 for {n} pods: "
                       f"{'yes' if p99 < up99 else 'NO'} ({p99:.2f} s vs {up99:.2f} s)")
        out.append(f"- knode RSS ≤ 30 MB: {'met' if rss <= 30 else 'NOT met'} ({rss:.1f} MB)")
    d = res["agents"].get("knode-docker")
    if d:
        dp99 = percentile([t["start_seconds"] for t in d[f"pods_{n}"]], 0.99)
        line = f"- knode on dockerd, p99 for {n} pods: {dp99:.2f} s"
        if k:
            line += f" (on containerd {percentile([t['start_seconds'] for t in k[f'pods_{n}']], 0.99):.2f} s)"
        out.append(line)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--knode", default=os.path.join(REPO, "build", "cmd", "knode", "knode"))
    ap.add_argument("--knode-cni", default=os.path.join(REPO, "build", "cni", "knode-cni"))
    ap.add_argument("--cri-count", default=os.path.join(REPO, "build", "bench", "knode_cri_count"),
                    help="the observer: counts what containerd lists over one kept connection")
    ap.add_argument("--kubelet", default=os.path.join(rt.cache_dir(), f"kubernetes-{KUBE_VERSION}", "bin", "kubelet"),
                    help="the upstream kubelet (scripts/build-upstream-kubelet.sh builds it there)")
    ap.add_argument("--agents", default="knode,kubelet",
                    help="comma-separated, in order: knode, kubelet, knode-docker (knode's Docker backend on a "
                         "dockerd of the run's own)")
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--reps-1", type=int, default=20, help="runs of 1 pod per agent")
    ap.add_argument("--reps-30", type=int, default=10, help="runs of --pods pods per agent")
    ap.add_argument("--steady-seconds", type=float, default=60)
    ap.add_argument("--settle", type=float, default=10, help="seconds after /healthz before the first run")
    ap.add_argument("--pause", type=float, default=1, help="seconds between runs")
    ap.add_argument("--cpu-by-comm", action="store_true",
                    help="record each start's CPU seconds by process name, kernel threads included (--json)")
    ap.add_argument("--poll-interval", type=float, default=0.05, help="sleep between two polls of the runtime")
    ap.add_argument("--trial-timeout", type=float, default=180)
    ap.add_argument("--kubelet-arg", action="append", default=[],
                    help="one more flag for the upstream kubelet (repeatable; diagnostics, e.g. --kubelet-arg=-v=4)")
    ap.add_argument("--knode-arg", action="append", default=[], help="one more flag for knode (repeatable)")
    ap.add_argument("--json", help="write every sample here")
    ap.add_argument("--keep-logs", help="copy the agents', containerd's and the registry's logs here")
    args = ap.parse_args()

    if os.geteuid() != 0:
        print("run as root (network namespaces, containerd)", file=sys.stderr)
        return 1
    missing = rt.missing_tools("v2")
    wanted = [a.strip() for a in args.agents.split(",") if a.strip()]
    needed = [(args.knode_cni, "knode-cni (ninja -C build knode-cni)"),
              (args.cri_count, "the observer (ninja -C build knode_cri_count)")]
    if "knode" in wanted or "knode-docker" in wanted:
        needed.append((args.knode, "knode (ninja -C build knode)"))
    if "knode-docker" in wanted:
        missing += dk.missing_tools()
    if "kubelet" in wanted:
        needed.append((args.kubelet, "the upstream kubelet (scripts/build-upstream-kubelet.sh)"))
    missing += [f"{what}: {path}" for path, what in needed if not os.access(path, os.X_OK)]
    if shutil.which("unshare") is None:
        missing.append("unshare")
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 1

    bench = Bench(args)
    for key in wanted:
        if key == "knode":
            bench.agents.append(Knode(bench, args.knode))
        elif key == "kubelet":
            bench.agents.append(UpstreamKubelet(bench, args.kubelet))
        elif key == "knode-docker":
            bench.agents.append(KnodeDocker(bench, args.knode))
        else:
            print(f"unknown agent {key!r}", file=sys.stderr)
            return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    t_start = time.monotonic()
    rc = 0
    try:
        bench.run()
    except (BenchError, AssertionError, KeyboardInterrupt) as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        rc = 1
    except Exception:  # a bug or an unexpected failure: the trace, then the same teardown
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        problems = bench.teardown()
        if problems:
            print(f"teardown left: {problems}", file=sys.stderr)
            rc = rc or 1
    res = bench.results
    res["run_seconds"] = time.monotonic() - t_start
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    if rc == 0:
        a = res["agents"]
        print(f"\n### kubelet benchmark, {res['date']}: containerd {res['containerd']}"
              f"{', dockerd ' + res['dockerd'] if 'dockerd' in res else ''}, kernel {res['kernel']}, "
              f"{res['cpus']} CPUs, load {res['load_start']} → {res['load_end']}\n")
        print("Agents: " + "; ".join(f"{x['title']} = `{x['version']}`" for x in a.values()) +
              f". Image kubia pre-pulled (pull {res['pull_seconds']['kubia']:.2f} s, not counted). "
              f"Start = manifests renamed into the directory → the runtime lists every container RUNNING (ListContainers over one kept CRI connection, `knode_cri_count`; dockerd: `GET /containers/json`) "
              f"(polled every {res['poll_interval'] * 1000:.0f} ms); p99 is the nearest rank (with n ≤ 100, the slowest run).\n")
        print(table(res))
        print()
        print("\n".join(verdict(res)))
        print(f"\nOne run: {res['run_seconds'] / 60:.1f} min.")
    return rc


if __name__ == "__main__":
    sys.exit(main())
