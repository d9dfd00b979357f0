#!/usr/bin/env python3
"""knode's proxy and the upstream kube-proxy side by side, against one real control plane
(issue 15, "Performance"). Python stdlib only, on the cluster tier's harness
(tests/cluster/control_plane.py). As root:

    bench/cluster/run_proxy_bench.py [--knode PATH] [--kube-proxy PATH] [--modes iptables,nftables]
        [--services 10000] [--endpoints 10] [--changes 50] [--json FILE] [--keep-logs DIR]

One run:
  1. one control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
     v1.37.2) in namespaces of its own; a client certificate CN=system:kube-proxy (bound to
     system:node-proxier by the default RBAC), used by both proxies;
  2. --services selectorless Services (one TCP port, cluster IPs set) and, for each, one
     EndpointSlice with --endpoints ready endpoints and the kubernetes.io/service-name
     label, written straight to the API server by a small concurrent client (the
     controller-manager's EndpointSlice controller does not manage them);
  3. for each mode (iptables, then nftables), for each proxy in turn (knode, then
     kube-proxy): a node network namespace on the control plane's lan (add_node_netns)
     and a Node object for it; the proxy (`knode proxy`, `kube-proxy`) is started there
     and the time from the process start to the first full sync programmed is measured
     by reading the kernel's rules in that namespace until the last Service's rules are
     there (the same reader for both, below); then --changes single-EndpointSlice updates
     (one endpoint's address replaced by a new one), each timed from the API write's
     answer to the new address in the kernel's rules; RSS (VmRSS, VmHWM) after the first
     sync and after the changes, CPU seconds (children included), and the peak RSS and
     CPU of the rule tools the proxy ran (iptables-restore, nft, ...: a wrapper first in
     each proxy's PATH records them); the proxy is stopped before the next one starts.
     With --together both run during the changes and both namespaces are polled at once
     (each proxy's work then slows the other's: 2 cores, and the x_tables lock below);
  4. a markdown table per mode, knode and kube-proxy side by side; then everything is
     torn down (the harness deletes its namespaces; nothing is done in the root netns).

How the rules are read (in the proxy's netns only):
  - iptables: the nat table's blob straight from the kernel (IPT_SO_GET_INFO and
    IPT_SO_GET_ENTRIES on a raw socket created in the netns: what iptables-legacy-save
    reads, without the formatting), searched for an entry whose source is ADDR/32 (the
    `-s ADDR/32 -j KUBE-MARK-MASQ` rule every endpoint chain starts with) or whose
    destination is the cluster IP /32. Both proxies write the legacy x_tables (knode in
    process; kube-proxy through iptables-legacy-restore: its PATH has iptables* -> the
    legacy tools, as the kube-proxy image's iptables-wrapper chooses on a host whose rules
    are legacy), so one reader sees both. At 10,000 Services a read takes about 0.3 s and
    holds the kernel's x_tables lock (one for every netns) all along, which a proxy's
    write also needs: reads are paced by their own duration, and each change is also
    timed by the proxy's own kubeproxy_sync_proxy_rules_last_timestamp_seconds where the
    reads confirm it (it falls between the last read without the rule and the first with).
  - nftables: a netlink dump of the Service's chain (`service-<hash>-<ns>/<svc>/tcp/<port>`,
    named the same way by both) and of the anonymous sets and maps its rules look up,
    searched for the address: knode's chain looks its endpoints up in a named map shared
    with other Services (`dnat ip to numgen random mod 720720 offset O map
    @endpoints-<shard>`, whose elements are dumped too; every endpoint address of the
    bench is its Service's alone), kube-proxy v1.37's maps it in the rule
    (`dnat ip to numgen random mod 10 map { 0 : ADDR . 8080, ...}`). Under 1 ms a read at
    any size (`nft list chain` reads the whole table first: 0.4-6 s at 10,000 Services).
    Each proxy writes a sync in one transaction, so what one chain shows, all show.
  The time of a change is taken when the read that first shows it returns (an upper
  bound: the rule appeared between the previous read and this one).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import ctypes
import datetime
import hashlib
import http.client
import ipaddress
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import control_plane as cp  # noqa: E402
import knode_netns as kn  # noqa: E402

NAMESPACE = "bench"
PORT_NAME = "http"
SERVICE_PORT = 80
TARGET_PORT = 8080
CLUSTER_CIDR = cp.CLUSTER_CIDR  # 10.244.0.0/16
SERVICE_IP_BASE = int(ipaddress.IPv4Address("10.96.100.0"))  # Service i: 10.96.100.0 + i
# Endpoints: 10.244.0.1 - 10.244.249.254 round robin (addresses repeat across services
# above 63,500 endpoints, as they may not in a cluster, but nothing here depends on them
# being unique); 10.244.250.0/24 only for the last Service (the marker of a full sync);
# 10.244.251.1 upwards only for the changes (each new address is unique in the ruleset).
EP_POOL = 250 * 254
MARKER_NET = "10.244.250."
CHANGE_BASE = int(ipaddress.IPv4Address("10.244.251.0"))
METRICS_PORT = 10249
HEALTHZ_PORT = 10256
CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of them at or below it."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


# --------------------------------------------------------------------------- the objects


def svc_name(i: int) -> str:
    return f"svc-{i:05d}"


def cluster_ip(i: int) -> str:
    return str(ipaddress.IPv4Address(SERVICE_IP_BASE + i))


def endpoint_ip(i: int, j: int, services: int) -> str:
    if i == services - 1:
        return f"{MARKER_NET}{j + 1}"
    k = (i * 10 + j) % EP_POOL
    return f"10.244.{k // 254}.{k % 254 + 1}"


def change_ip(n: int) -> str:
    # 10.244.251.1 ... skipping .0 and .255 of each /24
    return str(ipaddress.IPv4Address(CHANGE_BASE + (n // 254) * 256 + n % 254 + 1))


def service_obj(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc_name(i), "namespace": NAMESPACE},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip(i),
                     "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP",
                                "targetPort": TARGET_PORT}]}}


def endpoint_entry(ip: str) -> dict:
    return {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}


def slice_obj(i: int, services: int, endpoints: int) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc_name(i)}-bench", "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": svc_name(i),
                                    # not the controller's: it leaves these alone
                                    "endpointslice.kubernetes.io/managed-by": "knode-bench"}},
            "addressType": "IPv4",
            "ports": [{"name": PORT_NAME, "port": TARGET_PORT, "protocol": "TCP"}],
            "endpoints": [endpoint_entry(endpoint_ip(i, j, services)) for j in range(endpoints)]}


def nft_service_chain(i: int) -> str:
    """kube-proxy's nftables chain of Service i's port (pkg/proxy/nftables:
    servicePortChainNameBase): service-<base32(sha256(name))[:8]>-<name>."""
    name = f"{NAMESPACE}/{svc_name(i)}/tcp/{PORT_NAME}"
    h = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]
    return f"service-{h}-{name}"


# --------------------------------------------------------------------------- the API


class _Conn(cp._NsHTTPSConnection):
    pass


class Api:
    """Keep-alive HTTPS connections to the apiserver from the control plane's netns, one
    per thread, as admin."""

    def __init__(self, c: cp.ControlPlane):
        self.c = c
        self.ctx = c.api_context()
        self.local = threading.local()
        self.lock = threading.Lock()
        self.conns: list = []

    def _conn(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = _Conn(self.c.cp_netns, self.c.cp_addr, cp.APISERVER_PORT, self.ctx, 30)
            self.local.conn = conn
            with self.lock:
                self.conns.append(conn)
        return conn

    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                attempts: int = 5) -> tuple[int, bytes]:
        data = json.dumps(body, separators=(",", ":")).encode() if isinstance(body, (dict, list)) else body
        last = None
        for attempt in range(attempts):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers={"Content-Type": content_type,
                                                               "Accept": "application/json"})
                r = conn.getresponse()
                raw = r.read()
                if r.status in (429, 500, 503, 504) and attempt + 1 < attempts:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                return r.status, raw
            except (OSError, http.client.HTTPException) as e:
                last = e
                conn.close()
                self.local.conn = None
                time.sleep(0.1 * (attempt + 1))
        raise BenchError(f"{method} {path}: {last!r}")

    def must(self, method: str, path: str, body=None, content_type: str = "application/json",
             ok=(200, 201)) -> dict:
        status, raw = self.request(method, path, body, content_type)
        if status not in ok:
            raise BenchError(f"{method} {path}: HTTP {status}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}

    def close(self):
        with self.lock:
            for c in self.conns:
                c.close()


def load_objects(api: Api, services: int, endpoints: int, workers: int) -> dict:
    """Creates the namespace, the Services and their EndpointSlices; returns timings."""
    api.must("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": NAMESPACE}})
    t0 = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def create(i: int):
        api.must("POST", f"/api/v1/namespaces/{NAMESPACE}/services", service_obj(i))
        api.must("POST", f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
                 slice_obj(i, services, endpoints))
        with lock:
            done[0] += 1
            if done[0] % 2000 == 0:
                log(f"  {done[0]}/{services} services and slices written "
                    f"({done[0] / (time.monotonic() - t0):.0f}/s)")

    # The last Service (the full-sync marker) goes last, after every other is written.
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for f in concurrent.futures.as_completed([ex.submit(create, i) for i in range(services - 1)]):
            f.result()
    create(services - 1)
    return {"seconds": time.monotonic() - t0, "workers": workers}


# --------------------------------------------------------------------------- reading the rules


class IptablesReader:
    """The nat table of one netns as the kernel holds it (legacy x_tables)."""

    GET_INFO, GET_ENTRIES = 64, 65  # IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES (SOL_IP)
    HEAD = 40  # sizeof(struct ipt_get_entries): name[32], size, padding to 8

    def __init__(self, netns: str):
        self.sock = kn.in_netns(netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW))
        self.buf = bytearray(0)
        self.size = 0

    def close(self):
        self.sock.close()

    def read(self) -> bool:
        """Reads the table into self.buf; False when there is no nat table yet."""
        fd = self.sock.fileno()
        for _ in range(10):
            info = ctypes.create_string_buffer(84)
            info.value = b"nat"
            ln = ctypes.c_uint32(84)
            if _libc.getsockopt(fd, 0, self.GET_INFO, info, ctypes.byref(ln)) != 0:
                e = ctypes.get_errno()
                if e == 2:  # ENOENT
                    return False
                raise OSError(e, f"IPT_SO_GET_INFO: {os.strerror(e)}")
            size = struct.unpack_from("I", info.raw, 80)[0]
            need = self.HEAD + size
            if len(self.buf) < need:
                self.buf = bytearray(need + (need >> 3))
            struct.pack_into("32sI", self.buf, 0, b"nat", size)
            cbuf = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
            ln = ctypes.c_uint32(need)
            rc = _libc.getsockopt(fd, 0, self.GET_ENTRIES, cbuf, ctypes.byref(ln))
            del cbuf
            if rc == 0:
                self.size = size
                return True
            e = ctypes.get_errno()
            if e != 11:  # EAGAIN: the table changed between the two calls
                raise OSError(e, f"IPT_SO_GET_ENTRIES: {os.strerror(e)}")
        return False

    def _has(self, ip: str, at: int) -> bool:
        """An entry whose ipt_ip source (at=0) or destination (at=4) is ip/32."""
        pat = socket.inet_aton(ip)
        end = self.HEAD + self.size
        pos = self.buf.find(pat, self.HEAD, end)
        while pos >= 0:
            start = pos - at
            if (start - self.HEAD) % 8 == 0 and self.buf[start + 8 + at:start + 12 + at] == b"\xff\xff\xff\xff":
                return True
            pos = self.buf.find(pat, pos + 1, end)
        return False

    def has_source(self, ip: str) -> bool:
        return self._has(ip, 0)

    def has_destination(self, ip: str) -> bool:
        return self._has(ip, 4)


class NftReader:
    """One chain of table ip kube-proxy in one netns, straight from nf_tables over netlink
    (a dump of that chain's rules, and of the elements of the anonymous sets and knode's
    endpoint maps its rules look up), so a read costs the same whatever the size of the rest of the ruleset.
    (`nft list chain` builds its cache from the whole table first: at 10,000 Services it
    took 0.4 s on knode's ruleset and 6 s on kube-proxy's, whose rules carry 10,000
    anonymous maps.)"""

    NETLINK_NETFILTER = 12
    NFT_MSG_GETRULE = (10 << 8) | 7  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETRULE
    NFT_MSG_GETSETELEM = (10 << 8) | 13
    NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
    NLMSG_ERROR, NLMSG_DONE = 2, 3
    NFPROTO_IPV4 = 2
    TABLE = "kube-proxy"

    def __init__(self, netns: str):
        self.sock = kn.in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                                              self.NETLINK_NETFILTER))
        self.sock.bind((0, 0))
        self.sock.settimeout(10)
        self.seq = 0

    def close(self):
        self.sock.close()

    @staticmethod
    def _attr(kind: int, value: bytes) -> bytes:
        a = struct.pack("HH", 4 + len(value), kind) + value
        return a + b"\0" * (-len(a) % 4)

    def _dump(self, msg_type: int, attrs: bytes) -> Optional[bytes]:
        """The payloads of a dump, concatenated; None when the kernel answers an error."""
        self.seq += 1
        body = struct.pack("BBH", self.NFPROTO_IPV4, 0, 0) + attrs
        self.sock.send(struct.pack("IHHII", 16 + len(body), msg_type, self.NLM_F_REQUEST | self.NLM_F_DUMP,
                                   self.seq, 0) + body)
        out = []
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                ln, typ, _flags, seq, _pid = struct.unpack_from("IHHII", data, off)
                if ln < 16:
                    raise BenchError("netlink: a message shorter than its header")
                if seq == self.seq:
                    if typ == self.NLMSG_DONE:
                        return b"".join(out)
                    if typ == self.NLMSG_ERROR:
                        err = struct.unpack_from("i", data, off + 16)[0]
                        if err == 0:
                            return b"".join(out)
                        return None
                    out.append(data[off + 16:off + ln])
                off += (ln + 3) & ~3

    def chain_mentions(self, chain: str, ips: list[str]) -> Optional[list[bool]]:
        """For each ip: does the chain's rules, or a set they look up, hold it? None when
        the chain does not exist (yet)."""
        t = self.TABLE.encode() + b"\0"
        rules = self._dump(self.NFT_MSG_GETRULE, self._attr(1, t) + self._attr(2, chain.encode() + b"\0"))
        if not rules:
            return None
        blobs = [rules]
        for name in sorted(set(re.findall(rb"(__(?:map|set)\d+|endpoints-[^\0]+)\0", rules))):
            elems = self._dump(self.NFT_MSG_GETSETELEM, self._attr(1, t) + self._attr(2, name + b"\0"))
            if elems:
                blobs.append(elems)
        out = []
        for ip in ips:
            text = re.compile(rb"(?<![0-9.])" + re.escape(ip.encode()) + rb"(?![0-9])")  # knode: endpoint chain names
            packed = socket.inet_aton(ip)  # kube-proxy v1.37: the address in a map's data
            out.append(any(text.search(b) or packed in b for b in blobs))
        return out


class Observer:
    """Tells whether what the bench wrote is programmed in one netns, per mode."""

    def __init__(self, netns: str, mode: str):
        self.netns, self.mode = netns, mode
        self.ipt = IptablesReader(netns) if mode == "iptables" else None
        self.nft = NftReader(netns) if mode == "nftables" else None
        self.read_seconds: list[float] = []

    def close(self):
        for r in (self.ipt, self.nft):
            if r:
                r.close()

    def _timed(self, fn):
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            self.read_seconds.append(time.monotonic() - t0)

    def full_sync_done(self, services: int, endpoints: int) -> bool:
        """The last Service's rules (cluster IP and every endpoint) are programmed."""
        last = services - 1
        eps = [endpoint_ip(last, j, services) for j in range(endpoints)]
        if self.ipt:
            def check():
                if not self.ipt.read():
                    return False
                return self.ipt.has_destination(cluster_ip(last)) and all(self.ipt.has_source(e) for e in eps)
            return self._timed(check)
        found = self._timed(lambda: self.nft.chain_mentions(nft_service_chain(last), eps))
        return found is not None and all(found)

    def endpoint_programmed(self, i: int, ip: str) -> bool:
        if self.ipt:
            return self._timed(lambda: self.ipt.read() and self.ipt.has_source(ip))
        found = self._timed(lambda: self.nft.chain_mentions(nft_service_chain(i), [ip]))
        return found is not None and found[0]


# --------------------------------------------------------------------------- /proc


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime: the process and the children it waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def scrape(netns: str) -> dict[str, float]:
    """The sums and counts of the sync and programming histograms from /metrics."""
    out = {}
    try:
        r = kn.http_get(netns, "127.0.0.1", METRICS_PORT, "/metrics", timeout=5)
    except (OSError, http.client.HTTPException):
        return out
    for line in r.body.splitlines():
        for name in ("kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_network_programming_duration_seconds",
                     "kubeproxy_sync_full_proxy_rules_duration_seconds",
                     "kubeproxy_sync_partial_proxy_rules_duration_seconds"):
            for suffix in ("_sum", "_count"):
                if line.startswith(name + suffix + " ") or line.startswith(name + suffix + "{"):
                    try:
                        out[name + suffix] = out.get(name + suffix, 0.0) + float(line.rsplit(" ", 1)[1])
                    except ValueError:
                        pass
    return out


# --------------------------------------------------------------------------- the proxies


class Proxy:
    key = ""
    title = ""

    def __init__(self, bench: "Bench", binary: str):
        self.bench = bench
        self.binary = binary
        self.proc: Optional[subprocess.Popen] = None
        self.netns = ""
        self.node = ""
        self.mode = ""
        self.log_path = ""
        self.helper_log = ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, mode: str, node: str, netns: str) -> float:
        """Starts the proxy; returns time.monotonic() just before the process started."""
        self.mode, self.node, self.netns = mode, node, netns
        d = os.path.join(self.bench.workdir, f"{self.key}-{mode}")
        os.makedirs(d, exist_ok=True)
        self.log_path = os.path.join(d, f"{self.key}.log")
        self.helper_log = os.path.join(d, "helpers.log")
        env = {"PATH": f"{self.bench.wrap_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "KB_REAL_DIR": self.bench.real_dir, "KB_HELPER_LOG": self.helper_log,
               "HOME": d, "LANG": "C"}
        out = open(self.log_path, "ab")
        try:
            t0 = time.monotonic()
            # setpriv: the proxy dies with this script; nsenter: its netns only; both exec.
            self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL"] + cp.nsenter(netns) + self.command(),
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        finally:
            out.close()
        return t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            raise BenchError(f"{self.title} ({self.mode}) exited (rc {rc}); log tail:\n{self.log_tail()}")

    def rss_kb(self) -> int:
        return proc_status_kb(self.proc.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return proc_status_kb(self.proc.pid, "VmHWM")

    def cpu(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def threads(self) -> int:
        return proc_status_kb(self.proc.pid, "Threads")

    def helpers(self) -> list[dict]:
        out = []
        try:
            with open(self.helper_log) as f:
                for line in f:
                    p = line.split()
                    if len(p) == 6:
                        out.append({"tool": p[0], "maxrss_kb": int(p[1]), "user": float(p[2]), "sys": float(p[3]),
                                    "wall": float(p[4]), "rc": int(p[5])})
        except FileNotFoundError:
            pass
        return out

    def stop(self) -> Optional[str]:
        if self.proc is None:
            return None
        how = "SIGTERM"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                how = "SIGKILL"
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        return how

    def last_sync_timestamp(self) -> Optional[float]:
        """kubeproxy_sync_proxy_rules_last_timestamp_seconds (the IPv4 proxier's, when
        the metric is per family), from /metrics in the proxy's netns."""
        try:
            r = kn.http_get(self.netns, "127.0.0.1", METRICS_PORT, "/metrics", timeout=5)
        except (OSError, http.client.HTTPException):
            return None
        plain, v4 = None, None
        for line in r.body.splitlines():
            if line.startswith("kubeproxy_sync_proxy_rules_last_timestamp_seconds"):
                try:
                    v = float(line.rsplit(" ", 1)[1])
                except ValueError:
                    continue
                if "IPv4" in line:
                    v4 = v
                elif "{" not in line.split(" ")[0] or plain is None:
                    plain = v
        return v4 if v4 is not None else plain

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def version(self) -> str:
        p = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30)
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "?"


class Knode(Proxy):
    key = "knode"
    title = "knode"

    def command(self) -> list[str]:
        return [self.binary, "proxy", "--kubeconfig", self.bench.kubeconfig,
                "--hostname-override", self.node, f"--proxy-mode={self.mode}",
                "--cluster-cidr", CLUSTER_CIDR,
                "--metrics-bind-address", f"127.0.0.1:{METRICS_PORT}",
                "--healthz-bind-address", f"127.0.0.1:{HEALTHZ_PORT}"] + self.bench.args.knode_arg


class KnodeJson(Knode):
    """knode reading Services and EndpointSlices as JSON instead of protobuf (its default):
    the two encodings side by side."""
    key = "knode-json"
    title = "knode (JSON)"

    def command(self) -> list[str]:
        return super().command() + ["--kube-api-content-type=application/json"]


class KubeProxy(Proxy):
    key = "kube-proxy"
    title = "kube-proxy"

    def command(self) -> list[str]:
        return [self.binary, f"--kubeconfig={self.bench.kubeconfig}",
                f"--hostname-override={self.node}", f"--proxy-mode={self.mode}",
                f"--cluster-cidr={CLUSTER_CIDR}",
                f"--metrics-bind-address=127.0.0.1:{METRICS_PORT}",
                f"--healthz-bind-address=127.0.0.1:{HEALTHZ_PORT}",
                # This host is shared: leave the global conntrack table size and hash size
                # alone (the per-netns timeouts it would set are not on the measured path
                # either), and do not make it unkillable for the OOM killer.
                "--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0", "--oom-score-adj=0"] + self.bench.args.kube_proxy_arg


# --------------------------------------------------------------------------- the bench


def compile_wrapper(workdir: str) -> str:
    out = os.path.join(workdir, "helper_wrapper")
    kn.run(["cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, "helper_wrapper.c")], timeout=120)
    return out


TOOLS_IPTABLES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


class Bench:
    def __init__(self, args):
        self.args = args
        self.c: Optional[cp.ControlPlane] = None
        self.api: Optional[Api] = None
        self.workdir = ""
        self.wrap_dir = ""
        self.real_dir = ""
        self.kubeconfig = ""
        self.proxies: list[Proxy] = []
        self.observers: list[Observer] = []
        self.node_no = 0
        self.change_no = 0
        self.results: dict = {"modes": {}}

    def setup(self):
        self.workdir = tempfile.mkdtemp(prefix="knode-pbench-", dir="/tmp")
        os.chmod(self.workdir, 0o755)
        # PATH for both proxies: the rule tools through the wrapper, to the chosen variant.
        self.wrap_dir = os.path.join(self.workdir, "path")
        self.real_dir = os.path.join(self.workdir, "real")
        os.makedirs(self.wrap_dir)
        os.makedirs(self.real_dir)
        wrapper = compile_wrapper(self.workdir)
        multi = shutil.which(f"xtables-{self.args.iptables_backend}-multi", path="/usr/sbin:/sbin:/usr/bin")
        nft = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin")
        if not multi or not nft:
            raise BenchError(f"missing xtables-{self.args.iptables_backend}-multi or nft")
        for tool in TOOLS_IPTABLES + ("nft",):
            os.symlink(wrapper, os.path.join(self.wrap_dir, tool))
            os.symlink(nft if tool == "nft" else multi, os.path.join(self.real_dir, tool))
        log("starting the control plane")
        self.c = cp.ControlPlane(log_dir=os.path.join(self.workdir, "cp-logs")).start()
        log(f"control plane ready in {self.c.timings['total']:.1f} s (netns {self.c.cp_netns})")
        crt, key = self.c.pki.issue("kube-proxy", "system:kube-proxy", client=True)
        self.kubeconfig = os.path.join(self.workdir, "kube-proxy.kubeconfig")
        cp.write_kubeconfig(self.kubeconfig, self.c.server, self.c.ca_crt, crt, key, "system:kube-proxy")
        self.api = Api(self.c)
        log(f"writing {self.args.services} Services and EndpointSlices ({self.args.endpoints} endpoints each)")
        self.results["load"] = load_objects(self.api, self.args.services, self.args.endpoints, self.args.workers)
        n = self.args.services
        log(f"wrote {n} Services + {n} EndpointSlices in {self.results['load']['seconds']:.1f} s "
            f"({2 * n / self.results['load']['seconds']:.0f} objects/s)")

    def compare_codecs(self):
        """knode's client reads the Services and EndpointSlices as JSON and as protobuf
        (tests/cluster/codec_compare.cc): bytes, decode time (median of 3), equality."""
        log("reading the objects as JSON and as protobuf (knode_codec_compare)")
        r = kn.run(["ip", "netns", "exec", self.c.cp_netns, self.args.codec_compare, "--kubeconfig", self.kubeconfig,
                    "--kind", "services", "--kind", "endpointslices", "--repeat", "3"], timeout=600)
        rep = json.loads(r.stdout)
        self.results["codec"] = rep
        for kind, k in rep.items():
            for cmp in ("listJsonVsProtobuf", "watchJsonVsProtobuf", "protobufListVsWatch"):
                if k[cmp]["differences"]:
                    raise BenchError(f"{kind}: {cmp}: {k[cmp]['differences'][:3]}")

    def add_node(self, name: str) -> str:
        self.node_no += 1
        addr = f"192.168.77.{10 + self.node_no}"
        netns = self.c.add_node_netns(name, addr)
        self.api.must("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                 "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
        self.api.must("PATCH", f"/api/v1/nodes/{name}/status",
                      {"status": {"addresses": [{"type": "InternalIP", "address": addr},
                                                {"type": "Hostname", "address": name}]}},
                      content_type="application/merge-patch+json")
        return netns

    def wait_full_sync(self, proxy: Proxy, obs: Observer, t0: float) -> float:
        deadline = t0 + self.args.sync_timeout
        n = 0
        while True:
            n += 1
            r0 = time.monotonic()
            if obs.full_sync_done(self.args.services, self.args.endpoints):
                return time.monotonic() - t0
            now = time.monotonic()
            proxy.check_alive()
            if now > deadline:
                raise BenchError(f"{proxy.title} ({proxy.mode}): no full sync within {self.args.sync_timeout:.0f} s; "
                                 f"log tail:\n{proxy.log_tail()}")
            time.sleep(max(self.args.sync_poll, now - r0))  # see changes(): the x_tables lock

    def change(self, i: int) -> tuple[str, float, float]:
        """Replaces Service i's first endpoint by a new address; returns it and the time
        the API server's answer arrived (monotonic, and wall clock)."""
        self.change_no += 1
        ip = change_ip(self.change_no)
        eps = [endpoint_entry(ip)] + [endpoint_entry(endpoint_ip(i, j, self.args.services))
                                      for j in range(1, self.args.endpoints)]
        self.api.must("PATCH", f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices/{svc_name(i)}-bench",
                      {"endpoints": eps}, content_type="application/merge-patch+json")
        return ip, time.monotonic(), time.time()

    def start_and_sync(self, proxy: Proxy, mode: str, node: str, netns: str, obs: Observer) -> dict:
        pr: dict = {"node": node, "netns": netns, "load_at_start": loadavg()}
        log(f"{mode}: starting {proxy.title} in {netns}")
        t0 = proxy.start(mode, node, netns)
        pr["initial_sync_seconds"] = self.wait_full_sync(proxy, obs, t0)
        pr["observer_read_seconds_median_sync"] = statistics.median(obs.read_seconds)
        pr["rss_kb_after_sync"] = proxy.rss_kb()
        pr["hwm_kb_after_sync"] = proxy.hwm_kb()
        pr["helpers_sync"] = proxy.helpers()
        log(f"{mode}: {proxy.title}: full sync programmed {pr['initial_sync_seconds']:.2f} s after start; "
            f"RSS {pr['rss_kb_after_sync'] / 1000:.1f} MB (peak {pr['hwm_kb_after_sync'] / 1000:.1f} MB); "
            f"load {loadavg()}")
        time.sleep(self.args.settle)
        pr["rss_kb_settled"] = proxy.rss_kb()
        # Read after the settle time: a rule tool's CPU reaches the proxy's count when the
        # proxy reaps it, which may be after the rules showed.
        pr["initial_sync_cpu_seconds"] = proxy.cpu()
        return pr

    def changes(self, mode: str, running: list[tuple[Proxy, Observer, dict]]):
        """--changes single-endpoint changes, each observed in the namespace of every
        running proxy at once (one thread per namespace); the samples go to each proxy's
        result as "changes"."""
        for proxy, obs, pr in running:
            pr["cpu_before_changes"] = proxy.cpu()
            pr["changes"] = []
            obs.read_seconds = []
        n = self.args.changes
        gaps = random.Random(15)  # the same sequence of gaps in every run, mode and proxy
        stride = max(1, (self.args.services - 1) // n)
        for k in range(n):
            i = (k * stride + 7) % (self.args.services - 1)  # spread over the Services; never the last
            for proxy, _obs, _pr in running:
                proxy.check_alive()
            ip, t0, t0_wall = self.change(i)
            seen: dict[str, Optional[float]] = {}
            before: dict[str, float] = {}  # when the last read that did not show it started
            stamped: dict[str, Optional[float]] = {}  # the proxy's own time of its last sync

            def watch(proxy: Proxy, obs: Observer):
                deadline = t0 + self.args.change_timeout
                before[proxy.key] = 0.0
                while True:
                    r0 = time.monotonic()
                    if obs.endpoint_programmed(i, ip):
                        seen[proxy.key] = time.monotonic() - t0
                        # The proxy may set its timestamp a little after the kernel has
                        # the rule (kube-proxy: when nft or iptables-restore has exited).
                        for _ in range(4):
                            ts = proxy.last_sync_timestamp()
                            stamped[proxy.key] = ts - t0_wall if ts is not None else None
                            if ts is None or ts - t0_wall >= before[proxy.key]:
                                break
                            time.sleep(0.05)
                        return
                    before[proxy.key] = r0 - t0
                    now = time.monotonic()
                    if now > deadline or not proxy.alive():
                        seen[proxy.key] = None
                        return
                    # A read of a large x_tables table holds the kernel's x_tables lock
                    # (global, for every netns) as long as it copies; wait at least as
                    # long as the read took, so the proxy's own write is held up by at
                    # most one read and the bench takes at most half of a core.
                    time.sleep(max(self.args.poll_interval, now - r0))

            threads = [threading.Thread(target=watch, args=(p, o), daemon=True) for p, o, _pr in running]
            for t in threads:
                t.start()
            for t in threads:
                t.join(self.args.change_timeout + 120)
            for proxy, _obs, pr in running:
                # seconds: when the first read showing it returned (the figure, an upper
                # bound); not_before: when the last read not showing it started.
                # stamped: the proxy's kubeproxy_sync_proxy_rules_last_timestamp_seconds,
                # read right after the rule showed, relative to the write.
                pr["changes"].append({"service": i, "ip": ip, "seconds": seen.get(proxy.key),
                                      "not_before": before.get(proxy.key), "stamped": stamped.get(proxy.key)})
            log(f"{mode}: change {k + 1}/{n} ({svc_name(i)} -> {ip}): " +
                ", ".join(f"{p.title} {seen[p.key] * 1000:.0f} ms" if seen.get(p.key) is not None
                          else f"{p.title} NOT SEEN" for p, _o, _pr in running) + f"; load {loadavg()}")
            time.sleep(gaps.uniform(*self.args.change_gap))
        for proxy, obs, pr in running:
            proxy.check_alive()
            pr["changes_cpu_seconds"] = proxy.cpu() - pr["cpu_before_changes"]
            pr["observer_read_seconds_median_changes"] = statistics.median(obs.read_seconds) if obs.read_seconds else 0
            pr["rss_kb_after_changes"] = proxy.rss_kb()
            pr["hwm_kb_end"] = proxy.hwm_kb()
            pr["threads"] = proxy.threads()
            pr["cpu_seconds_total"] = proxy.cpu()
            pr["metrics"] = scrape(proxy.netns)
            pr["helpers"] = proxy.helpers()
            lat = [c["seconds"] for c in pr["changes"] if c["seconds"] is not None]
            pr["changes_seen"] = len(lat)
            if lat:
                log(f"{mode}: {proxy.title}: change -> rule p50 {statistics.median(lat) * 1000:.0f} ms, "
                    f"p99 {percentile(lat, 0.99) * 1000:.0f} ms ({len(lat)}/{n} seen; one read of the rules "
                    f"{pr['observer_read_seconds_median_changes'] * 1000:.1f} ms); RSS "
                    f"{pr['rss_kb_after_changes'] / 1000:.1f} MB, peak {pr['hwm_kb_end'] / 1000:.1f} MB")

    def run_mode(self, mode: str) -> dict:
        """Each proxy alone (default): start, first full sync, changes, stop, then the next
        one. --together: both started (one after the other), then the changes with both
        running."""
        res: dict = {"mode": mode, "together": self.args.together, "proxies": {}}
        short = {"iptables": "ipt", "nftables": "nft"}[mode]
        running = []
        for proxy in self.proxies:
            node = f"{proxy.key.replace('-', '')}-{short}"  # knode-ipt, kubeproxy-nft
            netns = self.add_node(node)
            obs = Observer(netns, mode)
            self.observers.append(obs)
            pr = self.start_and_sync(proxy, mode, node, netns, obs)
            res["proxies"][proxy.key] = pr
            if self.args.together:
                running.append((proxy, obs, pr))
                continue
            self.changes(mode, [(proxy, obs, pr)])
            pr["stopped_by"] = proxy.stop()
            obs.close()
        if running:
            self.changes(mode, running)
            for proxy, obs, pr in running:
                pr["stopped_by"] = proxy.stop()
                obs.close()
        return res

    def run(self):
        self.results.update({
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "load_start": loadavg(),
            "services": self.args.services, "endpoints": self.args.endpoints, "changes": self.args.changes,
            "iptables_backend": self.args.iptables_backend, "poll_interval": self.args.poll_interval,
            "change_gap": self.args.change_gap, "settle": self.args.settle, "together": self.args.together,
            "versions": {p.key: p.version() for p in self.proxies},
            "knode_commit": self.args.knode_commit,
        })
        self.setup()
        if self.args.codec_compare:
            self.compare_codecs()
        for mode in self.args.modes.split(","):
            self.results["modes"][mode] = self.run_mode(mode.strip())
        self.results["load_end"] = loadavg()
        self.results["control_plane_rss_mib"] = self.c.rss_mib()

    def teardown(self) -> list[str]:
        for p in self.proxies:
            try:
                p.stop()
            except Exception as e:  # keep tearing down
                log(f"stopping {p.title}: {e!r}")
        for o in self.observers:
            o.close()
        if self.api:
            self.api.close()
        if self.args.keep_logs and self.workdir:
            os.makedirs(self.args.keep_logs, exist_ok=True)
            for root, _dirs, files in os.walk(self.workdir):
                for f in files:
                    if f.endswith(".log"):
                        rel = os.path.relpath(os.path.join(root, f), self.workdir).replace("/", "_")
                        shutil.copy(os.path.join(root, f), os.path.join(self.args.keep_logs, rel))
        problems = self.c.stop() if self.c else []
        if self.workdir and not problems:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems


# --------------------------------------------------------------------------- report


def helper_peak_mb(h: list[dict]) -> float:
    return max((x["maxrss_kb"] for x in h), default=0) * 1024 / 1e6


def helper_cpu(h: list[dict]) -> float:
    return sum(x["user"] + x["sys"] for x in h)


def refine(c: dict) -> float:
    """A change's time by the proxy's own last-sync timestamp when the kernel reads
    confirm it (after the start of the last read without the rule, before the first read
    with it returned); otherwise the reads' upper bound."""
    st = c.get("stamped")
    if st is None or not c["not_before"] <= st <= c["seconds"]:
        return c["seconds"]
    return st


def table(res: dict, mode: str) -> str:
    m = res["modes"][mode]
    keys = [k for k in ("knode", "knode-json", "kube-proxy") if k in m["proxies"]]
    ps = [m["proxies"][k] for k in keys]
    n = len(ps[0]["changes"])

    def lat(k, refined=False):
        return [refine(c) if refined else c["seconds"] for c in m["proxies"][k]["changes"]
                if c["seconds"] is not None]

    def row(label, vals, fmt, ratio=True):
        cells = [fmt.format(v) if v is not None else "—" for v in vals]
        r = ""
        if ratio and len(vals) == 2 and vals[0] and vals[1] is not None:
            r = f"{vals[1] / vals[0]:.1f}×"
        return f"| {label} | " + " | ".join(cells) + (f" | {r} |" if len(keys) == 2 else " |")

    def safe(fn, k, refined=False):
        v = lat(k, refined)
        return fn(v) if v else None

    head = "| | " + " | ".join(keys) + (f" | {keys[1]} ÷ {keys[0]} |" if len(keys) == 2 else " |")
    sep = "|---|" + "---:|" * len(keys) + ("---:|" if len(keys) == 2 else "")
    helpers_sync = [p["helpers_sync"] for p in ps]
    helpers_all = [p["helpers"] for p in ps]
    lines = [head, sep,
             row("process start → first full sync programmed", [p["initial_sync_seconds"] for p in ps], "{:.2f} s"),
             row(f"CPU seconds from the start to {res['settle']:g} s after it (children included)",
                 [p["initial_sync_cpu_seconds"] for p in ps], "{:.1f}"),
             row(f"one EndpointSlice change → rule in the kernel: p50 (n={n})",
                 [safe(statistics.median, k) for k in keys], "{:.3f} s"),
             row(f"same, p99 (n={n})", [safe(lambda v: percentile(v, 0.99), k) for k in keys], "{:.3f} s"),
             row("same, max", [safe(max, k) for k in keys], "{:.3f} s"),
             row("same, by the proxy's own last-sync time where the reads confirm it: p50",
                 [safe(statistics.median, k, refined=True) for k in keys], "{:.3f} s"),
             row("same, by the proxy's own last-sync time: p99",
                 [safe(lambda v: percentile(v, 0.99), k, refined=True) for k in keys], "{:.3f} s"),
             row("(changes whose last-sync time the reads confirm)",
                 [sum(1 for c in m["proxies"][k]["changes"] if c["seconds"] is not None and refine(c) != c["seconds"])
                  for k in keys], "{}", ratio=False),
             row("changes not seen within the timeout", [n - len(lat(k)) for k in keys], "{}", ratio=False),
             row(f"CPU seconds over the {n} changes (children included)",
                 [p["changes_cpu_seconds"] for p in ps], "{:.1f}"),
             row(f"RSS {res['settle']:g} s after the initial sync", [p["rss_kb_settled"] * 1024 / 1e6 for p in ps],
                 "{:.1f} MB"),
             row(f"RSS after the {n} changes", [p["rss_kb_after_changes"] * 1024 / 1e6 for p in ps], "{:.1f} MB"),
             row("peak RSS (VmHWM)", [p["hwm_kb_end"] * 1024 / 1e6 for p in ps], "{:.1f} MB"),
             row("rule tools run (iptables-restore, nft, ...): calls",
                 [len(h) for h in helpers_all], "{}", ratio=False),
             row("rule tools: peak RSS of one call", [helper_peak_mb(h) or None for h in helpers_all], "{:.1f} MB",
                 ratio=False),
             row("rule tools: CPU seconds (initial sync / all)",
                 [f"{helper_cpu(s):.1f} / {helper_cpu(a):.1f}" for s, a in zip(helpers_sync, helpers_all)], "{}",
                 ratio=False),
             row("threads", [p["threads"] for p in ps], "{}", ratio=False),
             row("(one read of the kernel's rules by the bench, median)",
                 [p["observer_read_seconds_median_changes"] * 1000 for p in ps], "{:.1f} ms", ratio=False),
             row("(a change's uncertainty: from the last read without it to the first with it, median)",
                 [statistics.median(c["seconds"] - c["not_before"] for c in m["proxies"][k]["changes"]
                                    if c["seconds"] is not None) * 1000 if lat(k) else None for k in keys],
                 "{:.0f} ms", ratio=False)]
    return "\n".join(lines)


def codec_table(rep: dict) -> str:
    """The lists as JSON and as protobuf through knode's client (one page each)."""
    lines = ["| whole list through knode's client | bytes JSON | bytes protobuf | decode JSON | decode protobuf "
             "| objects equal (list / watch) |", "|---|---:|---:|---:|---:|---:|"]
    for kind, k in rep.items():
        lj, lp = k["list"]["json"], k["list"]["protobuf"]
        d = k.get("decodeMsMedian", {})
        lines.append(f"| {kind} ({lj['objects']}) | {lj['bytes'] / 1e6:.1f} MB | {lp['bytes'] / 1e6:.1f} MB "
                     f"| {d.get('json', 0):.0f} ms | {d.get('protobuf', 0):.0f} ms "
                     f"| {k['listJsonVsProtobuf']['equal']} / {k['watchJsonVsProtobuf']['equal']} |")
    return "\n".join(lines)


def verdict(res: dict, mode: str) -> list[str]:
    m = res["modes"][mode]
    k = m["proxies"].get("knode")
    u = m["proxies"].get("kube-proxy")
    out = []
    if not k:
        return out
    lat = [c["seconds"] for c in k["changes"] if c["seconds"] is not None]
    p99 = percentile(lat, 0.99) if lat else float("inf")
    rss = max(k["rss_kb_settled"], k["rss_kb_after_changes"]) * 1024 / 1e6
    out.append(f"- knode initial sync ≤ 3 s: {'met' if k['initial_sync_seconds'] <= 3 else 'NOT met'} "
               f"({k['initial_sync_seconds']:.2f} s)")
    out.append(f"- knode change → rule p99 ≤ 100 ms: {'met' if p99 <= 0.1 else 'NOT met'} ({p99 * 1000:.0f} ms)")
    out.append(f"- knode RSS ≤ 60 MB: {'met' if rss <= 60 else 'NOT met'} ({rss:.1f} MB)")
    if u:
        ulat = [c["seconds"] for c in u["changes"] if c["seconds"] is not None]
        up99 = percentile(ulat, 0.99) if ulat else float("inf")
        urss = max(u["rss_kb_settled"], u["rss_kb_after_changes"]) * 1024 / 1e6
        ahead = {"initial sync": k["initial_sync_seconds"] < u["initial_sync_seconds"],
                 "change p99": p99 < up99, "change p50": (statistics.median(lat) if lat else 1e9) <
                 (statistics.median(ulat) if ulat else 1e9), "RSS": rss < urss,
                 "peak RSS": k["hwm_kb_end"] < u["hwm_kb_end"]}
        behind = [w for w, v in ahead.items() if not v]
        out.append(f"- knode ahead of kube-proxy on every figure: {'yes' if not behind else 'NO (behind on ' + ', '.join(behind) + ')'}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--knode", default=os.path.join(REPO, "build", "cmd", "knode", "knode"),
                    help="knode binary (copied to the work directory at the start)")
    ap.add_argument("--kube-proxy", default=os.path.join(cp.bin_dir(), "kube-proxy"),
                    help="upstream kube-proxy (scripts/cluster/build-control-plane.sh builds it)")
    ap.add_argument("--proxies", default="knode,kube-proxy",
                    help="which, in this order: knode, knode-json (knode reading JSON, not protobuf), kube-proxy")
    ap.add_argument("--modes", default="iptables,nftables")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=16, help="concurrent API writers for the initial objects")
    ap.add_argument("--sync-timeout", type=float, default=1200, help="seconds a proxy may take to its first full sync")
    ap.add_argument("--sync-poll", type=float, default=0.05, help="sleep between reads while waiting for the full sync")
    ap.add_argument("--change-timeout", type=float, default=120, help="seconds a change may take to show")
    ap.add_argument("--poll-interval", type=float, default=0.005, help="sleep between two reads of one netns's rules")
    ap.add_argument("--change-gap", type=lambda v: tuple(float(x) for x in v.split(",")), default=(1.0, 3.0),
                    metavar="MIN,MAX", help="seconds between a change seen by both and the next: uniform in "
                    "[MIN, MAX] from a fixed seed, so changes fall at every phase of the proxies' own "
                    "timers (the 1 s min sync period, 30 s resyncs)")
    ap.add_argument("--together", action="store_true",
                    help="run the changes with both proxies running and both namespaces polled at once "
                         "(default: each proxy alone, the other stopped)")
    ap.add_argument("--settle", type=float, default=5, help="seconds after a proxy's full sync before the next step")
    ap.add_argument("--iptables-backend", choices=("legacy", "nft"), default="legacy",
                    help="what iptables* mean in the proxies' PATH (knode writes legacy x_tables itself; "
                         "the bench reads the legacy tables, so only legacy measures kube-proxy)")
    ap.add_argument("--knode-arg", action="append", default=[], help="one more flag for knode (repeatable)")
    ap.add_argument("--kube-proxy-arg", action="append", default=[], help="one more flag for kube-proxy (repeatable)")
    ap.add_argument("--codec-compare", nargs="?", const=os.path.join(REPO, "build", "tests", "cluster",
                                                                      "knode_codec_compare"),
                    help="after writing the objects, read them through knode's client as JSON and as protobuf "
                         "and print bytes and decode times (the knode_codec_compare binary; default: the build's)")
    ap.add_argument("--json", help="write every sample here")
    ap.add_argument("--keep-logs", help="copy the proxies', helpers' and control plane's logs here")
    args = ap.parse_args()

    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 1
    missing = cp.missing_tools() + [f"`{t}`" for t in ("nft", "cc") if shutil.which(t) is None]
    missing += [f"{b} in {cp.bin_dir()}" for b in cp.missing_binaries()]
    for path, what in ((args.knode, "knode (ninja -C build knode)"),
                       (args.kube_proxy, "kube-proxy (scripts/cluster/build-control-plane.sh)")):
        if not os.access(path, os.X_OK):
            missing.append(f"{what}: {path}")
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    if args.iptables_backend != "legacy" and "iptables" in args.modes:
        print("--iptables-backend nft: the bench reads legacy x_tables only", file=sys.stderr)
        return 2
    if args.services < 2 or args.endpoints < 1 or args.endpoints > 254 or args.changes < 1:
        print("--services ≥ 2, 1 ≤ --endpoints ≤ 254, --changes ≥ 1", file=sys.stderr)
        return 2

    cp.terminate_on_sigterm()
    # The binary under test is copied first: a rebuild during the run does not change it.
    src = os.path.realpath(args.knode)
    args.knode_commit = "?"
    try:
        src_repo = kn.run(["git", "-C", os.path.dirname(src), "rev-parse", "--show-toplevel"], timeout=10).stdout.strip()
        head = kn.run(["git", "-C", src_repo, "rev-parse", "--short=12", "HEAD"], timeout=10).stdout.strip()
        dirty = sorted({l[3:].split("/")[0] for l in kn.run(["git", "-C", src_repo, "status", "--porcelain"],
                                                             timeout=30).stdout.splitlines() if l.strip()})
        args.knode_commit = f"{head} of {src_repo}" + (f" (uncommitted changes under {', '.join(dirty)})" if dirty else "")
        build_dir = os.path.dirname(os.path.dirname(os.path.dirname(src)))  # <build>/cmd/knode/knode
        if os.path.exists(os.path.join(build_dir, "build.ninja")) and shutil.which("ninja"):
            dry = kn.run(["ninja", "-C", build_dir, "-n", "knode"], check=False, timeout=120).stdout
            args.knode_commit += ("; the binary is up to date with it (ninja -n: no work to do)"
                                  if "no work to do" in dry else "; the binary is NOT up to date with it")
    except (RuntimeError, subprocess.TimeoutExpired):
        pass
    bench = Bench(args)
    tmp_bin = tempfile.mkdtemp(prefix="knode-pbench-bin-", dir="/tmp")
    knode_copy = os.path.join(tmp_bin, "knode")
    shutil.copy2(src, knode_copy)
    for key in [p.strip() for p in args.proxies.split(",") if p.strip()]:
        if key == "knode":
            bench.proxies.append(Knode(bench, knode_copy))
        elif key == "knode-json":
            bench.proxies.append(KnodeJson(bench, knode_copy))
        elif key == "kube-proxy":
            bench.proxies.append(KubeProxy(bench, os.path.realpath(args.kube_proxy)))
        else:
            print(f"unknown proxy {key!r}", file=sys.stderr)
            return 2
    t_start = time.monotonic()
    rc = 0
    try:
        bench.run()
    except (BenchError, AssertionError, KeyboardInterrupt, SystemExit) as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        rc = 1
    except Exception:  # a bug or an unexpected failure: the trace, then the same teardown
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        problems = bench.teardown()
        shutil.rmtree(tmp_bin, ignore_errors=True)
        if problems:
            print(f"teardown left: {problems}", file=sys.stderr)
            rc = rc or 1
    res = bench.results
    res["run_seconds"] = time.monotonic() - t_start
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    done = [m for m in res["modes"]]
    if done:
        v = res["versions"]
        print(f"\n### proxy benchmark, {res['date']}: {res['services']} Services × {res['endpoints']} endpoints, "
              f"kernel {res['kernel']}, {res['cpus']} CPUs, load {res['load_start']} → {res.get('load_end', '?')}\n")
        print(f"knode `{v.get('knode', '?')}` at {res['knode_commit']}; kube-proxy `{v.get('kube-proxy', '?')}`. "
              f"Objects written in {res['load']['seconds']:.1f} s. Rules read from the kernel in each proxy's netns "
              f"(iptables: the nat table's blob; nftables: a netlink dump of the Service's chain and its maps), "
              f"polled every {res['poll_interval'] * 1000:.0f} ms, or after as long as the last read took if "
              f"longer; a change is timed from the API write's answer; "
              f"p99 is the nearest rank (with n ≤ 100, the slowest). Between a change seen by both and the next: "
              f"{res['change_gap'][0]:g}–{res['change_gap'][1]:g} s (uniform, fixed seed). "
              + ("Both proxies ran during the changes, both namespaces polled at once."
                 if res["together"] else "Each proxy ran alone: started, synced, changed, stopped, then the other.")
              + "\n")
        if "codec" in res:
            print(codec_table(res["codec"]))
            print()
        for mode in done:
            print(f"**{mode}**\n")
            print(table(res, mode))
            print()
            print("\n".join(verdict(res, mode)))
            print()
        print(f"One run: {res['run_seconds'] / 60:.1f} min.")
    return rc


if __name__ == "__main__":
    sys.exit(main())
