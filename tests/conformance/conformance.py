#!/usr/bin/env python3
"""Kubernetes' conformance tests (e2e.test of scripts/cluster/versions.env's version) run
against a cluster whose only node agents are knode.

    conformance.py [--nodes N] [--proxy-mode iptables|ipvs|nftables]
                   [--subset services-pods|services|pods|sig-network|sig-node|all]
                   [--focus REGEX] [--skip REGEX] [--parallel K] [--with-serial]
                   [--expect-passed N] [--report-dir DIR] [--timeout SECONDS] [--keep]

    conformance.py --subset all --parallel 3 --with-serial --report-dir D    the whole suite

What it brings up, all in network namespaces of its own (tests/cluster/control_plane.py):
  - the control plane of the cluster tier (etcd, kube-apiserver, controller-manager,
    scheduler);
  - N nodes (default 2, n1 and n2 on the control plane's lan), each with a containerd v2,
    a read-only docker-registry on its 127.0.0.1:5000 serving the conformance images
    (images.py), and `knode agent` (kubelet + proxy, --pod-routes host-gw, the cluster CA
    trusted by its kubelet API);
  - the cluster DNS: CoreDNS as a Deployment in kube-system behind the kube-dns Service
    10.96.0.10, which knode's --cluster-dns names;
  - in the control plane's namespace, a route to each node's pod CIDR through the node, and
    one to the Service CIDR through the first node (as
    a cluster network gives it: the API server's pod and service proxy reach pods);
then e2e.test, in the control plane's namespace, with KUBE_TEST_REPO_LIST pointing every
registry at 127.0.0.1:5000. The JUnit report lands in --report-dir; the counts (passed,
failed, skipped) are printed per group, with each failure's first line.

Exit status: 0 when nothing focused failed (and, with --expect-passed, at least that many
passed); 1 otherwise; 77 (skipped) when not root or the binaries/images are missing.
Every wait is bounded; --timeout (default 3 h) fails the run and still tears down.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
sys.path.insert(0, os.path.join(REPO, "tests", "runtime"))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import control_plane as cp  # noqa: E402
import images  # noqa: E402
import knode_netns as kn  # noqa: E402
import knode_runtime as rt  # noqa: E402
from knode_node_test import Knode, cni_bin_dir, knode_binary, wait_alive  # noqa: E402

SKIP = 77
NODE_ADDRS = {"n1": "192.168.77.11", "n2": "192.168.77.12", "n3": "192.168.77.13"}
DNS_IP = "10.96.0.10"
GW = "192.168.77.1"

# The focused subset CI runs (issue 16): the conformance tests of two groups.
SUBSETS = {
    "services-pods": r"\[sig-network\] Services .*\[Conformance\]|\[sig-node\] Pods .*\[Conformance\]",
    "services": r"\[sig-network\] Services .*\[Conformance\]",
    "pods": r"\[sig-node\] Pods .*\[Conformance\]",
    "sig-network": r"\[sig-network\].*\[Conformance\]",
    "sig-node": r"\[sig-node\].*\[Conformance\]",
    # What the whole-suite run found knode lacked (trust bundles, pod certificates, image
    # volumes, fsGroup, hostPort, in-place resize, a deleted pod's terminal phase).
    "kubelet-sources": r"\[sig-auth\].*(ClusterTrustBundle|PodCertificate).*\[Conformance\]"
                       r"|\[sig-node\] ImageVolume .*\[Conformance\]|\[sig-storage\] Secrets .*fsGroup.*\[Conformance\]"
                       r"|\[sig-apps\] StatefulSet .*evicted.*\[Conformance\]|\[sig-network\] HostPort .*\[Conformance\]"
                       r"|\[sig-node\] Pod InPlace Resize .*\[Conformance\]"
                       r"|\[sig-apps\] Job should allow to use a pod failure policy to ignore failure matching on DisruptionTarget",
    "all": r"\[Conformance\]",
}
# Tests that cannot mean anything on this cluster, skipped in every subset (the README
# says why): none yet.
ALWAYS_SKIP = r"\[Serial\]|\[Disruptive\]|\[Flaky\]"

COREDNS = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 5
        }
        cache 5
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      containers:
      - name: coredns
        image: IMAGE
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {containerPort: 53, name: dns, protocol: UDP}
        - {containerPort: 53, name: dns-tcp, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 10
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap:
          name: coredns
          items: [{key: Corefile, path: Corefile}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
"""


class Cluster:
    """The control plane, the knode nodes and the cluster DNS; stop() undoes all of it."""

    def __init__(self, nodes: int, proxy_mode: str, work: str, log_dir: str):
        self.n, self.proxy_mode, self.work, self.log_dir = nodes, proxy_mode, work, log_dir
        self.c: cp.ControlPlane | None = None
        self.nodes: dict[str, dict] = {}
        self.timings: dict[str, float] = {}

    def start(self, imgs: dict):
        t0 = time.monotonic()
        self.c = cp.ControlPlane().start()
        self.timings["control_plane"] = time.monotonic() - t0
        # knode is each node's kube-proxy too (README, "Joining a cluster")
        self.c.kubectl("create", "clusterrolebinding", "knode-node-proxier", "--clusterrole=system:node-proxier",
                       "--group=system:nodes")
        pause = imgs["images"]["pause:3.10.2"]["ref"]
        for name in list(NODE_ADDRS)[: self.n]:
            addr = NODE_ADDRS[name]
            ns = self.c.add_node_netns(name, addr)
            kn.run(["ip", "-n", ns, "route", "add", "default", "via", GW])
            d = os.path.join(self.work, name)
            net_d = os.path.join(d, "net.d")
            os.makedirs(net_d)
            rtdir = rt.make_workdir(f"cf{name}")
            reg = rt.Registry(ns, rtdir, storage=imgs["registry"]).start()
            cd = rt.Containerd(rtdir, ns, flavor="v2", cni_bin_dirs=(cni_bin_dir(),), cni_conf_dir=net_d,
                               sandbox_image=pause).start(network_ready=False)
            args = [
                "--kubeconfig", self.c.node_kubeconfig(name), "--hostname-override", name, "--node-ip", addr,
                "--container-runtime-endpoint", cd.endpoint, "--cgroup-root", cd.cgroup_parent,
                "--root-dir", os.path.join(d, "kubelet"), "--log-root", os.path.join(d, "logs"),
                # Each node its own IPAM store, as on separate machines: a shared one made a
                # node give an address out again at once (the other node's last reservation is
                # outside its range), and a pod on it unreachable while the other node still
                # held the earlier pod's MAC for it.
                "--cni-conf-dir", net_d, "--cni-data-dir", os.path.join(d, "cni-networks"),
                "--proxy-mode", self.proxy_mode, "--cluster-cidr", cp.CLUSTER_CIDR,
                "--pod-routes", "host-gw", "--cluster-dns", DNS_IP, "--cluster-domain", cp.CLUSTER_DOMAIN,
                "--client-ca-file", self.c.ca_crt, "-v=2",
            ]
            k = Knode(ns, args, os.path.join(d, "knode.log")).start()
            self.nodes[name] = {"ns": ns, "rtdir": rtdir, "reg": reg, "cd": cd, "knode": k}
        t1 = time.monotonic()
        self.wait(lambda: self.ready_nodes() == set(self.nodes), 120, f"nodes {sorted(self.nodes)} Ready")
        self.timings["nodes_ready"] = time.monotonic() - t1
        # The control plane reaches pods as on any cluster network (the API server's pod and
        # service proxy, webhooks): a route to each node's pod CIDR through that node, in
        # the control plane's own namespace.
        for n in self.get("get", "nodes")["items"]:
            cidr = n["spec"].get("podCIDR")
            if cidr:
                kn.run(["ip", "-n", self.c.cp_netns, "route", "replace", cidr, "via", NODE_ADDRS[n["metadata"]["name"]]])
        # ... and Services by their ClusterIP through the first node, whose proxy
        # translates (and masquerades: the control plane is outside --cluster-cidr), as
        # kube-apiserver calls webhooks and aggregated API servers by their Service.
        first = list(self.nodes)[0]
        kn.run(["ip", "-n", self.c.cp_netns, "route", "replace", cp.SERVICE_CIDR, "via", NODE_ADDRS[first]])
        t2 = time.monotonic()
        dns = COREDNS.replace("IMAGE", imgs["images"][f"coredns/coredns:{images.versions()['COREDNS_VERSION']}"]["ref"])
        self.c.kubectl("apply", "-f", "-", input=dns.replace("DNS_IP", DNS_IP))
        self.wait(self.dns_ready, 180, "CoreDNS Ready")
        self.timings["dns_ready"] = time.monotonic() - t2
        return self

    def knodes(self) -> dict:
        return {name: n["knode"] for name, n in self.nodes.items()}

    def wait(self, pred, timeout: float, what: str, interval: float = 1.0):
        return wait_alive(self.knodes(), pred, timeout, what, interval)

    def get(self, *args):
        r = self.c.kubectl(*args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def ready_nodes(self) -> set[str]:
        nodes = self.get("get", "nodes") or {"items": []}
        return {n["metadata"]["name"] for n in nodes["items"]
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}

    def dns_ready(self) -> bool:
        pods = (self.get("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns") or {"items": []})["items"]
        return any(any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
                   for p in pods)

    def stop(self) -> list[str]:
        problems = []
        for name, n in self.nodes.items():
            try:
                n["knode"].stop()
            except AssertionError as e:
                problems.append(f"{name}: {e}")
            if self.log_dir:
                os.makedirs(self.log_dir, exist_ok=True)
                shutil.copy(n["knode"].log, os.path.join(self.log_dir, f"knode-{name}.log"))
                for f in ("containerd.log",):
                    p = os.path.join(n["rtdir"], f)
                    if os.path.exists(p):
                        shutil.copy(p, os.path.join(self.log_dir, f"{name}-{f}"))
            problems += rt.teardown(n["rtdir"], remove=True)
        # what knode mounted for pods (secrets, tokens) if it could not clean up itself
        problems += [f"mounted: {m}" for m in rt.unmount_all(self.work)]
        if self.c is not None:
            if self.log_dir:
                for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                    p = os.path.join(self.c.log_dir, f"{comp}.log")
                    if os.path.exists(p):
                        shutil.copy(p, os.path.join(self.log_dir, f"{comp}.log"))
            problems += self.c.stop()
        return problems


# --------------------------------------------------------------------------- e2e.test


def _e2e_cmd(c: cp.ControlPlane, report_dir: str, extra: list[str]) -> list[str]:
    return cp.nsenter(c.cp_netns) + [
        os.path.join(images.bin_dir(), "e2e.test"),
        f"--kubeconfig={c.admin_kubeconfig}", "--provider=skeleton", f"--report-dir={report_dir}",
        f"--kubectl-path={c.binary('kubectl')}", f"--dns-domain={cp.CLUSTER_DOMAIN}",
        "--ginkgo.no-color",
        # the nodes are ours: their logs are in the report dir, not fetched over ssh
        "--dump-logs-on-failure=false", "--disable-log-dump", *extra,
    ]


def list_tests(focus: str, skip: str) -> list[str]:
    """The names e2e.test would run (a dry run; no cluster needed)."""
    cmd = [os.path.join(images.bin_dir(), "e2e.test"), f"--ginkgo.focus={focus}", f"--ginkgo.skip={skip}",
           "--ginkgo.dry-run", "--ginkgo.v", "--ginkgo.no-color"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    names = []
    for line in out.splitlines():
        if not line.startswith("[sig-") and not line.startswith("[k8s.io]"):
            continue
        # the spec's labels come last, "[sig-node, NodeConformance, Conformance]": not text
        m = re.match(r"^(.*\S)\s+\[[^\[\]]*,[^\[\]]*\]$", line)
        names.append(m.group(1) if m else line.strip())
    return sorted(set(names))


def run_e2e(c: cp.ControlPlane, focus: str, skip: str, report_dir: str, timeout: float,
            parallel: int = 1, names: list[str] | None = None) -> int:
    """e2e.test over the focused tests; with parallel > 1, that many e2e.test processes at
    once, each on its share of the tests (round robin over the dry run's list; every test
    has its own namespace, and [Serial] ones are skipped). Each writes its JUnit report and
    log in report_dir/shard-<i>/ (or report_dir itself). Returns the worst exit status."""
    os.makedirs(report_dir, exist_ok=True)
    repo_list = os.path.join(report_dir, "repo-list.yaml")
    with open(repo_list, "w") as f:
        f.write(images.repo_list())
    env = dict(os.environ, KUBE_TEST_REPO_LIST=repo_list, HOME=report_dir)
    common = [f"--ginkgo.skip={skip}", f"--ginkgo.timeout={int(timeout)}s", "--ginkgo.v"]
    shards: list[tuple[str, list[str]]] = []
    if names is not None and parallel <= 1:
        shards.append((report_dir, [f"--ginkgo.focus={'|'.join(re.escape(n) for n in names)}", *common]))
    elif parallel <= 1:
        shards.append((report_dir, [f"--ginkgo.focus={focus}", *common]))
    else:
        names = names if names is not None else list_tests(focus, skip)
        for i in range(parallel):
            mine = names[i::parallel]
            if not mine:
                continue
            d = os.path.join(report_dir, f"shard-{i}")
            os.makedirs(d, exist_ok=True)
            rx = "|".join(re.escape(n) for n in mine)
            shards.append((d, [f"--ginkgo.focus={rx}", *common]))
        print(f"conformance: {len(names)} tests in {len(shards)} e2e.test processes", flush=True)
    procs = []
    try:
        for d, extra in shards:
            cmd = _e2e_cmd(c, d, extra)
            shown = [a if len(a) < 200 else a[:80] + "...(" + str(len(a)) + " chars)" for a in cmd[-9:]]
            print(f"conformance: {' '.join(shown)}", flush=True)
            with open(os.path.join(d, "e2e.log"), "ab") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True))
        deadline = time.monotonic() + timeout + 120
        rcs = []
        for p in procs:
            try:
                rcs.append(p.wait(max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
                rcs.append(-9)
        return max(rcs, key=abs) if rcs else 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


GROUP_RE = re.compile(r"^(\[sig-[a-z-]+\])\s+(\S+)")


def group_of(name: str) -> tuple[str, str]:
    """('[sig-network]', '[sig-network] Services') for a test's full name: the SIG, and the
    SIG with the first word of its Describe (as the issue counts '[sig-node] Pods': the
    'Pods Extended' tests included)."""
    name = re.sub(r"^\[It\]\s*", "", name)
    m = GROUP_RE.match(name)
    if not m:
        return ("other", "other")
    return (m.group(1), f"{m.group(1)} {m.group(2)}".strip())


def read_junit(report_dir: str, focus: str) -> list[dict]:
    """Every focused testcase of the JUnit report(s): name, state, message."""
    out: dict[str, dict] = {}
    rx = re.compile(focus)
    files = []
    for root, _, fnames in os.walk(report_dir):
        files += [os.path.join(root, f) for f in fnames if f.startswith("junit") and f.endswith(".xml")]
    for path in sorted(files):
        for tc in ET.parse(path).getroot().iter("testcase"):
            name = re.sub(r"^\[It\]\s*", "", tc.get("name", ""))
            if not rx.search(name):
                continue
            if tc.find("failure") is not None or tc.find("error") is not None:
                el = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
                msg = (el.get("message") or el.text or "").strip().splitlines()
                state, why = "failed", (msg[0] if msg else "")
            elif tc.find("skipped") is not None:
                state, why = "skipped", (tc.find("skipped").get("message") or "")
            else:
                state, why = "passed", ""
            case = {"name": name, "state": state, "why": why[:300], "seconds": float(tc.get("time", "0") or 0)}
            # Each e2e.test process reports the others' tests as skipped: what ran counts.
            rank = {"skipped": 0, "passed": 1, "failed": 2}
            if name not in out or rank[state] > rank[out[name]["state"]]:
                out[name] = case
    return sorted(out.values(), key=lambda t: t["name"])


def summarize(cases: list[dict]) -> str:
    groups: dict[str, dict[str, int]] = {}
    for t in cases:
        for g in group_of(t["name"]):
            counts = groups.setdefault(g, {"passed": 0, "failed": 0, "skipped": 0})
            counts[t["state"]] += 1
    lines = [f"{'group':60} {'passed':>7} {'failed':>7} {'skipped':>8}"]
    for g in sorted(groups, key=lambda g: (g.split()[0], g != g.split()[0], g)):
        c = groups[g]
        indent = "" if " " not in g else "  "
        lines.append(f"{indent + g:60} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
    tot = {s: sum(1 for t in cases if t["state"] == s) for s in ("passed", "failed", "skipped")}
    lines.append(f"{'total':60} {tot['passed']:>7} {tot['failed']:>7} {tot['skipped']:>8}")
    fails = [t for t in cases if t["state"] == "failed"]
    if fails:
        lines.append("failed:")
        for t in fails:
            lines.append(f"  {t['name']}\n      {t['why']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2, choices=(1, 2, 3))
    ap.add_argument("--proxy-mode", default="iptables", choices=("iptables", "ipvs", "nftables"))
    ap.add_argument("--subset", default="services-pods", choices=sorted(SUBSETS))
    ap.add_argument("--focus", help="a ginkgo focus regex instead of --subset's")
    ap.add_argument("--skip", default=ALWAYS_SKIP)
    ap.add_argument("--expect-passed", type=int, default=0)
    ap.add_argument("--with-serial", action="store_true",
                    help="then the focused [Serial] tests too, one at a time (skipped otherwise)")
    ap.add_argument("--parallel", type=int, default=1,
                    help="e2e.test processes at once, each on a share of the tests (the long runs)")
    ap.add_argument("--report-dir")
    ap.add_argument("--timeout", type=float, default=3 * 3600)
    ap.add_argument("--keep", action="store_true", help="leave the cluster up after the run (prints how to reach it)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root", file=sys.stderr)
        return SKIP
    missing = cp.missing_binaries() + cp.missing_tools()
    missing += [b for b in ("e2e.test", "agnhost", "nnp", "coredns")
                if not os.path.exists(os.path.join(images.bin_dir(), b))]
    if missing:
        print(f"SKIP: missing {missing} (scripts/cluster/build-control-plane.sh, scripts/conformance/build-e2e.sh)",
              file=sys.stderr)
        return SKIP
    if not os.path.exists(knode_binary()):
        print(f"FAIL: {knode_binary()} not built", file=sys.stderr)
        return 1
    cp.terminate_on_sigterm()
    focus = args.focus or SUBSETS[args.subset]
    report_dir = os.path.abspath(args.report_dir or tempfile.mkdtemp(prefix="knode-conformance-"))
    if os.path.isdir(report_dir):  # an earlier run's reports would be counted again
        for root, _, fnames in os.walk(report_dir):
            for f in fnames:
                if (f.startswith("junit") and f.endswith(".xml")) or f == "e2e.log":
                    os.remove(os.path.join(root, f))
    os.makedirs(report_dir, exist_ok=True)
    imgs = images.ensure()
    work = tempfile.mkdtemp(prefix="knode-conformance-work-")
    cluster = Cluster(args.nodes, args.proxy_mode, work, os.path.join(report_dir, "logs"))
    t0 = time.monotonic()
    rc = 1
    try:
        cluster.start(imgs)
        print(f"conformance: cluster up in {time.monotonic() - t0:.1f} s "
              f"({', '.join(f'{k} {v:.1f} s' for k, v in cluster.timings.items())}); "
              f"{args.nodes} knode node(s), proxy mode {args.proxy_mode}", flush=True)
        t1 = time.monotonic()
        e2e_rc = run_e2e(cluster.c, focus, args.skip, report_dir, args.timeout, args.parallel)
        if args.with_serial:
            # [Serial] tests, one at a time, after the others (they may not share the cluster)
            serial = sorted(set(list_tests(focus, r"\[Disruptive\]|\[Flaky\]")) - set(list_tests(focus, args.skip)))
            if serial:
                print(f"conformance: {len(serial)} [Serial] tests, one at a time", flush=True)
                rc2 = run_e2e(cluster.c, focus, r"\[Disruptive\]|\[Flaky\]", os.path.join(report_dir, "serial"),
                              args.timeout, 1, names=serial)
                e2e_rc = max(e2e_rc, rc2, key=abs)
        cases = read_junit(report_dir, focus)
        print(summarize(cases))
        passed = sum(1 for t in cases if t["state"] == "passed")
        failed = sum(1 for t in cases if t["state"] == "failed")
        print(f"conformance: e2e.test exited {e2e_rc} after {time.monotonic() - t1:.0f} s; "
              f"{passed} passed, {failed} failed; report and logs in {report_dir}")
        if not cases:
            print("conformance: no focused test in the report (see e2e.log)")
        rc = 0 if cases and failed == 0 and passed >= args.expect_passed else 1
        if args.keep:
            print(cluster.c.exports())
            return rc
    finally:
        if not args.keep:
            problems = cluster.stop()
            shutil.rmtree(work, ignore_errors=True)
            if problems:
                print(f"teardown left: {problems}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
