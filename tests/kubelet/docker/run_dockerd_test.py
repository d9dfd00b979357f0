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
   with a matching driver it must get past that check; then the kubelet runs static pods
   on dockerd (see check_kubelet_runs_pods: an init container, Ready
   with an IP, docker:// IDs, HTTP, CRI logs, a crash restarted with its reason, adoption
   by a restarted kubelet, removal with the manifests);
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


# No volumes: this kubelet does not compose its volume manager yet.
WEB_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: init
    image: {busybox}
    command: ["sh", "-c", "echo init done"]
  containers:
  - name: kubia
    image: {kubia}
    ports:
    - containerPort: 8080
  - name: box
    image: {busybox}
    command: ["sh", "-c", "echo started; exec sleep 3600"]
"""

CRASH_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: crash
  namespace: default
spec:
  containers:
  - name: crasher
    image: {busybox}
    command: ["sh", "-c", "echo dying; exit 1"]
"""


def check_kubelet_runs_pods(knode: str, workdir: str, netns: str, d: dk.Dockerd, images: dict,
                            cgroup_root: str) -> list[str]:
    """`knode kubelet --container-runtime=docker` on this dockerd: a static pod with an init
    container gets Ready with an IP from knode-cni,
    docker:// IDs, answers HTTP and logs in the CRI format; a crashing container is
    restarted with its exit reason; a restarted kubelet adopts the running pod without
    restarting a container; removing the manifests removes every container."""
    failures = []
    manifests = os.path.join(workdir, "pods")
    os.makedirs(manifests, exist_ok=True)
    refs = {"kubia": images["images"]["kubia"]["ref"], "busybox": images["images"]["busybox"]["ref"]}
    with open(os.path.join(manifests, "web.yaml"), "w") as f:
        f.write(WEB_MANIFEST.format(**refs))
    with open(os.path.join(manifests, "crash.yaml"), "w") as f:
        f.write(CRASH_MANIFEST.format(**refs))
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

    def pods() -> dict:
        if proc.poll() is not None:
            raise AssertionError(f"knode kubelet exited (rc {proc.returncode})")
        r = rt.http_get(netns, "127.0.0.1", 10255, "/pods", timeout=2)
        return {p["metadata"]["name"].split("-")[0]: p for p in json.loads(r.body).get("items", [])}

    def ready_web():
        p = pods().get("web")
        if not p:
            return None
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        return p if conds.get("Ready") == "True" and p["status"].get("podIP") else None

    def stop_kubelet():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def statuses(p, key="containerStatuses"):
        return {c["name"]: c for c in p["status"].get(key, [])}

    try:
        p = rt.kn.wait_for(ready_web, 90, "the static pod web to be Ready with an IP", 0.2)
        ip = p["status"]["podIP"]
        print(f"kubelet on dockerd: pod web Ready at {ip}")
        if not ip.startswith("10.88.0."):
            failures.append(f"pod IP {ip} is not from knode-cni's 10.88.0.0/24")
        cs = statuses(p)
        ids = {n: c.get("containerID", "") for n, c in cs.items()}
        if sorted(ids) != ["box", "kubia"] or not all(i.startswith("docker://") for i in ids.values()):
            failures.append(f"containerIDs {ids}: want kubia and box as docker://<id>")
        init = statuses(p, "initContainerStatuses").get("init", {}).get("state", {}).get("terminated", {})
        if init.get("reason") != "Completed" or init.get("exitCode") != 0:
            failures.append(f"init container: {init}, want terminated Completed with exit code 0")
        answer = rt.kn.wait_for(lambda: rt.http_get(netns, ip, 8080, timeout=2), 20, "kubia to answer", 0.2)
        name, uid = p["metadata"]["name"], p["metadata"]["uid"]  # a static pod's name ends in the node's
        if answer.body != f"You've hit {name}\n":
            failures.append(f"kubia answered {answer.body!r}, want the pod's hostname {name}")
        pod_logs = os.path.join(log_root, "var/log/pods", f"default_{name}_{uid}")

        def logged(container: str, text: str):
            try:
                with open(os.path.join(pod_logs, container, "0.log")) as f:
                    return text in f.read()
            except FileNotFoundError:
                return False

        rt.kn.wait_for(lambda: logged("kubia", " stdout F Received request from "), 20, "kubia's request line", 0.1)
        rt.kn.wait_for(lambda: logged("init", " stdout F init done\n"), 20, "the init container's log", 0.1)
        rt.kn.wait_for(lambda: logged("box", " stdout F started\n"), 20, "box's log", 0.1)

        def crashed_and_restarted():
            c = statuses(pods().get("crash", {"status": {}})).get("crasher")
            last = (c or {}).get("lastState", {}).get("terminated", {})
            return c if c and c.get("restartCount", 0) >= 1 and last.get("exitCode") == 1 else None

        c = rt.kn.wait_for(crashed_and_restarted, 60, "the crashing container to be restarted", 0.2)
        last = c["lastState"]["terminated"]
        if last.get("reason") != "Error":
            failures.append(f"crasher's last state {last}: want reason Error")
        print(f"kubelet on dockerd: crasher restarted {c['restartCount']} time(s), last exit "
              f"{last.get('exitCode')} ({last.get('reason')})")

        # A restarted kubelet adopts the pod: same sandbox and IP, no container restarted.
        stop_kubelet()
        proc = rt._spawn(cmd, log_path)
        p2 = rt.kn.wait_for(ready_web, 60, "the pod web to be Ready after the kubelet restarted", 0.2)
        ids2 = {n: c.get("containerID", "") for n, c in statuses(p2).items()}
        if ids2 != ids or p2["status"]["podIP"] != ip:
            failures.append(f"after a kubelet restart: IDs {ids2} at {p2['status']['podIP']}, "
                            f"want {ids} at {ip} (adopted, not restarted)")
        if any(c.get("restartCount", 0) != 0 for c in statuses(p2).values()):
            failures.append(f"after a kubelet restart: restart counts {statuses(p2)}")
        if rt.http_get(netns, ip, 8080, timeout=2).body != f"You've hit {name}\n":
            failures.append("kubia does not answer after the kubelet restarted")
        print("kubelet on dockerd: a restarted kubelet adopted pod web")

        # The manifests go: so do the pods' containers, pause included, within the grace period.
        t0 = time.monotonic()
        for m in ("web.yaml", "crash.yaml"):
            os.unlink(os.path.join(manifests, m))

        def gone():
            status, items = d.api("GET", "/containers/json?all=1")
            return status == 200 and not items

        rt.kn.wait_for(gone, 60, "the pods' containers to be removed from dockerd", 0.2)
        print(f"kubelet on dockerd: pods removed with their manifests in {time.monotonic() - t0:.1f} s")
    except (AssertionError, OSError, ValueError, KeyError) as e:
        failures.append(f"knode kubelet --container-runtime=docker: {e}")
    finally:
        stop_kubelet()
        if failures:
            with open(log_path, errors="replace") as f:
                print(f"--- knode kubelet log (last 60 lines) ---\n" + "\n".join(f.read().splitlines()[-60:]),
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
            failures += check_kubelet_runs_pods(a.knode, workdir, node.name, d, images, cgroup_parent)
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
