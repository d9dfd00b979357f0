#!/usr/bin/env bash
# Prepares the VM test tier: installs the host tools the harness needs and fetches
# Debian's stock kernel package (which has ip_vs as modules) into a cache directory,
# unpacked with dpkg -x, never installed. Idempotent: a second run does nothing.
#
#   scripts/vm/prepare.sh [CACHE_DIR]     (default: $KNODE_VM_CACHE or $REPO/.cache/vm)
#
# Leaves $CACHE_DIR/kernel -> the unpacked tree, and $CACHE_DIR/kernel.env with
# KNODE_VM_KVER, KNODE_VM_VMLINUZ, KNODE_VM_MODROOT for run.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${1:-${KNODE_VM_CACHE:-$repo/.cache/vm}}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

log() { echo "prepare.sh: $*" >&2; }

# --- host tools -------------------------------------------------------------------
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have qemu-system-x86_64 || need_pkgs+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' \
  || need_pkgs+=(busybox-static)
have ipvsadm || need_pkgs+=(ipvsadm)
have ipset || need_pkgs+=(ipset)
have cpio || need_pkgs+=(cpio)
have depmod || need_pkgs+=(kmod)
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need_pkgs+=(iproute2)
have iptables-legacy || need_pkgs+=(iptables)
have file || need_pkgs+=(file)
have gzip || need_pkgs+=(gzip)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- kernel package ---------------------------------------------------------------
# linux-image-amd64 is a metapackage; its dependency names the versioned image.
if [ -f "$cache/kernel.env" ] && . "$cache/kernel.env" && [ -f "${KNODE_VM_VMLINUZ:-}" ] \
   && [ -d "${KNODE_VM_MODROOT:-}/lib/modules/${KNODE_VM_KVER:-}" ]; then
  log "kernel $KNODE_VM_KVER already in $cache"
  exit 0
fi

resolve_image_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg="$(resolve_image_pkg)"
if [ -z "$pkg" ]; then
  log "apt-get update (to resolve linux-image-amd64)"
  apt-get update -qq
  pkg="$(resolve_image_pkg)"
fi
[ -n "$pkg" ] || { log "cannot resolve linux-image-amd64's image package"; exit 1; }
log "kernel package: $pkg"

dl="$cache/debs"
mkdir -p "$dl"
if ! ls "$dl/${pkg}"_*.deb >/dev/null 2>&1; then
  if ! (cd "$dl" && apt-get download "$pkg"); then
    # Stale package lists name a version the mirror no longer has: refresh, re-resolve.
    log "download failed; apt-get update and retry"
    apt-get update -qq
    pkg="$(resolve_image_pkg)"
    [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64's image package"; exit 1; }
    (cd "$dl" && apt-get download "$pkg")
  fi
fi
deb="$(ls "$dl/${pkg}"_*.deb | head -n1)"

root="$cache/kernel"
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
dpkg -x "$deb" "$root.tmp"
kver="$(ls "$root.tmp/lib/modules" | head -n1)"
[ -n "$kver" ] || { log "no lib/modules in $deb"; exit 1; }
# The package ships modules.order/builtin but not the generated maps; make them.
depmod -b "$root.tmp" "$kver"
rm -rf "$root"
mv "$root.tmp" "$root"

cat >"$cache/kernel.env" <<ENV
KNODE_VM_KVER=$kver
KNODE_VM_VMLINUZ=$root/boot/vmlinuz-$kver
KNODE_VM_MODROOT=$root
ENV
log "kernel $kver unpacked in $root"
