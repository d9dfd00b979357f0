#!/usr/bin/env bash
# Boots Debian's stock kernel (fetched by prepare.sh) under qemu TCG with an initramfs
# that carries busybox, the netfilter/IPVS modules, ipvsadm, ipset, iproute2, iptables
# and whatever files the caller adds, runs the given commands inside, and returns the
# exit status the guest reports on the serial console.
#
#   scripts/vm/run.sh [options] [--run 'COMMAND' ...]
#     --file SRC[:DEST]   copy SRC into the guest at DEST (default /knode/<basename>);
#                         dynamic ELF files bring their shared libraries. Repeatable.
#     --script FILE       shell script run in the guest (as /knode/test.sh), after --run
#                         commands; its exit status counts like a --run command.
#     --run 'COMMAND'     a command run by busybox sh in the guest, in /knode. Repeatable;
#                         every command runs; the result is the first non-zero status.
#     --env K=V           exported to every command. Repeatable.
#     --module NAME       an extra kernel module to load (with its dependencies).
#     --timeout SECS      wall-clock limit for the whole boot (default 90).
#     --memory MB         guest memory (default 1024).
#     --log FILE          console log (default: a temp file, kept on failure).
#     --cache DIR         prepare.sh's cache (default $KNODE_VM_CACHE or $REPO/.cache/vm).
#     --quiet             do not echo the console to stderr while it runs.
#
# Exit status: the guest's (first failing command's, or 0); 124 on timeout; 125 when
# the guest gave no result line (kernel panic, harness bug); 77 (skip) when qemu or
# the kernel cache is missing, with the reason on stderr.
#
# Inside the guest: PATH=/sbin:/usr/sbin:/bin:/usr/bin; /sbin/ip is iproute2 (busybox's
# lacks netns), /sbin/ipvsadm, /sbin/ipset, /sbin/iptables (legacy, XTABLES_LIBDIR set),
# busybox for the rest (nc, wget crashes). Lines of the console protocol:
#   KNODE-VM-BEGIN <n> <command>      KNODE-VM-END <n> rc=<status>
#   KNODE-VM-RESULT rc=<status>
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/scripts/vm"
cache="${KNODE_VM_CACHE:-$repo/.cache/vm}"
timeout_s=90
memory=1024
log=""
quiet=0
files=()
runs=()
envs=()
extra_modules=()
script=""

die() { echo "run.sh: $*" >&2; exit 125; }
skip() { echo "run.sh: SKIP: $*" >&2; exit 77; }

while [ $# -gt 0 ]; do
  case "$1" in
    --file) files+=("$2"); shift 2 ;;
    --script) script="$2"; shift 2 ;;
    --run) runs+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --module) extra_modules+=("$2"); shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --log) log="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
[ ${#runs[@]} -gt 0 ] || [ -n "$script" ] || die "nothing to run: give --run or --script"

command -v qemu-system-x86_64 >/dev/null 2>&1 \
  || skip "qemu-system-x86_64 not installed (run scripts/vm/prepare.sh)"
[ -f "$cache/kernel.env" ] || skip "no kernel in $cache (run scripts/vm/prepare.sh)"
# shellcheck disable=SC1091
. "$cache/kernel.env"
[ -f "$KNODE_VM_VMLINUZ" ] || skip "kernel image $KNODE_VM_VMLINUZ missing (run scripts/vm/prepare.sh)"

# The base image (busybox, tools, modules) is the same for every run: build it once per
# content of this script and the kernel, and append a small per-run archive to it (the
# kernel unpacks concatenated cpio archives in order).
base_key="$(cat "$here/run.sh" "$here/initramfs.sh" "$here/init" "$cache/kernel.env" \
  | sha256sum | cut -c1-16)"
base="$cache/initramfs-base-$base_key.cpio.gz"
if [ ! -f "$base" ]; then
  (
    # Serialise concurrent builders (CTest may start several VM tests at once).
    exec 9>"$cache/.base.lock"
    flock 9
    if [ ! -f "$base" ]; then
      rm -f "$cache"/initramfs-base-*.cpio.gz
      "$here/initramfs.sh" base "$base.tmp" "$KNODE_VM_MODROOT" "$KNODE_VM_KVER" \
        "${extra_modules[@]}"
      mv "$base.tmp" "$base"
    fi
  )
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/knode-vm.XXXXXX")"
trap 'rm -rf "$work"' EXIT
overlay="$work/overlay"
mkdir -p "$overlay/knode"

i=0
for cmd in "${runs[@]}"; do
  printf '%s\n' "$cmd" >"$overlay/knode/run.$(printf '%03d' $i)"
  i=$((i + 1))
done
if [ -n "$script" ]; then
  cp "$script" "$overlay/knode/test.sh"
  printf 'sh /knode/test.sh\n' >"$overlay/knode/run.$(printf '%03d' $i)"
fi
: >"$overlay/knode/env"
for kv in "${envs[@]}"; do
  printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$overlay/knode/env"
done
if [ ${#extra_modules[@]} -gt 0 ]; then
  KNODE_VM_MODLIST=modules.extra "$here/initramfs.sh" modules "$overlay" "$KNODE_VM_MODROOT" "$KNODE_VM_KVER" \
    "${extra_modules[@]}"
fi
for spec in "${files[@]}"; do
  src="${spec%%:*}"
  dest="/knode/$(basename "$src")"
  [ "$spec" != "$src" ] && dest="${spec#*:}"
  [ -e "$src" ] || die "--file $src: no such file"
  "$here/initramfs.sh" file "$overlay" "$src" "$dest"
done
(cd "$overlay" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 \
  >"$work/overlay.cpio.gz"
cat "$base" "$work/overlay.cpio.gz" >"$work/initramfs.cpio.gz"

keep_log=0
if [ -z "$log" ]; then
  log="$(mktemp "${TMPDIR:-/tmp}/knode-vm-log.XXXXXX")"
  keep_log=1
fi
: >"$log"

start=$(date +%s%N)
set +e
# -cpu max: crc32c-intel and friends want SSE4.2; TCG emulates it.
qemu_cmd=(qemu-system-x86_64 -accel tcg -cpu max -m "$memory" -smp 1 -nographic
  -no-reboot -nic none -monitor none -serial stdio
  -kernel "$KNODE_VM_VMLINUZ" -initrd "$work/initramfs.cpio.gz"
  -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init")
if [ "$quiet" = 1 ]; then
  timeout -k 5 "$timeout_s" "${qemu_cmd[@]}" </dev/null >"$log" 2>&1
  qrc=$?
else
  timeout -k 5 "$timeout_s" "${qemu_cmd[@]}" </dev/null 2>&1 | tee "$log" >&2
  qrc=${PIPESTATUS[0]}
fi
set -e
end=$(date +%s%N)
took="$(( (end - start) / 1000000000 )).$(( (end - start) / 100000000 % 10 ))"

result="$(grep -a -o 'KNODE-VM-RESULT rc=[0-9]*' "$log" | tail -n1 | sed 's/.*rc=//')"
if [ -z "$result" ]; then
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "run.sh: TIMEOUT after ${timeout_s}s; console log: $log" >&2
    exit 124
  fi
  echo "run.sh: no result line from the guest (qemu exit $qrc); console log: $log" >&2
  exit 125
fi
echo "run.sh: guest rc=$result in ${took}s; console log: $log" >&2
if [ "$result" = 0 ] && [ "$keep_log" = 1 ]; then rm -f "$log"; fi
exit "$result"
