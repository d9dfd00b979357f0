#!/usr/bin/env python3
"""Cluster tier: knode's kubelet API (:10250) as the API server and kubectl use it.

The node of knode_node_test.py (NodeFixture: a real control plane, node n1 with containerd
and knode agent --kubeconfig --client-ca-file <cluster CA>), and in order:

    who may call 10250 from the node's netns: anonymous 401, a certificate from another CA
    401, the node's own certificate 403 (RBAC gives nodes no nodes/pods or nodes/proxy),
    the API server's kubelet client certificate 200, bearer tokens through TokenReview
    (a bound service account 200, an unbound one 403)
    kubectl logs (--tail, --limit-bytes, --timestamps), logs -f that sees a line written
    later, logs --previous of a restarted container
    kubectl exec (output, exit code, stdin, a terminal), kubectl port-forward, kubectl attach
    /stats/summary, /metrics and /healthz through the API server's node proxy

    kubelet_api_test.py [--timeout SECONDS] [TEST ...]

Exits 0, 1, or 77 (skipped), as CTest expects.
"""

from __future__ import annotations

import base64
import json
import os
import select
import ssl
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import control_plane as cp  # noqa: E402
import knode_node_test as kt  # noqa: E402
from knode_node_test import NODE, NODE_ADDR, NodeFixture, kn, rt  # noqa: E402

KUBELET_PORT = 10250

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: logger}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: logger
    image: BUSYBOX
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'for i in 1 2 3 4 5; do echo line $i; done;
              mkdir -p /www && echo hello-pf > /www/index.html && exec httpd -f -p 8080 -h /www']
---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: crasher
    image: BUSYBOX
    imagePullPolicy: IfNotPresent
    volumeMounts: [{name: data, mountPath: /data}]
    command: [sh, -c, 'if [ -f /data/ran ]; then echo second run; exec sleep 3600; fi;
              touch /data/ran; echo first run >&2; exit 3']
"""

# A service account allowed to read the node's metrics, and one that is not.
RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-reader}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: knode-test-node-metrics}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: knode-test-node-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: knode-test-node-metrics}
subjects: [{kind: ServiceAccount, name: metrics-reader, namespace: default}]
"""


class KubeletApiTest(NodeFixture, unittest.TestCase):
    LOG_NAME = "kubelet_api"
    # The serving certificate from the cluster's CA once approved (test 13); the
    # self-signed one serves the tests before it.
    EXTRA_ARGS = ["--rotate-server-certificates"]
    timings: dict[str, float] = {}
    rss_mib = 0.0

    @classmethod
    def tearDownClass(cls):
        if cls.timings:
            print("timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in cls.timings.items()) +
                  (f"; knode RSS {cls.rss_mib:.1f} MiB" if cls.rss_mib else ""), file=sys.stderr)
        super().tearDownClass()

    def timed(self, name: str, fn):
        t0 = time.monotonic()
        out = fn()
        self.timings[name] = time.monotonic() - t0
        return out

    # ---- helpers

    def kubelet(self, path: str, cert: tuple[str, str] | None = None, token: str | None = None,
                method: str = "GET") -> tuple[int, str]:
        """A request to knode's kubelet API from the node's namespace (the serving
        certificate is self-signed: not checked, as the API server does not either)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*cert)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, body = cp.https_request(self.ns, NODE_ADDR, KUBELET_PORT, method, path, ctx, headers=headers)
        return status, body.decode(errors="replace")

    def pki(self, name: str) -> tuple[str, str]:
        return self.c.pki.path(name, "crt"), self.c.pki.path(name, "key")

    def kubectl_out(self, *args, **kw) -> str:
        r = self.kubectl(*args, check=False, **kw)
        self.assertEqual(r.returncode, 0, f"kubectl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def background_kubectl(self, *args) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.c.cp_netns, self.c.binary("kubectl"), "--kubeconfig",
                                 self.c.admin_kubeconfig, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    @staticmethod
    def read_until(p: subprocess.Popen, text: str, timeout: float) -> str:
        """What p printed until `text` appeared (select, bounded by timeout)."""
        out = ""
        deadline = time.monotonic() + timeout
        fd = p.stdout.fileno()
        while text not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; got {out!r} (exit status {p.poll()})")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096).decode(errors="replace")
            if not chunk:
                raise AssertionError(f"ended before {text!r}; got {out!r}")
            out += chunk
        return out

    @staticmethod
    def stop(p: subprocess.Popen):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        p.stdout.close()
        p.stderr.close()

    # ---- the tests, in order

    def test_01_node_ready_with_its_kubelet_port_and_pods_running(self):
        self.wait(lambda: self.cond(self.node() or {}, "Ready").get("status") == "True", 90, "n1 Ready")
        self.assertEqual(self.node()["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], KUBELET_PORT)
        self.kubectl("apply", "-f", "-", input=PODS.replace("BUSYBOX", rt.image_ref("busybox")))
        self.kubectl("apply", "-f", "-", input=RBAC)
        for name in ("logger", "crasher"):
            self.wait(lambda: (self.get("get", "pod", name) or {}).get("status", {}).get("phase") == "Running", 90,
                      f"pod {name} Running")

    def test_02_anonymous_requests_are_unauthorized(self):
        for path in ("/pods", "/healthz", "/containerLogs/default/logger/logger", "/no/such/path"):
            self.assertEqual(self.kubelet(path), (401, "Unauthorized"), path)
        # Plain HTTP on the TLS port gets nothing useful either.
        r = self.in_node("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                         f"http://{NODE_ADDR}:{KUBELET_PORT}/pods")
        self.assertNotEqual(r.stdout.strip(), "200")

    def test_03_a_client_certificate_from_another_ca_is_unauthorized(self):
        other = cp.Pki(os.path.join(self.work, "other-pki"))
        other.make_ca("another-ca")
        cert = other.issue("fake-apiserver", "kube-apiserver-kubelet-client", ("system:masters",), client=True)
        self.assertEqual(self.kubelet("/pods", cert=cert), (401, "Unauthorized"))

    def test_04_the_nodes_own_certificate_is_forbidden_by_rbac(self):
        # SubjectAccessReview for system:node:n1: the Node authorizer allows a node nothing on
        # nodes/pods or nodes/proxy, and RBAC binds system:nodes to no role that does.
        status, body = self.kubelet("/pods", cert=self.pki(f"node-{NODE}"))
        self.assertEqual(status, 403)
        self.assertEqual(body, f"Forbidden (user=system:node:{NODE}, verb=get, resource=nodes, "
                               "subresource(s)=[pods proxy])\n")

    def test_05_the_apiservers_kubelet_client_certificate_is_authorized(self):
        status, body = self.timed("GET /pods from the node netns (TLS handshake, SubjectAccessReview)",
                                  lambda: self.kubelet("/pods", cert=self.pki("apiserver-kubelet-client")))
        self.assertEqual(status, 200, body)
        names = {p["metadata"]["name"] for p in json.loads(body)["items"]}
        self.assertTrue({"logger", "crasher"} <= names, names)
        self.assertEqual(self.kubelet("/healthz", cert=self.pki("apiserver-kubelet-client")), (200, "ok"))

    def test_06_bearer_tokens_are_reviewed_by_the_apiserver(self):
        good = self.kubectl_out("create", "token", "metrics-reader").strip()
        bad = self.kubectl_out("create", "token", "nobody").strip()
        status, body = self.kubelet("/metrics", token=good)
        self.assertEqual(status, 200, body)
        self.assertIn("process_cpu_seconds_total", body)
        # The same reader may not read pods (nodes/pods, nodes/proxy).
        self.assertEqual(self.kubelet("/pods", token=good)[0], 403)
        status, body = self.kubelet("/metrics", token=bad)
        self.assertEqual(status, 403)
        self.assertEqual(body, "Forbidden (user=system:serviceaccount:default:nobody, verb=get, resource=nodes, "
                               "subresource(s)=[metrics])\n")
        self.assertEqual(self.kubelet("/metrics", token=good + "x"), (401, "Unauthorized"))

    def test_07_kubectl_logs(self):
        # What a kubectl call costs without the kubelet, to read the timings against.
        self.timed("kubectl get pod (no kubelet involved)", lambda: self.kubectl_out("get", "pod", "logger"))
        self.assertEqual(self.timed("kubectl logs", lambda: self.kubectl_out("logs", "logger")),
                         "line 1\nline 2\nline 3\nline 4\nline 5\n")
        self.assertEqual(self.kubectl_out("logs", "logger", "--tail=2"), "line 4\nline 5\n")
        self.assertEqual(self.kubectl_out("logs", "logger", "--limit-bytes=9"), "line 1\nli")
        stamped = self.kubectl_out("logs", "logger", "--timestamps", "--tail=1")
        self.assertRegex(stamped, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) line 5\n$")
        self.assertEqual(self.kubectl_out("logs", "logger", "--since=1h", "--tail=1"), "line 5\n")

    def test_08_kubectl_logs_follow_sees_what_comes_later(self):
        p = self.background_kubectl("logs", "-f", "logger")
        try:
            self.read_until(p, "line 5\n", 20)
            # Written by the container's main process, so it lands in its log.
            t0 = time.monotonic()
            self.kubectl_out("exec", "logger", "--", "sh", "-c", "echo written-later > /proc/1/fd/1")
            self.read_until(p, "written-later\n", 20)
            self.timings["kubectl exec writing a line, until logs -f shows it"] = time.monotonic() - t0
            self.assertIsNone(p.poll(), "still following")
        finally:
            self.stop(p)

    def test_09_kubectl_logs_previous_of_a_restarted_container(self):
        def restarted():
            pod = self.get("get", "pod", "crasher") or {}
            cs = (pod.get("status", {}).get("containerStatuses") or [{}])[0]
            return cs.get("restartCount", 0) >= 1 and "running" in cs.get("state", {})
        self.wait(restarted, 60, "crasher restarted and running")
        self.assertEqual(self.kubectl_out("logs", "crasher"), "second run\n")
        # The first run wrote to stderr: both streams are in the log.
        self.assertEqual(self.kubectl_out("logs", "crasher", "--previous"), "first run\n")
        r = self.kubectl("logs", "logger", "--previous", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('previous terminated container "logger" in pod "logger" not found', r.stderr)

    def test_10_kubectl_exec(self):
        self.assertEqual(self.timed("kubectl exec -- echo hi", lambda: self.kubectl_out("exec", "logger", "--", "echo", "hi")),
                         "hi\n")
        r = self.kubectl("exec", "logger", "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertEqual(r.stdout, "out\n")
        self.assertIn("err", r.stderr)
        self.assertEqual(self.kubectl_out("exec", "-i", "logger", "--", "cat", input="through stdin\n"),
                         "through stdin\n")
        # With a terminal (-t needs one on kubectl's side: script(1) gives it a pty).
        kubectl = " ".join(["ip", "netns", "exec", self.c.cp_netns, self.c.binary("kubectl"), "--kubeconfig",
                            self.c.admin_kubeconfig, "exec", "-it", "logger", "--", "tty"])
        r = kn.run(["script", "-qec", kubectl, "/dev/null"], check=False, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"/dev/pts/\d+")
        # kubectl sends its terminal's size (97x31 here) on the resize stream; it reaches
        # the container's terminal (asked until it is set: the size comes beside the start).
        # (busybox's stty fails on a terminal of no size yet.)
        probe = ("i=0; while [ $i -lt 50 ]; do s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] "
                 "&& break; i=$((i+1)); sleep 0.1; done; echo size=$s")
        kubectl = " ".join(["ip", "netns", "exec", self.c.cp_netns, self.c.binary("kubectl"), "--kubeconfig",
                            self.c.admin_kubeconfig, "exec", "-it", "logger", "--", "sh", "-c", f"'{probe}'"])
        r = kn.run(["script", "-qec", f"stty cols 97 rows 31; {kubectl}", "/dev/null"], check=False, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("size=31 97", r.stdout)
        # Volume through the tunnel (API server -> knode -> containerd's streaming server).
        size = 32 << 20
        cpu0 = self.knode_cpu_seconds()
        out = self.timed("kubectl exec -- head -c 32Mi /dev/zero",
                         lambda: self.kubectl_out("exec", "logger", "--", "head", "-c", str(size), "/dev/zero",
                                                  timeout=120))
        self.assertEqual(len(out), size)
        self.timings["knode's CPU for those 32Mi (user+sys)"] = self.knode_cpu_seconds() - cpu0
        if self.RUNTIME == "docker":
            return
        # The same straight to containerd's streaming server (crictl in the node netns),
        # without the API server and knode in between, to read the figure against.
        pod = self.get("get", "pod", "logger")
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("//")[1]
        direct = self.timed("crictl exec -- head -c 32Mi /dev/zero (no API server, no kubelet)",
                            lambda: self.cd.crictl("exec", cid, "head", "-c", str(size), "/dev/zero", timeout=120))
        self.assertEqual(len(direct.stdout), size)

    def test_11_kubectl_port_forward(self):
        p = self.background_kubectl("port-forward", "pod/logger", "18080:8080")
        try:
            self.read_until(p, "Forwarding from 127.0.0.1:18080", 20)
            reply = self.timed("first request through kubectl port-forward",
                               lambda: kn.http_get(self.c.cp_netns, "127.0.0.1", 18080, "/", timeout=10))
            self.assertEqual((reply.status, reply.body), (200, "hello-pf\n"))
        finally:
            self.stop(p)

    def test_11b_kubectl_attach_sees_the_containers_output(self):
        p = self.background_kubectl("attach", "logger", "-c", "logger")
        try:
            # attach shows what comes from now on: write until a line arrives (the attach
            # may still be connecting when the first one is written).
            out = ""
            for i in range(20):
                self.kubectl_out("exec", "logger", "--", "sh", "-c", f"echo attached-{i} > /proc/1/fd/1")
                try:
                    out = self.read_until(p, "attached-", 1)
                    break
                except AssertionError:
                    continue
            self.assertIn("attached-", out)
        finally:
            self.stop(p)

    def test_12_stats_metrics_and_healthz_through_the_apiserver(self):
        summary = json.loads(self.timed("kubectl get --raw .../proxy/stats/summary", lambda: self.kubectl_out(
            "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary")))
        self.assertEqual(summary["node"]["nodeName"], NODE)
        self.assertGreater(summary["node"]["cpu"]["usageCoreNanoSeconds"], 0)
        self.assertGreater(summary["node"]["memory"]["workingSetBytes"], 0)
        pods = {p["podRef"]["name"]: p for p in summary["pods"]}
        logger = pods["logger"]
        self.assertEqual(logger["containers"][0]["name"], "logger")
        self.assertGreater(logger["containers"][0]["memory"]["workingSetBytes"], 0)
        self.assertIn("usageCoreNanoSeconds", logger["cpu"])
        metrics = self.kubectl_out("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics")
        self.assertRegex(metrics, r"(?m)^kubelet_running_pods \d+")
        self.assertIn("process_resident_memory_bytes", metrics)
        self.assertEqual(self.kubectl_out("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/healthz"), "ok")
        rss = cp.rss_kib(self.knode_pid())
        if rss:
            type(self).rss_mib = rss / 1024

    def test_13_serving_certificate_from_the_clusters_ca(self):
        """--rotate-server-certificates: the node asks for a kubernetes.io/kubelet-serving
        certificate for its name and IP; until an administrator approves it the self-signed
        one serves (every test above ran on it); approved, the kubelet API presents the
        certificate the cluster's signer issued, verified here against that CA with the
        node's IP as the name, and the API server's calls still work."""
        def serving_csrs():
            items = json.loads(self.kubectl_out("get", "csr", "-o", "json"))["items"]
            return [c for c in items if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"]

        csrs = self.wait(serving_csrs, 30, "a kubernetes.io/kubelet-serving CSR from the node")
        self.assertEqual(len(csrs), 1, [c["metadata"]["name"] for c in csrs])
        csr = csrs[0]
        self.assertEqual(csr["spec"]["username"], f"system:node:{NODE}")
        self.assertEqual(sorted(csr["spec"]["usages"]), ["digital signature", "server auth"])
        text = subprocess.run(["openssl", "req", "-noout", "-text"], input=base64.b64decode(csr["spec"]["request"]),
                              capture_output=True, check=True).stdout.decode()
        self.assertIn(f"CN = system:node:{NODE}", text)
        self.assertIn(f"IP Address:{NODE_ADDR}", text)
        self.assertIn(f"DNS:{NODE}", text)
        self.assertNotIn("certificate", csr.get("status", {}), "signed before anyone approved it")

        signer = ssl.create_default_context(cafile=self.c.pki.path("cluster-signing", "crt"))

        def verified() -> bool:
            try:
                cp.https_request(self.ns, NODE_ADDR, KUBELET_PORT, "GET", "/healthz", signer)
                return True  # the handshake verified; the answer (401 without credentials) does not matter
            except (ssl.SSLError, OSError):
                return False

        self.assertFalse(verified(), "the kubelet API presented a CA-signed certificate before the CSR was approved")
        self.kubectl_out("certificate", "approve", csr["metadata"]["name"])
        t0 = time.monotonic()
        self.wait(verified, 30, "the kubelet API serving the certificate the cluster's CA signed", interval=0.2)
        self.timings["serving CSR approved -> presented"] = time.monotonic() - t0
        kept = os.path.join(self.work, "kubelet", "pki", "kubelet-server-current.pem")
        self.assertEqual(os.stat(kept).st_mode & 0o777, 0o600)
        self.assertIn("line 5\n", self.kubectl_out("logs", "logger"))

    def test_14_always_allow_and_anonymous_as_an_operator_may_choose(self):
        """kubeadm's KubeletConfiguration has `authorization.mode` and
        `authentication.anonymous.enabled`; knode restarted with --authorization-mode=AlwaysAllow
        --anonymous-auth=true --authentication-token-webhook=false answers a request with no
        credentials, lets the node's own certificate read /pods (RBAC forbids it: test 4, so
        no SubjectAccessReview was asked), and still refuses a certificate from another CA
        (bad credentials are never anonymous)."""
        self.knode.stop()
        self.knode.args = self.knode.args + ["--authorization-mode=AlwaysAllow", "--anonymous-auth=true",
                                             "--authentication-token-webhook=false"]
        self.knode.start()

        def answers():
            try:
                return self.kubelet("/healthz")
            except OSError:
                return None

        self.wait(lambda: answers() == (200, "ok"), 60, "an anonymous /healthz answered")
        status, body = self.kubelet("/pods")
        self.assertEqual(status, 200, body)
        self.assertIn("logger", {p["metadata"]["name"] for p in json.loads(body)["items"]})
        status, _ = self.kubelet("/pods", cert=self.pki(f"node-{NODE}"))
        self.assertEqual(status, 200, "AlwaysAllow lets the node's own certificate read /pods (RBAC forbids it)")
        other = cp.Pki(os.path.join(self.work, "other-pki-14"))
        other.make_ca("another-ca")
        cert = other.issue("fake", "someone", (), client=True)
        self.assertEqual(self.kubelet("/pods", cert=cert), (401, "Unauthorized"))

    def knode_cpu_seconds(self) -> float:
        with open(f"/proc/{self.knode_pid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def knode_pid(self) -> int:
        """knode's pid (the Popen is `ip netns exec`, which execs knode: the same pid)."""
        return self.knode.proc.pid


if __name__ == "__main__":
    sys.exit(kt.main_for("KubeletApiTest", 300))
