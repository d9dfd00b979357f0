"""systemd's notify protocol against the real daemon: READY=1 only after the first sync,
STOPPING=1 on SIGTERM, and SIGTERM leaves the programmed rules in place. Runs knode in a
network namespace of its own; needs root."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

KNODE = os.environ.get("KNODE", "knode")
EXAMPLES = os.environ.get("KNODE_EXAMPLES", "examples/manifests")


def have_root_netns():
    if os.geteuid() != 0:
        return "needs root"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True)
    return None if r.returncode == 0 else "ip netns unavailable"


class Notify(unittest.TestCase):
    def setUp(self):
        why = have_root_netns()
        if why:
            self.skipTest(why)
        self.ns = f"knode-notify-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        self.dir = tempfile.mkdtemp(prefix="knode-notify-")
        self.sock_path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.sock.close()
        subprocess.run(["ip", "netns", "del", self.ns])
        subprocess.run(["rm", "-rf", self.dir])

    def receive(self, want, deadline_s=20):
        """Collects datagrams until one contains `want`; returns all seen."""
        seen = []
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            seen.append(msg)
            if want in msg.split("\n"):
                return seen
        self.fail(f"no {want} within {deadline_s}s; got {seen}")

    def nat_rules(self):
        out = subprocess.run(["ip", "netns", "exec", self.ns, "iptables-legacy-save", "-t", "nat"],
                             capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if l.startswith("-A KUBE-")]

    def agent_command(self):
        # No container runtime listens on the endpoint; the kubelet's state stays in the test dir.
        return ["ip", "netns", "exec", self.ns, KNODE, "agent", "--manifest-dir", EXAMPLES,
                "--cluster-cidr", "10.244.0.0/16", "--hostname-override", "node-1",
                "--container-runtime-endpoint", "unix://" + os.path.join(self.dir, "no-runtime.sock"),
                "--root-dir", os.path.join(self.dir, "root"), "--log-root", os.path.join(self.dir, "logs")]

    def test_watchdog_keeps_beating_while_the_runtime_is_down(self):
        """A container runtime that is down shows in /healthz but does not stop the watchdog
        pings: systemd restarting knode would not bring containerd back."""
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path, WATCHDOG_USEC="400000")
        self.proc = subprocess.Popen(self.agent_command(), env=env,
                                     stderr=open(os.path.join(self.dir, "knode.log"), "w"))
        self.receive("READY=1")
        healthz = ""
        end = time.monotonic() + 10
        while time.monotonic() < end and not healthz.startswith("503"):
            r = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-s", "-w", "\\n%{http_code}", "--max-time",
                                "2", "http://127.0.0.1:10248/healthz"], capture_output=True, text=True)
            body, _, code = r.stdout.rpartition("\n")
            healthz = code + " " + body
            time.sleep(0.1)
        self.assertTrue(healthz.startswith("503") and "container runtime is down" in healthz, healthz)
        # The runtime is down now; over the next 2 s (five intervals) pings keep coming.
        pings = 0
        end = time.monotonic() + 2
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                if "WATCHDOG=1" in self.sock.recv(4096).decode().split("\n"):
                    pings += 1
            except socket.timeout:
                break
        self.assertGreaterEqual(pings, 5, "WATCHDOG=1 every 200 ms while the runtime is down")

    def test_ready_after_sync_then_stopping_and_rules_stay(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        self.proc = subprocess.Popen(
            self.agent_command(), env=env, stderr=open(os.path.join(self.dir, "knode.log"), "w"))
        seen = self.receive("READY=1")
        # READY=1 means programmed: the rules are there when it arrives.
        rules = self.nat_rules()
        self.assertTrue(any("KUBE-SVC-" in r for r in rules), rules)
        self.proc.terminate()
        seen += self.receive("STOPPING=1")
        self.assertEqual(self.proc.wait(timeout=20), 0)
        self.assertEqual(self.nat_rules(), rules, "SIGTERM must leave the kernel rules in place")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
