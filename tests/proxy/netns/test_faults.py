"""Fault tests of `knode proxy` with real packets (issue 18): each injects one fault and
reports what was lost, measured from outside knode: the kernel's tables (iptables-legacy-save,
nft list), the replies of long-lived TCP connections through a Service, /proc for memory.

- SIGKILL in the middle of a large sync (10,000 Services), then a restart: every table is the
  old or the new one, never a mix; the restart converges; 50 established connections lose
  nothing.
- A mode switch (iptables -> nftables -> iptables) under the same traffic: established
  connections lose nothing; new connections that failed during the switches are counted.
- The manifest directory flooded with 10,000 file writes, half of them invalid: memory stays
  bounded, every valid object is programmed, every invalid one is logged with its file and
  what is wrong with it.

Run through run.py, e.g.
    python3 tests/support/run.py --knode build/cmd/knode/knode --path tests/proxy/netns --timeout 400 \\
        test_faults.IptablesFaults.test_sigkill_mid_sync_of_10k_services
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import threading
import time
import unittest
from typing import Optional

import knode_netns as kn
from knode_netns import docs, endpoint_slice, service
from test_iptables_proxy import KUBIA_IP, HTTP, ProxyTestBase

LARGE = int(os.environ.get("KNODE_FAULT_SERVICES", "10000"))


def report(line: str):
    """A figure of the fault test, on stderr (CTest shows it with --output-on-failure / -V)."""
    print(f"\n  FAULT {line}", file=sys.stderr, flush=True)


def numbered_ip(i: int) -> str:
    """The i-th cluster IP of the generated Services: 10.97.0.1 upwards."""
    return f"10.97.{i // 250}.{i % 250 + 1}"


def log_time(line: str) -> float:
    """The wall-clock time of a knode log line ("I1202 21:06:33.192416 ...")."""
    m = re.match(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) ", line)
    if not m:
        raise ValueError(f"not a knode log line: {line[:60]!r}")
    mo, d, h, mi, sec, us = (int(g) for g in m.groups())
    return datetime.datetime(datetime.date.today().year, mo, d, h, mi, sec, us).timestamp()


class Conversations:
    """n long-lived TCP connections from `netns` to host:port. A thread sends a line through
    each in turn for as long as the test runs and counts what fails: no reply within
    `reply_timeout`, a reset, a closed connection, or a reply from another pod than the one
    the connection reached first. A connection that failed once is counted and not used
    again (its stream is out of step)."""

    def __init__(self, netns: str, host: str, port: int, n: int = 50, reply_timeout: float = 5.0,
                 max_seconds: float = 360.0):
        self.n = n
        self.files = []
        self.socks = []
        for _ in range(n):
            s = kn.ns_socket(netns)
            s.settimeout(reply_timeout)
            s.connect((host, port))
            self.socks.append(s)
            self.files.append(s.makefile("rwb"))
        self.first_pod: list[Optional[str]] = [None] * n
        self.failed: dict[int, str] = {}
        self.exchanges = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds  # bound: the loop ends by itself
        self._thread = threading.Thread(target=self._loop, name="conversations", daemon=True)
        self._thread.start()

    def _one(self, i: int, word: str) -> Optional[str]:
        f = self.files[i]
        try:
            f.write(f"{word}\n".encode())
            f.flush()
            line = f.readline().decode(errors="replace").strip()
        except OSError as e:
            return f"{type(e).__name__}: {e}"
        if not line:
            return "connection closed"
        pod, _, echoed = line.partition(": ")
        if echoed != word:
            return f"reply {line!r} to {word!r}"
        if self.first_pod[i] is None:
            self.first_pod[i] = pod
        elif self.first_pod[i] != pod:
            return f"moved from {self.first_pod[i]} to {pod}"
        return None

    def _loop(self):
        seq = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            for i in range(self.n):
                if i in self.failed:
                    continue
                err = self._one(i, f"c{i}-{seq}")
                if err is None:
                    self.exchanges += 1
                else:
                    self.failed[i] = err
            seq += 1
            self.rounds += 1
            self._stop.wait(0.02)  # pacing: about 50 rounds a second at most

    def wait_rounds(self, k: int, timeout: float = 30.0):
        target = self.rounds + k
        kn.wait_for(lambda: self.rounds >= target, timeout, f"{k} rounds of the {self.n} conversations")

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(30)
        for f, s in zip(self.files, self.socks):
            for c in (f, s):
                try:
                    c.close()
                except OSError:
                    pass
        return {"connections": self.n, "exchanges": self.exchanges, "rounds": self.rounds,
                "failed": dict(self.failed)}


class NewConnections:
    """One new connection every `every` seconds (HTTP GET through the Service); counts the
    attempts and the failures, with when they happened."""

    def __init__(self, netns: str, host: str, port: int, every: float = 0.05, max_seconds: float = 360.0):
        self.attempts = 0
        self.failures: list[tuple[float, str]] = []
        self._args = (netns, host, port)
        self._every = every
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="new-connections", daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self.attempts += 1
            try:
                r = kn.http_get(*self._args, timeout=2.0)
                if r.status != 200 or not r.pod:
                    self.failures.append((time.monotonic() - self._t0, f"status {r.status}"))
            except (OSError, ValueError) as e:
                self.failures.append((time.monotonic() - self._t0, f"{type(e).__name__}"))
            self._stop.wait(self._every)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(30)
        return {"attempts": self.attempts, "failed": len(self.failures), "failures": self.failures[:10]}


class FaultTestBase(ProxyTestBase):
    """ProxyTestBase (one topology, manifest dir and knode per test), with conversations that
    outlive several restarts."""

    def setUp(self):
        kn.PodServer.MAX_CONNECTION_SECONDS = 400.0
        super().setUp()

    def make_knode(self, mode: str) -> kn.Knode:
        k = kn.Knode(self.binary, self.topo.node, self.manifests.dir, self.log_path, extra=[f"--proxy-mode={mode}"])
        self.addCleanup(k.kill)
        return k

    def tables(self) -> dict[str, list[str]]:
        """What the kernel holds of this mode, per unit it replaces atomically: for iptables
        each table (a table is swapped whole), for nftables the kube-proxy table."""
        if self.mode == "nftables":
            return {"ip kube-proxy": sorted(self.view.dump().splitlines())}
        out: dict[str, list[str]] = {}
        for line in self.view.state_lines():
            table, rest = line.split(" ", 1)
            out.setdefault(table, []).append(rest)
        return {t: sorted(v) for t, v in out.items()}

    def settle(self, quiet: float = 1.3):
        """Waits until `quiet` seconds have passed since knode's last sync, so the next change is
        synced at once rather than held back by the minimum sync period (1 s)."""
        last = [l for l in self.knode.log().splitlines() if '"proxy synced"' in l]
        if last:
            time.sleep(max(0.0, log_time(last[-1]) + quiet - time.time()))

    def sync_line_after(self, offset: int, min_changed: int) -> Optional[str]:
        """The first "proxy synced" line after `offset` that changed at least min_changed ports."""
        self.knode._check_alive()
        for line in self.knode.log_since(offset).splitlines():
            m = re.search(r'"proxy synced".*changedServicePorts=(\d+)', line)
            if m and int(m.group(1)) >= min_changed:
                return line
        return None

    def large_manifest(self, n: int = LARGE) -> str:
        """LARGE Services, each with a slice of one endpoint but every tenth with none (a REJECT
        rule: the filter table changes too), as one JSON List (JSON: decoding takes a fraction
        of the sync, so the kill points below land in the sync itself)."""
        items = []
        for i in range(n):
            name = f"s{i}"
            items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                          "spec": {"clusterIP": numbered_ip(i), "selector": {"app": name},
                                   "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                          "metadata": {"name": f"{name}-x", "namespace": "default",
                                       "labels": {"kubernetes.io/service-name": name}},
                          "addressType": "IPv4", "ports": HTTP,
                          "endpoints": [] if i % 10 == 9 else [
                              {"addresses": [self.topo.pod_ip[self.topo.pods[i % len(self.topo.pods)]]],
                               "conditions": {"ready": True}, "nodeName": "node-1"}]})
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


class Scenarios:

    def test_sigkill_mid_sync_of_10k_services(self):
        """SIGKILL at points spread over a 10,000-Service sync: each table is the old or the
        new one; the restart converges; 50 established connections lose nothing."""
        self.write_kubia()
        self.start_knode()
        talk = Conversations(self.topo.client, KUBIA_IP, 80)
        self.addCleanup(talk.stop)
        talk.wait_rounds(3)
        old = self.tables()
        big = self.large_manifest()

        # Calibrate: when, after the file is written, knode's sync of it runs. The kill points
        # are then spread over that window (knode's log times it; what the kill left is read
        # from the kernel).
        self.settle()
        offset = self.knode.log_size()
        t_write = time.time()
        self.manifests.write("large.json", big)
        line = kn.wait_for(lambda: self.sync_line_after(offset, LARGE), 120, "the large file programmed")
        m = re.search(r"tookMs=([0-9.]+)", line)
        took = float(m.group(1)) / 1000 if m else 0.0
        sync_end = log_time(line) - t_write
        sync_start = max(0.0, sync_end - took)
        new = kn.wait_for(lambda: (lambda t: t if t != old else None)(self.tables()), 30, "the new tables")
        self.manifests.delete("large.json")
        kn.wait_for(lambda: self.tables() == old, 120, "the tables back to the small set", interval=0.5)
        report(f"[{self.mode}] the sync of {LARGE} Services runs {sync_start:.2f}-{sync_end:.2f} s after the "
               f"file is written ({took * 1000:.0f} ms)")

        outcomes = []
        delays = [0.0] + [sync_start + took * k / 5 for k in range(6)] + [sync_end + 0.3]
        for f in delays:
            self.settle()
            t_write = time.monotonic()
            self.manifests.write("large.json", big)
            # the point of the sync at which the kill lands
            time.sleep(max(0.0, t_write + f - time.monotonic()))
            self.knode.proc.kill()
            self.knode.proc.wait(10)
            self.knode.kill()
            now = self.tables()
            for table, lines in now.items():
                state = "old" if lines == old.get(table) else "new" if lines == new.get(table) else None
                if state is None:
                    added = sorted(set(lines) - set(old.get(table, [])) - set(new.get(table, [])))[:5]
                    self.fail(f"after SIGKILL {f:.2f} s after the write, table {table} is neither the old nor the new "
                              f"one ({len(lines)} lines; old {len(old.get(table, []))}, new "
                              f"{len(new.get(table, []))}; lines in neither: {added})")
            self.assertEqual(set(now), set(old) | set(new), "a table appeared or vanished")
            outcomes.append(",".join(f"{t}={'old' if now[t] == old.get(t) else 'new'}" for t in sorted(now)))
            # Restart on the same directory: it converges to the new tables.
            t1 = time.monotonic()
            self.start_knode(timeout=120)
            kn.wait_for(lambda: self.tables() == new, 60, "the restarted knode to converge on the new tables",
                        interval=0.5)
            converge = time.monotonic() - t1
            outcomes[-1] += f" (converged {converge:.1f} s after restart)"
            self.manifests.delete("large.json")
            kn.wait_for(lambda: self.tables() == old, 120, "the tables back to the small set", interval=0.5)

        # A Service of the large set answers after the last convergence.
        self.manifests.write("large.json", big)
        kn.wait_for(lambda: self.tables() == new, 120, "the large set once more", interval=0.5)
        replies = kn.hits(self.topo.client, numbered_ip(LARGE - 2), 80, 5)
        self.assertEqual({r.pod for r in replies}, {self.topo.pods[(LARGE - 2) % len(self.topo.pods)]})
        summary = talk.stop()
        for f, o in zip(delays, outcomes):
            report(f"[{self.mode}] SIGKILL {f:.2f} s after the write: {o}")
        report(f"[{self.mode}] {summary['connections']} established connections, {summary['exchanges']} "
               f"exchanges over {len(delays)} kills and restarts: {len(summary['failed'])} failed")
        self.assertEqual(summary["failed"], {}, "established connections failed")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ValueError(f"no {field} in /proc/{pid}/status")


class MemorySampler:
    """Samples a process's resident memory every 20 ms (bounded in count) and keeps the peak."""

    def __init__(self, pid: int, max_samples: int = 30000):
        self.pid, self.peak, self.samples = pid, 0, 0
        self._stop = threading.Event()
        self._max = max_samples
        self._thread = threading.Thread(target=self._loop, name="rss", daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set() and self.samples < self._max:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, ValueError):
                return
            self.samples += 1
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.peak


# The invalid files of the flood: what is wrong, and what the log must name besides the file.
INVALID_KINDS = (
    ("a YAML syntax error", lambda i: f"apiVersion: v1\nkind: Service\nmetadata: {{name: bad{i}\n",
     lambda i: r":\d+:\d+: "),  # the line and column
    ("a Service port of 0", lambda i: service(f"bad{i}", numbered_ip(20000 + i), [{"name": "http", "port": 0}]),
     lambda i: r"spec\.ports\[0\]\.port"),
    ("an EndpointSlice address that is not an IP",
     lambda i: endpoint_slice(f"bad{i}", f"fv{i}", HTTP, [dict(ip="10.244.0.300", node="node-1")]),
     lambda i: r"endpoints\[0\]\.addresses\[0\]"),
    ("a clusterIP that is not an IP",
     lambda i: service(f"bad{i}", "10.96.999.1", [{"name": "http", "port": 80, "targetPort": 8080}]),
     lambda i: r"spec\.clusterIP"),
    ("a Service without a name",
     lambda i: "apiVersion: v1\nkind: Service\nmetadata: {namespace: default}\nspec: {ports: [{port: 80}]}\n",
     lambda i: r"metadata\.name"),
)


class FloodFaults(FaultTestBase):
    mode = "iptables"

    def test_manifest_directory_flooded_with_10k_writes_half_invalid(self):
        """10,000 file writes in a burst, half of them invalid: memory stays bounded, every
        valid Service is programmed, every invalid file is logged with its name and field."""
        writes = int(os.environ.get("KNODE_FAULT_FLOOD_WRITES", "10000"))
        self.write_kubia()
        self.start_knode()
        pid = self.knode.proc.pid
        settled_before = rss_kib(pid)
        sampler = MemorySampler(pid)
        self.addCleanup(sampler.stop)
        valid, invalid = [], []
        t0 = time.monotonic()
        for i in range(writes):
            if i % 2 == 0:
                name, text = f"fv{i}.yaml", docs(
                    service(f"fv{i}", numbered_ip(i // 2), [{"name": "http", "port": 80, "targetPort": 8080}]),
                    endpoint_slice(f"fv{i}-x", f"fv{i}", HTTP,
                                   [dict(ip=self.topo.pod_ip[self.topo.pods[i % 3]], node="node-1")]))
                valid.append(i)
            else:
                kind = INVALID_KINDS[(i // 2) % len(INVALID_KINDS)]
                name, text = f"bad{i}.yaml", kind[1](i)
                invalid.append(i)
            # Written in place, not renamed into place: knode may read a file half-written.
            with open(os.path.join(self.manifests.dir, name), "w") as f:
                f.write(text)
        burst = time.monotonic() - t0

        def programmed() -> int:
            nat = kn.iptables_save(self.topo.node, "nat")
            return len(re.findall(r'^-A KUBE-SERVICES .*"default/fv\d+:http cluster IP"', nat, re.M))

        kn.wait_for(lambda: (self.knode._check_alive(), programmed() == len(valid))[1], 120,
                    f"all {len(valid)} valid Services programmed", interval=0.5)
        converged = time.monotonic() - t0
        peak = sampler.stop()
        settled_after = rss_kib(pid)
        # A sample of the valid Services answers from exactly its pod (real packets: past
        # 1,000 endpoints the rules carry no comments to read them by, as kube-proxy's).
        for i in valid[:: max(1, len(valid) // 25)]:
            self.assertEqual({r.pod for r in kn.hits(self.topo.client, numbered_ip(i // 2), 80, 2)},
                             {self.topo.pods[i % 3]}, f"fv{i}")
        log = self.knode.log()
        unlogged = []
        for i in invalid:
            kind = INVALID_KINDS[(i // 2) % len(INVALID_KINDS)]
            if not re.search(rf"bad{i}\.yaml\b.*{kind[2](i)}", log):
                unlogged.append((f"bad{i}.yaml", kind[0]))
        self.assertTrue(self.knode.alive())
        # What the same directory costs without the flood: a fresh knode started on it.
        self.assertEqual(self.knode.stop(), 0)
        self.knode = self.make_knode(self.mode)
        self.start_knode(timeout=120)
        kn.wait_for(lambda: programmed() == len(valid), 60, "the fresh knode to program the same Services")
        fresh_peak = rss_kib(self.knode.proc.pid, "VmHWM")
        report(f"[flood] {writes} writes in {burst:.1f} s ({len(valid)} valid, {len(invalid)} invalid): "
               f"all valid programmed {converged:.1f} s after the first write; invalid files not logged with "
               f"their field: {len(unlogged)}; RSS {settled_before // 1024} MiB before, peak "
               f"{peak // 1024} MiB during, {settled_after // 1024} MiB after; a fresh knode on the same "
               f"directory peaks at {fresh_peak // 1024} MiB")
        self.assertEqual(unlogged[:10], [], f"{len(unlogged)} invalid files were not logged with their field")
        # Bounded: the flood costs at most half again what the objects themselves cost (no
        # queue of every write, no copy per rescan).
        self.assertLess(peak, 1.5 * fresh_peak + 16 * 1024,
                        f"peak RSS {peak} KiB during the flood against {fresh_peak} KiB for a fresh start")


class ModeSwitchFaults(FaultTestBase):
    mode = "iptables"

    def test_mode_switch_under_traffic(self):
        """Eight switches between iptables and nftables modes, with 1,000 other Services, while
        50 connections talk and a new connection is made every 50 ms: established connections
        lose nothing."""
        self.write_kubia()
        self.manifests.write("large.json", self.large_manifest(1000))
        self.start_knode()
        talk = Conversations(self.topo.client, KUBIA_IP, 80)
        self.addCleanup(talk.stop)
        fresh = NewConnections(self.topo.client, KUBIA_IP, 80)
        self.addCleanup(fresh.stop)
        talk.wait_rounds(5)
        views = {"iptables": kn.IptablesView(self.topo.node), "nftables": kn.NftablesView(self.topo.node)}
        switches = []
        for mode, other in [("nftables", "iptables"), ("iptables", "nftables")] * 4:
            before = len(fresh.failures)
            t0 = time.monotonic()
            self.assertEqual(self.knode.stop(), 0)
            self.knode = self.make_knode(mode)
            self.start_knode()
            kn.wait_for(lambda: views[mode].programmed() and not views[other].leftovers(), 20,
                        f"{mode} rules in place and the {other} ones gone")
            took = time.monotonic() - t0
            talk.wait_rounds(50)
            switches.append((mode, took, len(fresh.failures) - before))
        conv, new = talk.stop(), fresh.stop()
        for mode, took, failed in switches:
            report(f"[mode switch] to {mode}: {took:.1f} s from SIGTERM to the other mode's rules gone; "
                   f"new connections failed meanwhile: {failed}")
        report(f"[mode switch] {conv['connections']} established connections, {conv['exchanges']} exchanges over "
               f"{len(switches)} switches: {len(conv['failed'])} failed; new connections: {new['attempts']} made, "
               f"{new['failed']} failed")
        self.assertEqual(conv["failed"], {}, "established connections failed across a mode switch")


class IptablesFaults(Scenarios, FaultTestBase):
    mode = "iptables"


class NftablesFaults(Scenarios, FaultTestBase):
    mode = "nftables"


if __name__ == "__main__":
    unittest.main()
