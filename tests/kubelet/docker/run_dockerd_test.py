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
   with a matching driver it must get past that check;
3. tears everything down and fails when anything is left: a process naming the run's
   directory, a mount under it, the namespace, the cgroup parent, a container.

Exits 77 (CTest: skipped) with the reason when not root or dockerd, the registry or the
test images are missing. Fails itself after --timeout seconds, and still tears down.
"""

from __future__ import annotations

import argparse
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
            'cgroup driver: "cgroupfs"')
    if p.returncode == 0 or want not in p.stderr:
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
