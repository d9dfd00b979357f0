#!/usr/bin/env python3
"""The layout's rules, checked on the source tree (docs/design.md, "Layout"):

1. Seams are enforced: a product folder includes another top-level folder's code only
   through include/ (the public headers); its own private headers stay its own.
2. dataplane/ (and its seams in include/knode/dataplane/) knows nothing about Kubernetes:
   no file there names a Kubernetes concept.
"""

import os
import re
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PRODUCT = ["common", "dataplane", "proxy", "kubelet", "cni", "cmd"]
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# Words that name Kubernetes concepts. "service" stays allowed: IPVS calls its virtual
# servers services.
KUBERNETES_RE = re.compile(
    r"kube|kubernetes|kubelet|\bpods?\b|endpoint ?slices?|\bnode ?ports?\b|cluster ?ips?\b|\bcni\b|kubia",
    re.I)


def sources(folder):
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for f in files:
            if f.endswith((".cc", ".h", ".proto")) or f in ("CMakeLists.txt",) or f.endswith(".md"):
                yield os.path.join(dirpath, f)


def top_of(path):
    return os.path.relpath(path, ROOT).split(os.sep)[0]


class Layout(unittest.TestCase):
    def test_other_folders_are_reached_only_through_include(self):
        index = {}  # relative path suffix -> top-level folders holding such a file
        for top in PRODUCT:
            for path in sources(top):
                rel = os.path.relpath(path, os.path.join(ROOT, top))
                parts = rel.split(os.sep)
                for i in range(len(parts)):
                    index.setdefault("/".join(parts[i:]), set()).add(top)
        bad = []
        for top in PRODUCT:
            for path in sources(top):
                if not path.endswith((".cc", ".h")):
                    continue
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for inc in INCLUDE_RE.findall(text):
                    if os.path.exists(os.path.join(ROOT, "include", inc)):
                        continue
                    owners = index.get(inc, set())
                    if owners and top not in owners:
                        bad.append(f"{os.path.relpath(path, ROOT)} includes \"{inc}\" from {sorted(owners)}")
        self.assertEqual(bad, [], "headers reached across top-level folders outside include/")

    def test_dataplane_names_no_kubernetes_concept(self):
        bad = []
        for folder in ["dataplane", os.path.join("include", "knode", "dataplane")]:
            for path in sources(folder):
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        m = KUBERNETES_RE.search(line)
                        if m:
                            bad.append(f"{os.path.relpath(path, ROOT)}:{n}: {m.group(0)!r}: {line.strip()}")
        self.assertEqual(bad, [], "dataplane/ must stay Kubernetes-free")

    def test_the_checks_can_fail(self):
        # The patterns above must catch what they are meant to catch.
        self.assertTrue(KUBERNETES_RE.search("KUBE-SERVICES"))
        self.assertTrue(KUBERNETES_RE.search("one pod's chains"))
        self.assertTrue(KUBERNETES_RE.search("a NodePort"))
        self.assertFalse(KUBERNETES_RE.search("add IPVS service 10.96.0.1:443/TCP"))
        self.assertEqual(INCLUDE_RE.findall('#include "iptables/entry.h"\n'), ["iptables/entry.h"])


if __name__ == "__main__":
    sys.exit(unittest.main())
