"""Namespace-tier harness for knode's service proxy (see DESIGN.md, "Testing tiers").

Everything here lives in network namespaces the test creates itself:

    client netns (outside host)          node netns (knode runs here)            pod netns x N
    eth0 192.168.50.2/24  <-- veth -->   vcl 192.168.50.1/24
    default via 192.168.50.1             kbr0 10.244.0.1/24 (bridge)  <-- veth --> eth0 10.244.0.1x/24
                                         ip_forward=1, hairpin on ports             default via 10.244.0.1
                                         up0 (empty bridge) 172.31.255.1/24, default via 172.31.255.254

Nothing is added to the root namespace: links are created with `ip -n <ns>` directly in
the test's namespaces (veth peers are moved straight into the pod/client netns), and
every address exists only inside them.

The pod servers run in this (the test) process: each listening socket is created in
its pod's netns by a helper thread that setns()'s into it, so the sockets are really
in the pod netns while the process stays simple to tear down. Clients are made the
same way. Every loop here is bounded in count and time.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import http.client
import os
import unittest
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Callable, Optional

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
PREFIX = "knt"  # every namespace of this harness is named knt<pid>-<role>

_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- basics


def knode_binary() -> str:
    """The knode binary under test ($KNODE_BIN); skips the test when it is missing."""
    b = os.environ.get("KNODE_BIN", "")
    if not b or not os.access(b, os.X_OK):
        raise unittest.SkipTest(f"knode binary not found (KNODE_BIN={b!r})")
    return b


def run(cmd: list[str], check: bool = True, timeout: float = 20.0, input: Optional[str] = None
        ) -> subprocess.CompletedProcess:
    """Runs a command (never through a shell), bounded in time."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    return p


def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Polls pred() until it returns something truthy, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def in_netns(netns: str, fn: Callable[[], object]):
    """Runs fn() on a helper thread that has entered netns; returns its result.

    Sockets keep the namespace they were created in, so fn can create a socket that the
    caller then uses from any thread."""
    box: dict = {}

    def body():
        try:
            fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({netns}): {os.strerror(e)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=body, name=f"setns-{netns}", daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():
        raise RuntimeError(f"helper thread in {netns} did not finish")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def ns_socket(netns: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    return in_netns(netns, lambda: socket.socket(socket.AF_INET, kind))


def _deathsig_prefix() -> list[str]:
    """knode dies with the test process even when the test is killed outright (SIGKILL
    from a CTest timeout): util-linux's setpriv sets the parent-death signal, which
    survives the exec of `ip netns exec` and of knode. (A preexec_fn would do the same
    but is unsafe in this multi-threaded process.)"""
    return ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


def ip_netns_available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root (network namespaces, iptables)"
    if shutil.which("ip") is None:
        return False, "iproute2's `ip` is not installed"
    if shutil.which("iptables-legacy-save") is None:
        return False, "iptables-legacy-save is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        return False, f"`ip netns add` does not work here: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
    return True, ""


def remove_stale_namespaces():
    """Deletes namespaces left by runs of this harness whose process is gone (SIGKILL)."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines()[:1000]:
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}(\d+)-[a-z0-9-]+", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        run(["ip", "netns", "del", name], check=False)
    # ... and their temporary manifest directories.
    tmp = tempfile.gettempdir()
    for entry in sorted(os.listdir(tmp))[:10000]:
        m = re.fullmatch(r"knode-(?:netns|agent)-(\d+)-\w+", entry)
        if m and int(m.group(1)) != os.getpid() and not os.path.exists(f"/proc/{m.group(1)}"):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)


# --------------------------------------------------------------------------- pod servers


class PodServer:
    """HTTP + line-echo TCP servers and a UDP echo server in one pod netns.

    TCP: a request starting with "GET " gets an HTTP/1.0 answer whose body is
        You've hit <name>\\npeer=<ip>:<port>\\nport=<local port>\\n
    anything else is a line protocol: every line gets "<name>: <line>" back (used to
    keep one TCP connection open across a restart of knode).
    UDP: every datagram is answered with "You've hit <name>\\npeer=<ip>:<port>\\n".
    A TCP connection lives at most MAX_CONNECTION_SECONDS (a bound on every test's threads).
    """

    MAX_CONNECTION_SECONDS = 120.0

    def __init__(self, netns: str, name: str, tcp_ports: list[int], udp_ports: list[int]):
        self.netns, self.name = netns, name
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        for port in tcp_ports:
            s = ns_socket(netns, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(64)
            s.settimeout(0.2)
            self.socks.append(s)
            self._spawn(self._accept_loop, s, port)
        for port in udp_ports:
            s = ns_socket(netns, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            s.settimeout(0.2)
            self.socks.append(s)
            self._spawn(self._udp_loop, s)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"{self.name}-srv")
        t.start()
        self.threads.append(t)

    def _accept_loop(self, s: socket.socket, port: int):
        while not self.stopping.is_set():
            try:
                conn, peer = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn, peer, port)

    def _serve(self, conn: socket.socket, peer, port: int):
        conn.settimeout(1.0)
        buf = b""
        idle_deadline = time.monotonic() + self.MAX_CONNECTION_SECONDS
        try:
            while not self.stopping.is_set() and time.monotonic() < idle_deadline:
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf += chunk
                if buf.startswith(b"GET "):
                    if b"\r\n\r\n" not in buf and len(buf) < 8192:
                        continue
                    body = f"You've hit {self.name}\npeer={peer[0]}:{peer[1]}\nport={port}\n".encode()
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    return
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(f"{self.name}: ".encode() + line + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    def _udp_loop(self, s: socket.socket):
        while not self.stopping.is_set():
            try:
                _, peer = s.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s.sendto(f"You've hit {self.name}\npeer={peer[0]}:{peer[1]}\n".encode(), peer)
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads[:200]:
            t.join(2)


# --------------------------------------------------------------------------- clients


class Reply:
    def __init__(self, status: int, body: str):
        self.status, self.body = status, body
        lines = body.splitlines()
        m = re.fullmatch(r"You've hit (\S+)", lines[0]) if lines else None
        self.pod = m.group(1) if m else None
        self.fields = dict(l.split("=", 1) for l in lines[1:] if "=" in l)

    @property
    def peer_ip(self) -> Optional[str]:
        p = self.fields.get("peer")
        return p.rsplit(":", 1)[0] if p else None

    def __repr__(self):
        return f"Reply({self.status}, {self.body!r})"


class NsHTTPConnection(http.client.HTTPConnection):
    """HTTP over a TCP connection made in netns."""

    def __init__(self, netns: str, host: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self):
        s = ns_socket(self._netns)
        s.settimeout(self.timeout)
        try:
            s.connect((self.host, self.port))
        except BaseException:
            s.close()
            raise
        self.sock = s


def http_get(netns: str, host: str, port: int, path: str = "/", timeout: float = 3.0) -> Reply:
    c = NsHTTPConnection(netns, host, port, timeout)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        return Reply(r.status, r.read().decode(errors="replace"))
    finally:
        c.close()


def hits(netns: str, host: str, port: int, n: int, timeout: float = 3.0) -> list[Reply]:
    """n HTTP requests, each on a new connection (so each is load balanced anew)."""
    out = []
    for i in range(n):
        try:
            out.append(http_get(netns, host, port, timeout=timeout))
        except (OSError, http.client.HTTPException) as e:
            raise AssertionError(f"request {i + 1}/{n} to {host}:{port} from {netns} failed: {e!r} "
                                 f"(answers so far: {[r.pod for r in out]})") from None
    return out


def connect_error(netns: str, host: str, port: int, timeout: float = 3.0) -> tuple[Optional[int], float]:
    """Tries a TCP connect; returns (errno or None if it connected, seconds taken)."""
    s = ns_socket(netns)
    s.settimeout(timeout)
    t0 = time.monotonic()
    try:
        s.connect((host, port))
        return None, time.monotonic() - t0
    except socket.timeout:
        return errno.ETIMEDOUT, time.monotonic() - t0
    except OSError as e:
        return e.errno, time.monotonic() - t0
    finally:
        s.close()


class UdpClient:
    """One UDP socket with a fixed source port (so every datagram is one conntrack flow)."""

    def __init__(self, netns: str, src_port: int):
        self.sock = ns_socket(netns, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", src_port))

    def ask(self, host: str, port: int, timeout: float = 2.0) -> Optional[Reply]:
        self.sock.settimeout(timeout)
        self.sock.sendto(b"hello\n", (host, port))
        try:
            data, _ = self.sock.recvfrom(2048)
        except socket.timeout:
            return None
        return Reply(0, data.decode(errors="replace"))

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------- topology


class Topology:
    """node netns + bridge, pods, client; see the module docstring."""

    BRIDGE = "kbr0"
    NODE_BRIDGE_IP = "10.244.0.1"
    NODE_CLIENT_IP = "192.168.50.1"
    CLIENT_IP = "192.168.50.2"
    NODE_UPLINK_IP = "172.31.255.1"
    UPLINK_GW = "172.31.255.254"

    def __init__(self, n_pods: int = 3, tcp_ports=(8080, 8081), udp_ports=(5353,)):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.node = f"{self.tag}-node"
        self.client = f"{self.tag}-client"
        self.pods: list[str] = []      # pod names (what the servers answer)
        self.pod_ns: dict[str, str] = {}
        self.pod_ip: dict[str, str] = {}
        self.servers: list[PodServer] = []
        self._namespaces: list[str] = []
        atexit.register(self.destroy)
        try:
            self._build(n_pods, list(tcp_ports), list(udp_ports))
        except BaseException:
            self.destroy()
            raise

    def _add_ns(self, name: str):
        run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _build(self, n_pods: int, tcp_ports: list[int], udp_ports: list[int]):
        node = self.node
        self._add_ns(node)
        self._add_ns(self.client)
        run(["ip", "-n", node, "link", "add", self.BRIDGE, "type", "bridge"])
        run(["ip", "-n", node, "addr", "add", f"{self.NODE_BRIDGE_IP}/24", "dev", self.BRIDGE])
        run(["ip", "-n", node, "link", "set", self.BRIDGE, "up"])
        sysctl(node, "net.ipv4.ip_forward", "1")
        for i in range(1, n_pods + 1):
            pod = f"pod{i}"
            ns = f"{self.tag}-{pod}"
            self._add_ns(ns)
            port = f"vp{i}"
            run(["ip", "-n", node, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "-n", node, "link", "set", port, "master", self.BRIDGE])
            # A pod reaching itself through its service comes back out of its own port.
            run(["ip", "-n", node, "link", "set", port, "type", "bridge_slave", "hairpin", "on"])
            run(["ip", "-n", node, "link", "set", port, "up"])
            ip = f"10.244.0.{10 + i}"
            run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "route", "add", "default", "via", self.NODE_BRIDGE_IP])
            self.pods.append(pod)
            self.pod_ns[pod] = ns
            self.pod_ip[pod] = ip
        run(["ip", "-n", node, "link", "add", "vcl", "type", "veth", "peer", "name", "eth0", "netns", self.client])
        run(["ip", "-n", node, "addr", "add", f"{self.NODE_CLIENT_IP}/24", "dev", "vcl"])
        run(["ip", "-n", node, "link", "set", "vcl", "up"])
        run(["ip", "-n", self.client, "addr", "add", f"{self.CLIENT_IP}/24", "dev", "eth0"])
        run(["ip", "-n", self.client, "link", "set", "eth0", "up"])
        # The outside host reaches the service CIDR (and everything else) through the node.
        run(["ip", "-n", self.client, "route", "add", "default", "via", self.NODE_CLIENT_IP])
        # Like any real node, the node has a default route, here into an "uplink" that
        # goes nowhere (a bridge without ports: this kernel has no dummy driver).
        # Without one, a packet to a cluster IP that no DNAT rewrote fails the routing
        # decision (ENETUNREACH) before the filter table's REJECT can answer it. (A
        # default route back through the client's veth would not do: the ICMP redirect
        # the node then sends uses up the per-host ICMP rate limit and swallows the
        # REJECT's port-unreachable.)
        run(["ip", "-n", node, "link", "add", "up0", "type", "bridge"])
        run(["ip", "-n", node, "addr", "add", f"{self.NODE_UPLINK_IP}/24", "dev", "up0"])
        run(["ip", "-n", node, "link", "set", "up0", "up"])
        run(["ip", "-n", node, "route", "add", "default", "via", self.UPLINK_GW, "dev", "up0"])
        for pod in self.pods:
            self.servers.append(PodServer(self.pod_ns[pod], pod, tcp_ports, udp_ports))
        # Every pod answers directly before any test relies on it (bridge ports need a
        # moment to reach forwarding state).
        for pod in self.pods:
            wait_for(lambda: http_get(self.client, self.pod_ip[pod], tcp_ports[0], timeout=0.5).pod == pod,
                     10, f"{pod} to answer directly from the client netns")

    def destroy(self):
        for s in self.servers:
            s.stop()
        self.servers = []
        for ns in reversed(self._namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self._namespaces = []


def sysctl(netns: str, key: str, value: str):
    path = "/proc/sys/" + key.replace(".", "/")

    def write():
        with open(path, "w") as f:
            f.write(value)

    # /proc/sys/net follows the network namespace of the thread that opens it.
    in_netns(netns, write)


# --------------------------------------------------------------------------- iptables


def iptables_save(netns: str, table: Optional[str] = None) -> str:
    cmd = ["ip", "netns", "exec", netns, "iptables-legacy-save"]
    if table:
        cmd += ["-t", table]
    return run(cmd).stdout


def kube_chains(netns: str) -> set[str]:
    """Every KUBE-* chain in any legacy table of netns."""
    out = set()
    for line in iptables_save(netns).splitlines():
        if line.startswith(":KUBE-"):
            out.add(line[1:].split()[0])
    return out


def rule_lines(netns: str) -> list[str]:
    """Chain headers and rules of the nat and filter tables, without counters."""
    out = []
    for table in ("nat", "filter"):
        for line in iptables_save(netns, table).splitlines():
            if line.startswith(":"):
                out.append(f"{table} {line.split()[0]}")
            elif line.startswith("-A"):
                out.append(f"{table} {line}")
    return out


def dnat_targets(netns: str, service_port_name: str) -> set[str]:
    """The ip:port endpoints a service port DNATs to (from its KUBE-SEP- chains)."""
    out = set()
    for line in iptables_save(netns, "nat").splitlines():
        if line.startswith("-A KUBE-SEP-") and "-j DNAT" in line and f'"{service_port_name}"' in line:
            m = re.search(r"--to-destination (\S+)", line)
            if m:
                out.add(m.group(1))
    return out


def lines_mentioning(netns: str, text: str) -> list[str]:
    return [l for l in iptables_save(netns).splitlines() if text in l]


# --------------------------------------------------------------------------- views

SERVICE_CHAIN_RE = {
    "iptables": re.compile(r"\b(KUBE-(?:SVC|SEP|EXT|SVL|FW)-[A-Z0-9]{16})\b"),
    "nftables": re.compile(r"\b((?:service|endpoint|external|local|firewall)-[A-Z2-7]{8}-[a-z0-9.-]+/[^\s,{}]+)"),
}


def _split_service_port(name: str) -> tuple[str, str, str]:
    """"ns/name:port" -> (ns, name, port); the port may be empty."""
    ns, rest = name.split("/", 1)
    svc, _, port = rest.partition(":")
    return ns, svc, port


class IptablesView:
    """What knode's iptables mode programmed, as iptables-legacy-save shows it."""

    mode = "iptables"

    def __init__(self, netns: str):
        self.netns = netns

    def dump(self) -> str:
        return iptables_save(self.netns)

    def lines_mentioning(self, text: str) -> list[str]:
        return lines_mentioning(self.netns, text)

    def service_lines(self, service_port: str) -> list[str]:
        """Rules carrying the service port's comment."""
        return [l for l in self.dump().splitlines() if f'"{service_port}' in l]

    def dnat_targets(self, service_port: str) -> set[str]:
        return dnat_targets(self.netns, service_port)

    def chain_kind(self, chain: str) -> str:
        return {"SVC": "service", "SEP": "endpoint", "EXT": "external", "SVL": "local", "FW": "firewall"}[chain[5:8].rstrip("-")]

    def service_chain_of(self, service_port: str) -> Optional[str]:
        """The chain a service port's cluster IP traffic goes to, if it has one."""
        for l in iptables_save(self.netns, "nat").splitlines():
            m = re.search(rf'-A KUBE-SERVICES .*"{re.escape(service_port)} cluster IP".* -j (KUBE-SVC-[A-Z0-9]{{16}})', l)
            if m:
                return m.group(1)
        return None

    def state_lines(self) -> list[str]:
        return rule_lines(self.netns)

    def programmed(self) -> bool:
        return bool(kube_chains(self.netns))

    def leftovers(self) -> list[str]:
        return [l for l in self.dump().splitlines() if "KUBE-" in l]


class NftablesView:
    """What knode's nftables mode programmed: `nft list table ip kube-proxy`."""

    mode = "nftables"
    # kube-proxy's nftables layout (v1.37) has endpoint chains only for ClientIP affinity.
    endpoint_chains_without_affinity = False

    def __init__(self, netns: str):
        self.netns = netns

    def dump(self) -> str:
        p = run(["ip", "netns", "exec", self.netns, "nft", "list", "table", "ip", "kube-proxy"], check=False)
        return p.stdout if p.returncode == 0 else ""

    def logical_lines(self) -> list[str]:
        """The dump's lines, with set and map elements one per line however nft wraps them."""
        out, in_elements = [], False
        for line in self.dump().splitlines():
            text = line.strip()
            if text.startswith("elements = { "):
                in_elements, text = True, text[len("elements = { "):]
            if not in_elements:
                out.append(text)
                continue
            if text.endswith(" }"):
                in_elements, text = False, text[:-2]
            out.extend(e.strip() for e in text.split(",") if e.strip())
        return out

    def lines_mentioning(self, text: str) -> list[str]:
        return [l for l in self.logical_lines() if text in l]

    def _name_re(self, service_port: str) -> re.Pattern:
        ns, svc, port = _split_service_port(service_port)
        return re.compile(rf"-[A-Z2-7]{{8}}-{re.escape(ns)}/{re.escape(svc)}/[a-z]+/{re.escape(port)}(?:__|\s|$)")

    def service_lines(self, service_port: str) -> list[str]:
        """Lines naming one of the service port's chains, or carrying its comment."""
        name_re = self._name_re(service_port)
        return [l for l in self.dump().splitlines() if name_re.search(l) or f'"{service_port}"' in l]

    def chains(self) -> dict[str, list[str]]:
        out, current = {}, None
        for line in self.dump().splitlines():
            m = re.match(r"^\tchain (\S+) \{$", line)
            if m:
                current = m.group(1)
                out[current] = []
            elif line == "\t}":
                current = None
            elif current is not None:
                out[current].append(line.strip())
        return out

    def map_elements(self) -> dict[str, list[str]]:
        """Each named map's elements as listed ("0-360359 : 10.0.0.1 . 80"), over as many
        lines as nft breaks them into."""
        out, current, text = {}, None, ""
        for line in self.dump().splitlines():
            m = re.match(r"^\tmap (\S+) \{$", line)
            if m:
                current, text = m.group(1), ""
                continue
            if current is None:
                continue
            if line == "\t}":
                m = re.search(r"elements = \{ (.*) \}", text)
                out[current] = [e.strip() for e in m.group(1).split(",")] if m else []
                current = None
            else:
                text += " " + line.strip()
        return out

    def dnat_targets(self, service_port: str) -> set[str]:
        """The ip:port endpoints a service port DNATs to: from its service-/local- chains
        (`dnat to ip:port`; `dnat ip to numgen random mod N offset O map @endpoints-<shard>`
        and that map's elements in the slots [O, O+N); kube-proxy's `... map { 0 : ip .
        port, ... }`) and, with ClientIP affinity, its endpoint- chains."""
        name_re = self._name_re(service_port)
        out = set()
        for chain, rules in self.chains().items():
            if not chain.startswith(("service-", "local-", "endpoint-")) or not name_re.search(chain):
                continue
            for r in rules:
                m = re.search(r"dnat to (\S+)", r)
                if m:
                    out.add(m.group(1))
                m = re.search(r"dnat ip to numgen random mod \d+ map \{ (.*) \}", r)
                parts = m.group(1).split(",") if m else []
                m = re.search(r"dnat ip to numgen random mod (\d+)(?: offset (\d+))? map @(\S+)", r)
                if m:
                    first = int(m.group(2) or 0)
                    last = first + int(m.group(1))
                    parts = [e for e in self.map_elements().get(m.group(3), [])
                             if first <= int(e.split("-", 1)[0].split(" ", 1)[0]) < last]
                for part in parts:
                    addr, port = part.split(":", 1)[1].split(" . ")
                    out.add(f"{addr.strip()}:{port.strip()}")
        return out

    def chain_kind(self, chain: str) -> str:
        return chain.split("-", 1)[0]

    def service_chain_of(self, service_port: str) -> Optional[str]:
        name_re = self._name_re(service_port)
        for l in self.dump().splitlines():
            m = re.search(r"tcp \. \d+ : goto (service-\S+?)(?:,|\s|$)", l)
            if m and name_re.search(m.group(1)):
                return m.group(1)
        return None

    def state_lines(self) -> list[str]:
        return self.dump().splitlines()

    def programmed(self) -> bool:
        return "table ip kube-proxy {" in self.dump()

    def leftovers(self) -> list[str]:
        return self.dump().splitlines()


def view_for(mode: str, netns: str):
    return NftablesView(netns) if mode == "nftables" else IptablesView(netns)


# --------------------------------------------------------------------------- knode


class Knode:
    """One knode process in a netns, logging to a file."""

    def __init__(self, binary: str, netns: str, manifest_dir: str, log_path: str,
                 command: str = "proxy", extra: Optional[list[str]] = None, base_args: Optional[list[str]] = None):
        self.binary, self.netns, self.manifest_dir = binary, netns, manifest_dir
        self.log_path = log_path
        self.command = command
        if base_args is None:
            base_args = ["--proxy-mode=iptables", "--cluster-cidr", "10.244.0.0/16",
                         "--hostname-override", "node-1", "-v=2", "--file-check-frequency=1s"]
        self.args = [binary, command, "--manifest-dir", manifest_dir] + base_args + (extra or [])
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(_deathsig_prefix() + ["ip", "netns", "exec", self.netns] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     process_group=0)
        atexit.register(self.kill)

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        return self.log()[offset:] if offset else self.log()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self):
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            raise AssertionError(f"knode exited (rc {rc}); log tail:\n{self.tail()}")

    def wait_ready(self, timeout: float = 20.0, since: int = 0, health_port: int = 10256):
        """Waits for the "knode ready" line (after byte `since` of the log) and a 200 from /healthz."""

        def ready():
            self._check_alive()
            if "knode ready" not in self.log_since(since):
                return False
            return http_get(self.netns, "127.0.0.1", health_port, "/healthz", timeout=1).status == 200

        try:
            wait_for(ready, timeout, "knode to log \"knode ready\" and answer /healthz with 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\nknode log tail:\n{self.tail()}") from None

    def wait_synced_after(self, offset: int, timeout: float = 15.0):
        """Waits for a "proxy synced" line that programmed changes, logged after `offset`."""

        def synced():
            self._check_alive()
            for line in self.log_since(offset).splitlines():
                if "proxy synced" in line and not re.search(r"changedServicePorts[=:\"]+0\b", line):
                    return True
            return False

        wait_for(synced, timeout, "knode to program the change (a \"proxy synced\" log line)")

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"knode did not exit within {timeout}s of signal {sig}")
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._log:
            self._log.close()
            self._log = None


def run_in_netns(netns: str, args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return run(["ip", "netns", "exec", netns] + args, check=False, timeout=timeout)


# --------------------------------------------------------------------------- manifests


class ManifestDir:
    """A per-test manifest directory; files appear and change atomically (rename)."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix=f"knode-netns-{os.getpid()}-")
        self.dir = os.path.join(self.root, "manifests")
        os.mkdir(self.dir)
        atexit.register(self.remove)

    def write(self, name: str, text: str):
        tmp = os.path.join(self.dir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.dir, name))

    def delete(self, name: str):
        os.unlink(os.path.join(self.dir, name))

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def service(name: str, cluster_ip: str, ports: list[dict], type_: str = "ClusterIP", namespace: str = "default",
            extra_spec: str = "", selector: bool = True) -> str:
    lines = ["apiVersion: v1", "kind: Service", "metadata:", f"  name: {name}", f"  namespace: {namespace}",
             "spec:", f"  type: {type_}", f"  clusterIP: {cluster_ip}"]
    if selector:
        lines += ["  selector:", f"    app: {name}"]
    lines.append("  ports:")
    for p in ports:
        lines.append("  - {" + ", ".join(f"{k}: {v}" for k, v in p.items()) + "}")
    text = "\n".join(lines) + "\n"
    if extra_spec:
        text += "".join(f"  {l}\n" for l in extra_spec.strip("\n").splitlines())
    return text


def endpoint_slice(name: str, service_name: str, ports: list[dict], endpoints: list[dict],
                   namespace: str = "default") -> str:
    """endpoints: dicts with ip, and optional ready (bool), node (str)."""
    lines = ["apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice", "metadata:", f"  name: {name}",
             f"  namespace: {namespace}", "  labels:", f"    kubernetes.io/service-name: {service_name}",
             "addressType: IPv4", "ports:"]
    for p in ports:
        lines.append("- {" + ", ".join(f"{k}: {v}" for k, v in p.items()) + "}")
    if endpoints:
        lines.append("endpoints:")
        for e in endpoints:
            lines.append(f"- addresses: [\"{e['ip']}\"]")
            ready = "true" if e.get("ready", True) else "false"
            lines.append(f"  conditions: {{ready: {ready}}}")
            if e.get("node"):
                lines.append(f"  nodeName: {e['node']}")
    else:
        lines.append("endpoints: []")
    return "\n".join(lines) + "\n"


def docs(*parts: str) -> str:
    return "---\n".join(parts)
