#!/usr/bin/env python3
"""Runtime tier: the Docker backend against a real dockerd (Debian's docker.io, Engine API
1.41), started here in a network namespace of this run with private directories, with the
test images served by a local registry in that namespace and pods networked by knode-cni.

    run_dockerd_test.py --test-bin knode_docker_dockerd_test --knode-cni PATH
                        [--knode PATH] [--timeout S] [gtest args...]

1. starts the namespace, the registry and dockerd (dockerd.py), writes knode-cni's
   conflist, and runs the gtest binary (dockerd_test.cc) inside the namespace: the seam's
   calls end to end;
2. with --knode: `knode kubelet --container-runtime=docker --cgroup-driver=systemd` must
   refuse to start against this cgroupfs dockerd with the runtime's mismatch error, and
   with a matching driver it must get past that check; then the kubelet runs a static pod
   on dockerd (Running and Ready with an IP, docker:// IDs, HTTP, CRI logs) and removes
   it with its manifest;
3. tears everything down and fails when anything is left: a process naming the run's
   directory, a mount under it, the namespace, the cgroup parent, a container.

Exits 77 (CTest: skipped) with the reason when not root or dockerd, the registry or the
test images are missing. Fails itself after --timeout seconds, and still tears down.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dockerd as dk  # noqa: E402
from dockerd import rt  # noqa: E402

SKIP = 77
POD_CIDR = "10.88.0.0/24"


class Timeout(Exception):
    pass


def check_cgroup_mismatch(knode: str, workdir: str, netns: str, d: dk.Dockerd) -> list[str]:
    """knode kubelet against this dockerd: a mismatched --cgroup-driver stops it with the
    error CRI runtimes get; the matching one passes the check."""
    failures = []
    manifests = os.path.join(workdir, "manifests")
    os.makedirs(manifests, exist_ok=True)
    base = rt.nsenter(netns) + [knode, "kubelet", "--container-runtime=docker", f"--docker-endpoint={d.endpoint}",
                                "--manifest-dir", manifests, "--healthz-port=0", "--read-only-port=0",
                                "--root-dir", os.path.join(workdir, "kubelet"),
                                "--log-root", os.path.join(workdir, "logroot"),
                                "--cni-conf-dir", os.path.join(workdir, "net.d")]
    p = subprocess.run(base + ["--cgroup-driver=systemd"], capture_output=True, text=True, timeout=60)
    want = ('misconfiguration: kubelet cgroup driver: "systemd" is different from the container runtime\'s '
            'cgroup driver: "cgroupfs" (set --cgroup-driver=cgroupfs, or dockerd\'s --exec-opt native.cgroupdriver)')
    if p.returncode == 0 or want not in p.stderr.replace('\\"', '"'):
        failures.append(f"knode kubelet --cgroup-driver=systemd against a cgroupfs dockerd: rc {p.returncode}, "
                        f"stderr:\n{p.stderr[-2000:]}")
    else:
        print(f"cgroup driver mismatch refused: {want}")
    # The matching driver gets past the check: knode runs until told to stop.
    proc = subprocess.Popen(base + ["--cgroup-driver=cgroupfs"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out, _ = proc.communicate(timeout=3)
        failures.append(f"knode kubelet --container-runtime=docker exited (rc {proc.returncode}):\n{out[-2000:]}")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if "misconfiguration" in out:
            failures.append(f"knode kubelet with the matching driver reported a mismatch:\n{out[-2000:]}")
        else:
            print("knode kubelet --container-runtime=docker --cgroup-driver=cgroupfs: started")
    return failures


POD_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: kubia
    image: {kubia}
    ports:
    - containerPort: 8080
  - name: box
    image: {busybox}
    command: ["sh", "-c", "echo started; exec sleep 3600"]
"""


def check_kubelet_runs_a_pod(knode: str, workdir: str, netns: str, d: dk.Dockerd, images: dict,
                             cgroup_root: str) -> list[str]:
    """`knode kubelet --container-runtime=docker` runs a static pod on this dockerd: Running
    and Ready with an IP from knode-cni, docker:// container IDs, HTTP to the pod, CRI logs;
    removing the manifest removes its containers."""
    failures = []
    manifests = os.path.join(workdir, "pods")
    os.makedirs(manifests, exist_ok=True)
    with open(os.path.join(manifests, "web.yaml"), "w") as f:
        f.write(POD_MANIFEST.format(kubia=images["images"]["kubia"]["ref"], busybox=images["images"]["busybox"]["ref"]))
    log_root = os.path.join(workdir, "kubelet-logs")
    cmd = rt.nsenter(netns) + [knode, "kubelet", "--container-runtime=docker", f"--docker-endpoint={d.endpoint}",
                               "--manifest-dir", manifests, "--file-check-frequency=1s",
                               "--healthz-port=0", "--read-only-port=10255", "--address=127.0.0.1",
                               "--root-dir", os.path.join(workdir, "kubelet"), "--log-root", log_root,
                               "--cni-conf-dir", os.path.join(workdir, "net.d"),
                               "--cni-bin-dir", os.path.join(workdir, "cni-bin"),
                               "--pod-infra-container-image", images["images"]["pause"]["ref"],
                               "--cgroup-root", cgroup_root, "--hostname-override", "node-docker"]
    log_path = os.path.join(workdir, "knode-kubelet.log")
    proc = rt._spawn(cmd, log_path)

    def pod():
        if proc.poll() is not None:
            raise AssertionError(f"knode kubelet exited (rc {proc.returncode})")
        r = rt.http_get(netns, "127.0.0.1", 10255, "/pods", timeout=2)
        items = json.loads(r.body).get("items", [])
        return items[0] if items else None

    try:
        def ready():
            p = pod()
            if not p:
                return None
            conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
            return p if conds.get("Ready") == "True" and p["status"].get("podIP") else None

        p = rt.kn.wait_for(ready, 90, "the static pod to be Ready with an IP", 0.2)
        ip = p["status"]["podIP"]
        print(f"kubelet on dockerd: pod web Ready at {ip}")
        if not ip.startswith("10.88.0."):
            failures.append(f"pod IP {ip} is not from knode-cni's 10.88.0.0/24")
        ids = [c.get("containerID", "") for c in p["status"].get("containerStatuses", [])]
        if len(ids) != 2 or not all(i.startswith("docker://") for i in ids):
            failures.append(f"containerIDs {ids}: want two docker://<id>")
        answer = rt.kn.wait_for(lambda: rt.http_get(netns, ip, 8080, timeout=2), 20, "kubia to answer", 0.2)
        name, uid = p["metadata"]["name"], p["metadata"]["uid"]  # a static pod's name ends in the node's
        if answer.body != f"You've hit {name}\n":
            failures.append(f"kubia answered {answer.body!r}, want the pod's hostname {name}")
        kubia_log = os.path.join(log_root, "var/log/pods", f"default_{name}_{uid}", "kubia", "0.log")

        def logged():
            try:
                with open(kubia_log) as f:
                    return " stdout F Received request from " in f.read()
            except FileNotFoundError:
                return False

        rt.kn.wait_for(logged, 20, f"kubia's request line in {kubia_log}", 0.1)
        # The manifest goes: so do the pod's containers, pause included.
        os.unlink(os.path.join(manifests, "web.yaml"))

        def gone():
            status, items = d.api("GET", "/containers/json?all=1")
            return status == 200 and not items

        rt.kn.wait_for(gone, 60, "the pod's containers to be removed from dockerd", 0.2)
        print("kubelet on dockerd: pod removed with its manifest")
    except (AssertionError, OSError, ValueError, KeyError) as e:
        failures.append(f"knode kubelet --container-runtime=docker: {e}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if failures:
            with open(log_path, errors="replace") as f:
                print(f"--- knode kubelet log (last 40 lines) ---\n" + "\n".join(f.read().splitlines()[-40:]),
                      file=sys.stderr)
    return failures


def leftovers(workdir: str, netns: rt.Netns, cgroup_parent: str) -> list[str]:
    out = []
    for pid, cmd in rt.processes_mentioning(workdir):
        out.append(f"process {pid}: {cmd}")
    out += [f"mount {m}" for m in rt.mounts_under(workdir)]
    if netns.exists():
        out.append(f"netns {netns.name}")
    for hier in sorted(os.listdir("/sys/fs/cgroup"))[:32]:
        if os.path.isdir(os.path.join("/sys/fs/cgroup", hier, cgroup_parent.lstrip("/"))):
            out.append(f"cgroup {hier}{cgroup_parent}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-bin", required=True)
    ap.add_argument("--knode-cni", required=True)
    ap.add_argument("--knode")
    ap.add_argument("--timeout", type=float, default=240)
    a, gtest_args = ap.parse_known_args()

    missing = dk.missing_tools()
    if not missing:
        try:
            images = rt.images(build=True)
        except Exception as e:  # noqa: BLE001  (a build that cannot run here is a skip)
            missing.append(f"the test images ({e})")
    if missing:
        print(f"SKIP: missing {', '.join(missing)}", file=sys.stderr)
        return SKIP

    def on_alarm(signum, frame):
        raise Timeout(f"the test did not finish within {a.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(a.timeout))
    rt.remove_stale()
    workdir = rt.make_workdir("docker")
    cgroup_parent = f"/{rt.PREFIX}{os.getpid()}-docker"
    rt._update_state(workdir, cgroup_parent=cgroup_parent)
    node = rt.Netns("node-docker", workdir=workdir)
    d: dk.Dockerd | None = None
    failures: list[str] = []
    rc = 1
    try:
        node.create()
        rt.Registry(node.name, workdir).start()
        cni_bin = os.path.join(workdir, "cni-bin")
        os.makedirs(cni_bin)
        os.symlink(os.path.realpath(a.knode_cni), os.path.join(cni_bin, "knode-cni"))
        conf_dir = os.path.join(workdir, "net.d")
        rt.kn.run([a.knode_cni, "--write-conflist", "--pod-cidr", POD_CIDR, "--data-dir",
                   os.path.join(workdir, "ipam"), "--out", os.path.join(conf_dir, "10-knode.conflist")])
        d = dk.Dockerd(workdir, node.name).start()
        print(f"dockerd up in {d.start_seconds:.2f} s ({d.endpoint})")
        logs = os.path.join(workdir, "pod-logs")
        os.makedirs(logs)
        env = dict(os.environ,
                   KNODE_DOCKER_ENDPOINT=d.endpoint,
                   KNODE_DOCKER_CNI_CONF=conf_dir,
                   KNODE_DOCKER_CNI_BIN=cni_bin,
                   KNODE_DOCKER_IPAM_DIR=os.path.join(workdir, "ipam"),
                   KNODE_DOCKER_POD_CIDR=POD_CIDR,
                   KNODE_DOCKER_PAUSE=images["images"]["pause"]["ref"],
                   KNODE_DOCKER_KUBIA=images["images"]["kubia"]["ref"],
                   KNODE_DOCKER_BUSYBOX=images["images"]["busybox"]["ref"],
                   KNODE_DOCKER_KUBIA_DIGEST=images["images"]["kubia"]["manifest_digest"],
                   KNODE_DOCKER_LOG_DIR=logs,
                   KNODE_DOCKER_CGROUP_PARENT=cgroup_parent)
        t = subprocess.run(rt.nsenter(node.name) + [a.test_bin, "--gtest_color=no"] + gtest_args, env=env,
                           timeout=max(a.timeout - 30, 30))
        if t.returncode != 0:
            failures.append(f"{os.path.basename(a.test_bin)} failed (rc {t.returncode})")
        if a.knode:
            failures += check_cgroup_mismatch(a.knode, workdir, node.name, d)
            failures += check_kubelet_runs_a_pod(a.knode, workdir, node.name, d, images, cgroup_parent)
        status, items = d.api("GET", "/containers/json?all=1")
        names = [c["Names"][0] for c in items] if status == 200 else [f"list: {status}"]
        if names:
            failures.append(f"containers left in dockerd after the tests: {names}")
        rc = 0
    except Timeout as e:
        failures.append(str(e))
    except Exception as e:  # noqa: BLE001
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if failures and d is not None:
            print(f"--- dockerd log (last 40 lines) ---\n{d.log_tail(40)}\n---", file=sys.stderr)
        problems = dk.teardown(workdir, remove=False)
        node.delete()
        problems += leftovers(workdir, node, cgroup_parent)
        if problems:
            failures.append(f"left behind: {problems}")
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures or rc else 0


if __name__ == "__main__":
    sys.exit(main())
