#!/bin/sh
# Starts an NFSv4-only server inside the knode test VM (scripts/vm/run.sh guest, busybox
# sh, root) exporting EXPORT_DIR to 127.0.0.1, and waits until it serves. Needs the
# nfsd module loaded and rpc.nfsd, rpc.mountd, exportfs in PATH (vm_nfs_run.sh copies
# them in). NFSv2/v3 are off, so no rpcbind/statd/lockd is needed.
#
#   vm_nfs_server.sh [EXPORT_DIR]          (default /srv/nfs)
#
# The export is the NFSv4 pseudo-root (fsid=0): clients mount 127.0.0.1:/ (or
# 127.0.0.1:/SUBDIR for a directory inside it). The v4 grace period is ended at once so
# the first OPEN does not wait. Exit status 0 once nfsd's threads run, TCP port 2049
# listens and rpc.mountd is up; 1 with a message (and the daemons' logs) otherwise.
# Called again while the server runs, it replaces the export with EXPORT_DIR.
#
# Note: the guest's busybox sh runs its own applets before PATH, so a bare `mount` in a
# --run command is busybox's; call /bin/mount and /bin/umount (util-linux, which run
# /sbin/mount.nfs) explicitly. Programs that exec mount(8) by path get util-linux's.
#
# Environment: NFS_SERVER_WAIT (seconds to wait for the server, default 20),
#              NFS_EXPORT_OPTIONS (default rw,sync,no_root_squash,insecure,
#              no_subtree_check,fsid=0).
set -u

dir="${1:-/srv/nfs}"
wait_s="${NFS_SERVER_WAIT:-20}"
opts="${NFS_EXPORT_OPTIONS:-rw,sync,no_root_squash,insecure,no_subtree_check,fsid=0}"
logdir=/run/nfs-server
mkdir -p "$logdir"

say() { echo "vm_nfs_server.sh: $*"; }
fail() {
  say "FAIL: $*"
  for f in "$logdir"/*.log; do
    [ -s "$f" ] || continue
    echo "--- $f"
    tail -n 20 "$f"
  done
  dmesg 2>/dev/null | grep -iE 'nfsd|rpc|svc|lockd' | tail -n 20
  exit 1
}

for b in rpc.nfsd rpc.mountd exportfs; do
  command -v "$b" >/dev/null 2>&1 || fail "$b not in PATH (copy it into the guest)"
done
grep -qw nfsd /proc/filesystems || fail "no nfsd filesystem: load the nfsd module (--module nfsd)"

mkdir -p "$dir" /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /proc/fs/nfsd
if ! grep -q ' /proc/fs/nfsd nfsd ' /proc/mounts; then
  mount -t nfsd nfsd /proc/fs/nfsd || fail "cannot mount the nfsd filesystem on /proc/fs/nfsd"
fi
: >/var/lib/nfs/etab
: >/var/lib/nfs/rmtab
# Without a root= the VM's rootfs is tmpfs, which nfsd can export (fsid given, since it
# has no UUID).
printf '%s 127.0.0.1(%s)\n' "$dir" "$opts" >/etc/exports
[ -f /etc/nfs.conf ] || : >/etc/nfs.conf

exportfs -r >"$logdir/exportfs.log" 2>&1 || fail "exportfs -r failed"
grep -q "^$dir[[:space:]]" /var/lib/nfs/etab || fail "exportfs did not export $dir (etab: $(cat /var/lib/nfs/etab))"

# A second call (another export directory, say) re-exports and is done.
if [ "$(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)" -gt 0 ] && pidof rpc.mountd >/dev/null 2>&1; then
  say "already running; re-exported $dir to 127.0.0.1"
  exit 0
fi

# mountd answers the kernel's export upcalls (even for v4-only); it daemonizes.
rpc.mountd -N 2 -N 3 >"$logdir/mountd.log" 2>&1 || fail "rpc.mountd failed to start"
# v4 only, TCP only: nothing registers with rpcbind. 4 threads are plenty under TCG.
# Only the versions this kernel has can be turned off (Debian's 6.1 lacks NFSv2, and
# rpc.nfsd fails on "-N 2" then); before nfsd runs, the versions file lists them.
nfsd_off=""
for v in 2 3; do
  grep -qE "(^| )[+-]$v( |\$)" /proc/fs/nfsd/versions 2>/dev/null && nfsd_off="$nfsd_off -N $v"
done
# Short lease and grace times (the grace period is also ended below, once up).
rpc.nfsd $nfsd_off -U -p 2049 -G 10 -L 10 4 >"$logdir/nfsd.log" 2>&1 || fail "rpc.nfsd failed"

# Port 2049 (0x0801) listening on TCP, nfsd threads running, mountd alive.
listening() {
  grep -qE '^ *[0-9]+: [0-9A-F]+:0801 [0-9A-F]+:0000 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
i=0
while :; do
  threads="$(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)"
  if [ "${threads:-0}" -gt 0 ] && listening && pidof rpc.mountd >/dev/null 2>&1; then
    break
  fi
  [ "$i" -ge "$wait_s" ] && fail "server not up after ${wait_s}s (threads=$threads, port 2049 $(listening && echo listening || echo closed), mountd $(pidof rpc.mountd >/dev/null 2>&1 && echo running || echo dead))"
  sleep 1
  i=$((i + 1))
done

# Skip the v4 grace period (NFS4ERR_GRACE on every OPEN until it ends).
echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null \
  || say "warning: could not end the grace period; first opens may wait ~10s"
say "serving $dir to 127.0.0.1 as NFSv4 ($(cat /proc/fs/nfsd/versions)), after ${i}s"
exit 0
