"""The whole agent end to end (issue 2): `knode agent --manifest-dir examples/manifests`
in a private network namespace answers its health and metrics endpoints."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unittest

import knode_netns as kn
from knode_netns import knode_binary


def examples_dir() -> str:
    d = os.environ.get("KNODE_EXAMPLES_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "..", "..", "examples", "manifests")
    if not os.path.isdir(d):
        raise unittest.SkipTest(f"examples/manifests not found at {d}")
    return os.path.abspath(d)


class AgentTest(unittest.TestCase):

    def setUp(self):
        self.binary = knode_binary()
        self.manifest_dir = examples_dir()
        self.netns = f"{kn.PREFIX}{os.getpid()}-agent"
        kn.run(["ip", "netns", "add", self.netns])
        self.addCleanup(kn.run, ["ip", "netns", "del", self.netns], False)
        kn.run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        self.tmp = tempfile.mkdtemp(prefix=f"knode-agent-{os.getpid()}-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        log_dir = os.environ.get("KNODE_NETNS_LOG_DIR") or self.tmp
        os.makedirs(log_dir, exist_ok=True)
        log_path = os.path.join(log_dir, "test_12_agent.knode.log")
        if os.path.exists(log_path):
            os.unlink(log_path)
        # No container runtime listens on this socket.
        self.sock = os.path.join(self.tmp, "no-runtime.sock")
        self.knode = kn.Knode(self.binary, self.netns, self.manifest_dir, log_path, command="agent",
                              base_args=["--container-runtime-endpoint", "unix://" + self.sock,
                                         "--root-dir", self.tmp + "/root", "--log-root", self.tmp + "/logs"])
        self.addCleanup(self._dump_log_on_failure)
        self.addCleanup(self.knode.kill)

    def _dump_log_on_failure(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            print(f"\n--- knode log ({self.knode.log_path}), last 60 lines ---\n{self.knode.tail(60)}\n---")

    def get(self, port, path):
        return kn.http_get(self.netns, "127.0.0.1", port, path, timeout=3)

    def test_12_agent_health_and_metrics(self):
        """kubelet /healthz on :10248, proxy /healthz and /livez on :10256, /metrics on :10249.
        No container runtime listens here: knode still gets ready and proxies, and the
        kubelet's /healthz names the runtime as down."""
        self.knode.start()
        self.knode.wait_ready(20)

        r = kn.wait_for(lambda: (lambda r: r if r.status != 200 else None)(self.get(10248, "/healthz")), 10,
                        "kubelet /healthz to report the missing runtime")
        self.assertEqual(r.status, 503, r.body)
        self.assertIn("container runtime: the container runtime is down", r.body)
        self.assertIn(self.sock, r.body)

        for path in ("/healthz", "/livez"):
            r = self.get(10256, path)
            self.assertEqual(r.status, 200, f"proxy {path}: {r.body}")
            doc = json.loads(r.body)
            for key in ("lastUpdated", "currentTime"):
                self.assertIn(key, doc, f"proxy {path} JSON: {doc}")
                self.assertRegex(doc[key], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", f"{path} {key} is RFC 3339")

        r = self.get(10249, "/metrics")
        self.assertEqual(r.status, 200)
        text = r.body
        for metric in ("process_resident_memory_bytes", "kubeproxy_sync_proxy_rules_last_timestamp_seconds"):
            m = re.search(rf"^{metric}(?:{{[^}}]*}})? (\S+)$", text, re.M)
            self.assertIsNotNone(m, f"/metrics lacks {metric}")
            self.assertGreater(float(m.group(1)), 0, f"{metric} should be positive")
        self.assertIn("# TYPE process_resident_memory_bytes gauge", text)

        # The example services are programmed in the agent's netns.
        nat = kn.iptables_save(self.netns, "nat")
        self.assertIn("default/kubia:http cluster IP", nat)
        self.assertEqual(self.knode.stop(), 0, "the agent should exit 0 on SIGTERM")


if __name__ == "__main__":
    unittest.main()
