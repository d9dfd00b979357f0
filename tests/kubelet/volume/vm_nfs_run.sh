#!/usr/bin/env bash
# Boots the knode test VM (scripts/vm/run.sh) with an NFSv4 server running inside it,
# for tests of the kubelet's NFS volumes (which mount with `mount -t nfs SERVER:PATH
# TARGET`, util-linux mount -> /sbin/mount.nfs, as the upstream kubelet does).
#
#   tests/kubelet/volume/vm_nfs_run.sh [run.sh options...]
#
# The guest gets: rpc.nfsd, rpc.mountd, exportfs (/usr/sbin), mount.nfs (/sbin/mount.nfs,
# with mount.nfs4/umount.nfs/umount.nfs4), util-linux mount/umount (/bin/mount,
# /bin/umount, replacing busybox's), the libraries the host lacks from prepare.sh's cache,
# the nfsd and nfsv4 modules, and /knode/vm_nfs_server.sh. Its first command starts the
# server exporting /srv/nfs (the NFSv4 pseudo-root, fsid=0) to 127.0.0.1; the options
# given here come after it, so their --run/--script commands see a serving server and
# can `/bin/mount -t nfs 127.0.0.1:/ /mnt` (127.0.0.1:/sub for /srv/nfs/sub); they get
# KNODE_NFS_EXPORT_DIR=/srv/nfs and KNODE_NFS_EXPORT=/ in their environment. A bare
# `mount` in a --run command is busybox's applet (busybox sh prefers its applets to PATH):
# write /bin/mount, /bin/umount. --timeout defaults to 180 (a later --timeout wins).
# Example:
#
#   tests/kubelet/volume/vm_nfs_run.sh --file build/knode_test \
#     --run 'mkdir -p /mnt && /bin/mount -t nfs 127.0.0.1:/ /mnt && echo hi >/mnt/f && /bin/umount /mnt' \
#     --run 'test "$(cat /srv/nfs/f)" = hi'
#
# Exit status: run.sh's (the first failing guest command's; the server start counts);
# 77 (skip) with the reason when the cache lacks the NFS userland or the kernel.
# Cache: --cache DIR, else $KNODE_VM_CACHE, else $REPO/.cache/vm (as run.sh/prepare.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${KNODE_VM_CACHE:-$repo/.cache/vm}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[i]}" = --cache ] && [ $((i + 1)) -lt ${#args[@]} ] && cache="${args[i + 1]}"
done

skip() { echo "vm_nfs_run.sh: SKIP: $*" >&2; exit 77; }

[ -f "$cache/nfs.env" ] || skip "no NFS userland in $cache (run scripts/vm/prepare.sh)"
# shellcheck disable=SC1091
. "$cache/nfs.env"
nfs="${KNODE_VM_NFS_ROOT:-$cache/nfs}"
for f in usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs sbin/mount.nfs; do
  [ -f "$nfs/$f" ] || skip "$nfs/$f missing (run scripts/vm/prepare.sh)"
done
mount_bin="${KNODE_VM_MOUNT:-/bin/mount}"
umount_bin="${KNODE_VM_UMOUNT:-/bin/umount}"
for b in "$mount_bin" "$umount_bin"; do
  "$b" --version 2>/dev/null | grep -q util-linux \
    || skip "$b is not util-linux's (run scripts/vm/prepare.sh)"
done

opts=(
  --timeout 180
  --module nfsd --module nfsv4
  --file "$nfs/usr/sbin/rpc.nfsd:/usr/sbin/rpc.nfsd"
  --file "$nfs/usr/sbin/rpc.mountd:/usr/sbin/rpc.mountd"
  --file "$nfs/usr/sbin/exportfs:/usr/sbin/exportfs"
  --file "$nfs/sbin/mount.nfs:/sbin/mount.nfs"
  --file "$nfs/sbin/mount.nfs:/sbin/mount.nfs4"
  --file "$nfs/sbin/mount.nfs:/sbin/umount.nfs"
  --file "$nfs/sbin/mount.nfs:/sbin/umount.nfs4"
  --file "$mount_bin:/bin/mount"
  --file "$umount_bin:/bin/umount"
  --file "$here/vm_nfs_server.sh:/knode/vm_nfs_server.sh"
)
# libtirpc's transport table; service names (rpc.nfsd and mount.nfs look up "nfs").
for f in /etc/netconfig /etc/services; do
  [ -f "$f" ] && opts+=(--file "$f:$f")
done
# Libraries prepare.sh fetched because the host lacks them: to the guest's library path.
for lib in "$nfs"/lib/x86_64-linux-gnu/*.so.* "$nfs"/usr/lib/x86_64-linux-gnu/*.so.*; do
  [ -f "$lib" ] || continue
  opts+=(--file "$lib:/usr/lib/x86_64-linux-gnu/$(basename "$lib")")
done
# What the guest's tests (nfs_vm_test.cc) read: the server's directory and the path a
# client mounts (the export is the v4 pseudo-root). A later --env overrides.
opts+=(--env KNODE_NFS_EXPORT_DIR=/srv/nfs --env KNODE_NFS_EXPORT=/)
opts+=(--run 'sh /knode/vm_nfs_server.sh /srv/nfs')

exec "$repo/scripts/vm/run.sh" "${opts[@]}" "$@"
