"""The knode command line as an operator meets it: exit codes, one-line errors, help."""
import os
import subprocess
import sys
import unittest

KNODE = os.environ.get("KNODE", "knode")


def knode(*args):
    return subprocess.run([KNODE, *args], capture_output=True, text=True, timeout=30)


class CommandLine(unittest.TestCase):
    def test_version(self):
        r = knode("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^knode \d+\.\d+\.\d+\n$")

    def test_unknown_flag_exits_2_with_one_line_reason_and_usage(self):
        r = knode("proxy", "--manifest-dir=/tmp", "--bogus=1")
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.splitlines()
        self.assertEqual(lines[0], "knode proxy: unknown flag: --bogus")
        self.assertIn("Usage: knode proxy [flags]", r.stderr)

    def test_bad_value_exits_2(self):
        r = knode("proxy", "--manifest-dir=/tmp", "--proxy-mode=userspace")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--proxy-mode", r.stderr.splitlines()[0])
        r = knode("agent", "--manifest-dir=/tmp", "--iptables-sync-period=often")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--iptables-sync-period", r.stderr.splitlines()[0])

    def test_help_documents_every_flag(self):
        r = knode("agent", "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ["--proxy-mode", "--ipvs-scheduler", "--cluster-cidr", "--hostname-override",
                     "--kubeconfig", "--config", "--v", "--healthz-bind-address",
                     "--metrics-bind-address", "--healthz-port", "--manifest-dir",
                     "--pod-manifest-path", "--nodeport-addresses", "--iptables-sync-period",
                     "--ipvs-sync-period", "--masquerade-all"]:
            self.assertIn(flag, r.stdout, flag)
        self.assertIn("--cleanup", knode("proxy", "--help").stdout)

    def test_unknown_command(self):
        r = knode("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn('unknown command "frobnicate"', r.stderr)

    def test_bad_config_file_names_the_field(self):
        path = f"/tmp/knode-cli-{os.getpid()}.yaml"
        with open(path, "w") as f:
            f.write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                    "iptables: {masqueradeBit: many}\n")
        try:
            r = knode("proxy", "--config", path, "--manifest-dir=/tmp")
            self.assertEqual(r.returncode, 2)
            self.assertIn("iptables.masqueradeBit: expected integer, got string", r.stderr)
        finally:
            os.unlink(path)


class Kubelet(unittest.TestCase):
    def test_pod_cidr_writes_the_cni_conflist(self):
        import json
        import tempfile
        import time
        d = tempfile.mkdtemp(prefix="knode-cni-conf-")
        manifests = tempfile.mkdtemp(prefix="knode-manifests-")
        p = subprocess.Popen([KNODE, "kubelet", "--manifest-dir", manifests, "--pod-cidr", "10.244.7.0/24",
                              "--cni-conf-dir", d, "--healthz-port", "0"], stderr=subprocess.DEVNULL)
        try:
            path = os.path.join(d, "10-knode.conflist")
            end = time.monotonic() + 20
            while not os.path.exists(path) and time.monotonic() < end and p.poll() is None:
                time.sleep(0.05)
            with open(path) as f:
                conf = json.load(f)
            self.assertEqual(conf["name"], "knode")
            text = json.dumps(conf)
            self.assertIn("10.244.7.0/24", text)
            self.assertIn("knode-cni", text)
        finally:
            p.terminate()
            p.wait(timeout=10)
            subprocess.run(["rm", "-rf", d, manifests])


class ProxyOnlyBinary(unittest.TestCase):
    """knode-proxy: the proxy without the kubelet, and without the kubelet's gRPC stack."""

    def setUp(self):
        self.binary = os.environ.get("KNODE_PROXY", "")
        if not self.binary:
            self.skipTest("KNODE_PROXY is not set")

    def mapped_at_start(self, binary):
        # What the dynamic loader maps when the binary starts (ldd runs the loader itself).
        r = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]

    def test_maps_no_grpc_library_where_knode_does(self):
        grpc = ("libgrpc", "libgpr", "libabsl", "libre2", "libcares", "libupb", "libaddress_sorting")
        full = [lib for lib in self.mapped_at_start(KNODE) if lib.startswith(grpc)]
        self.assertTrue(full, "knode itself maps no gRPC library: the check below would prove nothing")
        proxy_only = self.mapped_at_start(self.binary)
        self.assertEqual([lib for lib in proxy_only if lib.startswith(grpc)], [])
        self.assertLess(len(proxy_only), len(self.mapped_at_start(KNODE)))

    def test_runs_the_proxy_only(self):
        r = subprocess.run([self.binary, "version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^knode-proxy \d+\.\d+\.\d+\n$")
        r = subprocess.run([self.binary, "proxy", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--proxy-mode", r.stdout)
        for cmd in ("kubelet", "agent"):
            r = subprocess.run([self.binary, cmd, "--manifest-dir=/tmp"], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, cmd)
            self.assertIn(f'unknown command "{cmd}"', r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
