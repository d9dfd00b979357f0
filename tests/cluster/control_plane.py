#!/usr/bin/env python3
"""Cluster-tier harness: a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, built by scripts/cluster/build-control-plane.sh),
started by the test itself in network namespaces of its own, with private certificates
and data directories.

    lan netns  knode-cp-<tag>-lan          node netns  knode-cp-<tag>-<node> (add_node_netns)
      br0 (L2 only) ---- c0 <-- veth -->     eth0 192.168.77.x/24
         |                                   (a kubelet under test runs here, its kubeconfig
         +--- cp0 <-- veth --+               from node_kubeconfig(): CN=system:node:NAME)
                             |
    control-plane netns  knode-cp-<tag>
      eth0 192.168.77.2/24, lo
      etcd             http://127.0.0.1:2379 (plain, loopback of this netns only)
      kube-apiserver   https://0.0.0.0:6443, --advertise-address 192.168.77.2
      kube-controller-manager, kube-scheduler (health on 127.0.0.1:10257 / :10259)

Nothing is added to the root network namespace: every link is created with `ip -n <ns>`
in the harness's own namespaces (a veth's peer is created straight into the other
namespace) and every address exists only inside them. The daemons run under `nsenter
--net=/run/netns/<cp>` (only the network namespace changes). Everything else lives in one
private directory (WORKDIR):

    pki/            ca, apiserver (serving), apiserver-kubelet-client, admin,
                    controller-manager, scheduler, sa.{key,pub}, nodes' certs
    *.kubeconfig    admin, controller-manager, scheduler, node-<name> (certs embedded)
    etcd/ apiserver/ controller-manager/ scheduler/   data and cert dirs
    logs/           one log per component
    cluster.json    what the harness made (pids, namespaces): teardown(WORKDIR) works
                    from it, in this process or another (the CLI's `down`)

As a library:

    import control_plane as cp
    with cp.ControlPlane() as c:                  # builds nothing: bin dir from the cache
        c.kubectl("get", "ns")                    # CompletedProcess, as admin, in the cp netns
        ns = c.add_node_netns("n1", "192.168.77.11")
        kc = c.node_kubeconfig("n1")              # CN=system:node:n1, O=system:nodes
        c.kubectl("get", "nodes", kubeconfig=kc, netns=ns)
        c.api("GET", "/api/v1/nodes")             # (status, parsed JSON) from Python
    # stopped, namespaces deleted, WORKDIR removed; c.leftovers() == []

As a command (handy by hand; the daemons outlive it):

    control_plane.py up --dir D [--node NAME=ADDR ...]   prints export lines
    control_plane.py add-node --dir D NAME ADDR          prints the node's netns and kubeconfig
    control_plane.py down --dir D                        stops everything, deletes D

Every wait is bounded in count and time.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import knode_netns as kn  # noqa: E402  (run, wait_for, in_netns, ns_socket)

PREFIX = "knode-cp-"  # namespaces knode-cp-<tag>[-lan|-<node>], work dirs /tmp/knode-cp-<tag>-*
NETNS_DIR = "/run/netns"
STATE_FILE = "cluster.json"
SUBNET_PREFIX = 24
CP_ADDR = "192.168.77.2"
APISERVER_PORT = 6443
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's cluster IP
CLUSTER_CIDR = "10.244.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# start_apiserver(audit_log=...): every list and watch, once when answered (a watch also
# when it ends), at level Metadata.
AUDIT_LIST_WATCH = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [list, watch]
- level: None
"""
BINARIES = COMPONENTS + ("kubectl",)


# --------------------------------------------------------------------------- paths


def cache_dir() -> str:
    return os.environ.get("KNODE_CACHE_DIR") or "/var/cache/knode"


def versions() -> dict[str, str]:
    """The pins of scripts/cluster/versions.env (the file build-control-plane.sh sources)."""
    out = {}
    with open(os.path.join(REPO, "scripts", "cluster", "versions.env")) as f:
        for line in f:
            m = re.fullmatch(r"([A-Z_]+)=(\S+)", line.strip())
            if m:
                out[m.group(1)] = m.group(2)
    return out


def kube_version() -> str:
    return versions()["KUBE_VERSION"]


def bin_dir() -> str:
    """Where build-control-plane.sh puts the binaries ($KNODE_CP_BIN_DIR overrides)."""
    return os.environ.get("KNODE_CP_BIN_DIR") or os.path.join(cache_dir(), f"kubernetes-{kube_version()}", "bin")


def missing_binaries(bins: Optional[str] = None) -> list[str]:
    bins = bins or bin_dir()
    return [b for b in BINARIES if not os.access(os.path.join(bins, b), os.X_OK)]


def missing_tools() -> list[str]:
    """What this machine lacks to run a control plane (besides the binaries)."""
    out = []
    if os.geteuid() != 0:
        out.append("root (network namespaces)")
    for tool in ("ip", "nsenter", "setpriv", "openssl"):
        if shutil.which(tool) is None:
            out.append(f"`{tool}`")
    return out


# --------------------------------------------------------------------------- state file


def _load_state(workdir: str) -> dict:
    try:
        with open(os.path.join(workdir, STATE_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _update_state(workdir: str, **fields):
    st = _load_state(workdir)
    st.update(fields)
    tmp = os.path.join(workdir, f".{STATE_FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(st, f, indent=1)
    os.rename(tmp, os.path.join(workdir, STATE_FILE))


def _record_netns(workdir: str, name: str):
    """Recorded before it exists, so a teardown after any failure deletes it."""
    owned = _load_state(workdir).get("netns", [])
    if name not in owned:
        _update_state(workdir, netns=owned + [name])


# --------------------------------------------------------------------------- processes


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _reap(pid: int):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_pid(pid: int, timeout: float) -> bool:
    """SIGTERM, up to timeout seconds, then SIGKILL. True when the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return False


def _cmdline(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of every live process whose command line contains text."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        cmd = _cmdline(int(entry))
        if cmd is not None and text in cmd and _alive(int(entry)):
            out.append((int(entry), cmd))
    return out


def processes_in_netns(inodes: set[int]) -> list[tuple[int, str]]:
    """(pid, cmdline) of every live process in one of these network namespaces."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino not in inodes or not _alive(int(entry)):
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        out.append((int(entry), _cmdline(int(entry)) or "?"))
    return out


def rss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def nsenter(netns: str) -> list[str]:
    """The prefix that runs a command in netns only (mounts stay those of the root)."""
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--"]


# --------------------------------------------------------------------------- PKI


class Pki:
    """A CA and the certificates of one cluster, made with the openssl CLI (ECDSA P-256),
    in DIR. Names are file stems: DIR/<name>.crt, DIR/<name>.key."""

    def __init__(self, dir: str, days: int = 30):
        self.dir, self.days = dir, days
        os.makedirs(dir, mode=0o700, exist_ok=True)

    def path(self, name: str, ext: str) -> str:
        return os.path.join(self.dir, f"{name}.{ext}")

    def _key(self, name: str) -> str:
        k = self.path(name, "key")
        kn.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k])
        os.chmod(k, 0o600)
        return k

    def _config(self, name: str, cn: str, orgs: tuple[str, ...], ext: list[str]) -> str:
        def esc(v: str) -> str:  # a DN value in an openssl config
            return v.replace("\\", "\\\\").replace('"', '\\"')
        dn = [f'{i}.O = "{esc(o)}"' for i, o in enumerate(orgs)] + [f'CN = "{esc(cn)}"']
        text = "\n".join(["[req]", "distinguished_name = dn", "prompt = no", "utf8 = yes", "[dn]", *dn,
                          "[ext]", *ext]) + "\n"
        cfg = self.path(name, "cnf")
        with open(cfg, "w") as f:
            f.write(text)
        return cfg

    def make_ca(self, cn: str = "knode-test-ca", name: str = "ca"):
        key = self._key(name)
        cfg = self._config(name, cn, (), ["basicConstraints = critical,CA:TRUE",
                                          "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
                                          "subjectKeyIdentifier = hash"])
        kn.run(["openssl", "req", "-x509", "-new", "-key", key, "-config", cfg, "-extensions", "ext",
                "-days", str(self.days), "-out", self.path(name, "crt")])

    def issue(self, name: str, cn: str, orgs: tuple[str, ...] = (), server: bool = False, client: bool = False,
              sans: tuple[str, ...] = (), ca: str = "ca") -> tuple[str, str]:
        """A leaf certificate signed by `ca`; returns (crt path, key path)."""
        key = self._key(name)
        usages = (["serverAuth"] if server else []) + (["clientAuth"] if client else [])
        ext = ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature,keyEncipherment",
               f"extendedKeyUsage = {','.join(usages)}", "authorityKeyIdentifier = keyid"]
        if sans:
            ext.append("subjectAltName = " + ",".join(
                (f"IP:{s}" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", s) else f"DNS:{s}") for s in sans))
        cfg = self._config(name, cn, orgs, ext)
        csr = self.path(name, "csr")
        kn.run(["openssl", "req", "-new", "-key", key, "-config", cfg, "-out", csr])
        kn.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.path(ca, "crt"), "-CAkey", self.path(ca, "key"),
                "-set_serial", "0x" + secrets.token_hex(16), "-days", str(self.days),
                "-extfile", cfg, "-extensions", "ext", "-out", self.path(name, "crt")])
        os.unlink(csr)
        return self.path(name, "crt"), key

    def key_pair(self, name: str) -> tuple[str, str]:
        """A bare key pair (the service-account signing key): (private, public) paths."""
        key = self._key(name)
        pub = self.path(name, "pub")
        kn.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub])
        return key, pub


def _b64file(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(path: str, server: str, ca_crt: str, crt: str, key: str, user: str):
    """A kubeconfig with the CA, certificate and key embedded (the file stands alone)."""
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: knode-test
  cluster:
    server: {server}
    certificate-authority-data: {_b64file(ca_crt)}
users:
- name: {json.dumps(user)}
  user:
    client-certificate-data: {_b64file(crt)}
    client-key-data: {_b64file(key)}
contexts:
- name: knode-test
  context:
    cluster: knode-test
    user: {json.dumps(user)}
current-context: knode-test
"""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------- HTTPS in a netns


class _NsHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, netns: str, host: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, context=context, timeout=timeout)
        self._netns = netns

    def connect(self):
        s = kn.ns_socket(self._netns)
        s.settimeout(self.timeout)
        try:
            s.connect((self.host, self.port))
            self.sock = self._context.wrap_socket(s, server_hostname=self.host)
        except BaseException:
            s.close()
            raise


def http_request(netns: str, host: str, port: int, method: str, path: str, body: Optional[bytes] = None,
                 headers: Optional[dict] = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """Plain HTTP from netns (etcd's JSON gateway on the control plane's loopback)."""
    c = kn.NsHTTPConnection(netns, host, port, timeout)
    try:
        c.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def https_request(netns: str, host: str, port: int, method: str, path: str, context: ssl.SSLContext,
                  body: Optional[bytes] = None, headers: Optional[dict] = None, timeout: float = 5.0
                  ) -> tuple[int, bytes]:
    c = _NsHTTPSConnection(netns, host, port, context, timeout)
    try:
        h = {"Connection": "close", **(headers or {})}
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# --------------------------------------------------------------------------- teardown


def teardown(workdir: str, remove: bool = True) -> list[str]:
    """Stops what WORKDIR/cluster.json records (scheduler, controller-manager, apiserver,
    etcd: SIGTERM, then SIGKILL), any other process naming WORKDIR or inside the harness's
    namespaces, deletes those namespaces, then removes WORKDIR (remove=True, and only when
    all went well). Returns what could not be cleaned; [] on success. Safe to call twice."""
    workdir = os.path.realpath(workdir)
    st = _load_state(workdir)
    problems: list[str] = []
    pids = st.get("pids", {})
    # Reverse start order. A recorded pid counts only while its command line still names
    # workdir: after a reboot the number may belong to someone else's process.
    for comp in reversed(COMPONENTS):
        pid = pids.get(comp)
        if pid and workdir in (_cmdline(pid) or "") and _alive(pid):
            if not _stop_pid(pid, 10):
                problems.append(f"{comp} pid {pid} survived SIGKILL")
    for pid, cmd in processes_mentioning(workdir):
        if not _stop_pid(pid, 3):
            problems.append(f"process {pid} ({cmd}) survived SIGKILL")
    names = [n for n in st.get("netns", []) if os.path.exists(os.path.join(NETNS_DIR, n))]
    inodes = set()
    for n in names:
        try:
            inodes.add(os.stat(os.path.join(NETNS_DIR, n)).st_ino)
        except FileNotFoundError:
            pass
    # Whatever a later test left running in a node's namespace (a kubelet) holds it alive.
    for pid, cmd in processes_in_netns(inodes):
        if not _stop_pid(pid, 3):
            problems.append(f"process {pid} ({cmd}) in our namespaces survived SIGKILL")
    for n in reversed(names):  # nodes, lan, then the control plane's
        if kn.run(["ip", "netns", "del", n], check=False).returncode != 0:
            problems.append(f"netns {n} remains")
    if remove and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(workdir):
            problems.append(f"directory {workdir} remains")
    return problems


def leftovers(workdir: str, tag: str) -> list[str]:
    """What a cluster left after its teardown: a process naming WORKDIR, a namespace
    knode-cp-<tag>*, WORKDIR itself."""
    out = [f"process {pid}: {cmd}" for pid, cmd in processes_mentioning(os.path.realpath(workdir))]
    if os.path.isdir(NETNS_DIR):
        out += [f"netns {n}" for n in sorted(os.listdir(NETNS_DIR))
                if n == f"{PREFIX}{tag}" or n.startswith(f"{PREFIX}{tag}-")]
    if os.path.exists(workdir):
        out.append(f"directory {workdir}")
    return out


def remove_stale() -> list[str]:
    """Tears down clusters whose owner died without cleaning (a test killed outright):
    /tmp/knode-cp-* directories of tied clusters whose owner pid is gone."""
    out = []
    for d in sorted(os.listdir("/tmp")):
        path = os.path.join("/tmp", d)
        if not d.startswith(PREFIX) or not os.path.isdir(path):
            continue
        st = _load_state(path)
        if st.get("tied") and st.get("owner_pid") and not _alive(st["owner_pid"]):
            out += teardown(path)
    return out


# --------------------------------------------------------------------------- the cluster


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler in a namespace of
    their own; see the module's docstring. tied=True (tests): the daemons get SIGKILL when
    this process dies (setpriv --pdeathsig), and an atexit hook tears down. tied=False
    (the CLI): they outlive it, in their own session, until `down`."""

    def __init__(self, workdir: Optional[str] = None, bins: Optional[str] = None, cp_addr: str = CP_ADDR,
                 tied: bool = True, log_dir: Optional[str] = None, controller_manager_args: tuple[str, ...] = ()):
        self.bins = bins or bin_dir()
        self.controller_manager_args = tuple(controller_manager_args)  # appended to its flags
        self.tag = secrets.token_hex(3)
        if workdir:
            os.makedirs(workdir, exist_ok=True)
            if os.listdir(workdir):
                raise ValueError(f"{workdir} is not empty")
            self.workdir = os.path.realpath(workdir)
        else:
            self.workdir = tempfile.mkdtemp(prefix=f"{PREFIX}{self.tag}-", dir="/tmp")
        os.chmod(self.workdir, 0o700)
        self.tied = tied
        self.cp_addr = cp_addr
        self.cp_netns = f"{PREFIX}{self.tag}"
        self.lan_netns = f"{PREFIX}{self.tag}-lan"
        self.server = f"https://{cp_addr}:{APISERVER_PORT}"
        self.log_dir = log_dir or os.path.join(self.workdir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.pki = Pki(os.path.join(self.workdir, "pki"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.nodes: dict[str, dict] = {}  # name -> {"netns", "addr", "ifindex"}
        self.timings: dict[str, float] = {}
        self._lan_ports = 0
        self._stopped = False
        self._ctx: Optional[ssl.SSLContext] = None
        _update_state(self.workdir, owner_pid=os.getpid(), tied=tied, tag=self.tag, bin_dir=self.bins,
                      cp_netns=self.cp_netns, lan_netns=self.lan_netns, server=self.server, pids={}, netns=[],
                      log_dir=self.log_dir)
        if tied:
            atexit.register(self.stop)

    # ---- paths

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    def binary(self, name: str) -> str:
        return os.path.join(self.bins, name)

    @property
    def admin_kubeconfig(self) -> str:
        return self.path("admin.kubeconfig")

    # ---- network

    def _netns_add(self, name: str):
        _record_netns(self.workdir, name)
        kn.run(["ip", "netns", "add", name])
        kn.run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _attach(self, netns: str, addr: str) -> str:
        """A veth from the lan bridge to `netns` (eth0 there, with addr/24)."""
        port = f"p{self._lan_ports}"
        self._lan_ports += 1
        kn.run(["ip", "-n", self.lan_netns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", netns])
        kn.run(["ip", "-n", self.lan_netns, "link", "set", port, "master", "br0", "up"])
        kn.run(["ip", "-n", netns, "addr", "add", f"{addr}/{SUBNET_PREFIX}", "dev", "eth0"])
        kn.run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        return port

    def _make_network(self):
        self._netns_add(self.cp_netns)
        self._netns_add(self.lan_netns)
        kn.run(["ip", "-n", self.lan_netns, "link", "add", "br0", "type", "bridge"])
        kn.run(["ip", "-n", self.lan_netns, "link", "set", "br0", "up"])
        self._attach(self.cp_netns, self.cp_addr)

    def add_node_netns(self, name: str, addr: str) -> str:
        """A namespace knode-cp-<tag>-<name> on the control plane's L2 segment, eth0 with
        addr/24, lo up; returns its name. Deleted by stop()."""
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", name) or name == "lan":
            raise ValueError(f"node name {name!r}: lower-case letters, digits and '-', at most 32")
        if name in self.nodes:
            raise ValueError(f"node {name} already has a namespace")
        netns = f"{PREFIX}{self.tag}-{name}"
        self._netns_add(netns)
        self._attach(netns, addr)
        self.nodes[name] = {"netns": netns, "addr": addr}
        _update_state(self.workdir, nodes=self.nodes)
        return netns

    # ---- certificates and kubeconfigs

    def _make_pki(self):
        p = self.pki
        p.make_ca()
        p.issue("apiserver", "kube-apiserver", server=True, sans=(
            "127.0.0.1", self.cp_addr, SERVICE_IP, "localhost", "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", f"kubernetes.default.svc.{CLUSTER_DOMAIN}"))
        p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",), client=True)
        p.issue("admin", "kubernetes-admin", ("system:masters",), client=True)
        p.issue("controller-manager", "system:kube-controller-manager", client=True)
        p.issue("scheduler", "system:kube-scheduler", client=True)
        p.key_pair("sa")
        # The aggregation layer's front proxy (as kubeadm sets it up): without a
        # requestheader CA the controller-manager and the scheduler log an error about
        # extension-apiserver-authentication many times a second.
        p.make_ca("knode-test-front-proxy-ca", name="front-proxy-ca")
        p.issue("front-proxy-client", "front-proxy-client", client=True, ca="front-proxy-ca")
        # The controller-manager's CSR signer: a CA of its own, so certificates it signs
        # are told apart from the harness's (the apiserver trusts both).
        p.make_ca("knode-test-cluster-signer", name="cluster-signing")
        with open(p.path("client-ca", "crt"), "w") as out:
            for n in ("ca", "cluster-signing"):
                with open(p.path(n, "crt")) as f:
                    out.write(f.read())
        for name, user in (("admin", "kubernetes-admin"), ("controller-manager", "system:kube-controller-manager"),
                           ("scheduler", "system:kube-scheduler")):
            write_kubeconfig(self.path(f"{name}.kubeconfig"), self.server, p.path("ca", "crt"),
                             p.path(name, "crt"), p.path(name, "key"), user)

    def node_kubeconfig(self, name: str) -> str:
        """A kubeconfig for the node NAME (CN=system:node:NAME, O=system:nodes)."""
        crt, key = self.pki.issue(f"node-{name}", f"system:node:{name}", ("system:nodes",), client=True)
        path = self.path(f"node-{name}.kubeconfig")
        write_kubeconfig(path, self.server, self.pki.path("ca", "crt"), crt, key, f"system:node:{name}")
        return path

    @property
    def ca_crt(self) -> str:
        return self.pki.path("ca", "crt")

    # ---- processes

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log_path = os.path.join(self.log_dir, f"{name}.log")
        prefix = ["setpriv", "--pdeathsig", "KILL"] if self.tied else []
        log = open(log_path, "ab")
        try:
            p = subprocess.Popen(prefix + nsenter(self.cp_netns) + cmd, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=not self.tied)
        finally:
            log.close()
        self.procs[name] = p
        st = _load_state(self.workdir)
        _update_state(self.workdir, pids={**st.get("pids", {}), name: p.pid})
        return p

    def log_tail(self, name: str, n: int = 25) -> str:
        try:
            with open(os.path.join(self.log_dir, f"{name}.log"), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def _check_running(self, name: str):
        p = self.procs[name]
        if p.poll() is not None:
            raise AssertionError(f"{name} exited (rc {p.returncode}); its log ends:\n{self.log_tail(name)}")

    def _start_etcd(self):
        d = self.path("etcd")
        os.makedirs(d, mode=0o700)
        self._spawn("etcd", [
            self.binary("etcd"), "--name", "cp", "--data-dir", os.path.join(d, "data"),
            "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "cp=http://127.0.0.1:2380", "--initial-cluster-state", "new",
            "--listen-metrics-urls", "http://127.0.0.1:2381",
            # a test cluster: throughput over durability on a shared disk
            "--unsafe-no-fsync", "--log-level", "warn"])

    def _etcd_healthy(self) -> bool:
        self._check_running("etcd")
        r = kn.http_get(self.cp_netns, "127.0.0.1", 2381, "/health", timeout=1)
        return r.status == 200 and '"health":"true"' in r.body.replace(" ", "")

    def etcd(self, path: str, body: dict, timeout: float = 10.0) -> dict:
        """One call to etcd's JSON gateway (POST /v3/..., keys and values in base64) from the
        control plane's netns, where etcd listens on the loopback only. Its answer; raises
        on any status but 200."""
        self._check_running("etcd")
        status, raw = http_request(self.cp_netns, "127.0.0.1", 2379, "POST", path, json.dumps(body).encode(),
                                   {"Content-Type": "application/json"}, timeout=timeout)
        if status != 200:
            raise AssertionError(f"etcd POST {path}: HTTP {status}: {raw[:300]!r}")
        return json.loads(raw)

    def etcd_revision(self) -> int:
        """etcd's current revision (the header of a range over a key nobody has)."""
        return int(self.etcd("/v3/kv/range", {"key": base64.b64encode(b"\0").decode()})["header"]["revision"])

    def compact_etcd(self) -> tuple[int, int]:
        """Moves etcd's revision two past the one it had (a scratch key outside /registry,
        put and deleted), then compacts its history up to there, physically (done when the
        call returns). Every resourceVersion handed out before is then older than the
        compaction: a watch resuming from one is answered 410 Gone, whatever the API server
        last told its watchers (a bookmark of the newest revision included). For while the
        API server is stopped: running, it writes meanwhile. Returns (the revision before,
        the compaction's revision)."""
        before = self.etcd_revision()
        key = base64.b64encode(b"/knode-test/compaction-mark").decode()
        self.etcd("/v3/kv/put", {"key": key, "value": base64.b64encode(b"x").decode()})
        self.etcd("/v3/kv/deleterange", {"key": key})
        rev = self.etcd_revision()
        if rev != before + 2:
            raise AssertionError(f"etcd's revision moved from {before} to {rev}, not by the two writes alone: "
                                 "is the API server still running?")
        self.etcd("/v3/kv/compaction", {"revision": str(rev), "physical": True}, timeout=30)
        return before, rev

    def _start_apiserver(self, extra: tuple[str, ...] = ()):
        d = self.path("apiserver")
        os.makedirs(d, mode=0o700, exist_ok=True)
        p = self.pki
        self._spawn("kube-apiserver", [
            self.binary("kube-apiserver"),
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=0.0.0.0", f"--secure-port={APISERVER_PORT}", f"--advertise-address={self.cp_addr}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={p.path('sa', 'pub')}",
            f"--service-account-signing-key-file={p.path('sa', 'key')}",
            f"--client-ca-file={p.path('client-ca', 'crt')}",
            f"--tls-cert-file={p.path('apiserver', 'crt')}", f"--tls-private-key-file={p.path('apiserver', 'key')}",
            f"--cert-dir={d}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={p.path('apiserver-kubelet-client', 'crt')}",
            f"--kubelet-client-key={p.path('apiserver-kubelet-client', 'key')}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--requestheader-client-ca-file={p.path('front-proxy-ca', 'crt')}",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p.path('front-proxy-client', 'crt')}",
            f"--proxy-client-key-file={p.path('front-proxy-client', 'key')}",
            "--allow-privileged=true", "--enable-bootstrap-token-auth=true",
            "--profiling=false", *extra])

    def api_context(self, crt: Optional[str] = None, key: Optional[str] = None) -> ssl.SSLContext:
        """TLS to the apiserver as admin (or the given client certificate)."""
        ctx = ssl.create_default_context(cafile=self.ca_crt)
        ctx.load_cert_chain(crt or self.pki.path("admin", "crt"), key or self.pki.path("admin", "key"))
        return ctx

    def api(self, method: str, path: str, body=None, netns: Optional[str] = None,
            ctx: Optional[ssl.SSLContext] = None, content_type: str = "application/json",
            timeout: float = 10.0) -> tuple[int, object]:
        """One request to the apiserver from netns (default: the control plane's), as admin
        unless ctx says otherwise; returns (status, parsed JSON or text). body: a dict (sent
        as JSON) or bytes/str. For a node's status: method PATCH with content_type
        "application/strategic-merge-patch+json" and ctx=api_context(node crt, key)."""
        if ctx is None:
            if self._ctx is None:
                self._ctx = self.api_context()
            ctx = self._ctx
        data = None
        if body is not None:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else (
                body.encode() if isinstance(body, str) else body)
        status, raw = https_request(netns or self.cp_netns, self.cp_addr, APISERVER_PORT, method, path, ctx,
                                    body=data, headers={"Content-Type": content_type, "Accept": "application/json"},
                                    timeout=timeout)
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def _apiserver_ready(self) -> bool:
        self._check_running("etcd")
        self._check_running("kube-apiserver")
        status, body = self.api("GET", "/readyz", timeout=2)
        return status == 200 and str(body).strip() == "ok"

    def _start_controller_manager(self):
        d = self.path("controller-manager")
        os.makedirs(d, mode=0o700)
        p, kc = self.pki, self.path("controller-manager.kubeconfig")
        self._spawn("kube-controller-manager", [
            self.binary("kube-controller-manager"),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--cert-dir={d}",
            "--leader-elect=false", "--controllers=*,bootstrapsigner,tokencleaner",
            f"--cluster-cidr={CLUSTER_CIDR}", "--allocate-node-cidrs=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-signing-cert-file={p.path('cluster-signing', 'crt')}",
            f"--cluster-signing-key-file={p.path('cluster-signing', 'key')}",
            f"--service-account-private-key-file={p.path('sa', 'key')}",
            f"--root-ca-file={p.path('ca', 'crt')}", "--use-service-account-credentials=true",
            "--profiling=false", *self.controller_manager_args])

    def _start_scheduler(self):
        d = self.path("scheduler")
        os.makedirs(d, mode=0o700)
        kc = self.path("scheduler.kubeconfig")
        self._spawn("kube-scheduler", [
            self.binary("kube-scheduler"),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--cert-dir={d}", "--leader-elect=false", "--profiling=false"])

    def _healthz(self, name: str, port: int) -> bool:
        self._check_running(name)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # its own self-signed serving certificate
        status, body = https_request(self.cp_netns, "127.0.0.1", port, "GET", "/healthz", ctx, timeout=2)
        return status == 200 and body.strip() == b"ok"

    def start(self, timeout: float = 90.0) -> "ControlPlane":
        """Makes the namespaces and certificates, starts the four components and waits
        until the apiserver's /readyz is ok and the other two answer /healthz."""
        missing = missing_binaries(self.bins)
        if missing:
            raise FileNotFoundError(f"missing in {self.bins}: {', '.join(missing)} "
                                    "(run scripts/cluster/build-control-plane.sh)")
        deadline = time.monotonic() + timeout
        left = lambda: max(1.0, deadline - time.monotonic())  # noqa: E731
        t0 = time.monotonic()
        try:
            self._make_network()
            self._make_pki()
            self.timings["setup"] = time.monotonic() - t0
            t1 = time.monotonic()
            self._start_etcd()
            kn.wait_for(self._etcd_healthy, left(), "etcd /health", 0.05)
            self.timings["etcd"] = time.monotonic() - t1
            t2 = time.monotonic()
            self._start_apiserver()
            kn.wait_for(self._apiserver_ready, left(), f"kube-apiserver /readyz on {self.server}", 0.1)
            self.timings["apiserver_readyz"] = time.monotonic() - t2
            self._start_controller_manager()
            self._start_scheduler()
            kn.wait_for(lambda: self._healthz("kube-controller-manager", 10257), left(),
                        "kube-controller-manager /healthz", 0.1)
            kn.wait_for(lambda: self._healthz("kube-scheduler", 10259), left(), "kube-scheduler /healthz", 0.1)
            self.timings["total"] = time.monotonic() - t0
            self.timings["readyz"] = self.timings["etcd"] + self.timings["apiserver_readyz"]
        except BaseException:
            if self.tied:
                self.stop()
            raise
        return self

    def stop_apiserver(self, timeout: float = 20.0):
        """Stops kube-apiserver alone (SIGTERM; its watches end); start_apiserver() brings
        it back on the same data."""
        p = self.procs["kube-apiserver"]
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def start_apiserver(self, timeout: float = 60.0, audit_log: Optional[str] = None):
        """Starts kube-apiserver again on the same data. audit_log: a file where it writes
        an audit event (level Metadata: the user, the verb, the request URI with its
        resourceVersion, the answer's code) for every list and watch request, one JSON a
        line; so a test sees what clients asked after the restart, not what they say."""
        extra: tuple[str, ...] = ()
        if audit_log:
            policy = self.path("apiserver", "audit-policy.yaml")
            with open(policy, "w") as f:
                f.write(AUDIT_LIST_WATCH)
            extra = (f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}")
        self._start_apiserver(extra)
        kn.wait_for(self._apiserver_ready, timeout, f"kube-apiserver /readyz on {self.server}", 0.1)

    # ---- using it

    def kubectl(self, *args: str, kubeconfig: Optional[str] = None, netns: Optional[str] = None,
                check: bool = True, timeout: float = 30.0, input: Optional[str] = None
                ) -> subprocess.CompletedProcess:
        """`ip netns exec <netns> kubectl --kubeconfig <kubeconfig> ARGS` (defaults: the
        control plane's netns, admin)."""
        cmd = ["ip", "netns", "exec", netns or self.cp_netns, self.binary("kubectl"),
               "--kubeconfig", kubeconfig or self.admin_kubeconfig, *args]
        return kn.run(cmd, check=check, timeout=timeout, input=input)

    def kubectl_json(self, *args: str, **kw):
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each component now (MiB)."""
        out = {}
        for name, p in self.procs.items():
            # the Popen is setpriv/nsenter, which exec the component: same pid
            kib = rss_kib(p.pid)
            if kib is not None:
                out[name] = kib / 1024
        return out

    def exports(self) -> str:
        lines = [f"export KNODE_CP_DIR={self.workdir}", f"export KNODE_CP_NETNS={self.cp_netns}",
                 f"export KNODE_CP_LAN_NETNS={self.lan_netns}", f"export KNODE_CP_SERVER={self.server}",
                 f"export KNODE_CP_CA={self.ca_crt}", f"export KNODE_CP_BIN_DIR={self.bins}",
                 f"export KNODE_CP_ADMIN_KUBECONFIG={self.admin_kubeconfig}",
                 f"export KNODE_CP_KUBECTL='ip netns exec {self.cp_netns} {self.binary('kubectl')} "
                 f"--kubeconfig {self.admin_kubeconfig}'"]
        return "\n".join(lines)

    def stop(self) -> list[str]:
        """Stops everything, deletes the namespaces and WORKDIR; returns what remains."""
        if self._stopped:
            return []
        self._stopped = True
        problems = teardown(self.workdir)
        for p in self.procs.values():
            try:
                p.wait(1)
            except subprocess.TimeoutExpired:
                pass
        return problems

    def leftovers(self) -> list[str]:
        return leftovers(self.workdir, self.tag)

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc):
        problems = self.stop()
        if problems and exc[0] is None:
            raise AssertionError(f"teardown left: {problems}")
        return False


def terminate_on_sigterm():
    """SIGTERM (CTest, a user) becomes SystemExit, so context managers and atexit run."""
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))


# --------------------------------------------------------------------------- CLI


def _reopen(workdir: str) -> ControlPlane:
    """A ControlPlane object for a cluster `up` started (for add-node)."""
    st = _load_state(workdir)
    if not st:
        raise SystemExit(f"no {STATE_FILE} in {workdir}")
    c = ControlPlane.__new__(ControlPlane)
    c.workdir, c.bins, c.tag, c.tied = os.path.realpath(workdir), st["bin_dir"], st["tag"], False
    c.cp_netns, c.lan_netns, c.server = st["cp_netns"], st["lan_netns"], st["server"]
    c.cp_addr = c.server.split("//")[1].rsplit(":", 1)[0]
    c.log_dir, c.pki, c.procs = st["log_dir"], Pki(os.path.join(c.workdir, "pki")), {}
    c.nodes = st.get("nodes", {})
    c._lan_ports = 1 + len(c.nodes)
    c._stopped, c._ctx, c.timings = True, None, {}
    return c


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="A Kubernetes control plane in network namespaces of its own.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start; prints export lines")
    u.add_argument("--dir", required=True, help="private directory (created; must be empty)")
    u.add_argument("--bin-dir", help="where the binaries are (default: the cache build-control-plane.sh fills)")
    u.add_argument("--node", action="append", default=[], metavar="NAME=ADDR",
                   help="also a node namespace with a kubeconfig (repeatable), e.g. n1=192.168.77.11")
    a = sub.add_parser("add-node", help="a node namespace on the lan and its kubeconfig")
    a.add_argument("--dir", required=True)
    a.add_argument("name")
    a.add_argument("addr")
    d = sub.add_parser("down", help="stop everything, delete the namespaces and DIR")
    d.add_argument("--dir", required=True)
    d.add_argument("--keep", action="store_true", help="keep DIR (logs) after cleaning up")
    args = ap.parse_args(argv)
    problems = missing_tools()
    if problems:
        print(f"missing: {', '.join(problems)}", file=sys.stderr)
        return 1
    if args.cmd == "down":
        left = teardown(args.dir, remove=not args.keep)
        for p in left:
            print(f"left behind: {p}", file=sys.stderr)
        return 1 if left else 0
    if args.cmd == "add-node":
        c = _reopen(args.dir)
        ns = c.add_node_netns(args.name, args.addr)
        print(f"export KNODE_NODE_NETNS_{args.name.upper().replace('-', '_')}={ns}")
        print(f"export KNODE_NODE_KUBECONFIG_{args.name.upper().replace('-', '_')}={c.node_kubeconfig(args.name)}")
        return 0
    c = ControlPlane(workdir=args.dir, bins=args.bin_dir, tied=False)
    try:
        c.start()
        extra = []
        for spec in args.node:
            name, _, addr = spec.partition("=")
            ns = c.add_node_netns(name, addr)
            key = name.upper().replace("-", "_")
            extra += [f"export KNODE_NODE_NETNS_{key}={ns}",
                      f"export KNODE_NODE_KUBECONFIG_{key}={c.node_kubeconfig(name)}"]
    except BaseException:
        teardown(c.workdir, remove=False)
        raise
    print(c.exports())
    for line in extra:
        print(line)
    print(f"# ready in {c.timings['total']:.1f} s; stop with: {sys.argv[0]} down --dir {c.workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
