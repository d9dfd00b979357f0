#!/usr/bin/env bash
# Prepares the VM test tier: installs the host tools the harness needs and fetches
# Debian's stock kernel package (which has ip_vs, nfs and nfsd as modules) and the NFS
# userland (nfs-kernel-server, nfs-common and the libraries the host lacks) into a cache
# directory, unpacked with dpkg -x, never installed (installing them would start
# services on the host). Idempotent: a second run does nothing.
#
#   scripts/vm/prepare.sh [CACHE_DIR]     (default: $KNODE_VM_CACHE or $REPO/.cache/vm)
#
# Leaves $CACHE_DIR/kernel -> the unpacked tree, and $CACHE_DIR/kernel.env with
# KNODE_VM_KVER, KNODE_VM_VMLINUZ, KNODE_VM_MODROOT for run.sh; $CACHE_DIR/nfs -> the
# unpacked NFS userland, and $CACHE_DIR/nfs.env with KNODE_VM_NFS_ROOT, KNODE_VM_MOUNT,
# KNODE_VM_UMOUNT for tests/kubelet/volume/vm_nfs_run.sh.
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
# util-linux mount/umount: the NFS tests copy the host's into the guest, to run mount(8)
# as a node does (util-linux mount -> /sbin/mount.nfs), not busybox's.
util_linux() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q util-linux; }
util_linux /bin/mount && util_linux /bin/umount || need_pkgs+=(mount)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- kernel package ---------------------------------------------------------------
# linux-image-amd64 is a metapackage; its dependency names the versioned image.
prepare_kernel() {
  if [ -f "$cache/kernel.env" ] && . "$cache/kernel.env" && [ -f "${KNODE_VM_VMLINUZ:-}" ] \
     && [ -d "${KNODE_VM_MODROOT:-}/lib/modules/${KNODE_VM_KVER:-}" ]; then
    log "kernel $KNODE_VM_KVER already in $cache"
    return 0
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
}

# --- NFS userland -----------------------------------------------------------------
# For the NFS volume tests (tests/kubelet/volume/vm_nfs_*.sh): the guest runs an NFSv4
# server (rpc.nfsd, rpc.mountd, exportfs from nfs-kernel-server) and mounts from it with
# util-linux mount + /sbin/mount.nfs (nfs-common). The packages are unpacked into
# $cache/nfs, never installed; libraries their binaries need that the host lacks are
# fetched and unpacked there too (the guest gets the host's copies of the others).
NFS_PKGS=(nfs-kernel-server nfs-common)
# The binaries whose libraries must resolve (host + $cache/nfs).
NFS_BINS=(usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs sbin/mount.nfs)

# The Debian package that ships a shared library the NFS binaries link.
nfs_lib_pkg() {
  case "$1" in
    libnfsidmap.so.1) echo libnfsidmap1 ;;
    libtirpc.so.3) echo libtirpc3 ;;
    libevent_core-2.1.so.7) echo libevent-core-2.1-7 ;;
    libwrap.so.0) echo libwrap0 ;;
    libsqlite3.so.0) echo libsqlite3-0 ;;
    libkeyutils.so.1) echo libkeyutils1 ;;
    libnsl.so.2) echo libnsl2 ;;
    libcap.so.2) echo libcap2 ;;
    libgssapi_krb5.so.2) echo libgssapi-krb5-2 ;;
    libkrb5.so.3) echo libkrb5-3 ;;
    libk5crypto.so.3) echo libk5crypto3 ;;
    libkrb5support.so.0) echo libkrb5support0 ;;
    libcom_err.so.2) echo libcom-err2 ;;
    libdevmapper.so.1.02.1) echo libdevmapper1.02.1 ;;
    libmount.so.1) echo libmount1 ;;
    libblkid.so.1) echo libblkid1 ;;
    libuuid.so.1) echo libuuid1 ;;
    libselinux.so.1) echo libselinux1 ;;
    libpcre2-8.so.0) echo libpcre2-8-0 ;;
    *) return 1 ;;
  esac
}

# Sonames the NFS binaries under ROOT need that neither the host nor ROOT provides.
nfs_missing_libs() {
  local root="$1" f
  local lp="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
  for f in "${NFS_BINS[@]}"; do
    [ -f "$root/$f" ] || continue
    LD_LIBRARY_PATH="$lp" ldd "$root/$f" 2>/dev/null | awk '/=> not found/ {print $1}'
  done | sort -u
}

# Downloads PKG... into DIR unless a .deb of that name is already there.
fetch_debs() {
  local dir="$1" pkg todo=()
  shift
  mkdir -p "$dir"
  for pkg in "$@"; do
    ls "$dir/${pkg}"_*.deb >/dev/null 2>&1 || todo+=("$pkg")
  done
  [ ${#todo[@]} -gt 0 ] || return 0
  log "downloading ${todo[*]}"
  if ! (cd "$dir" && apt-get download "${todo[@]}"); then
    log "download failed; apt-get update and retry"
    apt-get update -qq
    (cd "$dir" && apt-get download "${todo[@]}")
  fi
}

prepare_nfs() {
  local root="$cache/nfs" dl="$cache/debs/nfs" f ok=1
  if [ -f "$cache/nfs.env" ]; then
    for f in "${NFS_BINS[@]}"; do [ -f "$root/$f" ] || ok=0; done
    if [ "$ok" = 1 ] && [ -z "$(nfs_missing_libs "$root")" ]; then
      log "NFS userland already in $root"
      return 0
    fi
  fi

  fetch_debs "$dl" "${NFS_PKGS[@]}"
  rm -rf "$root.tmp"
  mkdir -p "$root.tmp"
  local pkg deb
  for pkg in "${NFS_PKGS[@]}"; do
    deb="$(ls "$dl/${pkg}"_*.deb | head -n1)"
    dpkg -x "$deb" "$root.tmp"
  done
  # Libraries the host lacks: fetch the packages that ship them, until nothing is
  # missing (a fetched library can need another).
  local round missing so extra
  for round in 1 2 3 4; do
    missing="$(nfs_missing_libs "$root.tmp")"
    [ -n "$missing" ] || break
    extra=()
    for so in $missing; do
      pkg="$(nfs_lib_pkg "$so")" || { log "no package known for $so (add it to nfs_lib_pkg)"; exit 1; }
      extra+=("$pkg")
    done
    log "host lacks $(echo $missing): fetching ${extra[*]}"
    fetch_debs "$dl" "${extra[@]}"
    for pkg in "${extra[@]}"; do
      deb="$(ls "$dl/${pkg}"_*.deb | head -n1)"
      dpkg -x "$deb" "$root.tmp"
    done
  done
  missing="$(nfs_missing_libs "$root.tmp")"
  [ -z "$missing" ] || { log "still missing after fetching: $(echo $missing)"; exit 1; }
  for f in "${NFS_BINS[@]}"; do
    [ -f "$root.tmp/$f" ] || { log "$f not in ${NFS_PKGS[*]}"; exit 1; }
  done
  rm -rf "$root"
  mv "$root.tmp" "$root"

  local version
  version="$(dpkg-deb -f "$(ls "$dl"/nfs-common_*.deb | head -n1)" Version)"
  cat >"$cache/nfs.env" <<ENV
KNODE_VM_NFS_ROOT=$root
KNODE_VM_NFS_VERSION=$version
KNODE_VM_MOUNT=$(readlink -f /bin/mount)
KNODE_VM_UMOUNT=$(readlink -f /bin/umount)
ENV
  log "NFS userland $version unpacked in $root"
}

prepare_kernel
# The NFS userland is only vm_nfs_volumes' (which skips without it): a failure here is
# reported, not fatal to the tiers that do not need it.
set +e
(set -e; prepare_nfs)
nfs_rc=$?
set -e
[ "$nfs_rc" = 0 ] || log "the NFS userland could not be prepared (status $nfs_rc): vm_nfs_volumes will skip"
