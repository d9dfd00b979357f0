#!/usr/bin/env python3
"""Runs namespace-tier tests by name; exits 0 (pass), 1 (fail, also when the knode binary is
missing) or 77 (skipped: no root or no `ip netns`), as CTest's SKIP_RETURN_CODE expects.

    run.py --knode PATH [--path DIR] [--timeout SECONDS] MODULE.CLASS.TEST ...

--path adds the folder holding the test modules to the import path.
"""

import argparse
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import knode_netns as kn  # noqa: E402

SKIP = 77


class TestTimeout(Exception):
    pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--knode", default=os.environ.get("KNODE_BIN", ""))
    ap.add_argument("--timeout", type=int, default=100,
                    help="fail the test (and still tear down) after this many seconds")
    ap.add_argument("--path", action="append", default=[], help="folder of the test modules")
    ap.add_argument("tests", nargs="+")
    args = ap.parse_args()
    for p in args.path:
        sys.path.insert(0, os.path.abspath(p))

    if not args.knode or not os.access(args.knode, os.X_OK):
        print(f"FAIL: knode binary not found or not executable: {args.knode!r} (build the knode target)")
        return 1
    os.environ["KNODE_BIN"] = os.path.abspath(args.knode)
    ok, why = kn.ip_netns_available()
    if not ok:
        print(f"SKIP: {why}")
        return SKIP
    kn.remove_stale_namespaces()

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its {args.timeout}s budget")

    signal.signal(signal.SIGALRM, on_alarm)
    # SIGTERM from CTest (or a user) still runs cleanups: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(TestTimeout("terminated")))
    signal.alarm(args.timeout)
    suite = unittest.defaultTestLoader.loadTestsFromNames(args.tests)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    signal.alarm(0)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        for _, reason in result.skipped:
            print(f"SKIP: {reason}")
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
