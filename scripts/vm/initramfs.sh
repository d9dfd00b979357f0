#!/usr/bin/env bash
# Builds the pieces of the VM's initramfs; used by run.sh.
#
#   initramfs.sh base OUT.cpio.gz MODROOT KVER [EXTRA_MODULE...]
#       busybox, /init, iproute2, ipvsadm, ipset, iptables-legacy (+ extensions) with
#       their libraries, and the kernel modules below with their dependencies.
#   initramfs.sh modules STAGING MODROOT KVER MODULE...
#       adds modules (and dependencies) to STAGING's load list.
#   initramfs.sh file STAGING SRC DEST
#       copies SRC to STAGING/DEST; a dynamic ELF brings its shared libraries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# What kube-proxy's IPVS mode and the VM tests need, named as modprobe names them.
BASE_MODULES=(
  crc32c_generic
  nf_conntrack nf_nat nf_conntrack_netlink
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh
  ip_vs_sed ip_vs_nq ip_vs_mh
  veth bridge br_netfilter dummy
  iptable_nat iptable_filter iptable_mangle ipt_REJECT
  xt_MASQUERADE xt_comment xt_mark xt_addrtype xt_conntrack xt_set xt_multiport
  xt_tcpudp xt_nat xt_ipvs xt_physdev xt_statistic xt_recent
  ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet
  ip_set_hash_net ip_set_bitmap_port
)

# Copies a file to the same path under the staging root, following symlinks.
copy_to() {
  local staging="$1" src="$2" dest="$3"
  mkdir -p "$staging/$(dirname "$dest")"
  cp -L --preserve=mode "$src" "$staging/$dest"
}

# Copies the shared libraries an ELF file needs (and the loader) to their paths.
copy_libs() {
  local staging="$1" elf="$2"
  file -L "$elf" | grep -q 'dynamically linked' || return 0
  ldd "$elf" 2>/dev/null | awk '
    /=> \// { print $3; next }
    /^[ \t]*\// { print $1 }' | while read -r lib; do
      [ -e "$staging/$lib" ] || copy_to "$staging" "$lib" "$lib"
    done
}

add_file() {
  local staging="$1" src="$2" dest="$3"
  copy_to "$staging" "$src" "$dest"
  # A debug build of knode is ~400 MB, mostly DWARF: the guest unpacks the initramfs into
  # its RAM, so ELF files go in without their debug sections.
  if [ "$(head -c 4 "$src" | tr -d '\0')" = "$(printf '\177ELF')" ]; then
    strip --strip-debug "$staging/$dest"
  fi
  copy_libs "$staging" "$src"
}

# Appends insmod lines (dependency order, crc32c soft dependency included) to
# STAGING/knode/modules and copies the .ko files.
add_modules() {
  local staging="$1" modroot="$2" kver="$3"
  shift 3
  local list="$staging/knode/${KNODE_VM_MODLIST:-modules}"
  mkdir -p "$staging/knode"
  touch "$list"
  modprobe -d "$modroot" -S "$kver" --show-depends -a "$@" 2>"$staging/knode/.modprobe.err" \
    | awk '$1 == "insmod"' | while read -r _ path params; do
      rel="${path#"$modroot"}"
      if ! grep -qF "$rel" "$list"; then
        copy_to "$staging" "$path" "$rel"
        # Options from the host's modprobe.d (e.g. numdummies=0) are kept: harmless.
        echo "$rel $params" >>"$list"
      fi
    done
  if [ -s "$staging/knode/.modprobe.err" ]; then
    cat "$staging/knode/.modprobe.err" >&2
  fi
  rm -f "$staging/knode/.modprobe.err"
}

sbin_of() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

build_base() {
  local out="$1" modroot="$2" kver="$3"
  shift 3
  local staging
  staging="$(mktemp -d "${TMPDIR:-/tmp}/knode-initramfs.XXXXXX")"
  mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,var,knode}
  ln -s ../run "$staging/var/run"
  ln -s /proc/self/mounts "$staging/etc/mtab"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$staging/etc/passwd"
  echo 'root:x:0:' >"$staging/etc/group"
  printf '127.0.0.1 localhost\n' >"$staging/etc/hosts"
  printf 'tcp 6\nudp 17\nsctp 132\n' >"$staging/etc/protocols"

  local bb
  bb="$(command -v busybox)"
  file -L "$bb" | grep -q 'statically linked' || { echo "busybox is not static" >&2; exit 1; }
  cp -L "$bb" "$staging/bin/busybox"

  # Real tools first; busybox links only where nothing is.
  add_file "$staging" "$(readlink -f "$(sbin_of ip)")" /sbin/ip
  add_file "$staging" "$(sbin_of ipvsadm)" /sbin/ipvsadm
  add_file "$staging" "$(sbin_of ipset)" /sbin/ipset
  local xt
  xt="$(readlink -f "$(sbin_of iptables-legacy)")"
  add_file "$staging" "$xt" /sbin/xtables-legacy-multi
  local name
  for name in iptables iptables-save iptables-restore iptables-legacy iptables-legacy-save \
      iptables-legacy-restore; do
    ln -s xtables-legacy-multi "$staging/sbin/$name"
  done
  local xtdir=/usr/lib/x86_64-linux-gnu/xtables
  [ -d "$xtdir" ] || xtdir="$(dirname "$(find /usr/lib* -name libxt_tcp.so | head -n1)")"
  mkdir -p "$staging/usr/lib/xtables"
  for so in "$xtdir"/*.so; do
    cp -L "$so" "$staging/usr/lib/xtables/"
    copy_libs "$staging" "$so"
  done
  for applet in $(busybox --list-full); do
    [ -e "$staging/$applet" ] || [ -L "$staging/$applet" ] || ln -s /bin/busybox "$staging/$applet"
  done

  cp "$here/init" "$staging/init"
  chmod 755 "$staging/init"
  add_modules "$staging" "$modroot" "$kver" "${BASE_MODULES[@]}" "$@"

  (cd "$staging" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$out"
  rm -rf "$staging"
}

case "${1:-}" in
  base) shift; build_base "$@" ;;
  modules) shift; add_modules "$@" ;;
  file) shift; add_file "$@" ;;
  *) echo "usage: $0 base|modules|file ..." >&2; exit 2 ;;
esac
