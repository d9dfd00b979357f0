#!/usr/bin/env python3
"""Cluster tier: TLS bootstrap and client certificate rotation.

A bootstrap token (a kube-system Secret of type bootstrap.kubernetes.io/token) and the
RBAC bindings kubeadm makes (system:bootstrappers may create node CSRs, and theirs are
auto-approved; nodes' renewals too). `knode proxy --bootstrap-kubeconfig B --kubeconfig K
--cert-dir D` in a node namespace gets its client certificate through a CSR the
controller-manager approves and signs, writes K, and programs the cluster's Services.
Restarted with the certificate it has, it does not bootstrap again; told to rotate (at a
fraction of the certificate's life that is a few seconds away), it renews it with a CSR
made as system:node:n1, and reconnects with it after an API server restart.

    bootstrap_test.py [--timeout SECONDS]
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import knode_node_test as base  # noqa: E402
from knode_node_test import cp, kn  # noqa: E402

NODE, ADDR = "n1", "192.168.77.11"
TOKEN_ID, TOKEN_SECRET = "abcdef", "0123456789abcdef"


def cert_of(pem_path: str) -> dict:
    """notBefore/notAfter/serial of the first certificate in a PEM file (openssl)."""
    out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate", "-serial", "-subject", "-in", pem_path],
                         check=True, capture_output=True, text=True).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    parse = lambda s: datetime.datetime.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z").replace(  # noqa: E731
        tzinfo=datetime.timezone.utc).timestamp()
    return {"not_before": parse(fields["notBefore"]), "not_after": parse(fields["notAfter"]),
            "serial": fields["serial"].strip(), "subject": out}


class BootstrapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="knode-boot-")
        cls.c = cp.ControlPlane().start()
        k = cls.c.kubectl
        k("create", "secret", "generic", f"bootstrap-token-{TOKEN_ID}", "-n", "kube-system",
          "--type", "bootstrap.kubernetes.io/token", f"--from-literal=token-id={TOKEN_ID}",
          f"--from-literal=token-secret={TOKEN_SECRET}", "--from-literal=usage-bootstrap-authentication=true",
          "--from-literal=auth-extra-groups=system:bootstrappers:knode")
        k("create", "clusterrolebinding", "knode-bootstrap", "--clusterrole=system:node-bootstrapper",
          "--group=system:bootstrappers")
        k("create", "clusterrolebinding", "knode-autoapprove-bootstrap",
          "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient", "--group=system:bootstrappers")
        k("create", "clusterrolebinding", "knode-autoapprove-renewal",
          "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "--group=system:nodes")
        k("create", "clusterrolebinding", "knode-node-proxier", "--clusterrole=system:node-proxier", "--group=system:nodes")
        cls.ns = cls.c.add_node_netns(NODE, ADDR)
        cls.boot = os.path.join(cls.work, "bootstrap.kubeconfig")
        with open(cls.c.ca_crt) as f:
            ca = f.read()
        import base64
        with open(cls.boot, "w") as f:
            f.write(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "boot",
                "clusters": [{"name": "c", "cluster": {"server": cls.c.server,
                                                        "certificate-authority-data": base64.b64encode(ca.encode()).decode()}}],
                "users": [{"name": "b", "user": {"token": f"{TOKEN_ID}.{TOKEN_SECRET}"}}],
                "contexts": [{"name": "boot", "context": {"cluster": "c", "user": "b"}}]}))
        cls.kubeconfig = os.path.join(cls.work, "kubelet.kubeconfig")
        cls.cert_dir = os.path.join(cls.work, "pki")
        cls.knode = None

    @classmethod
    def tearDownClass(cls):
        if cls.knode:
            cls.knode.stop()
        problems = cls.c.stop()
        log_dir = os.environ.get("KNODE_CLUSTER_LOG_DIR")
        if log_dir and os.path.exists(os.path.join(cls.work, "knode.log")):
            d = os.path.join(log_dir, "bootstrap")
            os.makedirs(d, exist_ok=True)
            shutil.copy(os.path.join(cls.work, "knode.log"), d)
        shutil.rmtree(cls.work, ignore_errors=True)
        if problems:
            print(f"teardown left: {problems}", file=sys.stderr)

    def start_knode(self, *extra):
        cls = type(self)
        cls.knode = base.Knode(cls.ns, [
            "--kubeconfig", cls.kubeconfig, "--bootstrap-kubeconfig", cls.boot, "--cert-dir", cls.cert_dir,
            "--hostname-override", NODE, "--cluster-cidr", base.CLUSTER_CIDR, "-v=2", *extra],
            os.path.join(cls.work, "knode.log"), component="proxy").start()

    def wait(self, pred, timeout, what, interval=0.25):
        return base.wait_alive({NODE: self.knode}, pred, timeout, what, interval)

    def csrs(self):
        items = json.loads(self.c.kubectl("get", "csr", "-o", "json").stdout)["items"]
        return [c for c in items if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]

    def rules_for(self, svc: str) -> bool:
        return svc in kn.run(["ip", "netns", "exec", self.ns, "iptables-legacy-save"]).stdout

    def test_1_bootstrap_then_rotation(self):
        pem = os.path.join(self.cert_dir, "kubelet-client-current.pem")
        self.start_knode()
        self.wait(lambda: os.path.exists(self.kubeconfig) and os.path.exists(pem), 60, "the bootstrapped kubeconfig")
        first = cert_of(pem)
        self.assertIn("system:node:n1", first["subject"])
        self.assertIn("system:nodes", first["subject"])
        [csr] = self.csrs()
        self.assertEqual(csr["spec"]["username"], f"system:bootstrap:{TOKEN_ID}")
        self.assertTrue(any(c["type"] == "Approved" for c in csr["status"]["conditions"]))
        self.wait(lambda: self.rules_for("default/kubernetes:https"), 30, "the kubernetes Service's rules")
        # Restarted with a valid certificate: no new bootstrap.
        self.knode.stop()
        now = time.time()
        f = (now + 8 - first["not_before"]) / (first["not_after"] - first["not_before"])
        self.start_knode("--rotate-certificates-at", f"{f:.9f}")
        self.wait(lambda: "client certificate rotated" in open(self.knode.log, errors="replace").read(), 60,
                  "the rotation")
        second = cert_of(pem)
        self.assertNotEqual(second["serial"], first["serial"])
        self.assertGreater(second["not_before"], first["not_before"])
        users = sorted(c["spec"]["username"] for c in self.csrs())
        self.assertEqual(users, [f"system:bootstrap:{TOKEN_ID}", "system:node:n1"])
        # Reconnected after an API server restart (new connections: the new certificate).
        self.c.stop_apiserver()
        self.c.start_apiserver()
        self.c.kubectl("create", "service", "clusterip", "after-rotation", "--tcp=80:8080")
        self.wait(lambda: self.rules_for("default/after-rotation:"), 60, "rules for a Service made after the rotation")


if __name__ == "__main__":
    sys.exit(base.main_for("BootstrapTest", 200))
