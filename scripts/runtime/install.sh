#!/usr/bin/env bash
# Installs what the runtime test tier needs (tests/runtime/README.md), idempotently, as
# root, non-interactively:
#   - Debian packages: containerd 1.6, runc, docker.io (dockerd 20.10, for the Docker
#     backend's tests), docker-registry, skopeo, busybox-static, socat, and the small tools
#     the harness calls;
#   - containerd v2 (containerd, containerd-shim-runc-v2, ctr) and crictl, built from
#     their Go modules at the versions pinned in versions.env, into a cache keyed by
#     version: $KNODE_CACHE_DIR/containerd-<v>/bin, $KNODE_CACHE_DIR/cri-tools-<v>/bin;
#   - the test images (tests/runtime/images/), built and pushed once into a registry
#     storage directory under the cache, keyed by a hash of their sources.
# A second run only checks (a few hundred ms). Prints where everything is.
#
#   scripts/runtime/install.sh             (KNODE_CACHE_DIR defaults to /var/cache/knode)
#   scripts/runtime/install.sh --no-images (packages and binaries only)
#   scripts/runtime/install.sh --debian-only (no Go builds: Debian's containerd 1.6 only, as
#                                            the demo uses it)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KNODE_CACHE_DIR:-/var/cache/knode}"
log() { echo "runtime/install.sh: $*" >&2; }

build_images=1
go_builds=1
for arg in "$@"; do
  case "$arg" in
    --no-images) build_images=0 ;;
    --debian-only) go_builds=0 ;;
    *) log "unknown argument: $arg"; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (it installs Debian packages)"
  exit 1
fi

# shellcheck source=versions.env
. "$repo/scripts/runtime/versions.env"

# --- Debian packages --------------------------------------------------------------
packages=(
  containerd runc docker.io docker-registry skopeo busybox-static socat
  # the conformance tier's agnhost image carries these (tests/conformance/images.py)
  netcat-openbsd bind9-dnsutils curl bash
  # the harness: ip netns, nsenter/setpriv, gcc for the static test programs, Go's TLS
  iproute2 util-linux procps gcc libc6-dev ca-certificates python3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker-registry's, containerd's and docker.io's maintainer scripts would start the
  # system-wide services on a sysvinit host (a registry on 0.0.0.0:5000, a dockerd with its
  # bridge and iptables rules, all in the root namespace). The tests start their own, so
  # deny exactly those starts while we install, unless the machine already has a policy of
  # its own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\ncase "$1" in docker-registry|containerd|docker) exit 101 ;; esac\nexit 0\n' >"$policy"
    chmod 755 "$policy"
  fi
  # Another apt may hold the lock (other builds share the machine): wait, bounded.
  for i in $(seq 1 60); do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      break
    fi
    [ "$i" -lt 60 ] || { log "apt-get failed 60 times"; exit 1; }
    log "apt-get failed (dpkg lock?), retrying in 5 s ($i/60)"
    sleep 5
  done
  if [ -e "$policy" ] && grep -q 'docker-registry|containerd|docker' "$policy"; then
    rm -f "$policy"
    trap - EXIT
  fi
  # On a systemd host the package also enables docker.service for the next boot: a
  # dockerd we just installed for the tests stays off (an operator's own is left alone).
  if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v deb-systemd-helper >/dev/null; then
    DPKG_MAINTSCRIPT_PACKAGE=docker.io deb-systemd-helper disable docker.service docker.socket >/dev/null 2>&1 || true
  fi
else
  log "Debian packages present"
fi

# --- Go builds --------------------------------------------------------------------
find_go() {
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] && { echo "$g"; return 0; }
  done
  return 1
}

containerd_bin="$cache/containerd-$CONTAINERD_VERSION/bin"
crictl_bin="$cache/cri-tools-$CRI_TOOLS_VERSION/bin"

need_build=0
for f in "$containerd_bin/containerd" "$containerd_bin/containerd-shim-runc-v2" "$containerd_bin/ctr" \
         "$crictl_bin/crictl"; do
  [ -x "$f" ] || need_build=1
done

if [ "$go_builds" = 0 ]; then
  log "skipping the Go builds (--debian-only)"
elif [ "$need_build" = 1 ]; then
  go="$(find_go)" || { log "Go is not installed (looked in PATH, /usr/local/go/bin, /usr/lib/go/bin)"; exit 1; }
  export GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/cache"
  export CGO_ENABLED=0
  mkdir -p "$GOPATH"
  # Build into a temporary directory, then rename: an interrupted build leaves no
  # half-filled bin directory that a later run would take as done.
  go_install() {  # <dest bin dir> <ldflags> <tags> <package@version>...
    local dest="$1" ldflags="$2" tags="$3"
    shift 3
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    GOBIN="$dest.tmp" nice -n 10 "$go" install -p "${KNODE_GO_PROCS:-1}" -trimpath -tags "$tags" -ldflags "$ldflags" "$@"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
  }
  if [ ! -x "$containerd_bin/containerd" ] || [ ! -x "$containerd_bin/containerd-shim-runc-v2" ] \
     || [ ! -x "$containerd_bin/ctr" ]; then
    log "building containerd $CONTAINERD_VERSION from $CONTAINERD_MODULE (several CPU-minutes cold)"
    t0=$(date +%s)
    m="$CONTAINERD_MODULE"
    # no_btrfs: the btrfs snapshotter needs cgo and kernel headers; nothing here uses it.
    go_install "$containerd_bin" \
      "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" \
      "urfave_cli_no_docs no_btrfs osusergo netgo" \
      "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
      "$m/cmd/ctr@$CONTAINERD_VERSION"
    log "containerd built in $(( $(date +%s) - t0 )) s"
  fi
  if [ ! -x "$crictl_bin/crictl" ]; then
    log "building crictl $CRI_TOOLS_VERSION from $CRI_TOOLS_MODULE"
    t0=$(date +%s)
    go_install "$crictl_bin" "-s -w -X $CRI_TOOLS_MODULE/pkg/version.Version=$CRI_TOOLS_VERSION" "" \
      "$CRI_TOOLS_MODULE/cmd/crictl@$CRI_TOOLS_VERSION"
    log "crictl built in $(( $(date +%s) - t0 )) s"
  fi
else
  log "containerd $CONTAINERD_VERSION and crictl $CRI_TOOLS_VERSION already built"
fi

# --- test images ------------------------------------------------------------------
images_line="(skipped: --no-images)"
if [ "$build_images" = 1 ]; then
  images_dir="$(KNODE_CACHE_DIR="$cache" python3 "$repo/tests/runtime/images/build.py")"
  images_line="$images_dir (registry storage: $images_dir/registry)"
fi

cat <<EOF
runtime tier, installed:
  containerd v2 ($CONTAINERD_VERSION): $containerd_bin/{containerd,containerd-shim-runc-v2,ctr}
  containerd 1.6 (Debian):   $(command -v containerd || echo /usr/bin/containerd) $(dpkg-query -W -f='${Version}' containerd)
  runc (Debian):             $(command -v runc || echo /usr/sbin/runc) $(dpkg-query -W -f='${Version}' runc)
  crictl ($CRI_TOOLS_VERSION):        $crictl_bin/crictl
  docker-registry:           $(command -v docker-registry || echo /usr/bin/docker-registry)
  test images:               $images_line
EOF
