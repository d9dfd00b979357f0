#!/usr/bin/env python3
"""Cluster tier: two knode nodes against one control plane.

n1 (192.168.77.11) and n2 (192.168.77.12) are namespaces on the control plane's lan, each
with its containerd and test registry and `knode agent --kubeconfig ... --pod-routes=host-gw`:
each gets its pod CIDR from the controller-manager and routes the other's through its
InternalIP. A Deployment spread over both nodes backs a Service; a client pod on n1
reaches, through the ClusterIP, pods on n1 and on n2.

    two_nodes_test.py [--timeout SECONDS]

Exits 0, 1 or 77 (skipped), as CTest expects.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import knode_node_test as base  # noqa: E402  (Knode, paths, the harness imports)
from knode_node_test import cp, kn, rt  # noqa: E402

NODES = {"n1": "192.168.77.11", "n2": "192.168.77.12"}

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: BUSYBOX
        command: [sh, -c, 'mkdir -p /www && echo "You have hit $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www']
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: n1}
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: BUSYBOX, command: [sleep, "3600"]}
"""


class TwoNodesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="knode-2nodes-")
        cls.c = cp.ControlPlane().start()
        cls.c.kubectl("create", "clusterrolebinding", "knode-node-proxier", "--clusterrole=system:node-proxier",
                      "--group=system:nodes")
        cls.nodes = {}
        for name, addr in NODES.items():
            ns = cls.c.add_node_netns(name, addr)
            kn.run(["ip", "-n", ns, "route", "add", "default", "via", "192.168.77.1"])
            d = os.path.join(cls.work, name)
            net_d = os.path.join(d, "net.d")
            os.makedirs(net_d)
            rtdir = rt.make_workdir(f"2n{name}")
            reg = rt.Registry(ns, rtdir).start()
            cd = rt.Containerd(rtdir, ns, flavor="v2", cni_bin_dirs=(base.cni_bin_dir(),),
                               cni_conf_dir=net_d).start(network_ready=False)
            k = base.Knode(ns, [
                "--kubeconfig", cls.c.node_kubeconfig(name), "--hostname-override", name, "--node-ip", addr,
                "--container-runtime-endpoint", cd.endpoint, "--cgroup-root", cd.cgroup_parent,
                "--root-dir", os.path.join(d, "kubelet"), "--log-root", os.path.join(d, "logs"),
                "--cni-conf-dir", net_d, "--cni-data-dir", os.path.join(d, "cni-networks"),  # one store per node
                "--proxy-mode", "iptables", "--cluster-cidr", base.CLUSTER_CIDR,
                "--pod-routes", "host-gw", "-v=2"], os.path.join(d, "knode.log")).start()
            cls.nodes[name] = {"ns": ns, "rtdir": rtdir, "reg": reg, "cd": cd, "knode": k}

    @classmethod
    def tearDownClass(cls):
        problems = []
        log_dir = os.environ.get("KNODE_CLUSTER_LOG_DIR")
        for name, n in cls.nodes.items():
            try:
                n["knode"].stop()
            except AssertionError as e:
                problems.append(str(e))
            if log_dir:
                d = os.path.join(log_dir, "two_nodes")
                os.makedirs(d, exist_ok=True)
                shutil.copy(n["knode"].log, os.path.join(d, f"knode-{name}.log"))
            problems += rt.teardown(n["rtdir"], remove=True)
        problems += [f"mounted: {m}" for m in rt.unmount_all(cls.work)]
        problems += cls.c.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        if problems:
            print(f"teardown left: {problems}", file=sys.stderr)

    def wait(self, pred, timeout, what, interval=0.5):
        return base.wait_alive({name: n["knode"] for name, n in self.nodes.items()}, pred, timeout, what, interval)

    def get(self, *args):
        r = self.c.kubectl(*args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def test_a_pod_on_one_node_reaches_pods_on_both_through_a_service(self):
        def ready_nodes():
            nodes = self.get("get", "nodes") or {"items": []}
            return {n["metadata"]["name"] for n in nodes["items"]
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
        self.wait(lambda: ready_nodes() == set(NODES), 60, "n1 and n2 Ready")
        cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in self.get("get", "nodes")["items"]}
        self.assertNotEqual(cidrs["n1"], cidrs["n2"])
        # Each node routes the other's pod CIDR through its InternalIP.
        for me, other in (("n1", "n2"), ("n2", "n1")):
            want = f"{cidrs[other]} via {NODES[other]}"
            self.wait(lambda: want in kn.run(["ip", "-n", self.nodes[me]["ns"], "route"]).stdout, 20,
                      f"{me}'s route {want}")
        self.c.kubectl("apply", "-f", "-", input=WEB.replace("BUSYBOX", rt.image_ref("busybox")))
        def running(selector):
            pods = (self.get("get", "pods", "-l", selector) or {"items": []})["items"]
            return [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
        self.wait(lambda: len(running("app=web")) == 4, 120, "4 web pods Running")
        where = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in running("app=web")}
        self.assertEqual(set(where.values()), {"n1", "n2"}, where)
        self.wait(lambda: self.get("get", "pod", "client")["status"].get("phase") == "Running", 60, "the client Running")
        client = self.get("get", "pod", "client")
        cid = client["status"]["containerStatuses"][0]["containerID"].split("//")[1]
        ip = self.get("get", "svc", "web")["spec"]["clusterIP"]
        answered = set()
        def both_nodes_answered():
            # (busybox's nc: its wget crashes without a resolver configuration)
            r = self.nodes["n1"]["cd"].crictl("exec", cid, "sh", "-c",
                                              f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80",
                                              check=False, timeout=10)
            last = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else ""
            if last.startswith("You have hit "):
                answered.add(where.get(last.split()[-1], "?"))
            return {"n1", "n2"} <= answered
        self.wait(both_nodes_answered, 60, "answers through the ClusterIP from pods on n1 and on n2",
                  interval=0.2)


if __name__ == "__main__":
    sys.exit(base.main_for("TwoNodesTest", 300))
