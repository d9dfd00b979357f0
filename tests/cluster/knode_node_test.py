#!/usr/bin/env python3
"""Cluster tier: knode as the node agent of a real control plane (control_plane.py).

One control plane, one node namespace n1 on its lan, with a containerd and the test
registry inside it (tests/runtime/knode_runtime.py), and `knode agent --kubeconfig` with a
node certificate (CN=system:node:n1). The tests run in order against that one node:

    node registers with capacity and addresses, turns Ready, renews its Lease
    the pod network comes from the Node's spec.podCIDR (allocated by the controller-manager)
    a Deployment of 3 kubia replicas runs: status (IP, conditions, containers) in the API
    readiness (exec: ls /var/ready) gates the EndpointSlices; a ClusterIP answers from all
    deleting a pod kills its containers and removes it; the Deployment replaces it
    a static pod shows as a mirror pod, recreated when deleted
    the API server away 60 s, etcd compacted meanwhile: every watch answered 410 and
      listed again; no container restarted, no rule changed
    the node controller's marks after a lapsed Lease (node Unknown, pods not Ready): undone
    a node certificate from another CA: knode stops at start with a clear error

    knode_node_test.py [--timeout SECONDS] [TEST ...]

Exits 0, 1, or 77 (skipped: not root, or the binaries missing), as CTest expects. Fails
itself after --timeout seconds and still tears everything down.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "runtime"))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import control_plane as cp  # noqa: E402
import knode_netns as kn  # noqa: E402
import knode_runtime as rt  # noqa: E402
import dockerd as dk  # noqa: E402  (tests/runtime/dockerd.py)

SKIP = 77
NODE = "n1"
NODE_ADDR = "192.168.77.11"
CLUSTER_CIDR = "10.244.0.0/16"
ARGS: argparse.Namespace


def apiserver_away() -> float:
    """How long test 6 keeps the API server stopped (KNODE_CLUSTER_APISERVER_AWAY, s)."""
    return float(os.environ.get("KNODE_CLUSTER_APISERVER_AWAY", "60"))


def knode_binary() -> str:
    return os.environ.get("KNODE_BIN", os.path.join(REPO, "build", "cmd", "knode", "knode"))


def cni_bin_dir() -> str:
    return os.path.dirname(os.environ.get("KNODE_CNI_BIN", os.path.join(REPO, "build", "cni", "knode-cni")))


class Knode:
    """knode agent in the node namespace; its log in the work dir."""

    def __init__(self, netns: str, args: list[str], log: str, component: str = "agent"):
        self.netns, self.args, self.log, self.component = netns, args, log, component
        self.proc: subprocess.Popen | None = None

    def start(self):
        out = open(self.log, "ab")
        # nsenter --net, not `ip netns exec`: that one unshares the mount namespace too, and
        # the tmpfs knode mounts for a pod's secrets and tokens would then be invisible to
        # containerd (as on a real node, knode and the runtime share one mount namespace).
        self.proc = subprocess.Popen(cp.nsenter(self.netns) + [knode_binary(), self.component, *self.args],
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise AssertionError(f"knode did not stop within {timeout}s of SIGTERM")

    def tail(self, n: int = 60) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_alive(knodes: dict, pred, timeout: float, what: str, interval: float = 0.5):
    """kn.wait_for, failing at once (with its log) when a knode of `knodes` exits."""
    def check():
        for name, k in knodes.items():
            if not k.alive():
                raise AssertionError(f"knode {name} exited; log:\n{k.tail()}")
        return pred()
    try:
        return kn.wait_for(check, timeout, what, interval)
    except AssertionError as e:
        tails = "\n".join(f"--- knode {name}:\n{k.tail(40)}" for name, k in knodes.items())
        raise AssertionError(f"{e}\n{tails}") from None


def main_for(test_class: str, default_timeout: float, needs_knode: bool = True) -> int:
    """A cluster test file's main: root and the binaries (else 77, skipped), a deadline
    that fails the run (and still tears down), unittest in order, failing fast."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=default_timeout)
    ap.add_argument("--runtime", choices=("containerd", "docker"), default="containerd",
                    help="the node's runtime (docker: dockerd through knode's Docker backend)")
    ap.add_argument("tests", nargs="*")
    args = ap.parse_args()
    NodeFixture.RUNTIME = args.runtime
    if args.runtime == "docker" and dk.missing_tools():
        print(f"SKIP: missing {dk.missing_tools()}", file=sys.stderr)
        return SKIP
    if os.geteuid() != 0:
        print("SKIP: needs root", file=sys.stderr)
        return SKIP
    missing = cp.missing_binaries() + cp.missing_tools()
    if missing:
        print(f"SKIP: missing {missing}", file=sys.stderr)
        return SKIP
    if needs_knode and not os.path.exists(knode_binary()):
        print(f"FAIL: {knode_binary()} not built", file=sys.stderr)
        return 1
    cp.terminate_on_sigterm()
    signal.signal(signal.SIGALRM, lambda s, f: (_ for _ in ()).throw(TimeoutError(f"over {args.timeout}s")))
    signal.alarm(int(args.timeout))
    argv = [sys.argv[0]] + [f"{test_class}.{t}" for t in args.tests]
    prog = unittest.main(module="__main__", argv=argv, exit=False, verbosity=2, failfast=True)
    return 0 if prog.result.wasSuccessful() else 1


KUBIA = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubia}
spec:
  replicas: 3
  selector: {matchLabels: {app: kubia}}
  template:
    metadata: {labels: {app: kubia}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: kubia
        image: BUSYBOX
        imagePullPolicy: IfNotPresent
        # kubia's answer, from busybox's httpd (the kubia image has no shell for the probe)
        command: [sh, -c, 'mkdir -p /www && echo "You have hit $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe:
          exec: {command: [ls, /var/ready]}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: kubia}
spec:
  selector: {app: kubia}
  ports: [{port: 80, targetPort: 8080}]
"""

STATIC = """
apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: default}
spec:
  containers:
  - name: web
    image: IMAGE
    imagePullPolicy: IfNotPresent
"""


# Objects for test 2b that use many of the fields knode reads, each of the types the
# protobuf reader turns into JSON (Quantity, IntOrString as a name, Time, maps, embedded
# structs, optional booleans, repeated messages), in a namespace of their own. The pod is
# bound to a node that does not exist, so nothing runs it.
CODEC_OBJECTS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: codec}
data: {k: "v", other: "line 1\\nline 2"}
binaryData: {blob: AP9oaQ==}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: codec}
type: Opaque
data: {s: AP9oaQ==}
stringData: {plain: "text"}
---
apiVersion: v1
kind: Pod
metadata:
  name: every-field
  namespace: codec
  labels: {app: codec, tier: "1"}
  annotations: {note: "protobuf and JSON"}
spec:
  nodeName: elsewhere
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 7
  activeDeadlineSeconds: 3600
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.96.0.10]
    searches: [codec.svc.cluster.local]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local, bar.local]}]
  hostname: every
  subdomain: fields
  automountServiceAccountToken: false
  enableServiceLinks: false
  shareProcessNamespace: true
  nodeSelector: {disk: ssd}
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 42}
  - {key: dedicated, operator: Equal, value: codec, effect: NoSchedule}
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    runAsNonRoot: true
    fsGroup: 2000
    supplementalGroups: [4000, 5000]
    sysctls: [{name: net.ipv4.ip_local_port_range, value: "30000 40000"}]
  initContainers:
  - name: init
    image: IMAGE
    command: [sh, -c, "true"]
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 32Mi}}
  containers:
  - name: main
    image: IMAGE
    command: [/bin/sh]
    args: [-c, "sleep 3600"]
    workingDir: /tmp
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
    - {name: dns, containerPort: 53, hostPort: 5353, protocol: UDP}
    env:
    - {name: PLAIN, value: "x"}
    - name: FROM_CM
      valueFrom: {configMapKeyRef: {name: cfg, key: k, optional: true}}
    - name: FROM_SECRET
      valueFrom: {secretKeyRef: {name: sec, key: s, optional: false}}
    - name: NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MEM
      valueFrom: {resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
    envFrom:
    - {prefix: CM_, configMapRef: {name: cfg, optional: true}}
    - {secretRef: {name: sec}}
    resources:
      requests: {cpu: 250m, memory: 64Mi, ephemeral-storage: 1Gi}
      limits: {cpu: "1", memory: 128Mi}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: cfg, mountPath: /cfg, readOnly: true, subPath: k}
    - {name: host, mountPath: /host, mountPropagation: HostToContainer}
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
        scheme: HTTP
        httpHeaders: [{name: X-Probe, value: live}]
      initialDelaySeconds: 3
      periodSeconds: 7
      timeoutSeconds: 2
      failureThreshold: 4
      terminationGracePeriodSeconds: 5
    readinessProbe:
      tcpSocket: {port: 8080}
      successThreshold: 2
    startupProbe:
      grpc: {port: 9090, service: health}
    lifecycle:
      postStart: {exec: {command: [sh, -c, "true"]}}
      preStop: {httpGet: {path: /stop, port: 8080}}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: FallbackToLogsOnError
    imagePullPolicy: IfNotPresent
    stdin: true
    tty: true
  volumes:
  - name: data
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: cfg
    configMap: {name: cfg, items: [{key: k, path: k.txt, mode: 0400}], defaultMode: 0644, optional: true}
  - name: sec
    secret: {secretName: sec, defaultMode: 0600}
  - name: host
    hostPath: {path: /var/log, type: Directory}
  - name: claim
    persistentVolumeClaim: {claimName: claim, readOnly: true}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: cpu, resourceFieldRef: {containerName: main, resource: requests.cpu, divisor: 1m}}
  - name: all
    projected:
      defaultMode: 0440
      sources:
      - serviceAccountToken: {audience: vault, expirationSeconds: 3600, path: token}
      - configMap: {name: cfg, items: [{key: k, path: cm-k}], optional: true}
      - secret: {name: sec}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
---
apiVersion: v1
kind: Service
metadata: {name: every-field, namespace: codec, labels: {app: codec}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  allocateLoadBalancerNodePorts: true
  loadBalancerSourceRanges: [10.0.0.0/8]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  externalIPs: [192.0.2.10]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP, appProtocol: http}
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: every-field-1
  namespace: codec
  labels: {kubernetes.io/service-name: every-field, endpointslice.kubernetes.io/managed-by: codec-test}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP, appProtocol: http}
- {name: dns, port: 5353, protocol: UDP}
endpoints:
- addresses: [10.244.9.1]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: a
  nodeName: elsewhere
  zone: zone-a
  hints: {forZones: [{name: zone-a}]}
  targetRef: {kind: Pod, namespace: codec, name: every-field, uid: 00000000-0000-0000-0000-000000000001}
- addresses: [10.244.9.2]
  conditions: {ready: false}
"""


class NodeFixture:
    """One control plane, node n1 on its lan with containerd and the test registry, and
    `knode agent --kubeconfig` with the node's certificate and the cluster CA as its
    --client-ca-file; shared by every cluster test of knode as a node (mixed into a
    unittest.TestCase). EXTRA_ARGS go to knode; LOG_NAME names the test's log folder."""

    c: cp.ControlPlane
    knode: Knode
    EXTRA_ARGS: list[str] = []
    # The node's runtime: containerd (v2), or dockerd through knode's Docker backend
    # (main_for's --runtime).
    RUNTIME = "containerd"
    LOG_NAME = "knode_node"

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="knode-cluster-")
        # The node lifecycle controller marks a node Unknown, and its pods not Ready, once it
        # has not seen the node's Lease renewed for its grace period (50 s by default). Test
        # 6 keeps the API server away longer than that; whether the controller then marks n1
        # before knode's first renewal lands is a race between the two, and what it marks
        # takes every endpoint of n1's pods out of every node's rules, whatever the node
        # agent. The grace period here outlasts the outage, so test 6 counts what knode
        # does; test 7 does what the controller would have done, and checks that knode
        # puts its node and pods back.
        grace = int(apiserver_away()) + 60
        cls.c = cp.ControlPlane(controller_manager_args=(f"--node-monitor-grace-period={grace}s",))
        cls.c.start()
        cls.ns = cls.c.add_node_netns(NODE, NODE_ADDR)
        # A default route, as any node has: traffic to a ClusterIP needs one before the
        # proxy's DNAT (the gateway need not exist).
        kn.run(["ip", "-n", cls.ns, "route", "add", "default", "via", "192.168.77.1"])
        cls.kubeconfig = cls.c.node_kubeconfig(NODE)
        # knode is the node's kube-proxy too: with the node's credentials it reads what
        # kube-proxy's role allows (README, "Joining a cluster").
        cls.c.kubectl("create", "clusterrolebinding", "knode-node-proxier", "--clusterrole=system:node-proxier",
                      "--group=system:nodes")
        cls.rtdir = rt.make_workdir("cl")
        cls.net_d = os.path.join(cls.work, "net.d")
        os.makedirs(cls.net_d)
        cls.reg = rt.Registry(cls.ns, cls.rtdir).start()
        if cls.RUNTIME == "docker":
            # dockerd with knode's Docker backend, which runs knode-cni itself on the pause
            # containers' namespaces (the conflist knode writes from the node's podCIDR).
            cls.cd = None
            cgroup_parent = f"/{rt.PREFIX}{os.getpid()}-{os.path.basename(cls.rtdir)}"
            rt._update_state(cls.rtdir, cgroup_parent=cgroup_parent)
            cls.dockerd = dk.Dockerd(cls.rtdir, cls.ns).start()
            runtime_args = ["--container-runtime=docker", f"--docker-endpoint={cls.dockerd.endpoint}",
                            "--pod-infra-container-image", rt.image_ref("pause"), "--cni-bin-dir", cni_bin_dir(),
                            "--cgroup-root", cgroup_parent]
        else:
            cls.cd = rt.Containerd(cls.rtdir, cls.ns, flavor="v2", cni_bin_dirs=(cni_bin_dir(),),
                                   cni_conf_dir=cls.net_d).start(network_ready=False)
            runtime_args = ["--container-runtime-endpoint", cls.cd.endpoint, "--cgroup-root", cls.cd.cgroup_parent]
        cls.image = rt.image_ref("kubia")
        cls.manifests = os.path.join(cls.work, "manifests")
        os.makedirs(cls.manifests)
        cls.knode = Knode(cls.ns, [
            "--kubeconfig", cls.kubeconfig, "--manifest-dir", cls.manifests, "--hostname-override", NODE,
            "--node-ip", NODE_ADDR, *runtime_args, "--root-dir", os.path.join(cls.work, "kubelet"),
            "--log-root", os.path.join(cls.work, "logs"), "--cni-conf-dir", cls.net_d,
            "--cni-data-dir", os.path.join(cls.work, "cni-networks"),
            "--proxy-mode", "iptables", "--cluster-cidr", CLUSTER_CIDR, "--file-check-frequency", "1s", "-v=2",
            # The kubelet API trusts the cluster CA, which signs the API server's
            # --kubelet-client-certificate.
            "--client-ca-file", cls.c.ca_crt, *cls.EXTRA_ARGS,
        ], os.path.join(cls.work, "knode.log")).start()

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            cls.knode.stop()
        except AssertionError as e:
            problems.append(str(e))
        log_dir = os.environ.get("KNODE_CLUSTER_LOG_DIR")
        if log_dir:
            d = os.path.join(log_dir, cls.LOG_NAME)
            os.makedirs(d, exist_ok=True)
            shutil.copy(cls.knode.log, d)
        problems += (dk.teardown if cls.RUNTIME == "docker" else rt.teardown)(cls.rtdir, remove=True)
        problems += [f"mounted: {m}" for m in rt.unmount_all(cls.work)]
        problems += cls.c.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        if problems:
            print(f"teardown left: {problems}", file=sys.stderr)

    # ---- helpers

    def wait(self, pred, timeout: float, what: str, interval: float = 0.5):
        return wait_alive({NODE: self.knode}, pred, timeout, what, interval)

    def kubectl(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def get(self, *args):
        r = self.c.kubectl(*args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def node(self):
        return self.get("get", "node", NODE)

    def pods(self, selector="app=kubia"):
        p = self.get("get", "pods", "-l", selector)
        return p["items"] if p else []

    def in_node(self, *cmd, check=False, timeout=10):
        return kn.run(["ip", "netns", "exec", self.ns, *cmd], check=check, timeout=timeout)

    def curl(self, url: str) -> str:
        r = self.in_node("curl", "-s", "--max-time", "2", url)
        return r.stdout.strip() if r.returncode == 0 else ""

    @staticmethod
    def cond(obj, type_):
        for c in obj.get("status", {}).get("conditions", []):
            if c["type"] == type_:
                return c
        return {}


class KnodeNodeTest(NodeFixture, unittest.TestCase):
    # ---- the tests, in order

    def test_1_node_registers_turns_ready_and_renews_its_lease(self):
        self.wait(lambda: self.node() is not None, 30, "the Node n1 in the API")
        self.wait(lambda: self.cond(self.node(), "Ready").get("status") == "True", 60, "n1 Ready")
        n = self.node()
        st = n["status"]
        self.assertEqual(st["capacity"]["pods"], "110")
        self.assertEqual(int(st["capacity"]["cpu"]), os.cpu_count())
        self.assertIn({"type": "InternalIP", "address": NODE_ADDR}, st["addresses"])
        self.assertIn({"type": "Hostname", "address": NODE}, st["addresses"])
        self.assertTrue(st["nodeInfo"]["kubeletVersion"].startswith("v1.37"))
        self.assertTrue(st["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://"))
        self.assertEqual(n["metadata"]["labels"]["kubernetes.io/hostname"], NODE)
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            self.assertEqual(self.cond(n, t).get("status"), "False", t)
        nodes = self.kubectl("get", "nodes").stdout
        self.assertRegex(nodes, rf"{NODE}\s+Ready")
        # The pod network from the Node's spec.podCIDR.
        cidr = n["spec"].get("podCIDR")
        self.assertTrue(cidr and cidr.startswith("10.244."), cidr)
        self.wait(lambda: any(f.endswith(".conflist") for f in os.listdir(self.net_d)), 10, "the CNI config")
        with open(os.path.join(self.net_d, "10-knode.conflist")) as f:
            conflist = json.loads(f.read())
        self.assertIn(cidr, json.dumps(conflist))
        # --cni-data-dir: the IPAM store of this node's own (test 2 finds its pods' addresses there).
        self.assertEqual(conflist["plugins"][0]["ipam"]["dataDir"], os.path.join(self.work, "cni-networks"))
        lease = lambda: self.get("get", "lease", "-n", "kube-node-lease", NODE)  # noqa: E731
        first = self.wait(lease, 20, "the node's Lease")
        self.assertEqual(first["spec"]["holderIdentity"], NODE)
        self.assertEqual(first["spec"]["leaseDurationSeconds"], 40)
        self.assertEqual(first["metadata"]["ownerReferences"][0]["kind"], "Node")
        t0 = time.monotonic()
        self.wait(lambda: lease()["spec"]["renewTime"] != first["spec"]["renewTime"], 25, "a renewal of the Lease")
        self.assertLess(time.monotonic() - t0, 15, "renewed every ~10 s")

    def test_2_deployment_runs_readiness_gates_endpoints_and_the_service_answers(self):
        self.kubectl("apply", "-f", "-", input=KUBIA.replace("BUSYBOX", rt.image_ref("busybox")))
        self.wait(lambda: len([p for p in self.pods() if p["status"].get("phase") == "Running"]) == 3, 90,
                  "3 kubia pods Running")
        cidr = self.node()["spec"]["podCIDR"]
        prefix = cidr.rsplit(".", 2)[0]
        store = os.path.join(self.work, "cni-networks", "knode")
        for p in self.pods():
            st = p["status"]
            self.assertTrue(os.path.exists(os.path.join(store, st["podIP"])), (st["podIP"], os.listdir(store)))
            self.assertTrue(st["podIP"].startswith(prefix + "."), (st["podIP"], cidr))
            self.assertEqual(st["hostIP"], NODE_ADDR)
            self.assertEqual(self.cond(p, "PodScheduled")["status"], "True")
            self.assertEqual(self.cond(p, "Ready")["status"], "False")  # no /var/ready yet
            cs = st["containerStatuses"][0]
            self.assertIn("running", cs["state"])
            self.assertTrue(cs["containerID"].startswith("containerd://"))
        # The kubelet's events on the pod, as `kubectl describe pod` shows them.
        first = self.pods()[0]["metadata"]["name"]
        def reasons():
            ev = self.get("get", "events", "--field-selector", f"involvedObject.name={first}")
            return {(e["reason"], e["source"].get("component")) for e in (ev or {}).get("items", [])}
        want = {("Pulled", "kubelet"), ("Created", "kubelet"), ("Started", "kubelet"), ("Unhealthy", "kubelet")}
        self.wait(lambda: want <= reasons(), 20, f"the kubelet's events of {first}")
        # Not ready: the EndpointSlice lists them, not ready; the ClusterIP has nowhere to go.
        def slice_ready():
            s = self.get("get", "endpointslices", "-l", "kubernetes.io/service-name=kubia")
            eps = [e for item in (s or {}).get("items", []) for e in item.get("endpoints") or []]
            return sum(1 for e in eps if e["conditions"].get("ready"))
        self.assertEqual(slice_ready(), 0)
        ip = self.get("get", "svc", "kubia")["spec"]["clusterIP"]
        self.assertEqual(self.curl(f"http://{ip}/"), "")
        # Ready them through the runtime (no kubelet API needed): the probe sees the file.
        for p in self.pods():
            cid = p["status"]["containerStatuses"][0]["containerID"].split("//")[1]
            self.cd.crictl("exec", cid, "touch", "/var/ready")
        self.wait(lambda: slice_ready() == 3, 30, "3 ready endpoints in the EndpointSlice")
        self.wait(lambda: all(self.cond(p, "Ready").get("status") == "True" for p in self.pods()), 10,
                  "the pods Ready in the API")
        names = {p["metadata"]["name"] for p in self.pods()}
        seen = set()
        def all_answered():
            r = self.curl(f"http://{ip}/")
            if r.startswith("You have hit "):
                seen.add(r.split()[-1])
            return seen == names
        self.wait(all_answered, 30, "each pod answering through the ClusterIP", interval=0.1)

    def test_2b_protobuf_and_json_give_knode_the_same_objects(self):
        # knode asks the API server for protobuf (upstream's default contentType) for Pods,
        # Services, EndpointSlices, Nodes, ConfigMaps and Secrets. The same objects, read
        # through knode's client as JSON and as protobuf, lists and watches, must decode to
        # equal typed objects: a field the protobuf schema lacks, or reads wrong, shows here.
        tool = os.environ.get("KNODE_CODEC_COMPARE") or os.path.join(REPO, "build", "tests", "cluster",
                                                                      "knode_codec_compare")
        self.kubectl("create", "namespace", "codec")
        objs = CODEC_OBJECTS.replace("IMAGE", rt.image_ref("busybox"))
        # The namespace's default ServiceAccount comes from the controller-manager; the
        # Pod is refused until it exists.
        self.wait(lambda: self.kubectl("apply", "-f", "-", input=objs, check=False).returncode == 0, 30,
                  "the codec objects created")
        self.addCleanup(lambda: self.kubectl("delete", "namespace", "codec", "--wait=false", check=False))
        self.addCleanup(lambda: self.kubectl("delete", "pod", "-n", "codec", "every-field", "--grace-period=0",
                                             "--force", check=False))
        # kubia's 3 pods and every-field; kubernetes, kubia and every-field (and their slices);
        # n1; kube-root-ca.crt in each namespace and cfg; sec
        mins = {"pods": 4, "services": 3, "endpointslices": 3, "nodes": 1, "configmaps": 5, "secrets": 1}
        for attempt in range(3):
            # KNODE_CODEC_DUMP=DIR keeps the protobuf bytes the server sent (the seeds of
            # tests/fuzz/corpus/kube_protobuf).
            dump = ["--dump", os.environ["KNODE_CODEC_DUMP"]] if os.environ.get("KNODE_CODEC_DUMP") else []
            r = kn.run(["ip", "netns", "exec", self.c.cp_netns, tool, "--kubeconfig", self.c.admin_kubeconfig,
                        *dump], timeout=120)
            rep = json.loads(r.stdout)
            short = []
            for kind, want in mins.items():
                k = rep[kind]
                for how in ("list", "watch"):
                    self.assertEqual(k[how]["json"]["error"], "", (kind, how, k[how]["json"]))
                    self.assertEqual(k[how]["protobuf"]["error"], "", (kind, how, k[how]["protobuf"]))
                    self.assertEqual(k[how]["json"]["bad"], [], (kind, how))
                    self.assertEqual(k[how]["protobuf"]["bad"], [], (kind, how))
                    self.assertTrue(k[how]["json"]["contentType"].startswith("application/json"), k[how]["json"])
                    self.assertTrue(k[how]["protobuf"]["contentType"].startswith(
                        "application/vnd.kubernetes.protobuf"), k[how]["protobuf"])
                for cmp in ("listJsonVsProtobuf", "watchJsonVsProtobuf", "protobufListVsWatch"):
                    self.assertEqual(k[cmp]["differences"], [], (kind, cmp))
                    if k[cmp]["equal"] < want:
                        short.append((kind, cmp, k[cmp]))
            if not short:
                break
            # An object changed between two reads is not compared; read again.
            time.sleep(1)
        self.assertEqual(short, [], "too few objects compared equal at the same resourceVersion")
        print(f"  protobuf vs JSON: list bytes pods {rep['pods']['list']['protobuf']['bytes']} vs "
              f"{rep['pods']['list']['json']['bytes']}, endpointslices "
              f"{rep['endpointslices']['list']['protobuf']['bytes']} vs {rep['endpointslices']['list']['json']['bytes']}",
              flush=True)

    def test_3_deleting_a_pod_kills_its_containers_and_removes_it(self):
        victim = sorted(self.pods(), key=lambda p: p["metadata"]["name"])[0]
        name, uid = victim["metadata"]["name"], victim["metadata"]["uid"]
        self.kubectl("delete", "pod", name, "--wait=false")
        self.wait(lambda: self.get("get", "pod", name) is None, 30, f"pod {name} gone from the API")
        def containers_gone():
            ps = self.cd.crictl_json("ps", "-a", "-o", "json")
            return not [c for c in ps.get("containers", []) if c["labels"].get("io.kubernetes.pod.uid") == uid]
        self.wait(containers_gone, 15, f"the containers of {name} removed")
        ev = self.get("get", "events", "--field-selector", f"involvedObject.name={name},reason=Killing")
        self.assertTrue(ev and ev["items"], f"a Killing event for {name}")
        self.assertEqual(ev["items"][0]["message"], "Stopping container kubia")
        self.wait(lambda: len([p for p in self.pods() if p["status"].get("phase") == "Running"]) == 3, 60,
                  "the Deployment's replacement Running")

    def test_4_static_pod_has_a_mirror_pod_recreated_when_deleted(self):
        with open(os.path.join(self.manifests, "static-web.yaml"), "w") as f:
            f.write(STATIC.replace("IMAGE", self.image))
        mirror = f"static-web-{NODE}"
        def running():
            p = self.get("get", "pod", mirror)
            return p if p and p["status"].get("phase") == "Running" else None
        p = self.wait(running, 60, "the mirror pod Running")
        self.assertIn("kubernetes.io/config.mirror", p["metadata"]["annotations"])
        self.assertEqual(p["metadata"]["ownerReferences"][0]["kind"], "Node")
        old_uid = p["metadata"]["uid"]
        self.kubectl("delete", "pod", mirror, "--wait=false")
        p = self.wait(lambda: (lambda q: q if q and q["metadata"]["uid"] != old_uid and
                               not q["metadata"].get("deletionTimestamp") else None)(self.get("get", "pod", mirror)),
                      30, "the mirror pod created again")
        self.assertIn("kubernetes.io/config.mirror", p["metadata"]["annotations"])
        os.remove(os.path.join(self.manifests, "static-web.yaml"))
        self.wait(lambda: self.get("get", "pod", mirror) is None, 30, "the mirror pod gone with its static pod")

    def test_6_an_api_server_away_for_a_while_leaves_pods_and_rules_untouched(self):
        """The API server stopped for KNODE_CLUSTER_APISERVER_AWAY seconds (60), etcd's
        history compacted meanwhile past every resourceVersion knode was given, the API
        server started again: knode's watches resume from compacted versions, are answered
        410 Gone and list again, and nothing changes: no container restarted, no sandbox
        recreated, kubia's rules the same in every sample."""
        def kubia_rules():
            out = self.in_node("iptables-legacy-save", "-t", "nat").stdout
            return sorted(l for l in out.splitlines() if l.startswith("-A ") and "default/kubia" in l)

        def runtime_view():
            ps = self.cd.crictl_json("ps", "-o", "json")["containers"]
            sbs = self.cd.crictl_json("pods", "-o", "json")["items"]
            return (sorted((c["labels"].get("io.kubernetes.pod.name", ""), c["metadata"]["name"], c["id"],
                            c["metadata"].get("attempt", 0)) for c in ps),
                    sorted((s["metadata"]["name"], s["id"], s["state"]) for s in sbs))

        def api_restarts():
            return {(p["metadata"]["name"], cs["name"]): cs["restartCount"] for p in self.pods()
                    for cs in p["status"].get("containerStatuses", [])}

        before = kubia_rules()
        # (two ready endpoints: test 3's replacement is not ready)
        self.assertGreaterEqual(len([l for l in before if "-j KUBE-SEP-" in l]), 2, before)
        running, sandboxes = runtime_view()
        restarts = api_restarts()
        self.assertEqual(len(running), 3, running)
        # A resourceVersion the API server handed out before it stopped (a list's).
        status, svcs = self.c.api("GET", "/api/v1/namespaces/default/services")
        self.assertEqual(status, 200, svcs)
        stale_rv = svcs["metadata"]["resourceVersion"]
        samples, stop = [], threading.Event()

        def sample():
            for _ in range(6000):  # bounded: 6000 samples, several minutes at most
                if stop.is_set():
                    return
                samples.append(kubia_rules())
                time.sleep(0.05)
        t = threading.Thread(target=sample)
        t.start()
        audit = os.path.join(self.work, "audit.log")
        try:
            lease = lambda: self.get("get", "lease", "-n", "kube-node-lease", NODE)["spec"]["renewTime"]  # noqa: E731
            self.c.stop_apiserver()
            t_stop = time.monotonic()
            # etcd alone now: two writes past anything the API server served, and its history
            # compacted up to there. Every watch knode resumes is from before the compaction.
            rv_before, compacted = self.c.compact_etcd()
            away = apiserver_away()
            for _ in range(int(away / 0.5) + 1):  # bounded: about `away` seconds
                if time.monotonic() - t_stop >= away:
                    break
                self.assertTrue(self.knode.alive(), f"knode exited while the API server was away:\n{self.knode.tail()}")
                time.sleep(0.5)
            self.assertEqual(runtime_view(), (running, sandboxes), "the pods' containers kept running")
            self.c.start_apiserver(audit_log=audit)
            t_back = time.monotonic()
            away = t_back - t_stop

            # The API server's own answer to a watch from before the compaction: 410 Expired.
            # (429 while its watch cache is still being filled.)
            def stale_watch():
                st, body = self.c.api("GET", "/api/v1/namespaces/default/services?watch=true"
                                      f"&resourceVersion={stale_rv}&timeoutSeconds=5", timeout=15)
                return None if st == 429 else (st, body)
            st, body = self.wait(stale_watch, 20, "the API server to answer a watch")
            self.assertEqual(st, 200, body)
            self.assertIsInstance(body, dict, f"one ERROR event, not a stream of events: {body!r:.500}")
            self.assertEqual((body.get("type"), body.get("object", {}).get("code")), ("ERROR", 410), body)

            renewed = lease()
            self.wait(lambda: lease() != renewed, 40, "the node renewing its Lease again")

            # What knode asked after the restart, as the API server recorded it: its watches
            # resumed from versions older than the compaction (each answered as above: 410),
            # and after each such watch a list of the same collection. The proxy's Services
            # and EndpointSlices and the kubelet's pods must all have been listed again, so
            # the samples cover what a relist could have done to the rules.
            user = f"system:node:{NODE}"

            def knode_requests():
                seen, out = set(), []
                with open(audit, errors="replace") as f:
                    for line in f.readlines()[:200000]:
                        try:
                            e = json.loads(line)
                        except ValueError:
                            continue  # a line being written
                        if e.get("user", {}).get("username") != user or e.get("auditID") in seen:
                            continue
                        seen.add(e["auditID"])
                        u = urllib.parse.urlsplit(e["requestURI"])
                        q = dict(urllib.parse.parse_qsl(u.query))
                        sel = ",".join(q[k] for k in ("fieldSelector", "labelSelector") if k in q)
                        out.append({"verb": e["verb"], "what": u.path + (f"?{sel}" if sel else ""),
                                    "rv": int(q["resourceVersion"]) if q.get("resourceVersion", "").isdigit() else None,
                                    "code": e.get("responseStatus", {}).get("code"),
                                    "at": e["requestReceivedTimestamp"]})
                return out

            must = {"/api/v1/pods", "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices"}

            def relisted():
                reqs = knode_requests()
                stale = [r for r in reqs if r["verb"] == "watch" and r["rv"] is not None and r["rv"] < compacted
                         and r["code"] == 200]
                lists = [r for r in reqs if r["verb"] == "list"]
                done = {s["what"] for s in stale if any(l["what"] == s["what"] and l["at"] > s["at"] for l in lists)}
                return (stale, done) if must <= {w.split("?")[0] for w in done} else None
            stale, done = self.wait(relisted, 60, "knode's watches of pods, Services and EndpointSlices answered 410 "
                                    "and listed again (the API server's audit log)")
            t_relisted = time.monotonic()

            # The watches are back: a Service made now gets its rules.
            self.kubectl("create", "service", "clusterip", "after-restart", "--tcp=80:8080")
            # (no endpoints: its rule is the filter table's REJECT)
            self.wait(lambda: "default/after-restart:" in self.in_node("iptables-legacy-save").stdout, 30,
                      "rules for a Service created after the restart")
            self.wait(lambda: self.cond(self.node(), "Ready").get("status") == "True", 30, "n1 Ready")
            # The samples go on for two proxy syncs (1 s apart at most) past the relists: what
            # a relist did to the rules would show by then.
            self.wait(lambda: time.monotonic() - t_relisted > 2.5, 5, "2.5 s past the relists", interval=0.1)
        finally:
            stop.set()
            t.join(10)
        after_running, after_sandboxes = runtime_view()
        after_restarts = api_restarts()
        # A restarted container is a new one (another id) in the runtime and one more in
        # its restartCount; a recreated sandbox is another id.
        replaced = len({c[2] for c in running} - {c[2] for c in after_running})
        counted = sum(after_restarts.get(k, 0) - n for k, n in restarts.items())
        recreated = len({s_[1] for s_ in sandboxes} - {s_[1] for s_ in after_sandboxes})
        flapped = [i for i, s_ in enumerate(samples) if s_ != before]
        with open(self.knode.log, errors="replace") as f:  # knode's own word: a second figure only
            knode_says = sum(1 for l in f if "watch expired, listing again" in l)
        print(f"\n  API server away {away:.1f} s, etcd compacted at revision {compacted} (was {rv_before}): "
              f"{len(samples)} rule samples, {len(flapped)} flapped; containers restarted {max(replaced, counted)} "
              f"(replaced {replaced}, restartCount +{counted}), sandboxes recreated {recreated}; "
              f"knode's watches answered 410 and listed again: {len(done)} collections ({len(stale)} stale watches, "
              f"the API server's audit log; knode's log says {knode_says}), the last {t_relisted - t_back:.1f} s after "
              "the API server was back", file=sys.stderr)
        for s_ in sorted(done):
            print(f"    relisted {s_}", file=sys.stderr)
        self.assertGreater(len(samples), 100)
        self.assertEqual((after_running, after_sandboxes), (running, sandboxes),
                         "the same containers (ids, attempts) in the same sandboxes")
        self.assertEqual(after_restarts, restarts, "the restart counts in the API")
        self.assertEqual(flapped[:1], [], f"kubia's rules changed in {len(flapped)} of {len(samples)} samples; "
                                          f"first: {samples[flapped[0]] if flapped else None} instead of {before}")

    def test_7_what_the_node_controller_marks_when_a_lease_lapses_is_undone(self):
        """What the node lifecycle controller writes when a node's Lease lapsed (an API
        server away for longer than its grace period): the Node's conditions Unknown and
        the Ready condition of the node's pods False. knode's node and pods are fine, so it
        writes them back, as upstream's kubelet does (the node status every 10 s against
        the Node as the API has it; the pods' statuses reconciled with the API's every
        10 s): n1 Ready again, the pods Ready again, their endpoints back in the rules, no
        container restarted."""
        def kubia_rules():
            out = self.in_node("iptables-legacy-save", "-t", "nat").stdout
            return sorted(l for l in out.splitlines() if l.startswith("-A ") and "default/kubia" in l)

        ready = sorted(p["metadata"]["name"] for p in self.pods() if self.cond(p, "Ready").get("status") == "True")
        self.assertGreaterEqual(len(ready), 2, "test 2's ready kubia pods")
        rules = kubia_rules()
        running = sorted(c["id"] for c in self.cd.crictl_json("ps", "-o", "json")["containers"])
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # As the controller's tryUpdateNodeHealth writes them: the four conditions Unknown
        # (a strategic merge patch merges conditions by type).
        unknown = [{"type": t, "status": "Unknown", "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.", "lastTransitionTime": now}
                   for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")]
        st, body = self.c.api("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": {"conditions": unknown}},
                              content_type="application/strategic-merge-patch+json")
        self.assertEqual(st, 200, body)
        t0 = time.monotonic()
        # As its MarkPodsNotReady writes them: Ready False, nothing else.
        for name in ready:
            st, body = self.c.api("PATCH", f"/api/v1/namespaces/default/pods/{name}/status",
                                  {"status": {"conditions": [{"type": "Ready", "status": "False",
                                                              "lastTransitionTime": now}]}},
                                  content_type="application/strategic-merge-patch+json")
            self.assertEqual(st, 200, body)
            # The API's answer is the pod as patched (knode may write it back right after).
            self.assertEqual(self.cond(body, "Ready").get("status"), "False", f"{name} marked not ready")

        def node_ready():
            return self.cond(self.node(), "Ready").get("status") == "True"

        def pods_ready():
            return all(self.cond(p, "Ready").get("status") == "True" for p in self.pods()
                       if p["metadata"]["name"] in ready)

        # Upstream's kubelet: within its 10 s node status and pod status syncs, one more
        # round when the controller marks a pod again before it sees the node Ready (it does
        # so for every pod update while it thinks the node is down). Each one is timed on
        # its own, so one missing does not hide the others.
        # (The rules are compared once the pods are back: before the marks reach the
        # EndpointSlices and knode's rules, they are still as before too.)
        timings: dict[str, float] = {}
        checks = {"n1 Ready written back": node_ready, "the pods Ready written back": pods_ready,
                  "kubia's rules as before": lambda: "the pods Ready written back" in timings
                  and kubia_rules() == rules}
        for _ in range(80):  # bounded: 40 s
            self.assertTrue(self.knode.alive(), f"knode exited:\n{self.knode.tail()}")
            for what, pred in checks.items():
                if what not in timings and pred():
                    timings[what] = time.monotonic() - t0
            if len(timings) == len(checks) or time.monotonic() - t0 > 40:
                break
            time.sleep(0.5)
        print("\n  after the node controller's marks: " + "; ".join(
            f"{k} after {timings[k]:.1f} s" if k in timings else f"{k}: not within 40 s" for k in checks),
            file=sys.stderr)
        self.assertEqual([k for k in checks if k not in timings], [], "restored within 40 s")
        self.assertEqual(sorted(c["id"] for c in self.cd.crictl_json("ps", "-o", "json")["containers"]), running,
                         "no container restarted")

    def test_4b_a_claim_bound_to_a_host_path_volume_is_mounted(self):
        data = os.path.join(self.work, "pv-data")
        os.makedirs(data)
        manifest = f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-data}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {{path: {data}, type: Directory}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: pv-data
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: writer}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: w
    image: {rt.image_ref("busybox")}
    command: [sh, -c, "echo written-through-the-claim > /data/hello"]
    volumeMounts: [{{name: d, mountPath: /data}}]
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: data}}}}
"""
        self.kubectl("apply", "-f", "-", input=manifest)
        # (the controller-manager binds the claim within its 15 s sync period)
        self.wait(lambda: (self.get("get", "pod", "writer") or {}).get("status", {}).get("phase") == "Succeeded", 90,
                  "the writer pod Succeeded")
        with open(os.path.join(data, "hello")) as f:
            self.assertEqual(f.read().strip(), "written-through-the-claim")

    def test_4c_cluster_trust_bundles_are_projected(self):
        """clusterTrustBundle projections: one bundle by name, a signer's bundles picked by
        labels (each certificate once, sorted by its DER bytes, re-encoded), an optional one
        that matches nothing (an empty file); a required one that does not exist keeps the
        pod from starting."""
        def ca(cn: str) -> str:
            key = os.path.join(self.work, cn + ".key")
            r = kn.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-subj", "/CN=" + cn, "-days", "1", "-addext",
                        "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
                       check=True, timeout=30)
            return r.stdout

        def der(pem: str) -> bytes:
            body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
            return base64.b64decode(body)

        def encode(d: bytes) -> str:
            b = base64.b64encode(d).decode()
            return "-----BEGIN CERTIFICATE-----\n" + "".join(b[i:i + 64] + "\n" for i in range(0, len(b), 64)) + \
                "-----END CERTIFICATE-----\n"

        a, b, c = ca("ctb-a"), ca("ctb-b"), ca("ctb-c")
        bundles = [
            {"metadata": {"name": "plain-a"}, "spec": {"trustBundle": a}},
            {"metadata": {"name": "knode.test:signer:one", "labels": {"live": "yes"}},
             "spec": {"signerName": "knode.test/signer", "trustBundle": b + a}},
            {"metadata": {"name": "knode.test:signer:two", "labels": {"live": "yes"}},
             "spec": {"signerName": "knode.test/signer", "trustBundle": c}},
            {"metadata": {"name": "knode.test:signer:old", "labels": {"live": "no"}},
             "spec": {"signerName": "knode.test/signer", "trustBundle": ca("ctb-old")}},
        ]
        for ctb in bundles:
            self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "certificates.k8s.io/v1",
                                                               "kind": "ClusterTrustBundle", **ctb}))
        projected = {"name": "ctb", "projected": {"sources": [
            {"clusterTrustBundle": {"name": "plain-a", "path": "by-name.pem"}},
            {"clusterTrustBundle": {"signerName": "knode.test/signer", "labelSelector": {"matchLabels": {"live": "yes"}},
                                    "path": "signer.pem"}},
            {"clusterTrustBundle": {"signerName": "knode.test/signer", "labelSelector": {"matchLabels": {"x": "y"}},
                                    "optional": True, "path": "none.pem"}}]}}

        def reader(name: str, volume: dict) -> dict:
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
                "nodeName": NODE, "restartPolicy": "Never", "volumes": [volume],
                "containers": [{"name": "r", "image": rt.image_ref("busybox"),
                                "command": ["sh", "-c", "cat /ctb/by-name.pem; echo ===; cat /ctb/signer.pem; "
                                            "echo ===; wc -c < /ctb/none.pem"],
                                "volumeMounts": [{"name": "ctb", "mountPath": "/ctb"}]}]}}

        self.kubectl("apply", "-f", "-", input=json.dumps(reader("ctb-reader", projected)))
        self.wait(lambda: (self.get("get", "pod", "ctb-reader") or {}).get("status", {}).get("phase") == "Succeeded",
                  60, "the reader pod Succeeded")
        out = self.kubectl("logs", "ctb-reader").stdout
        want_signer = "".join(encode(d) for d in sorted({der(a), der(b), der(c)}))
        self.assertEqual(out, encode(der(a)) + "===\n" + want_signer + "===\n0\n")

        missing = {"name": "ctb", "projected": {"sources": [
            {"clusterTrustBundle": {"name": "does-not-exist", "path": "by-name.pem"}}]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(reader("ctb-blocked", missing)))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            p = self.get("get", "pod", "ctb-blocked") or {}
            self.assertEqual(p.get("status", {}).get("phase", "Pending"), "Pending", "a required bundle is missing")
            time.sleep(0.5)
        waiting = [cs.get("state", {}).get("waiting", {}).get("reason") for cs in p["status"].get("containerStatuses", [])]
        self.assertEqual(waiting, ["ContainerCreating"])
        self.kubectl("delete", "pod", "ctb-blocked", "--wait=false")

    def test_5_a_certificate_from_another_ca_is_a_clear_error_at_start(self):
        other = cp.Pki(os.path.join(self.work, "other-pki"))
        other.make_ca("another-ca")
        crt, key = other.issue("n9", "system:node:n9", ("system:nodes",), client=True)
        kc = os.path.join(self.work, "bad.kubeconfig")
        cp.write_kubeconfig(kc, self.c.server, self.c.ca_crt, crt, key, "system:node:n9")
        r = kn.run(["ip", "netns", "exec", self.ns, knode_binary(), "proxy", "--kubeconfig", kc,
                    "--hostname-override", "n9", "--healthz-bind-address", "127.0.0.1:0",
                    "--metrics-bind-address", "127.0.0.1:0"], check=False, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refused knode's credentials", r.stdout + r.stderr)
        self.assertIsNone(self.get("get", "node", "n9"))




if __name__ == "__main__":
    sys.exit(main_for("KnodeNodeTest", 340))
