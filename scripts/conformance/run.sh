#!/usr/bin/env bash
# Runs Kubernetes' conformance suite against knode nodes (tests/conformance/README.md), as
# root on a fresh Debian 12 machine: installs and builds what it needs (as scripts/test.sh
# does), then tests/conformance/conformance.py with these defaults, which arguments replace:
#
#   scripts/conformance/run.sh                       # the whole suite: about 2 hours
#   scripts/conformance/run.sh --subset sig-network  # one group (see conformance.py --help)
#
# Default: --subset all --parallel 3 --with-serial --report-dir build/conformance-all
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"

"$repo/scripts/setup.sh"
"$repo/scripts/runtime/install.sh" --no-images
"$repo/scripts/cluster/build-control-plane.sh" >/dev/null
"$repo/scripts/conformance/build-e2e.sh" --all >/dev/null
python3 "$repo/tests/conformance/images.py" >/dev/null

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--subset all --parallel 3 --with-serial --report-dir "$build/conformance-all")
export KNODE_BIN="$build/cmd/knode/knode" KNODE_CNI_BIN="$build/cni/knode-cni"
exec python3 "$repo/tests/conformance/conformance.py" "${args[@]}"
