"""The README's first command, scripts/demo.sh, as a newcomer runs it: a standalone node
(Debian's containerd + `knode agent`) in a private network namespace, three kubia pods
behind a NodePort Service. The pods must be Running and Ready in knode's /pods with IPs,
requests to the ClusterIP and the NodePort must be answered by the pods themselves (the
"You've hit <pod>" lines are the kubia server's words), and once the script exits nothing
it started may be left: no namespace, process, mount or work directory.
"""
import os
import re
import subprocess
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def leftovers(before_tmp):
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [l for l in netns.splitlines() if "knode-demo" in l]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found += [l for l in ps.splitlines() if "knode-demo." in l and "ps -eo" not in l]
    with open("/proc/self/mountinfo") as f:
        found += [l.strip() for l in f if "knode-demo." in l]
    found += [d for d in os.listdir("/tmp") if d.startswith("knode-demo.") and d not in before_tmp]
    return found


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class DemoTest(unittest.TestCase):
    def test_demo(self):
        before_tmp = set(os.listdir("/tmp"))
        env = dict(os.environ, DEMO_SECONDS="0", KNODE_DEMO_NO_SETUP="1")
        p = subprocess.run([os.path.join(REPO, "scripts", "demo.sh")], env=env, capture_output=True,
                           text=True, timeout=420, stdin=subprocess.DEVNULL)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out[-3000:] + p.stderr[-3000:])

        # The pods table, read from knode's /pods by the script: three rows, Running, Ready.
        rows = re.findall(r"^(kubia-\d-node1)\s+(\d+\.\d+\.\d+\.\d+)\s+(\w+)\s+(\w+)\s+(\d+)\s+(\S+)$", out, re.M)
        self.assertEqual(sorted(r[0] for r in rows), ["kubia-0-node1", "kubia-1-node1", "kubia-2-node1"], out)
        for name, ip, phase, ready, restarts, cid in rows:
            self.assertTrue(ip.startswith("10.88.0."), (name, ip))
            self.assertEqual((phase, ready), ("Running", "True"), name)
            self.assertTrue(cid.startswith("containerd://"), cid)
        self.assertEqual(len({r[1] for r in rows}), 3, "three distinct pod IPs")

        # Ten requests to the ClusterIP, answered by the pods: every answer names one of
        # them, and the Service spreads them (all ten on one pod: p = 3 * 3^-10).
        section = out.split("do curl http://10.96.0.10/; done", 1)[1].split("$ curl", 1)[0]
        answers = re.findall(r"^You've hit (\S+)$", section, re.M)
        self.assertEqual(len(answers), 10, section)
        self.assertTrue(set(answers) <= {r[0] for r in rows}, answers)
        self.assertGreaterEqual(len(set(answers)), 2, answers)
        nodeport = out.split("(the NodePort)", 1)[1].splitlines()[1]
        self.assertRegex(nodeport, r"^You've hit kubia-\d-node1$")

        self.assertEqual(leftovers(before_tmp), [])


if __name__ == "__main__":
    unittest.main()
