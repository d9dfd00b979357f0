"""The whole agent end to end (issue 2): `knode agent --manifest-dir examples/manifests`
in a private network namespace answers its health and metrics endpoints."""

from __future__ import annotations

import errno
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

    def test_13_unauthenticated_endpoints_listen_on_loopback(self):
        """The endpoints without authentication (metrics, the read-only port, the kubelet's
        /healthz) listen on loopback by default: the kernel's socket table says so, and a
        connection to the node's other address is refused. The proxy's /healthz listens on
        every address, as upstream's, for load balancers' probes."""
        # An address besides loopback in the agent's namespace: a veth pair, both ends here.
        kn.run(["ip", "-n", self.netns, "link", "add", "ka0", "type", "veth", "peer", "name", "ka1"])
        kn.run(["ip", "-n", self.netns, "addr", "add", "10.123.0.1/24", "dev", "ka0"])
        for link in ("ka0", "ka1"):
            kn.run(["ip", "-n", self.netns, "link", "set", link, "up"])
        self.knode.start()
        self.knode.wait_ready(20)

        def listening() -> dict[int, set[str]]:
            out: dict[int, set[str]] = {}
            for line in kn.run(["ip", "netns", "exec", self.netns, "cat", "/proc/net/tcp"]).stdout.splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A":  # TCP_LISTEN
                    continue
                addr, port = fields[1].split(":")
                ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
                out.setdefault(int(port, 16), set()).add(ip)
            return out

        socks = kn.wait_for(lambda: (lambda l: l if 10255 in l else None)(listening()), 10,
                            "the read-only port to listen")
        self.assertEqual(socks.get(10249), {"127.0.0.1"}, f"metrics: {socks}")
        self.assertEqual(socks.get(10255), {"127.0.0.1"}, f"read-only port: {socks}")
        self.assertEqual(socks.get(10248), {"127.0.0.1"}, f"kubelet /healthz: {socks}")
        self.assertEqual(socks.get(10256), {"0.0.0.0"}, f"proxy /healthz: {socks}")
        for port in (10249, 10255, 10248):
            err, _ = kn.connect_error(self.netns, "10.123.0.1", port, timeout=2)
            self.assertEqual(err, errno.ECONNREFUSED, f"port {port} on the node's other address")
        self.assertEqual(kn.http_get(self.netns, "10.123.0.1", 10256, "/healthz").status, 200)
        self.assertEqual(kn.http_get(self.netns, "127.0.0.1", 10255, "/pods").status, 200)
        self.assertEqual(self.knode.stop(), 0)


if __name__ == "__main__":
    unittest.main()
