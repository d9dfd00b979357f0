"""A built artifact cached under a key, shared by the test tiers' image builders
(tests/runtime/images/build.py, tests/conformance/images.py):

    doc = image_cache.cached(base, key, build, "test images")

returns the JSON document base/<key>/images.json; when it is absent, build(tmp, final)
makes everything in the directory tmp and returns that document (final is where tmp will
be), which is written there before tmp is renamed to final. One builder at a time
(an flock on base/.lock): a concurrent one waits, then reuses the result. A failed build
leaves nothing. build=None only reads (FileNotFoundError when absent)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from typing import Callable, Optional


def cached(base: str, key: str, build: Optional[Callable[[str, str], dict]], what: str) -> dict:
    final = os.path.join(base, key)
    doc_path = os.path.join(final, "images.json")
    if os.path.exists(doc_path):
        with open(doc_path) as f:
            return json.load(f)
    if build is None:
        raise FileNotFoundError(f"no {what} for key {key} in {base}")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(doc_path):
            tmp = tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=base)
            try:
                doc = build(tmp, final)
                with open(os.path.join(tmp, "images.json"), "w") as f:
                    json.dump(doc, f, indent=1)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    with open(doc_path) as f:
        return json.load(f)
