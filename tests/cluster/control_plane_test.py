#!/usr/bin/env python3
"""Cluster-tier test of the harness itself: a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler of scripts/cluster/versions.env) started in
namespaces of the test's own, used as admin and as a node from a node namespace on the
lan, then torn down to nothing.

    control_plane_test.py [--timeout SECONDS] [TEST ...]

Exits 0 (pass), 1 (fail) or 77 (skipped: not root, a tool missing, or the binaries not
built because build-control-plane.sh could not build them; the reason is printed), as
CTest's SKIP_RETURN_CODE expects. Fails itself after --timeout seconds and still tears
down. Component logs land in $KNODE_CLUSTER_LOG_DIR/<test>/ when that is set.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import control_plane as cp  # noqa: E402
import knode_netns as kn  # noqa: E402  (control_plane put tests/support on the path)

SKIP = 77
NODE = "n1"
NODE_ADDR = "192.168.77.11"
ARGS: argparse.Namespace


class TestTimeout(Exception):
    pass


def root_links() -> set[str]:
    """The root namespace's interface names (must be the same before and after)."""
    out = kn.run(["ip", "-o", "link", "show"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


class ControlPlaneTest(unittest.TestCase):
    def log_dir(self, name: str):
        base = os.environ.get("KNODE_CLUSTER_LOG_DIR")
        if not base:
            return None
        d = os.path.join(base, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def wait(self, pred, timeout: float, what: str, interval: float = 0.25):
        return kn.wait_for(pred, timeout, what, interval)

    def test_control_plane(self):
        t_test = time.monotonic()
        version = cp.kube_version()
        links_before = root_links()
        c = cp.ControlPlane(log_dir=self.log_dir("control_plane"))
        workdir, tag = c.workdir, c.tag
        stopped = False
        try:
            c.start()
            print(f"\ncontrol plane {c.cp_netns} at {c.server}, dir {workdir}")
            print("startup: " + ", ".join(f"{k} {v:.2f} s" for k, v in c.timings.items()))

            # The apiserver answers, as admin, through kubectl in the control plane's netns.
            self.assertEqual(c.kubectl("get", "--raw", "/readyz").stdout.strip(), "ok")
            v = json.loads(c.kubectl("version", "-o", "json").stdout)
            self.assertEqual(v["serverVersion"]["gitVersion"], version, v)
            self.assertEqual(v["clientVersion"]["gitVersion"], version, v)
            status, body = c.api("GET", "/version")
            self.assertEqual((status, body["gitVersion"]), (200, version))

            # The system namespaces exist (kube-node-lease and kube-public come a moment
            # after /readyz, from the apiserver's system-namespaces controller).
            want = {"default", "kube-system", "kube-node-lease", "kube-public"}

            def namespaces():
                names = {i["metadata"]["name"] for i in c.kubectl_json("get", "ns")["items"]}
                return names if want <= names else None
            self.wait(namespaces, 30, f"namespaces {sorted(want)}")

            # The `kubernetes` Service's endpoint is the advertised lan address.
            def endpoint():
                s = c.kubectl_json("get", "endpointslice", "-n", "default", "kubernetes")
                return [(a, p["port"]) for e in s.get("endpoints") or [] for a in e["addresses"]
                        for p in s.get("ports") or []]
            self.assertEqual(self.wait(endpoint, 20, "the kubernetes EndpointSlice"), [(c.cp_addr, 6443)])
            svc = c.kubectl_json("get", "svc", "-n", "default", "kubernetes")
            self.assertEqual(svc["spec"]["clusterIP"], cp.SERVICE_IP)

            # A node namespace on the lan reaches the apiserver with a node's certificate.
            node_ns = c.add_node_netns(NODE, NODE_ADDR)
            kc = c.node_kubeconfig(NODE)
            who = json.loads(c.kubectl("auth", "whoami", "-o", "json", kubeconfig=kc, netns=node_ns).stdout)
            self.assertEqual(who["status"]["userInfo"]["username"], f"system:node:{NODE}", who)
            self.assertIn("system:nodes", who["status"]["userInfo"]["groups"], who)
            # (A node lists only its own Node: AuthorizeNodeWithSelectors, GA in 1.37.)
            got = c.kubectl("get", "nodes", "--field-selector", f"metadata.name={NODE}", kubeconfig=kc,
                            netns=node_ns)
            self.assertIn("No resources found", got.stderr + got.stdout)
            # ... and is refused what the Node authorizer does not grant it.
            for what in (("get", "secrets", "-n", "kube-system"), ("get", "nodes")):
                denied = c.kubectl(*what, kubeconfig=kc, netns=node_ns, check=False)
                self.assertNotEqual(denied.returncode, 0, what)
                self.assertIn("forbidden", denied.stderr.lower(), what)

            # A Deployment: the controllers make its pods, the scheduler finds no node.
            c.kubectl("create", "deployment", "web", "--image=registry.k8s.io/pause:3.10.2", "--replicas=2")

            def unschedulable():
                pods = c.kubectl_json("get", "pods", "-n", "default", "-l", "app=web")["items"]
                conds = [next((x for x in p["status"].get("conditions", []) if x["type"] == "PodScheduled"), None)
                         for p in pods]
                if len(pods) == 2 and all(x and x["status"] == "False" and x["reason"] == "Unschedulable"
                                          for x in conds):
                    return pods, conds
                return None
            t0 = time.monotonic()
            pods, conds = self.wait(unschedulable, 60, "2 pods of deployment web, PodScheduled=False Unschedulable")
            print(f"deployment -> 2 unschedulable pods: {time.monotonic() - t0:.2f} s; scheduler says: "
                  f"{conds[0].get('message')!r}")
            for p in pods:
                self.assertEqual(p["status"]["phase"], "Pending")
                self.assertFalse(p["spec"].get("nodeName"))

            def failed_scheduling():
                evs = c.kubectl_json("get", "events", "-n", "default",
                                     "--field-selector", "reason=FailedScheduling")["items"]
                return [e for e in evs if e["involvedObject"]["name"] in {p["metadata"]["name"] for p in pods}]
            self.wait(failed_scheduling, 20, "FailedScheduling events of the web pods")

            # The node registers itself (NodeRestriction lets it create its own Node, with
            # the not-ready taint a kubelet registers with); the controller-manager gives it
            # a pod CIDR out of --cluster-cidr.
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
                    "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}
            c.kubectl("create", "-f", "-", kubeconfig=kc, netns=node_ns, input=json.dumps(node))
            other = dict(node, metadata={"name": "someone-else"})
            refused = c.kubectl("create", "-f", "-", kubeconfig=kc, netns=node_ns, input=json.dumps(other),
                                check=False)
            self.assertNotEqual(refused.returncode, 0, "a node created another node's object")

            def pod_cidr():
                return c.kubectl_json("get", "node", NODE).get("spec", {}).get("podCIDR")
            cidr = self.wait(pod_cidr, 30, f"a podCIDR on node {NODE}")
            self.assertTrue(ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(cp.CLUSTER_CIDR)), cidr)

            rss = c.rss_mib()
            print("RSS: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items()))
            self.assertEqual(set(rss), set(cp.COMPONENTS), "a component is not running")

            # Nothing of ours in the root namespace, while it all runs.
            added = root_links() - links_before
            self.assertFalse({n for n in added if n in ("br0", "eth0") or n.startswith("p")},
                             f"links appeared in the root netns: {added}")

            t0 = time.monotonic()
            problems = c.stop()
            stopped = True
            print(f"teardown: {time.monotonic() - t0:.2f} s")
            self.assertEqual(problems, [])
            self.assertEqual(cp.leftovers(workdir, tag), [])
            print(f"test total: {time.monotonic() - t_test:.1f} s")
        except BaseException:
            for name in cp.COMPONENTS:
                if name in c.procs:
                    print(f"--- {name} log (tail) ---\n{c.log_tail(name, 15)}")
            raise
        finally:
            if not stopped:
                c.stop()


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=int, default=150)
    ap.add_argument("tests", nargs="*", help="test methods (default: all), e.g. test_control_plane")
    ARGS = ap.parse_args()
    missing = cp.missing_tools()
    if missing:
        print(f"SKIP: missing {'; '.join(missing)}")
        return SKIP
    bins = cp.missing_binaries()
    if bins:
        print(f"SKIP: not built in {cp.bin_dir()}: {', '.join(bins)} "
              "(scripts/cluster/build-control-plane.sh could not build them; run it to see why)")
        return SKIP
    cp.remove_stale()

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its {ARGS.timeout}s budget")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(TestTimeout("terminated")))
    signal.alarm(ARGS.timeout)
    if ARGS.tests:
        suite = unittest.TestSuite(ControlPlaneTest(t) for t in ARGS.tests)
    else:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(ControlPlaneTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    signal.alarm(0)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
