#!/usr/bin/env python3
"""The kubelet on a real container runtime: `knode agent` runs static pods from a manifest
directory in a private node netns (kubelet_fixture.py), and each test checks what it
did through real outputs: the PodList on the read-only port, the runtime's own view
(crictl, or dockerd's Engine API), HTTP to the pods and their Services, files on disk,
the registry's access log. The same tests run on both backends: containerd through CRI
(--backend containerd, --flavor v2 or debian) and dockerd through knode's Docker backend
(--backend docker); a test that only makes sense on one says so (@only_on).

    kubelet_runtime_test.py [--backend containerd|docker] [--flavor v2|debian] --knode PATH
                            --knode-cni PATH [--timeout S] TEST...

Exits 0 (pass), 1 (fail) or 77 (skipped, with the reason: not root, a tool missing).
A test fails itself after --timeout seconds and still tears down.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kubelet_fixture as kf  # noqa: E402
from kubelet_fixture import condition, condition_of, container, cstatus, pod, raw_id, sh  # noqa: E402

ARGS: argparse.Namespace

SERVICE_TEXT = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  clusterIP: {ip}
  selector:
    app: {app}
  ports:
  - name: http
    port: 80
    targetPort: {target}
"""

# A busybox container that stops at SIGTERM within ~0.2 s (a shell as PID 1 ignores it).
POLITE = 'trap "exit 0" TERM; while true; do sleep 0.2; done'


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret_manifest(name: str, data: dict[str, str], type_: str = "Opaque") -> str:
    """A Secret in namespace default; the values are given plain and written base64."""
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: {type_}\ndata:\n"
            + "".join(f"  {k}: {b64(v)}\n" for k, v in data.items()))


class TestTimeout(Exception):
    pass


def only_on(backend: str):
    """A test that only makes sense on one backend: skipped (with the reason) on the other."""
    def wrap(f):
        def run(self):
            if self.backend != backend:
                self.skipTest(f"{backend} only")
            return f(self)
        run.__name__, run.__doc__ = f.__name__, f.__doc__
        run.only_on = backend
        return run
    return wrap


class KubeletRuntimeTest(unittest.TestCase):
    backend = "containerd"
    flavor = "v2"

    # ---- fixture

    def setUp(self):
        tag = self.flavor if self.backend == "containerd" else self.backend
        self.node = kf.Node(f"{self._testMethodName[5:]}_{tag}", self.backend, self.flavor, ARGS.knode,
                            ARGS.knode_cni, ARGS.log_dir)
        self.addCleanup(self._teardown)
        self.kubia = self.node.images["kubia"]["ref"]
        self.busybox = self.node.images["busybox"]["ref"]
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}
        signal.alarm(ARGS.timeout)  # the test fails itself (TestTimeout), then tears down

    def _teardown(self):
        signal.alarm(0)
        # (Inside a cleanup, _outcome.success says only how the cleanup goes: ask the result.)
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is None or any(t is self for t, _ in result.failures + result.errors)
        problems = self.node.teardown(failed)
        if self.timings:
            print("\ntimings: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        print(f"total {time.monotonic() - self.t0:.1f} s; knode log {self.node.knode_log}")
        if problems:
            raise AssertionError(f"teardown left: {problems}")

    def kubia_pod(self, name: str, spec_extra: str = "", labels=None) -> str:
        return pod(name, container("kubia", self.kubia, extra="ports:\n- {name: http, containerPort: 8080}"),
                   spec_extra=spec_extra, labels=labels)

    def bb(self, name: str, script: str, extra: str = "") -> str:
        return container(name, self.busybox, sh(script), extra)

    def running_container(self, pod_name: str, name: str) -> dict:
        """The one running container `name` of the pod, from the runtime."""
        running = [c for c in self.node.containers(pod_name, name) if c["state"] == "running"]
        self.assertEqual(len(running), 1, f"one running {name} in {pod_name}: {running}")
        return running[0]

    # ---- tests

    def test_static_pod_running(self):
        """A two-container static pod reaches Running with an IP and Ready; its status matches
        the runtime; its containers share the pod's network."""
        node = self.node.start()
        node.write("kubia.yaml", pod("kubia", container("kubia", self.kubia,
                                                         extra="ports:\n- {name: http, containerPort: 8080}")
                                    + self.bb("box", POLITE), spec_extra="terminationGracePeriodSeconds: 5"))
        t0 = time.monotonic()
        p = node.wait_running_ready("kubia", 40)
        self.timings["manifest to Running+Ready"] = time.monotonic() - t0
        st = p["status"]
        meta = p["metadata"]
        self.assertEqual(meta["name"], "kubia-node1")
        self.assertEqual(meta["namespace"], "default")
        self.assertTrue(meta.get("uid"), "the static pod has a UID")
        self.assertEqual(p["spec"].get("nodeName"), "node1")

        # The runtime's view: one sandbox, ready, labelled with the pod's UID; two containers.
        sandboxes = node.sandboxes("kubia")
        self.assertEqual(len(sandboxes), 1, sandboxes)
        sb = sandboxes[0]
        self.assertTrue(sb["ready"], sb)
        self.assertEqual(sb["uid"], meta["uid"])
        self.assertEqual(sb["namespace"], "default")
        pod_ip = node.runtime.sandbox_ip(sb["id"])
        ctrs = {c["name"]: c for c in node.containers("kubia")}
        self.assertEqual({n: c["state"] for n, c in ctrs.items()}, {"kubia": "running", "box": "running"})
        self.assertEqual({c["sandbox"] for c in ctrs.values()}, {sb["id"]}, "both in the pod's sandbox")

        # The status knode serves.
        self.assertEqual(st.get("podIP"), pod_ip, "podIP is the sandbox's address")
        self.assertIn(ipaddress.ip_address(st["podIP"]), ipaddress.ip_network(kf.POD_CIDR))
        self.assertEqual(st.get("podIPs"), [{"ip": pod_ip}])
        self.assertTrue(st.get("startTime"), "startTime is set")
        self.assertEqual(st.get("qosClass"), "BestEffort")
        for c in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"):
            self.assertEqual(condition(p, c), "True", f"condition {c}: {st.get('conditions')}")
        for name, image in (("kubia", self.kubia), ("box", self.busybox)):
            cs = cstatus(p, name)
            self.assertEqual(cs.get("containerID"), node.cid(ctrs[name]["id"]))
            self.assertEqual(cs.get("image"), image)
            self.assertIn(cs.get("imageID"), node.inspect(ctrs[name]["id"])["image_refs"],
                          f"{name}'s imageID: a ref the runtime has")
            self.assertTrue(cs.get("ready"))
            self.assertTrue(cs.get("started"))
            self.assertEqual(cs.get("restartCount"), 0)
            self.assertIn("running", cs.get("state", {}))
            self.assertTrue(cs["state"]["running"].get("startedAt"))
        cs = cstatus(p, "kubia")
        # The sidecar reaches kubia on the pod's loopback: one network namespace, one hostname.
        self.assertEqual(node.exec(ctrs["box"]["id"], "wget", "-qO-", "http://127.0.0.1:8080/").stdout,
                         "You've hit kubia-node1\n")
        self.assertEqual(node.exec(ctrs["box"]["id"], "hostname").stdout, "kubia-node1\n")

        # It serves: a real request to the pod IP from the node, and the hostname is the pod's.
        reply = kf.wait_for(lambda: (lambda r: r if r.status == 200 else None)(node.http(pod_ip, 8080)), 10,
                            "kubia to answer on the pod IP")
        self.assertEqual(reply.body, "You've hit kubia-node1\n")
        # Its log in the CRI format where the kubelet puts it.
        log_file = os.path.join(node.log_root, "var/log/pods", f"default_kubia-node1_{meta['uid']}", "kubia", "0.log")

        def logged():
            with open(log_file, errors="replace") as f:
                text = f.read()
            return text if "Received request from" in text else None

        text = kf.wait_for(logged, 10, f"kubia's request line in {log_file}")
        self.assertRegex(text, r"(?m)^\d{4}-\d\d-\d\dT\S+ stdout [FP] Received request from \S+: GET / HTTP/1\.1$")
        with self.subTest("the /var/log/containers link"):
            # <pod>_<namespace>_<container>-<container id>.log, to the log above.
            cid = cs["containerID"].split("://", 1)[1]
            link = os.path.join(node.log_root, "var/log/containers", f"kubia-node1_default_kubia-{cid}.log")
            self.assertTrue(os.path.islink(link), link)
            self.assertEqual(os.path.realpath(link), os.path.realpath(log_file))
        # Each of these fails on its own (subTest), so one does not hide the others.
        with self.subTest("hostIP"):
            self.assertEqual(st.get("hostIP"), kf.NODE_IP, "hostIP: the node's address (its default route's interface)")
            self.assertEqual(st.get("hostIPs"), [{"ip": kf.NODE_IP}])
        with self.subTest("the runtime calls on /metrics"):
            # One sandbox and two containers so far, each call counted under upstream's
            # operation type (the count comes from the calls, the runtime saw the same).
            m = node.metrics()
            ops = {op: m.get(f'kubelet_runtime_operations_total{{operation_type="{op}"}}', 0)
                   for op in ("run_podsandbox", "create_container", "start_container", "list_podsandbox")}
            self.assertEqual(ops["run_podsandbox"], 1, ops)
            self.assertEqual((ops["create_container"], ops["start_container"]), (2, 2), ops)
            self.assertGreater(ops["list_podsandbox"], 0, "the relist asks the runtime")
            self.assertEqual(m.get('kubelet_runtime_operations_errors_total{operation_type="run_podsandbox"}', 0), 0)
            self.assertIn("process_resident_memory_bytes", m)
        # metav1.Time is RFC 3339 in whole seconds on the wire ("2026-01-31T12:00:00Z").
        times = {"startTime": st.get("startTime"), "running.startedAt": cs["state"]["running"].get("startedAt")}
        times.update({f"conditions[{c['type']}].lastTransitionTime": c.get("lastTransitionTime")
                      for c in st.get("conditions", [])})
        with self.subTest("metav1.Time on the wire"):
            bad = {k: v for k, v in times.items() if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v or "")}
            self.assertEqual(bad, {}, "times as metav1.Time marshals them (RFC 3339, whole seconds)")

    def test_crash_restart_backoff(self):
        """Killing the container's process restarts it at once (restartCount 1); the second
        crash waits for the 10 s back-off (CrashLoopBackOff in between)."""
        node = self.node.start()
        node.write("crash.yaml", self.kubia_pod("crash", spec_extra="terminationGracePeriodSeconds: 5"))
        p = node.wait_running_ready("crash", 40)
        uid = p["metadata"]["uid"]
        first = self.running_container("crash", "kubia")
        os.kill(node.inspect(first["id"])["pid"], signal.SIGKILL)

        def attempt_running(n):
            def f():
                cs = cstatus(node.pod("crash") or {}, "kubia")
                if cs.get("restartCount") != n or "running" not in cs.get("state", {}):
                    return None
                return cs
            return f

        cs = kf.wait_for(attempt_running(1), 15, "restartCount 1 and running again")
        self.assertNotEqual(raw_id(cs["containerID"]), first["id"], "a new container")
        term = cs.get("lastState", {}).get("terminated", {})
        self.assertEqual(term.get("exitCode"), 137, cs)
        self.assertEqual(term.get("reason"), "Error", cs)
        self.assertEqual(term.get("containerID"), node.cid(first["id"]))
        ins0 = node.inspect(first["id"])
        second = node.inspect(raw_id(cs["containerID"]))
        first_delay = second["started_at"] - ins0["finished_at"]
        self.timings["first restart after crash (runtime clock)"] = first_delay
        self.assertLess(first_delay, 4.0, "the first restart is not delayed")
        self.assertEqual(second["attempt"], 1)

        # Second crash: back-off 10 s from the container's exit.
        os.kill(second["pid"], signal.SIGKILL)
        t_kill = time.monotonic()
        p = node.wait_pod("crash", lambda p: cstatus(p, "kubia").get("state", {}).get("waiting", {}).get(
            "reason") == "CrashLoopBackOff", 8, "waiting in CrashLoopBackOff")
        waiting = cstatus(p, "kubia")["state"]["waiting"]
        self.assertEqual(waiting.get("message"),
                         f"back-off 10s restarting failed container=kubia pod=crash-node1_default({uid})")
        self.assertEqual(cstatus(p, "kubia").get("restartCount"), 1)
        self.assertFalse(cstatus(p, "kubia").get("ready"))
        self.assertEqual(condition(p, "Ready"), "False")
        cs = kf.wait_for(attempt_running(2), 25, "restartCount 2 and running again")
        waited = time.monotonic() - t_kill
        third = node.inspect(raw_id(cs["containerID"]))
        fin2 = node.inspect(second["id"])["finished_at"]
        delay = third["started_at"] - fin2
        self.timings["second restart after crash (runtime clock)"] = delay
        self.timings["second restart seen on /pods after kill"] = waited
        self.assertGreaterEqual(delay, 9.5, "the second restart waits out the 10 s back-off")
        self.assertLessEqual(delay, 13.0, "... and not much longer")
        self.assertEqual(third["attempt"], 2)
        self.assertEqual(len(node.sandboxes("crash")), 1, "the sandbox stays")

    def test_liveness_probe_restarts(self):
        """A failing exec liveness probe kills and restarts the container; a passing one does not."""
        node = self.node.start()
        probe = ("livenessProbe:\n  exec:\n    command: [cat, /tmp/healthy]\n"
                 "  periodSeconds: 1\n  failureThreshold: 2")
        node.write("live.yaml", pod("live", self.bb("app", f"touch /tmp/healthy; {POLITE}", probe),
                                    spec_extra="terminationGracePeriodSeconds: 5"))
        p = node.wait_running_ready("live", 40)
        first = raw_id(cstatus(p, "app")["containerID"])
        started = node.inspect(first)["started_at"]
        # Passing probes leave it alone: it keeps running past several periods.
        kf.wait_for(lambda: time.time() - started > 4, 10, "the container to run 4 s")
        p = node.pod("live")
        self.assertEqual(cstatus(p, "app").get("restartCount"), 0, "a passing liveness probe restarts nothing")
        self.assertEqual(raw_id(cstatus(p, "app")["containerID"]), first)

        node.exec(first, "rm", "/tmp/healthy")
        t0 = time.monotonic()
        p = node.wait_pod("live", lambda p: cstatus(p, "app").get("restartCount") == 1 and "running" in cstatus(
            p, "app").get("state", {}), 20, "restarted after the liveness probe failed")
        self.timings["probe failing to restarted"] = time.monotonic() - t0
        cs = cstatus(p, "app")
        self.assertNotEqual(raw_id(cs["containerID"]), first)
        self.assertEqual(cs["lastState"]["terminated"]["containerID"], node.cid(first))
        self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 0, "stopped with SIGTERM (the trap exits 0)")
        # The old container was stopped by the kubelet (not crashed): it exited after the rm.
        old = node.inspect(first)
        self.assertEqual(old["state"], "exited")
        # The new container has its file: its probe passes and it stays.
        second = raw_id(cs["containerID"])
        self.assertEqual(node.exec(second, "cat", "/tmp/healthy").returncode, 0)
        started = node.inspect(second)["started_at"]
        kf.wait_for(lambda: time.time() - started > 4, 10, "the new container to run 4 s")
        self.assertEqual(cstatus(node.pod("live"), "app").get("restartCount"), 1)

    def test_readiness_probe_endpoints(self):
        """A failing readiness probe takes the pod out of its Service's endpoints and traffic
        to the ClusterIP stops reaching it; `touch /var/ready` brings it back."""
        node = self.node.start()
        node.write("svc.yaml", SERVICE_TEXT.format(name="web", ip="10.96.0.50", app="web", target=8080))
        script = ('mkdir -p /www; echo "You\'ve hit `hostname`" > /www/index.html; touch /var/ready; '
                  'exec httpd -f -p 8080 -h /www')
        probe = ("ports:\n- {name: http, containerPort: 8080}\n"
                 "readinessProbe:\n  exec:\n    command: [ls, /var/ready]\n  periodSeconds: 1\n  failureThreshold: 1")
        for n in ("web-a", "web-b"):
            node.write(f"{n}.yaml", pod(n, self.bb("httpd", script, probe), labels={"app": "web"},
                                        spec_extra="terminationGracePeriodSeconds: 2"))
        a = node.wait_running_ready("web-a", 40)
        b = node.wait_running_ready("web-b", 40)
        ip_a, ip_b = a["status"]["podIP"], b["status"]["podIP"]
        a_id = cstatus(a, "httpd")["containerID"]
        ns = node.netns.name

        def endpoints():
            return kf.kn.dnat_targets(ns, "default/web:http")

        def seen(want: set, max_hits: int = 40):
            got = set()
            for _ in range(max_hits):
                got.add(node.http("10.96.0.50", 80).pod)
                if got == want:
                    break
            return got

        kf.wait_for(lambda: endpoints() == {f"{ip_a}:8080", f"{ip_b}:8080"}, 15, "both pods as endpoints")
        self.assertEqual(seen({"web-a-node1", "web-b-node1"}), {"web-a-node1", "web-b-node1"},
                         "the ClusterIP reaches both pods")

        node.exec(raw_id(a_id), "rm", "/var/ready")
        t0 = time.monotonic()
        p = node.wait_pod("web-a", lambda p: condition(p, "Ready") == "False", 10, "Ready False after rm /var/ready")
        self.timings["unready on /pods"] = time.monotonic() - t0
        self.assertEqual(condition(p, "ContainersReady"), "False")
        self.assertFalse(cstatus(p, "httpd").get("ready"))
        self.assertEqual(p["status"]["phase"], "Running")
        kf.wait_for(lambda: endpoints() == {f"{ip_b}:8080"}, 10, "web-a to leave the endpoints")
        self.timings["out of the endpoints"] = time.monotonic() - t0
        hits = [node.http("10.96.0.50", 80).pod for _ in range(20)]
        self.assertEqual(set(hits), {"web-b-node1"}, "traffic to the ClusterIP no longer reaches web-a")
        # Still serving directly: it is only out of the Service.
        self.assertEqual(node.http(ip_a, 8080).pod, "web-a-node1")

        node.exec(raw_id(a_id), "touch", "/var/ready")
        t0 = time.monotonic()
        node.wait_pod("web-a", lambda p: condition(p, "Ready") == "True", 10, "Ready again after touch /var/ready")
        kf.wait_for(lambda: endpoints() == {f"{ip_a}:8080", f"{ip_b}:8080"}, 10, "web-a back in the endpoints")
        self.timings["back in the endpoints"] = time.monotonic() - t0
        self.assertEqual(seen({"web-a-node1", "web-b-node1"}), {"web-a-node1", "web-b-node1"})
        p = node.pod("web-a")
        self.assertEqual(cstatus(p, "httpd")["containerID"], a_id, "readiness never restarts the container")
        self.assertEqual(cstatus(p, "httpd")["restartCount"], 0)

    def test_init_containers(self):
        """Init containers run in order, each to success, before the app; a failing one is
        retried and the app never starts."""
        node = self.node.start()
        vol = "volumeMounts:\n- {name: work, mountPath: /work}"
        inits = (self.bb("first", "echo first >> /work/order", vol)
                 + self.bb("second", 'test "`cat /work/order`" = first && echo second >> /work/order', vol))
        node.write("ordered.yaml", pod("ordered", self.bb("app", f"cat /work/order; {POLITE}", vol),
                                       init_containers=inits,
                                       spec_extra="terminationGracePeriodSeconds: 2\nvolumes:\n- {name: work, emptyDir: {}}"))
        bad_inits = self.bb("fails", "echo trying; exit 1") + self.bb("never", "true")
        node.write("blocked.yaml", pod("blocked", container("app", self.kubia), init_containers=bad_inits,
                                       spec_extra="terminationGracePeriodSeconds: 2"))

        p = node.wait_running_ready("ordered", 40)
        for n in ("first", "second"):
            term = cstatus(p, n, init=True).get("state", {}).get("terminated", {})
            self.assertEqual((term.get("exitCode"), term.get("reason")), (0, "Completed"), f"init {n}: {term}")
        self.assertEqual(condition(p, "Initialized"), "True")
        c = {x["name"]: node.inspect(x["id"]) for x in node.containers("ordered")}
        self.assertEqual(sorted(c), ["app", "first", "second"])
        self.assertLessEqual(c["first"]["finished_at"], c["second"]["started_at"], "first before second")
        self.assertLessEqual(c["second"]["finished_at"], c["app"]["started_at"], "second before the app")
        app = self.running_container("ordered", "app")
        self.assertEqual(node.exec(app["id"], "cat", "/work/order").stdout, "first\nsecond\n")

        # The failing init container: retried (restartCount grows), the rest never created.
        p = node.wait_pod("blocked", lambda p: (cstatus(p, "fails", init=True).get("restartCount") or 0) >= 1
                          and cstatus(p, "fails", init=True).get("lastState", {}).get("terminated"), 20,
                          "the failing init container retried")
        last = cstatus(p, "fails", init=True)["lastState"]["terminated"]
        self.assertEqual((last.get("exitCode"), last.get("reason")), (1, "Error"))
        names = {x["name"] for x in node.containers("blocked")}
        self.assertEqual(names, {"fails"}, "neither the next init container nor the app was created")
        self.assertEqual(p["status"]["phase"], "Pending")
        init_cond = condition_of(p, "Initialized")
        self.assertEqual((init_cond.get("status"), init_cond.get("reason")), ("False", "ContainersNotInitialized"))
        self.assertEqual(cstatus(p, "app").get("state", {}).get("waiting", {}).get("reason"), "PodInitializing")
        self.assertEqual(condition(p, "Ready"), "False")

    def test_restart_policies(self):
        """OnFailure restarts only a failed container; Never restarts nothing; the phases."""
        node = self.node.start()
        for name, policy, code in (("of-ok", "OnFailure", 0), ("of-fail", "OnFailure", 3),
                                   ("never-ok", "Never", 0), ("never-fail", "Never", 3)):
            node.write(f"{name}.yaml", pod(name, self.bb("job", f"echo {name}; sleep 1; exit {code}"),
                                           spec_extra=f"restartPolicy: {policy}"))
        for name, phase, code, reason in (("of-ok", "Succeeded", 0, "Completed"),
                                          ("never-ok", "Succeeded", 0, "Completed"),
                                          ("never-fail", "Failed", 3, "Error")):
            p = node.wait_pod(name, lambda p, ph=phase: p["status"].get("phase") == ph, 40, f"phase {phase}")
            cs = cstatus(p, "job")
            term = cs.get("state", {}).get("terminated", {})
            self.assertEqual((term.get("exitCode"), term.get("reason")), (code, reason), f"{name}: {cs}")
            self.assertEqual(cs.get("restartCount"), 0, name)
            self.assertEqual(condition(p, "Ready"), "False", name)
        # OnFailure with a failure: restarted with the failure as lastState.
        p = node.wait_pod("of-fail", lambda p: (cstatus(p, "job").get("restartCount") or 0) >= 1, 30,
                          "restarted after exit 3")
        last = cstatus(p, "job").get("lastState", {}).get("terminated", {})
        self.assertEqual(last.get("exitCode"), 3, cstatus(p, "job"))
        self.assertNotIn(p["status"]["phase"], ("Succeeded", "Failed"))
        # The finished pods: one container each, never restarted, their sandbox stopped.
        # (of-fail's restart above shows the kubelet had every chance to restart them.)
        for name in ("of-ok", "never-ok", "never-fail"):
            ctrs = node.containers(name)
            self.assertEqual([(c["name"], c["attempt"], c["state"]) for c in ctrs], [("job", 0, "exited")], name)
            kf.wait_for(lambda n=name: [s["ready"] for s in node.sandboxes(n)] == [False], 10,
                        f"{name}'s sandbox stopped")
            self.assertIn(node.pod(name)["status"]["phase"], ("Succeeded", "Failed"), "a terminal phase stays")

    def test_termination_messages_and_managed_etc_hosts(self):
        """What a container writes to its terminationMessagePath (any path, any user) is its
        terminated state's message; with FallbackToLogsOnError a failure without one shows
        the end of its log. Containers get the kubelet-managed /etc/hosts (pod IP and
        hostname, hostAliases), unless they mount their own."""
        node = self.node.start()
        node.write("msg-file.yaml", pod("msg-file", self.bb(
            "job", "echo -n DONE > /dev/termination-log", "terminationMessagePolicy: FallbackToLogsOnError"),
            spec_extra="restartPolicy: Never"))
        node.write("msg-path.yaml", pod("msg-path", self.bb(
            "job", "echo -n custom > /tmp/msg; exit 2",
            "terminationMessagePath: /tmp/msg\nsecurityContext: {runAsUser: 1000}"),
            spec_extra="restartPolicy: Never"))
        node.write("msg-logs.yaml", pod("msg-logs", self.bb(
            "job", "echo first; echo from-the-log; exit 3", "terminationMessagePolicy: FallbackToLogsOnError"),
            spec_extra="restartPolicy: Never"))
        node.write("msg-none.yaml", pod("msg-none", self.bb("job", "echo quiet; exit 4"),
                                        spec_extra="restartPolicy: Never"))
        want = {"msg-file": (0, "DONE"), "msg-path": (2, "custom"), "msg-logs": (3, "first\nfrom-the-log\n"),
                "msg-none": (4, None)}
        for name, (code, message) in want.items():
            p = node.wait_pod(name, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), 40, "finished")
            term = cstatus(p, "job").get("state", {}).get("terminated", {})
            self.assertEqual((term.get("exitCode"), term.get("message")), (code, message), f"{name}: {term}")
        own_hosts = os.path.join(node.root_dir, "own-hosts")
        with open(own_hosts, "w") as f:
            f.write("10.9.9.9 its-own-hosts-file\n")
        hosts_vol = "volumeMounts:\n- {name: own, mountPath: /etc/hosts}"
        node.write("hosts.yaml", pod("hosts", self.bb("app", POLITE) + self.bb("own", POLITE, hosts_vol),
                                     spec_extra="terminationGracePeriodSeconds: 2\nhostname: web\n"
                                                "subdomain: peers\n"
                                                "hostAliases: [{ip: 10.1.2.3, hostnames: [db.local, db]}]\n"
                                                f"volumes: [{{name: own, hostPath: {{path: {own_hosts}, type: File}}}}]"))
        p = node.wait_running_ready("hosts", 40)
        ip = p["status"]["podIP"]
        app = raw_id(cstatus(p, "app")["containerID"])
        hosts = node.exec(app, "cat", "/etc/hosts").stdout
        self.assertTrue(hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), hosts)
        self.assertIn(f"{ip}\tweb.peers.default.svc.cluster.local\tweb\n", hosts)
        self.assertTrue(hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\tdb.local\tdb\n"), hosts)
        own = raw_id(cstatus(p, "own")["containerID"])
        self.assertEqual(node.exec(own, "cat", "/etc/hosts").stdout, "10.9.9.9 its-own-hosts-file\n",
                         "the container's own mount at /etc/hosts stays")

    def test_host_port(self):
        """A container's hostPort answers on the node's address (containerd hands the
        mapping to knode-cni with Go's field names, HostPort...; dockerd through knode's own
        CNI call), and the mapping goes with the pod."""
        node = self.node.start()
        node.write("hp.yaml", pod("hp", container("kubia", self.kubia,
                                                  extra="ports:\n- {containerPort: 8080, hostPort: 18080}"),
                                  spec_extra="terminationGracePeriodSeconds: 2"))
        node.wait_running_ready("hp", 40)
        reply = kf.wait_for(lambda: (lambda r: r if r.status == 200 else None)(node.http(kf.NODE_IP, 18080)), 10,
                            "the hostPort to answer on the node's address")
        self.assertEqual(reply.body, "You've hit hp-node1\n")
        node.delete("hp.yaml")
        kf.wait_for(lambda: node.pod("hp") is None, 30, "the pod gone")

        def closed():
            try:
                node.http(kf.NODE_IP, 18080, timeout=1)
                return False
            except OSError:  # refused: nothing forwards the port any more
                return True
        kf.wait_for(closed, 10, "the hostPort closed")

    def test_image_volume(self):
        """An image volume (spec.volumes[].image): the kubelet pulls the image with the
        volume's pull policy, and containerd mounts its filesystem read-only, whole or a
        subPath of it. Docker (Engine API <= 1.47) cannot: the container waits with
        CreateContainerError naming the reason."""
        node = self.node.start()
        mounts = ("volumeMounts:\n- {name: app, mountPath: /vol}\n"
                  "- {name: tools, mountPath: /tools, subPath: bin}")
        volumes = (f"volumes:\n- {{name: app, image: {{reference: '{self.kubia}', pullPolicy: Always}}}}\n"
                   f"- {{name: tools, image: {{reference: '{self.busybox}', pullPolicy: IfNotPresent}}}}")
        node.write("imgvol.yaml", pod("imgvol", self.bb("app", POLITE, mounts),
                                      spec_extra="terminationGracePeriodSeconds: 2\n" + volumes))
        if self.backend == "docker":
            p = node.wait_pod("imgvol", lambda p: cstatus(p, "app").get("state", {}).get("waiting", {}).get(
                "reason") == "CreateContainerError", 40, "CreateContainerError")
            msg = cstatus(p, "app")["state"]["waiting"].get("message", "")
            self.assertIn("cannot mount images", msg)
            return
        p = node.wait_running_ready("imgvol", 40)
        kubia = node.images["kubia"]
        self.assertTrue(node.registry_lines(rf'"GET /v2/kubia/blobs/{kubia["layer_digest"]} HTTP/1\.1" 200 '),
                        "the volume's image was pulled from the registry")
        cid = raw_id(cstatus(p, "app")["containerID"])
        size = node.exec(cid, "stat", "-c", "%s", "/vol/kubia").stdout.strip()
        self.assertTrue(size.isdigit() and int(size) > 0, f"/vol/kubia is the image's binary: {size!r}")
        self.assertEqual(node.exec(cid, "/tools/busybox", "echo", "from-the-image").stdout.strip(), "from-the-image",
                         "the subPath bin/ of the busybox image")
        self.assertFalse(node.exec(cid, "test", "-e", "/tools/bin", check=False).returncode == 0,
                         "only the subPath is mounted")
        w = node.exec(cid, "sh", "-c", "touch /vol/x", check=False)
        self.assertNotEqual(w.returncode, 0, "an image volume is read-only")

    def test_manifest_removed(self):
        """Removing the manifest stops the containers within the grace period (SIGTERM, then
        SIGKILL at its end), removes the sandbox and frees the pod's IP."""
        node = self.node.start()
        out = os.path.join(node.workdir, "out")
        vol = "volumeMounts:\n- {name: out, mountPath: /out}"
        spec = ("terminationGracePeriodSeconds: 4\n"
                f"volumes:\n- name: out\n  hostPath: {{path: {out}, type: DirectoryOrCreate}}")
        polite = 'trap "echo TERM > /out/polite; exit 0" TERM; while true; do sleep 0.1; done'
        stubborn = 'trap "echo TERM > /out/stubborn" TERM; while true; do sleep 0.1; done'
        node.write("term.yaml", pod("term", self.bb("polite", polite, vol) + self.bb("stubborn", stubborn, vol),
                                    spec_extra=spec))
        p = node.wait_running_ready("term", 40)
        pod_ip = p["status"]["podIP"]
        reservation = os.path.join(node.ipam_dir, "knode", pod_ip)
        self.assertTrue(os.path.exists(reservation), f"the IPAM reservation {reservation}")
        sandbox = node.sandboxes("term")[0]["id"]
        pids = {c["name"]: node.inspect(c["id"])["pid"] for c in node.containers("term")}
        starts = {n: kf.proc_start_time(pid) for n, pid in pids.items()}

        def gone(n):
            return kf.proc_start_time(pids[n]) != starts[n] or not kf.pid_alive(pids[n])

        node.delete("term.yaml")
        t0 = time.monotonic()
        stopped = {}
        deadline = t0 + 15
        while len(stopped) < 2 and time.monotonic() < deadline:
            for n in pids:
                if n not in stopped and gone(n):
                    stopped[n] = time.monotonic() - t0
            time.sleep(0.05)
        self.timings.update({f"{n} stopped": t for n, t in stopped.items()})
        self.assertEqual(sorted(stopped), ["polite", "stubborn"], f"both containers stopped within 15 s: {stopped}")
        self.assertLess(stopped["polite"], 3.0, "the container that obeys SIGTERM stops at once")
        self.assertGreaterEqual(stopped["stubborn"], 3.5, "the one ignoring SIGTERM gets the grace period (4 s)")
        self.assertLess(stopped["stubborn"], 7.0, "... and is killed at its end")
        for n in ("polite", "stubborn"):
            with open(os.path.join(out, n)) as f:
                self.assertEqual(f.read(), "TERM\n", f"{n} received SIGTERM first")

        kf.wait_for(lambda: node.sandboxes("term") == [], 15, "the sandbox removed")
        self.assertEqual(node.containers("term"), [], "the containers removed")
        self.assertNotIn(sandbox, node.runtime.all_sandbox_ids())
        kf.wait_for(lambda: not os.path.exists(reservation), 5, f"the IP {pod_ip} freed (reservation file gone)")
        veths = kf.kn.run(["ip", "-n", node.netns.name, "-o", "link", "show", "type", "veth"]).stdout
        self.assertEqual([l for l in veths.splitlines() if "knup" not in l], [], "the pod's veth is gone")
        kf.wait_for(lambda: node.pod("term") is None, 5, "the pod gone from /pods")
        self.timings["removed entirely"] = time.monotonic() - t0

    def test_emptydir_shared(self):
        """Two containers share an emptyDir (disk) and a memory-backed one."""
        node = self.node.start()
        vol = "volumeMounts:\n- {name: data, mountPath: /data}\n- {name: cache, mountPath: /cache}"
        writer = f"echo hello-from-writer > /data/msg; echo mem > /cache/m; {POLITE}"
        reader = f"while [ ! -f /data/msg ]; do sleep 0.1; done; cat /data/msg; {POLITE}"
        spec = ("terminationGracePeriodSeconds: 2\nvolumes:\n- {name: data, emptyDir: {}}\n"
                "- {name: cache, emptyDir: {medium: Memory, sizeLimit: 8Mi}}")
        node.write("shared.yaml", pod("shared", self.bb("writer", writer, vol) + self.bb("reader", reader, vol),
                                      spec_extra=spec))
        p = node.wait_running_ready("shared", 40)
        uid = p["metadata"]["uid"]
        reader_id = raw_id(cstatus(p, "reader")["containerID"])
        writer_id = raw_id(cstatus(p, "writer")["containerID"])
        self.assertEqual(node.exec(reader_id, "cat", "/data/msg").stdout, "hello-from-writer\n")
        self.assertEqual(node.exec(reader_id, "cat", "/cache/m").stdout, "mem\n")
        node.exec(reader_id, "sh", "-c", "echo reply > /data/back")
        self.assertEqual(node.exec(writer_id, "cat", "/data/back").stdout, "reply\n", "written by the other")
        host = os.path.join(node.root_dir, "pods", uid, "volumes", "kubernetes.io~empty-dir", "data")
        with open(os.path.join(host, "msg")) as f:
            self.assertEqual(f.read(), "hello-from-writer\n", f"the volume lives in {host}")
        mounts = node.exec(reader_id, "cat", "/proc/mounts").stdout
        self.assertRegex(mounts, r"(?m)^\S+ /cache tmpfs ", "medium Memory is a tmpfs")
        self.assertRegex(mounts, r"(?m)^\S+ /cache tmpfs \S*size=8192k", "sized by sizeLimit")

    def test_root_dir_created(self):
        """A pod with a volume runs on a node whose --root-dir does not exist yet: the kubelet
        creates it (upstream's setupDataDirs), as on a fresh machine without /var/lib/kubelet."""
        node = self.node.start(make_root_dir=False)  # the fixture did not create it: knode did
        node.write("vol.yaml", pod("vol", self.bb("app", f"echo x > /data/x; {POLITE}",
                                                  "volumeMounts:\n- {name: data, mountPath: /data}"),
                                   spec_extra="terminationGracePeriodSeconds: 2\nvolumes:\n- {name: data, emptyDir: {}}"))
        p = node.wait_running_ready("vol", 30)
        host = os.path.join(node.root_dir, "pods", p["metadata"]["uid"], "volumes", "kubernetes.io~empty-dir", "data")
        kf.wait_for(lambda: os.path.exists(os.path.join(host, "x")), 5, f"the container's file in {host}")

    def test_configmap_secret_update(self):
        """configMap and secret volumes hold their data; an update reaches the running pod."""
        node = self.node.start()

        def objects(greeting: str, password: str) -> tuple[str, str]:
            cm = (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app-config, namespace: default}}\n"
                  f"data:\n  greeting: {greeting}\n")
            return cm, secret_manifest("app-secret", {"password": password})

        cm, secret = objects("hello", "s3cret")
        node.write("cm.yaml", cm)
        node.write("secret.yaml", secret)
        vol = ("volumeMounts:\n- {name: config, mountPath: /etc/config}\n- {name: secret, mountPath: /etc/secret}\n"
               "env:\n- name: GREETING\n  valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}")
        spec = ("terminationGracePeriodSeconds: 2\nvolumes:\n- {name: config, configMap: {name: app-config}}\n"
                "- {name: secret, secret: {secretName: app-secret}}")
        node.write("app.yaml", pod("app", self.bb("app", POLITE, vol), spec_extra=spec))
        p = node.wait_running_ready("app", 40)
        cid = raw_id(cstatus(p, "app")["containerID"])
        self.assertEqual(node.exec(cid, "cat", "/etc/config/greeting").stdout, "hello")
        self.assertEqual(node.exec(cid, "cat", "/etc/secret/password").stdout, "s3cret")
        self.assertEqual(node.exec(cid, "sh", "-c", "echo $GREETING").stdout, "hello\n")
        mounts = node.exec(cid, "cat", "/proc/mounts").stdout
        self.assertRegex(mounts, r"(?m)^\S+ /etc/secret tmpfs ", "the secret lives on a tmpfs")
        # The atomic layout: the key is a link through ..data.
        self.assertEqual(node.exec(cid, "readlink", "/etc/config/greeting").stdout.strip(), "..data/greeting")

        cm, secret = objects("bonjour", "n3w-pass")
        node.write("cm.yaml", cm)
        node.write("secret.yaml", secret)
        t0 = time.monotonic()
        kf.wait_for(lambda: node.exec(cid, "cat", "/etc/config/greeting").stdout == "bonjour", 20,
                    "the configMap update inside the running container", 0.2)
        self.timings["configMap update visible"] = time.monotonic() - t0
        kf.wait_for(lambda: node.exec(cid, "cat", "/etc/secret/password").stdout == "n3w-pass", 20,
                    "the secret update inside the running container", 0.2)
        self.timings["secret update visible"] = time.monotonic() - t0
        p = node.pod("app")
        self.assertEqual(raw_id(cstatus(p, "app")["containerID"]), cid, "the same container: no restart")
        self.assertEqual(cstatus(p, "app")["restartCount"], 0)
        self.assertEqual(node.exec(cid, "sh", "-c", "echo $GREETING").stdout, "hello\n",
                         "the environment is fixed at start, as upstream")

    def test_secrets_never_logged(self):
        """knode at its most verbose (-v=10) handles secrets every way a pod uses them (a
        volume, an environment variable, an image pull secret, an update of each): no
        secret value appears in its log, as given, base64-encoded or inside the registry
        auth it builds."""
        canary = f"canary-{os.getpid()}-{int(time.time())}"
        password, updated, pull_pass = f"pw-{canary}", f"new-{canary}", f"pull-{canary}"
        node = self.node.start(knode_extra=("-v=10",))
        secret = lambda value: secret_manifest("app-secret", {"password": value})  # noqa: E731
        auth = b64(f"puller:{pull_pass}")
        dockercfg = json.dumps({"auths": {"127.0.0.1:5000": {"username": "puller", "password": pull_pass,
                                                              "auth": auth}}})
        node.write("pull.yaml", secret_manifest("regcred", {".dockerconfigjson": dockercfg},
                                                "kubernetes.io/dockerconfigjson"))
        node.write("secret.yaml", secret(password))
        vol = ("imagePullPolicy: Always\nvolumeMounts:\n- {name: secret, mountPath: /etc/secret}\n"
               "env:\n- name: PASSWORD\n  valueFrom: {secretKeyRef: {name: app-secret, key: password}}")
        spec = ("terminationGracePeriodSeconds: 2\nimagePullSecrets: [{name: regcred}]\n"
                "volumes:\n- {name: secret, secret: {secretName: app-secret}}")
        node.write("app.yaml", pod("app", self.bb("app", POLITE, vol), spec_extra=spec))
        p = node.wait_running_ready("app", 40)
        cid = raw_id(cstatus(p, "app")["containerID"])
        # The secrets reached the pod: the test can fail only on what the log holds.
        self.assertEqual(node.exec(cid, "cat", "/etc/secret/password").stdout, password)
        self.assertEqual(node.exec(cid, "sh", "-c", "echo $PASSWORD").stdout, password + "\n")
        node.write("secret.yaml", secret(updated))
        kf.wait_for(lambda: node.exec(cid, "cat", "/etc/secret/password").stdout == updated, 20,
                    "the secret update inside the running container", 0.2)
        log = node.knode.log()
        self.assertIn('"http request"', log, "knode logs at -v=5 and above (its HTTP requests)")
        leaks = {what: log.count(v) for what, v in (
            ("the password", password), ("the password's base64", b64(password)),
            ("the updated password", updated), ("the updated password's base64", b64(updated)), ("the registry password", pull_pass), ("the registry auth", auth),
            ("the docker config's base64", b64(dockercfg)[:40]), ("the canary", canary)) if v in log}
        self.timings["knode log lines at -v=10"] = float(len(log.splitlines()))
        self.assertEqual(leaks, {}, "secret values in knode's log")

    def test_service_env_vars(self):
        """A pod gets the environment variables of the Services of its namespace."""
        node = self.node.start()
        node.write("svc.yaml", SERVICE_TEXT.format(name="kubia", ip="10.96.0.20", app="kubia", target=8080))
        other = SERVICE_TEXT.format(name="elsewhere", ip="10.96.0.21", app="x", target=80).replace(
            "namespace: default", "namespace: other")
        node.write("other.yaml", other)
        # The Services are in knode's store once the proxy programmed them (without endpoints
        # yet: a REJECT rule in the filter table names the service port).
        kf.wait_for(lambda: '"default/kubia:http' in kf.kn.iptables_save(node.netns.name), 15,
                    "the proxy to program the kubia Service")
        node.write("env.yaml", pod("env", self.bb("app", POLITE), spec_extra="terminationGracePeriodSeconds: 2"))
        p = node.wait_running_ready("env", 40)
        cid = raw_id(cstatus(p, "app")["containerID"])
        env = dict(l.split("=", 1) for l in node.exec(cid, "env").stdout.splitlines() if "=" in l)
        want = {"KUBIA_SERVICE_HOST": "10.96.0.20", "KUBIA_SERVICE_PORT": "80", "KUBIA_SERVICE_PORT_HTTP": "80",
                "KUBIA_PORT": "tcp://10.96.0.20:80", "KUBIA_PORT_80_TCP": "tcp://10.96.0.20:80",
                "KUBIA_PORT_80_TCP_PROTO": "tcp", "KUBIA_PORT_80_TCP_PORT": "80",
                "KUBIA_PORT_80_TCP_ADDR": "10.96.0.20"}
        self.assertEqual({k: env.get(k) for k in want}, want)
        self.assertFalse([k for k in env if k.startswith("ELSEWHERE_")], "no variables of another namespace")

    def test_unknown_image(self):
        """An image the registry lacks: ErrImagePull, then ImagePullBackOff, retried after
        the 10 s back-off; pullPolicy Never without the image: ErrImageNeverPull."""
        node = self.node.start()
        ghost = "127.0.0.1:5000/does-not-exist:1.0"
        node.write("ghost.yaml", pod("ghost", container("app", ghost)))
        node.write("nopull.yaml", pod("nopull", container("app", self.busybox, extra="imagePullPolicy: Never")))
        pulls: list[float] = []  # when a new burst of manifest requests for the ghost appeared
        reasons: list[tuple[str, str]] = []
        seen_lines = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = node.registry_lines(r'"(GET|HEAD) /v2/does-not-exist/manifests/1\.0 ')
            if len(lines) > seen_lines:
                if not pulls or time.monotonic() - pulls[-1] > 3:
                    pulls.append(time.monotonic())
                seen_lines = len(lines)
            p = node.pod("ghost")
            w = cstatus(p or {}, "app").get("state", {}).get("waiting", {})
            if w.get("reason") and (not reasons or reasons[-1][0] != w["reason"]):
                reasons.append((w["reason"], w.get("message", "")))
            names = [r for r, _ in reasons]
            if len(pulls) >= 2 and "ErrImagePull" in names and names[-1] == "ImagePullBackOff":
                break
            time.sleep(0.1)
        # (A pull that fails at once may show ErrImagePull for a few milliseconds only, until
        # the next sync finds the back-off: seen at one pull or the other, then the back-off.)
        names = [r for r, _ in reasons]
        self.assertIn("ErrImagePull", names, f"reasons seen: {reasons}")
        self.assertIn("ImagePullBackOff", names, f"reasons seen: {reasons}")
        self.assertIn("ImagePullBackOff", names[names.index("ErrImagePull"):], f"the back-off after the pull "
                                                                            f"error: {reasons}")
        err = dict(reasons)["ErrImagePull"]
        self.assertIn("does-not-exist", err)
        self.assertEqual(dict(reasons)["ImagePullBackOff"], f'Back-off pulling image "{ghost}"')
        asked = node.registry_lines(r'"(GET|HEAD) /v2/does-not-exist/manifests/')
        self.assertTrue(asked and all('" 404 ' in l for l in asked), f"the registry answered 404: {asked}")
        self.assertGreaterEqual(len(pulls), 2, f"the pull was retried within 30 s (pulls seen at "
                                               f"{[round(t - pulls[0], 1) for t in pulls]} s; reasons {names})")
        self.timings["pull retry after"] = pulls[1] - pulls[0]
        self.assertGreaterEqual(pulls[1] - pulls[0], 8.0, "the retry waits for the 10 s back-off")
        p = node.pod("ghost")
        self.assertEqual(p["status"]["phase"], "Pending")
        self.assertEqual(node.containers("ghost"), [], "no container created")

        p = node.wait_pod("nopull", lambda p: cstatus(p, "app").get("state", {}).get("waiting", {}).get("reason")
                          == "ErrImageNeverPull", 10, "ErrImageNeverPull")
        self.assertEqual(cstatus(p, "app")["state"]["waiting"]["message"],
                         f'Container image "{self.busybox}" is not present with pull policy of Never')
        self.assertEqual(node.containers("nopull"), [])
        self.assertEqual(node.registry_lines(r"/v2/busybox/"), [], "Never does not pull")

    def test_image_pull_from_registry(self):
        """A pod's image is pulled from the local registry (Always pulls again on restart)."""
        node = self.node.start()
        images = node.runtime.image_ids()
        self.assertEqual(node.registry_lines(r"/v2/busybox/"), [])
        node.write("puller.yaml", pod("puller", self.bb("app", POLITE, "imagePullPolicy: Always"),
                                      spec_extra="terminationGracePeriodSeconds: 2"))
        p = node.wait_running_ready("puller", 40)
        bb = node.images["busybox"]
        self.assertTrue(node.registry_lines(rf'"GET /v2/busybox/blobs/{bb["layer_digest"]} HTTP/1\.1" 200 '),
                        "the registry served busybox's layer")
        img = node.runtime.image(self.busybox)
        self.assertIn(f"127.0.0.1:5000/busybox@{bb['manifest_digest']}", img["repo_digests"])
        self.assertNotIn(img["id"], images, "it was not there before")
        cs = cstatus(p, "app")
        self.assertEqual(cs["image"], self.busybox)
        self.assertIn(cs["imageID"], node.inspect(raw_id(cs["containerID"]))["image_refs"])
        self.assertIn(cs["imageID"], (f"127.0.0.1:5000/busybox@{bb['manifest_digest']}", img["id"]))

        before = len(node.registry_lines(r'"(GET|HEAD) /v2/busybox/manifests/'))
        os.kill(node.inspect(raw_id(cs["containerID"]))["pid"], signal.SIGKILL)
        node.wait_pod("puller", lambda p: cstatus(p, "app").get("restartCount") == 1 and "running" in cstatus(
            p, "app").get("state", {}), 20, "restarted")
        after = len(node.registry_lines(r'"(GET|HEAD) /v2/busybox/manifests/'))
        self.assertGreater(after, before, "imagePullPolicy Always asked the registry again for the restart")

    def test_cgroup_driver_mismatch(self):
        """knode --cgroup-driver=systemd against containerd with cgroupfs: a clear error, no pods."""
        node = self.node.start(knode=False, knode_extra=("--cgroup-driver=systemd",))
        node.write("kubia.yaml", self.kubia_pod("kubia"))
        node.knode.start()
        t0 = time.monotonic()
        try:
            node.knode.proc.wait(20)
        except Exception:
            self.fail(f"knode still runs 20 s after start with a mismatched cgroup driver:\n{node.knode.tail()}")
        self.timings["exit after"] = time.monotonic() - t0
        self.assertNotEqual(node.knode.proc.returncode, 0)
        # (The structured log line escapes the quotes of its err="..." value.)
        self.assertRegex(node.knode.log(), r'kubelet cgroup driver: \\?"systemd\\?" is different from the container '
                                           r'runtime\'s cgroup driver: \\?"cgroupfs\\?"')
        self.assertEqual(node.runtime.all_sandbox_ids(), [], "no pod was started")

    def test_bad_manifest(self):
        """A bad manifest is rejected with a clear error; the other pods keep running untouched,
        and a manifest turning bad keeps its pod's last good version."""
        node = self.node.start()
        node.write("good.yaml", self.kubia_pod("good", spec_extra="terminationGracePeriodSeconds: 2"))
        p = node.wait_running_ready("good", 40)
        ids = {c["id"] for c in node.containers("good")}
        sandbox = node.sandboxes("good")[0]["id"]
        bad = pod("bad", container("Bad_Name", self.kubia))
        node.write("bad.yaml", bad)
        node.write("garbage.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n")
        # The good manifest turns bad: its container loses its image.
        node.write("good.yaml", self.kubia_pod("good", spec_extra="terminationGracePeriodSeconds: 2").replace(
            f"image: {self.kubia}", "image: ''"))

        def rejected():
            log = node.knode.log()
            return all(re.search(pat, log) for pat in (r"bad\.yaml.*spec\.containers\[0\]\.name",
                                                        r"garbage\.yaml", r"good\.yaml.*spec\.containers\[0\]\.image"))

        kf.wait_for(rejected, 10, "knode to reject bad.yaml (containers[0].name), garbage.yaml and the bad "
                                  "good.yaml (containers[0].image), naming file and field")
        # A good manifest after them runs: knode went on, and had every chance to act on the bad ones.
        node.write("later.yaml", self.kubia_pod("later", spec_extra="terminationGracePeriodSeconds: 2"))
        node.wait_running_ready("later", 40)
        self.assertIsNone(node.pod("bad"), "the bad pod is not admitted")
        self.assertEqual(node.sandboxes("bad"), [])
        p = node.pod("good")
        self.assertEqual(condition(p, "Ready"), "True")
        self.assertEqual(cstatus(p, "kubia")["restartCount"], 0)
        self.assertEqual({c["id"] for c in node.containers("good")}, ids, "the good pod's containers unchanged")
        self.assertEqual([s["id"] for s in node.sandboxes("good")], [sandbox])
        self.assertEqual(node.http(p["status"]["podIP"], 8080).body, "You've hit good-node1\n")

    def test_foreign_containers_untouched(self):
        """Containers someone else made with the runtime's own tool (`docker run`, `ctr run`:
        no kubelet labels; one as close to a kubelet's as the tool gets) are never stopped,
        started, restarted or removed by knode: not while it runs pods, restarts and adopts
        them, removes a pod, or collects the garbage of a crash-looping pod."""
        node = self.node.start(knode=False)
        cg = f"{node.cgroup_parent}/foreign"
        make = node.runtime.make_foreign
        foreign = {"running": make("foreign-running", self.busybox, ["sleep", "3600"], cg),
                   "exited": make("foreign-exited", self.busybox, ["sh", "-c", "exit 3"], cg),
                   "created": make("foreign-created", self.busybox, ["true"], cg, start=False),
                   "lookalike": make("ghost-node1", self.busybox, ["sleep", "3600"], cg, lookalike=True)}

        def state(handle: str) -> tuple:
            return node.runtime.foreign_state(handle)

        kf.wait_for(lambda: state(foreign["exited"])[0] in ("exited", "stopped"), 10, "foreign-exited to exit")
        before = {n: state(c) for n, c in foreign.items()}
        stopped = "exited" if self.backend == "docker" else "stopped"
        self.assertEqual({n: s[0] for n, s in before.items()},
                         {"running": "running", "exited": stopped, "created": "created", "lookalike": "running"})

        node.start_knode()
        node.write("web.yaml", self.kubia_pod("web", spec_extra="terminationGracePeriodSeconds: 2"))
        node.write("crash.yaml", pod("crash", self.bb("app", "exit 1"), spec_extra="terminationGracePeriodSeconds: 1"))
        node.wait_running_ready("web", 40)
        node.wait_pod("crash", lambda p: (cstatus(p, "app").get("restartCount") or 0) >= 1, 30, "crash restarted")
        self.assertEqual({n: state(c) for n, c in foreign.items()}, before, "knode running pods")

        # A restarted knode relists everything dockerd has and adopts its pods.
        node.knode.stop(signal.SIGKILL)
        node.start_knode()
        gc_armed = time.monotonic()  # the container GC runs a minute after knode starts
        node.wait_running_ready("web", 30)
        self.assertEqual({n: state(c) for n, c in foreign.items()}, before, "knode restarted")

        # A removed pod is killed and its containers removed; the foreign ones stay.
        node.delete("web.yaml")
        kf.wait_for(lambda: node.sandboxes("web") == [] and node.containers("web") == [], 20, "web removed")
        self.assertEqual({n: state(c) for n, c in foreign.items()}, before, "knode removing a pod")

        # The container GC keeps one dead container per pod container: once crash's oldest
        # one is gone, a GC pass has run over everything dockerd lists.
        first = self.node.containers("crash", "app")[0]["id"]
        kf.wait_for(lambda: first not in [c["id"] for c in node.containers("crash", "app")], 80, "a container GC "
                    "pass to remove crash's first dead container", 0.5)
        self.timings["GC pass after knode's start"] = time.monotonic() - gc_armed
        self.assertEqual({n: state(c) for n, c in foreign.items()}, before, "knode's container GC")

    def _adopt_after_restart(self, sig: int):
        node = self.node.start()
        node.write("svc.yaml", SERVICE_TEXT.format(name="web", ip="10.96.0.60", app="web", target=8080))
        node.write("web.yaml", self.kubia_pod("web", spec_extra="terminationGracePeriodSeconds: 2",
                                              labels={"app": "web"}))
        probe = "readinessProbe:\n  exec:\n    command: [ls, /data/ready]\n  periodSeconds: 1"
        vol = "volumeMounts:\n- {name: data, mountPath: /data}"
        node.write("keeper.yaml", pod("keeper", self.bb("app", f"touch /data/ready; {POLITE}", f"{probe}\n{vol}"),
                                      spec_extra="terminationGracePeriodSeconds: 2\nvolumes:\n- {name: data, emptyDir: {}}"))
        before = {n: node.wait_running_ready(n, 40) for n in ("web", "keeper")}
        kf.wait_for(lambda: kf.kn.dnat_targets(node.netns.name, "default/web:http") == {
            f"{before['web']['status']['podIP']}:8080"}, 15, "web as the Service's endpoint")
        ctrs = {n: node.containers(n) for n in before}
        sbs = {n: node.sandboxes(n) for n in before}
        pids = {c["id"]: node.inspect(c["id"])["pid"] for n in ctrs for c in ctrs[n]}
        starts = {pid: kf.proc_start_time(pid) for pid in pids.values()}
        keeper_id = ctrs["keeper"][0]["id"]
        node.exec(keeper_id, "sh", "-c", "echo kept > /data/state")

        rc = node.knode.stop(sig, 15)
        self.assertEqual(rc, -sig if sig == signal.SIGKILL else rc)
        # knode is down: the pods keep running and serving.
        self.assertEqual({pid: kf.proc_start_time(pid) for pid in pids.values()}, starts, "every container runs on")
        self.assertEqual(node.http(before["web"]["status"]["podIP"], 8080).body, "You've hit web-node1\n")
        self.assertEqual(node.http("10.96.0.60", 80).body, "You've hit web-node1\n", "the Service too")

        # Start it again, and keep asking the ClusterIP and the rules while it adopts the
        # pods: the Service's endpoint must never drop out (the kernel state stays, and the
        # pods never stopped being ready).
        want = {f"{before['web']['status']['podIP']}:8080"}
        outages: list[str] = []
        t0 = time.monotonic()
        node.knode.start()
        adopted = None
        while time.monotonic() - t0 < 20:
            now = time.monotonic() - t0
            try:
                r = node.http("10.96.0.60", 80, timeout=1)
                if r.body != "You've hit web-node1\n":
                    outages.append(f"{now:.2f} s: ClusterIP answered {r.status} {r.body!r}")
            except OSError as e:
                outages.append(f"{now:.2f} s: ClusterIP: {e!r}")
            got = kf.kn.dnat_targets(node.netns.name, "default/web:http")
            if got != want:
                outages.append(f"{now:.2f} s: the Service's endpoints are {sorted(got)}")
            if adopted is None:
                try:
                    ps = node.pods()
                except (OSError, AssertionError, ValueError):
                    ps = {}
                if all(condition(ps.get(f"{n}-node1", {}), "Ready") == "True" for n in before):
                    adopted = now
                    self.timings["restart to adopted (Ready)"] = now
            # Two proxy syncs (--iptables-min-sync-period 1 s) after the pods are adopted.
            if adopted is not None and now > adopted + 2.5:
                break
            time.sleep(0.05)
        node.check_knode_alive()
        self.assertIsNotNone(adopted, "the pods Ready on /pods within 20 s of the restart")
        for n in before:
            p = node.pod(n)
            self.assertEqual(p["metadata"]["uid"], before[n]["metadata"]["uid"])
            self.assertEqual(p["status"]["podIP"], before[n]["status"]["podIP"])
        with self.subTest("the Service's traffic during the restart"):
            self.assertEqual(outages[:6] + outages[-2:], [],
                             f"{len(outages)} failed checks after the restart (first 6 and last 2 shown)")
        # A new pod runs: the restarted knode acts; the old pods it only adopted.
        node.write("fresh.yaml", self.kubia_pod("fresh", spec_extra="terminationGracePeriodSeconds: 2"))
        node.wait_running_ready("fresh", 40)
        for n in before:
            p = node.pod(n)
            self.assertEqual([c["id"] for c in node.containers(n)], [c["id"] for c in ctrs[n]],
                             f"{n}: no container created or removed")
            self.assertEqual([s["id"] for s in node.sandboxes(n)], [s["id"] for s in sbs[n]], f"{n}: same sandbox")
            for c in p["status"]["containerStatuses"]:
                self.assertEqual(c["restartCount"], 0, f"{n}/{c['name']}")
                self.assertIn(raw_id(c["containerID"]), pids)
        self.assertEqual({pid: kf.proc_start_time(pid) for pid in pids.values()}, starts,
                         "no container process was restarted")
        self.assertEqual(node.exec(keeper_id, "cat", "/data/state").stdout, "kept\n", "the emptyDir kept its data")
        kf.wait_for(lambda: kf.kn.dnat_targets(node.netns.name, "default/web:http") == want, 10,
                    "web as the Service's endpoint after the restart")
        self.assertEqual(node.http("10.96.0.60", 80).body, "You've hit web-node1\n")

    def test_knode_restart_sigterm(self):
        """knode stopped with SIGTERM and started again adopts its pods: no container restarted."""
        self._adopt_after_restart(signal.SIGTERM)

    def test_knode_restart_sigkill(self):
        """knode SIGKILLed and started again adopts its pods: no container restarted."""
        self._adopt_after_restart(signal.SIGKILL)

    @only_on("containerd")
    def test_containerd_restart(self):
        """containerd restarted under knode: the pods keep running, /healthz follows the
        runtime down and up, and the status recovers (a crash after it is still handled)."""
        node = self.node.start()
        node.write("web.yaml", self.kubia_pod("web", spec_extra="terminationGracePeriodSeconds: 2"))
        p = node.wait_running_ready("web", 40)
        ip = p["status"]["podIP"]
        cid = raw_id(cstatus(p, "kubia")["containerID"])
        pid = node.inspect(cid)["pid"]
        start = kf.proc_start_time(pid)
        cd = node.containerd
        cd.proc.send_signal(signal.SIGTERM)
        cd.proc.wait(15)
        t0 = time.monotonic()
        self.assertEqual(kf.proc_start_time(pid), start, "the container outlives containerd")
        self.assertEqual(node.http(ip, 8080).body, "You've hit web-node1\n")
        kf.wait_for(lambda: node.healthz().status == 503, 15, "knode's /healthz to report the runtime down (503)")
        self.timings["healthz 503 after containerd stopped"] = time.monotonic() - t0
        self.assertTrue(node.knode.alive())
        cd.start()
        t0 = time.monotonic()
        kf.wait_for(lambda: node.healthz().status == 200, 15, "knode's /healthz to recover (200)")
        self.timings["healthz 200 after containerd restarted"] = time.monotonic() - t0
        p = node.wait_running_ready("web", 15)
        self.assertEqual(raw_id(cstatus(p, "kubia")["containerID"]), cid)
        self.assertEqual(cstatus(p, "kubia")["restartCount"], 0)
        self.assertEqual(kf.proc_start_time(pid), start, "the container was not restarted")
        self.assertEqual([c["id"] for c in node.containers("web")], [cid])
        # knode drives the restarted runtime: a crash now is noticed and restarted.
        os.kill(pid, signal.SIGKILL)
        p = node.wait_pod("web", lambda p: cstatus(p, "kubia").get("restartCount") == 1 and "running" in cstatus(
            p, "kubia").get("state", {}), 20, "the container restarted after a crash")
        self.assertEqual(p["status"]["podIP"], ip, "same sandbox, same IP")
        self.assertEqual(node.http(ip, 8080).body, "You've hit web-node1\n")

    @only_on("containerd")
    def test_containerd_restart_under_pods(self):
        """containerd SIGKILLed under running pods and started again ~15 s later on the same
        root, state and socket (its shims keep the containers running): no container
        restarted, no sandbox recreated, the HTTP readiness probe and the Service keep
        working throughout, /healthz follows the runtime down and up, the exec probes run
        again on the restarted runtime (without restarting anything), a new pod runs."""
        away = 15.0
        node = self.node.start()
        node.write("svc.yaml", SERVICE_TEXT.format(name="web", ip="10.96.0.61", app="web", target=8080))
        # web serves, with a probe knode runs itself (HTTP: no runtime involved) and a
        # sidecar; keeper's probes go through the runtime (CRI ExecSync), so they cannot run
        # while containerd is away: a probe that could not run is no verdict (upstream
        # throws the result away), or keeper would be killed for it once containerd is back.
        web_probes = ("ports:\n- {name: http, containerPort: 8080}\n"
                      "readinessProbe:\n  httpGet: {path: /, port: 8080}\n  periodSeconds: 1\n"
                      "livenessProbe:\n  tcpSocket: {port: 8080}\n  periodSeconds: 1\n  failureThreshold: 2")
        node.write("web.yaml", pod("web", container("kubia", self.kubia, extra=web_probes) + self.bb("box", POLITE),
                                   labels={"app": "web"}, spec_extra="terminationGracePeriodSeconds: 2"))
        keeper_probes = ("livenessProbe:\n  exec:\n    command: [cat, /tmp/healthy]\n  periodSeconds: 1\n"
                         "  failureThreshold: 2\n"
                         "readinessProbe:\n  exec:\n    command: [cat, /tmp/ready]\n  periodSeconds: 1\n"
                         "  failureThreshold: 1")
        node.write("keeper.yaml", pod("keeper", self.bb("app", f"touch /tmp/healthy /tmp/ready; {POLITE}",
                                                        keeper_probes),
                                      spec_extra="terminationGracePeriodSeconds: 2"))
        names = ("web", "keeper")
        before = {n: node.wait_running_ready(n, 40) for n in names}
        web_ip = before["web"]["status"]["podIP"]
        want = {f"{web_ip}:8080"}
        ns = node.netns.name
        kf.wait_for(lambda: kf.kn.dnat_targets(ns, "default/web:http") == want, 15, "web as the Service's endpoint")
        ctrs = {n: [c["id"] for c in node.containers(n)] for n in names}
        sbs = {n: [s["id"] for s in node.sandboxes(n)] for n in names}
        self.assertEqual({n: len(ids) for n, ids in ctrs.items()}, {"web": 2, "keeper": 1})
        self.assertEqual({n: len(ids) for n, ids in sbs.items()}, {"web": 1, "keeper": 1})
        pids = {cid: node.inspect(cid)["pid"] for ids in ctrs.values() for cid in ids}
        starts = {pid: kf.proc_start_time(pid) for pid in pids.values()}

        # One sample of everything that must not change while containerd is away and back:
        # the ClusterIP answering web, the Service's DNAT rules, both pods Ready on /pods.
        samples: list[float] = []
        flaps: list[str] = []

        def sample():
            now = time.monotonic() - t_kill
            samples.append(now)
            try:
                r = node.http("10.96.0.61", 80, timeout=1)
                if r.body != "You've hit web-node1\n":
                    flaps.append(f"{now:.2f} s: ClusterIP answered {r.status} {r.body!r}")
            except OSError as e:
                flaps.append(f"{now:.2f} s: ClusterIP: {e!r}")
            got = kf.kn.dnat_targets(ns, "default/web:http")
            if got != want:
                flaps.append(f"{now:.2f} s: the Service's endpoints are {sorted(got)}")
            try:
                ps = node.pods()
            except (OSError, AssertionError, ValueError) as e:
                flaps.append(f"{now:.2f} s: /pods: {e!r}")
                return
            for n in names:
                if condition(ps.get(f"{n}-node1", {}), "Ready") != "True":
                    flaps.append(f"{now:.2f} s: {n} not Ready on /pods")

        cd = node.containerd
        cd.proc.send_signal(signal.SIGKILL)
        cd.proc.wait(15)
        t_kill = time.monotonic()
        unhealthy = None
        for _ in range(int(away / 0.05) + 1):  # bounded: about `away` seconds of samples
            if time.monotonic() - t_kill >= away:
                break
            node.check_knode_alive()
            sample()
            if unhealthy is None and node.healthz().status == 503:
                unhealthy = time.monotonic() - t_kill
            time.sleep(0.05)
        self.assertIsNotNone(unhealthy, f"knode's /healthz reports the runtime down (503) within {away:.0f} s")
        self.timings["healthz 503 after containerd was killed"] = unhealthy
        self.assertEqual({pid: kf.proc_start_time(pid) for pid in pids.values()}, starts,
                         "every container outlives containerd")

        cd.start()
        downtime = time.monotonic() - t_kill
        self.timings["containerd down (kill to CRI answering)"] = downtime
        # Back: /healthz 200 and both pods Ready, sampling all along; then 3 s more, three
        # periods of every probe on the restarted runtime.
        t_back = time.monotonic()
        healthy = None
        for _ in range(400):  # bounded: about 20 s
            now = time.monotonic() - t_back
            node.check_knode_alive()
            sample()
            if healthy is None and node.healthz().status == 200:
                healthy = now
                self.timings["healthz 200 after containerd answered"] = now
            if healthy is not None and now > healthy + 3:
                break
            time.sleep(0.05)
        self.assertIsNotNone(healthy, "knode's /healthz back to 200 within 20 s of containerd answering")

        # What the runtime says: the same containers, running, in the same ready sandboxes.
        now_ctrs = {n: [c["id"] for c in node.containers(n)] for n in names}
        now_sbs = {n: [s["id"] for s in node.sandboxes(n)] for n in names}
        new_ctrs = sum(len(set(now_ctrs[n]) - set(ctrs[n])) for n in names)
        new_sbs = sum(len(set(now_sbs[n]) - set(sbs[n])) for n in names)
        restarts = {f"{n}/{c['name']}": c["restartCount"] for n in names
                    for c in node.pod(n)["status"]["containerStatuses"]}
        gone_pids = [pid for pid, st in starts.items() if kf.proc_start_time(pid) != st]
        # (knode's own word, only to show the exec probes did meet the missing runtime)
        errored = node.knode.log().count('"probe errored" pod=default/keeper-node1')
        print(f"\ncontainerd killed and away {downtime:.1f} s: {len(samples)} samples, {len(flaps)} flapped; "
              f"containers restarted {new_ctrs + sum(restarts.values())} (new ids {new_ctrs}, restartCount "
              f"{sum(restarts.values())}, processes gone {len(gone_pids)}); sandboxes recreated {new_sbs}; "
              f"keeper's exec probes errored {errored} times (knode's log)")
        self.assertEqual(now_ctrs, ctrs, "no container created or removed")
        self.assertEqual(now_sbs, sbs, "no sandbox created or removed")
        self.assertEqual(restarts, {"web/kubia": 0, "web/box": 0, "keeper/app": 0})
        self.assertEqual(gone_pids, [], "no container process was restarted")
        for n in names:
            self.assertEqual([s["ready"] for s in node.sandboxes(n)], [True], f"{n}'s sandbox ready")
            self.assertEqual({c["state"] for c in node.containers(n)}, {"running"}, n)
        with self.subTest("the Service, its rules and the pods' readiness while containerd was away and back"):
            self.assertEqual(flaps[:6] + flaps[-2:], [],
                             f"{len(flaps)} failed checks of {len(samples)} (first 6 and last 2 shown)")

        # keeper's exec probes run on the restarted runtime: its readiness follows the file.
        keeper_id = ctrs["keeper"][0]
        node.exec(keeper_id, "rm", "/tmp/ready")
        node.wait_pod("keeper", lambda p: condition(p, "Ready") == "False", 10, "Ready False after rm /tmp/ready")
        node.exec(keeper_id, "touch", "/tmp/ready")
        node.wait_pod("keeper", lambda p: condition(p, "Ready") == "True", 10, "Ready again after touch /tmp/ready")
        # knode drives the restarted runtime: a new pod runs.
        t0 = time.monotonic()
        node.write("fresh.yaml", self.kubia_pod("fresh", spec_extra="terminationGracePeriodSeconds: 2"))
        node.wait_running_ready("fresh", 40)
        self.timings["a new pod Running+Ready after the restart"] = time.monotonic() - t0
        self.assertEqual({n: [c["id"] for c in node.containers(n)] for n in names}, ctrs)
        self.assertEqual({f"{n}/{c['name']}": c["restartCount"] for n in names
                          for c in node.pod(n)["status"]["containerStatuses"]}, restarts)


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=kf.BACKENDS, default="containerd")
    ap.add_argument("--flavor", choices=("v2", "debian"), default="v2", help="containerd's (--backend containerd)")
    ap.add_argument("--knode", default=os.environ.get("KNODE_BIN", ""))
    ap.add_argument("--knode-cni", default=os.environ.get("KNODE_CNI_BIN", ""))
    ap.add_argument("--log-dir", default=os.environ.get("KNODE_RUNTIME_LOG_DIR") or "/tmp/knode-kubelet-runtime-logs")
    ap.add_argument("--timeout", type=int, default=90)
    ap.add_argument("tests", nargs="*", help="test methods (default: all), e.g. test_static_pod_running")
    ARGS = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, mounts, containers)")
        return kf.SKIP
    missing = kf.missing(ARGS.backend, ARGS.flavor, ARGS.knode, ARGS.knode_cni)
    if missing:
        print(f"SKIP: missing {'; '.join(missing)}")
        return kf.SKIP
    kf.rt.remove_stale()

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its {ARGS.timeout}s budget")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(TestTimeout("terminated")))
    KubeletRuntimeTest.backend = ARGS.backend
    KubeletRuntimeTest.flavor = ARGS.flavor
    if ARGS.tests:
        suite = unittest.TestSuite(KubeletRuntimeTest(t) for t in ARGS.tests)
    else:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(KubeletRuntimeTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    signal.alarm(0)
    if result.wasSuccessful() and result.testsRun and len(result.skipped) == result.testsRun:
        return kf.SKIP  # CTest: skipped (a test of the other backend only)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
