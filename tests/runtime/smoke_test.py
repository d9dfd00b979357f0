#!/usr/bin/env python3
"""Runtime-tier smoke test: one real containerd (flavor v2 or debian) in a network
namespace of the test's own, pods networked by knode-cni, images pulled from a local
registry, all driven over CRI with crictl, then torn down to nothing.

    smoke_test.py --flavor v2|debian --knode-cni PATH [--timeout SECONDS] [TEST ...]

TEST: test_smoke (pull, pod, HTTP, exec, remove through the CRI) or
test_teardown_after_kill (containerd SIGKILLed with a pod running; stop() cleans up).

Exits 0 (pass), 1 (fail) or 77 (skipped: not root, or a tool is missing; the reason is
printed), as CTest's SKIP_RETURN_CODE expects. Fails itself after --timeout seconds and
still tears down.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import knode_runtime as rt  # noqa: E402

SKIP = 77
POD_CIDR = "10.88.0.0/24"
NODE_BRIDGE_IP = "10.88.0.1"  # knode-cni's gateway: the node's address on cni0
ARGS: argparse.Namespace


class TestTimeout(Exception):
    pass


def _start_time(pid: int):
    """Field 22 of /proc/pid/stat: tells a process from a later one with the same pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return "?"


class RuntimeSmokeTest(unittest.TestCase):
    flavor = "v2"

    def setUp(self):
        self.timings: dict[str, float] = {}
        self.images = rt.images(build=True)
        self.workdir = rt.make_workdir(self.flavor)
        self.addCleanup(self._teardown_all)
        # Recorded in workdir before it exists: teardown() removes it even after a SIGKILL.
        self.node = rt.Netns(f"node-{self.flavor}", workdir=self.workdir).create()
        log_dir = os.environ.get("KNODE_RUNTIME_LOG_DIR") or self.workdir
        os.makedirs(log_dir, exist_ok=True)
        self.containerd_log = os.path.join(log_dir, f"smoke_{self.flavor}.containerd.log")
        self.registry_log = os.path.join(log_dir, f"smoke_{self.flavor}.registry.log")
        for p in (self.containerd_log, self.registry_log):
            if os.path.exists(p):
                os.unlink(p)
        # knode-cni alone in a plugin directory, and its conflist, written by itself.
        self.cni_bin = os.path.join(self.workdir, "cni-plugins")
        os.makedirs(self.cni_bin)
        os.symlink(os.path.realpath(ARGS.knode_cni), os.path.join(self.cni_bin, "knode-cni"))
        self.cni_conf = os.path.join(self.workdir, "net.d")
        self.ipam_dir = os.path.join(self.workdir, "ipam")
        rt.kn.run([ARGS.knode_cni, "--write-conflist", "--pod-cidr", POD_CIDR, "--data-dir", self.ipam_dir,
                   "--out", os.path.join(self.cni_conf, "10-knode.conflist")])
        self.containerd: rt.Containerd | None = None

    def _teardown_all(self):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if failed and self.containerd is not None:
            print(f"\n--- containerd log ({self.containerd_log}), last 40 lines ---\n"
                  f"{self.containerd.log_tail(40)}\n---")
        problems = rt.teardown(self.workdir)
        self.node.delete()
        if problems:
            print(f"teardown left: {problems}")

    def timed(self, what: str, fn):
        t0 = time.monotonic()
        out = fn()
        self.timings[what] = time.monotonic() - t0
        return out

    # ---- helpers over crictl's real outputs

    def crictl_json(self, *args):
        return self.containerd.crictl_json(*args)

    def wait_container_state(self, cid: str, state: str, timeout: float = 20.0) -> dict:
        def reached():
            doc = self.crictl_json("inspect", cid)
            return doc if doc["status"]["state"] == state else None

        return rt.kn.wait_for(reached, timeout, f"container {cid[:12]} to be {state}", 0.05)

    def pod_config(self, name: str, hostname: str) -> str:
        path = os.path.join(self.workdir, f"{name}-pod.json")
        with open(path, "w") as f:
            json.dump({"metadata": {"name": name, "namespace": "default", "uid": secrets.token_hex(8), "attempt": 0},
                       "hostname": hostname, "log_directory": os.path.join(self.workdir, "pods", name),
                       "labels": {"app": name},
                       "linux": {"cgroup_parent": self.containerd.cgroup_parent,
                                 "security_context": {"namespace_options": {"network": 0, "pid": 1, "ipc": 0}}}},
                      f)
        return path

    def container_config(self, name: str, image: str, command: list[str] | None = None) -> str:
        path = os.path.join(self.workdir, f"{name}-container.json")
        doc = {"metadata": {"name": name}, "image": {"image": image}, "log_path": f"{name}.log", "linux": {}}
        if command:
            doc["command"] = command
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def start_runtime(self) -> rt.Registry:
        registry = rt.Registry(self.node.name, self.workdir, log_path=self.registry_log)
        self.timed("registry start", registry.start)
        self.containerd = rt.Containerd(self.workdir, self.node.name, self.flavor, cni_bin_dirs=(self.cni_bin,),
                                        cni_conf_dir=self.cni_conf, log_path=self.containerd_log)
        self.timed("containerd start", self.containerd.start)
        return registry

    def run_kubia_pod(self) -> dict:
        """Pulls kubia, runs it in a new pod and waits for its HTTP answer; returns facts."""
        kubia_ref = self.images["images"]["kubia"]["ref"]
        self.timed("pull kubia", lambda: self.containerd.crictl("pull", kubia_ref))
        hostname = f"kubia-{secrets.token_hex(3)}"
        pod_json = self.pod_config("kubia", hostname)
        pod = self.timed("run pod sandbox", lambda: self.containerd.crictl("runp", pod_json).stdout.strip())
        pod_status = self.crictl_json("inspectp", pod)
        self.assertEqual(pod_status["status"]["state"], "SANDBOX_READY")
        pod_ip = pod_status["status"]["network"]["ip"]
        self.assertIn(ipaddress.ip_address(pod_ip), ipaddress.ip_network(POD_CIDR), pod_status["status"]["network"])
        netns_path = next(n["path"] for n in pod_status["info"]["runtimeSpec"]["linux"]["namespaces"]
                          if n["type"] == "network")
        kubia = self.containerd.crictl("create", pod, self.container_config("kubia", kubia_ref), pod_json).stdout.strip()
        self.containerd.crictl("start", kubia)
        kubia_pid = self.wait_container_state(kubia, "CONTAINER_RUNNING")["info"]["pid"]

        # A real HTTP request from the node netns to the pod IP.
        def answered():
            r = rt.http_get(self.node.name, pod_ip, 8080, "/", timeout=1)
            return r if r.status == 200 else None

        t0 = time.monotonic()
        reply = rt.kn.wait_for(answered, 15, f"kubia to answer on {pod_ip}:8080 from the node netns", 0.05)
        self.timings["first HTTP answer"] = time.monotonic() - t0
        self.assertEqual(reply.body, f"You've hit {hostname}\n")
        return {"pod": pod, "pod_json": pod_json, "hostname": hostname, "ip": pod_ip, "kubia": kubia,
                "netns_inode": os.stat(netns_path).st_ino, "pids": [pod_status["info"]["pid"], kubia_pid]}

    def assert_nothing_left(self, pids: dict, netns_inodes: list[int], node_inode: int, socket_path: str,
                            cgroup_parent: str):
        """No process, mount, namespace, cgroup or socket of this test remains."""
        self.assertEqual(rt.processes_mentioning(self.workdir), [], "no containerd/shim/registry process")
        self.assertEqual(rt.processes_in_netns(node_inode), [], "no process in the node netns")
        for inode in netns_inodes:
            self.assertEqual(rt.processes_in_netns(inode), [], "no process in the pod netns")
        # A zombie waiting for its new parent (PID 1) to reap it has ended already.
        alive = {p: _cmdline(p) for p, st in pids.items() if _start_time(p) == st and rt._alive(p)}
        self.assertEqual(alive, {}, "the sandbox and container processes are gone")
        self.assertEqual(rt.mounts_under(self.workdir), [], "no mount under the private directory")
        self.assertFalse(self.node.exists(), f"netns {self.node.name} removed")
        self.assertNotIn(self.node.name, rt.kn.run(["ip", "netns", "list"]).stdout)
        self.assertFalse(os.path.exists(socket_path), "containerd's socket removed")
        leftover_cgroups = [h for h in os.listdir("/sys/fs/cgroup")
                            if os.path.isdir(os.path.join("/sys/fs/cgroup", h, cgroup_parent.lstrip("/")))]
        self.assertEqual(leftover_cgroups, [], f"cgroup {cgroup_parent} removed")

    # ---- the tests

    def test_smoke(self):
        """Pull, run a pod, reach it over HTTP, exec, remove it all through the CRI."""
        busybox_ref = self.images["images"]["busybox"]["ref"]
        registry = self.start_runtime()
        version = self.containerd.crictl("version").stdout
        want = rt.versions()["CONTAINERD_VERSION"] if self.flavor == "v2" else "1.6."
        self.assertRegex(version, rf"RuntimeVersion:\s+\S*{re.escape(want)}", "the flavor's containerd answers")

        # A real pull from the registry in the node netns, of exactly the image built.
        p = self.run_kubia_pod()
        pod, pod_json, hostname, pod_ip, kubia = p["pod"], p["pod_json"], p["hostname"], p["ip"], p["kubia"]
        img = self.crictl_json("inspecti", self.images["images"]["kubia"]["ref"])["status"]
        want_digest = self.images["images"]["kubia"]["manifest_digest"]
        self.assertIn(f"127.0.0.1:5000/kubia@{want_digest}", img["repoDigests"])
        with open(self.registry_log, errors="replace") as f:
            served = f.read()
        layer = self.images["images"]["kubia"]["layer_digest"]
        self.assertRegex(served, rf'"GET /v2/kubia/blobs/{layer} HTTP/1\.1" 200 ',
                         "the registry in the node netns served kubia's layer to containerd")
        self.assertTrue(os.path.exists(os.path.join(self.ipam_dir, "knode", pod_ip)),
                        "knode-cni's host-local reservation of the pod IP")
        logs = rt.kn.wait_for(lambda: (lambda t: t if "Received request from" in t else None)(
            self.containerd.crictl("logs", kubia).stdout), 10, "kubia's request log line")
        self.assertRegex(logs, rf"Received request from {re.escape(NODE_BRIDGE_IP)}:\d+: GET / HTTP/1\.1")

        # busybox in the same pod: exec through containerd's streaming server.
        self.containerd.crictl("pull", busybox_ref)
        bb = self.containerd.crictl("create", pod, self.container_config("busybox", busybox_ref, ["sleep", "3600"]),
                                    pod_json).stdout.strip()
        self.containerd.crictl("start", bb)
        busybox_pid = self.wait_container_state(bb, "CONTAINER_RUNNING")["info"]["pid"]
        out = self.timed("exec", lambda: self.containerd.crictl("exec", bb, "sh", "-c", "echo ok"))
        self.assertEqual(out.stdout, "ok\n")
        out = self.containerd.crictl("exec", bb, "wget", "-qO-", "http://127.0.0.1:8080/")
        self.assertEqual(out.stdout, f"You've hit {hostname}\n", "busybox shares the pod's network with kubia")

        pids = {pid: _start_time(pid) for pid in p["pids"] + [busybox_pid]}
        self.assertTrue(all(pids.values()), f"container processes exist: {pids}")

        # Stop and remove everything through the CRI; CNI DEL releases the pod's network.
        for cid in (kubia, bb):
            self.containerd.crictl("stop", "--timeout", "10", cid)
            self.wait_container_state(cid, "CONTAINER_EXITED")
            self.containerd.crictl("rm", cid)
        self.containerd.crictl("stopp", pod)
        self.containerd.crictl("rmp", pod)
        self.assertEqual(self.containerd.crictl("pods", "-q").stdout.split(), [])
        self.assertEqual(self.containerd.crictl("ps", "-aq").stdout.split(), [])
        self.assertFalse(os.path.exists(os.path.join(self.ipam_dir, "knode", pod_ip)), "IP reservation released")
        veths = rt.kn.run(["ip", "-n", self.node.name, "-o", "link", "show", "type", "veth"]).stdout
        self.assertEqual(veths.strip(), "", "the pod's host veth is gone")

        socket_path = self.containerd.socket
        cgroup_parent = self.containerd.cgroup_parent
        problems = self.timed("containerd stop", self.containerd.stop)
        self.assertEqual(problems, [])
        registry.stop()
        node_inode = self.node.inode
        self.node.delete()

        self.assert_nothing_left(pids, [p["netns_inode"]], node_inode, socket_path, cgroup_parent)
        print(f"\n{self.flavor} timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))

    def test_teardown_after_kill(self):
        """containerd SIGKILLed with a pod running: stop() still leaves nothing behind."""
        registry = self.start_runtime()
        p = self.run_kubia_pod()
        pids = {pid: _start_time(pid) for pid in p["pids"]}
        self.assertTrue(all(pids.values()), f"container processes exist: {pids}")
        self.assertNotEqual(rt.mounts_under(self.workdir), [], "the running pod has mounts to clean up")
        shims = rt.processes_mentioning(self.containerd.socket)
        self.assertNotEqual(shims, [], "a shim serves the pod")
        shim_sockets = rt._shim_addresses(self.containerd.state)
        self.assertNotEqual(shim_sockets, [])
        cni_cache = [f for f in os.listdir("/var/lib/cni/results") if p["pod"] in f]
        self.assertNotEqual(cni_cache, [], "libcni cached the pod's attachment")

        cd_pid = self.containerd.proc.pid
        os.kill(cd_pid, signal.SIGKILL)
        self.containerd.proc.wait(10)
        socket_path, cgroup_parent = self.containerd.socket, self.containerd.cgroup_parent
        problems = self.timed("containerd stop after SIGKILL", self.containerd.stop)
        self.assertEqual(problems, [])
        registry.stop()
        node_inode = self.node.inode
        self.node.delete()

        self.assert_nothing_left(pids, [p["netns_inode"]], node_inode, socket_path, cgroup_parent)
        self.assertEqual([s for s in shim_sockets if os.path.exists(s)], [], "shim sockets removed")
        self.assertEqual([f for f in os.listdir("/var/lib/cni/results") if p["pod"] in f], [],
                         "libcni's cache of the pod removed")
        print(f"\n{self.flavor} timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--flavor", choices=rt.FLAVORS, required=True)
    ap.add_argument("--knode-cni", default=os.environ.get("KNODE_CNI_BIN", ""))
    ap.add_argument("--timeout", type=int, default=150)
    ap.add_argument("tests", nargs="*", help="test methods (default: all), e.g. test_smoke")
    ARGS = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, mounts, containers)")
        return SKIP
    missing = rt.missing_tools(ARGS.flavor)
    if missing:
        print(f"SKIP: missing {'; '.join(missing)}")
        return SKIP
    if not ARGS.knode_cni or not os.access(ARGS.knode_cni, os.X_OK):
        print(f"FAIL: knode-cni not found or not executable: {ARGS.knode_cni!r} (build the knode-cni target)")
        return 1
    ARGS.knode_cni = os.path.abspath(ARGS.knode_cni)
    rt.remove_stale()

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its {ARGS.timeout}s budget")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(TestTimeout("terminated")))
    signal.alarm(ARGS.timeout)
    RuntimeSmokeTest.flavor = ARGS.flavor
    if ARGS.tests:
        suite = unittest.TestSuite(RuntimeSmokeTest(t) for t in ARGS.tests)
    else:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(RuntimeSmokeTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    signal.alarm(0)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
