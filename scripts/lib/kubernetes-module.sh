# Shared by scripts/build-upstream-kubelet.sh and scripts/cluster/build-control-plane.sh
# (sourced, bash): builds commands of k8s.io/kubernetes from its Go module, in one
# generated module per version, outside the tree.
#
# Layout (keyed by version, shared by every checkout on the machine):
#   $KNODE_CACHE_DIR/kubernetes-<v>/bin/<cmd>       the binaries
#   $KNODE_CACHE_DIR/kubernetes-<v>/src/go.mod      the build module (generated, below)
#   $KNODE_CACHE_DIR/go/{mod,cache}                 GOMODCACHE, GOCACHE
#   $KNODE_CACHE_DIR/go/.knode-build.lock           one Go build at a time (flock)
#
# How: k8s.io/kubernetes is not meant to be required as a module; its go.mod replaces its
# staging modules (k8s.io/api, k8s.io/client-go, ...) with ./staging/src/k8s.io/X. We
# write a module of our own that requires k8s.io/kubernetes <v> and replaces each of
# those with the published k8s.io/X v0.<minor>.<patch>, the list generated from
# k8s.io/kubernetes's own go.mod. Flags as hack/lib/golang.sh builds a release: -trimpath,
# -s -w, tags selinux,notest,grpcnotrace, cgo only for the kubelet (the others are in
# KUBE_STATIC_BINARIES), and the version variables so `--version` and /version say <v>.
# Never `go mod tidy` the module: what `go get` added is all it needs.
#
# Usage:
#   . scripts/lib/kubernetes-module.sh
#   kube_init v1.37.2 /var/cache/knode NAME-FOR-LOGS   # sets KUBE_TOP, KUBE_BIN, KUBE_SRC
#   kube_built kube-apiserver && ...                   # the cached binary reports <v>
#   kube_find_go; kube_lock                            # before any Go command
#   kube_module                                        # writes/keeps KUBE_SRC/go.mod
#   kube_get kube-apiserver kubectl ...                # go get k8s.io/kubernetes/cmd/X@<v>
#   kube_build kube-apiserver 0                        # CGO_ENABLED=0; into KUBE_BIN

kube_log() { echo "${KUBE_LOG_NAME:-kubernetes-module.sh}: $*" >&2; }

# kube_init VERSION CACHE [LOG_NAME]
kube_init() {
  KUBE_VERSION="$1"
  KNODE_CACHE="$2"
  KUBE_LOG_NAME="${3:-kubernetes-module.sh}"
  KUBE_TOP="$KNODE_CACHE/kubernetes-$KUBE_VERSION"
  KUBE_BIN="$KUBE_TOP/bin"
  KUBE_SRC="$KUBE_TOP/src"
  # v1.37.2 -> staging modules v0.37.2
  if [[ ! "$KUBE_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
    kube_log "unexpected version $KUBE_VERSION"
    return 2
  fi
  KUBE_MINOR="${BASH_REMATCH[1]}"
  KUBE_STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
  mkdir -p "$KUBE_BIN"
}

# kube_version_line PATH NAME: what the binary says about its version, one line.
kube_version_line() {
  case "$2" in
    kubectl) "$1" version --client 2>/dev/null | head -n 1 ;;
    *) "$1" --version 2>/dev/null | head -n 1 ;;
  esac
}

# kube_expected_version_line NAME
kube_expected_version_line() {
  case "$1" in
    kubectl) echo "Client Version: $KUBE_VERSION" ;;
    *) echo "Kubernetes $KUBE_VERSION" ;;
  esac
}

# kube_built NAME: the cached binary is there and reports the version.
kube_built() {
  local b="$KUBE_BIN/$1"
  [ -x "$b" ] && [ "$(kube_version_line "$b" "$1")" = "$(kube_expected_version_line "$1")" ]
}

kube_find_go() {
  GO=""
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -n "$g" ] && [ -x "$g" ]; then GO="$g"; break; fi
  done
  if [ -z "$GO" ]; then
    kube_log "Go is not installed (looked in PATH, /usr/local/go/bin, /usr/lib/go/bin)"
    return 1
  fi
  export GOPATH="$KNODE_CACHE/go" GOMODCACHE="$KNODE_CACHE/go/mod" GOCACHE="$KNODE_CACHE/go/cache"
  # -p=1 by default: the machines are small and shared; never two Go builds at once
  # (kube_lock). scripts/test.sh, which builds before any test runs, sets KNODE_GO_PROCS
  # to the number of cores.
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=${KNODE_GO_PROCS:-1}" GOTOOLCHAIN=local GOWORK=off
  mkdir -p "$GOPATH"
}

# kube_lock: holds $KNODE_CACHE/go/.knode-build.lock (fd 9) until the script exits, so two
# scripts (or two checkouts) never build at the same time nor edit one go.mod together.
kube_lock() {
  mkdir -p "$KNODE_CACHE/go"
  exec 9>>"$KNODE_CACHE/go/.knode-build.lock"
  if ! flock -n 9; then
    kube_log "waiting for another Go build (lock $KNODE_CACHE/go/.knode-build.lock)"
    flock 9
  fi
}

# kube_module: generates KUBE_SRC/go.mod from k8s.io/kubernetes@<v>'s go.mod. The module
# starts over only when the generated part changed: otherwise go.sum and what `go get`
# added stay, and a warm run resolves nothing.
kube_module() {
  local info kdir kgomod gover godebug
  info="$(nice -n 10 "$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION")"
  kdir="$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
if d.get("Error"): sys.exit(d["Error"])
print(d["Dir"])' "$info")"
  # The release's date (from the module proxy's .info), so buildDate is reproducible.
  KUBE_BUILD_DATE="$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print(json.load(open(d["Info"])).get("Time", "1970-01-01T00:00:00Z"))' "$info" 2>/dev/null || echo 1970-01-01T00:00:00Z)"
  kgomod="$kdir/go.mod"
  gover="$(awk '$1 == "go" { print $2; exit }' "$kgomod")"
  godebug="$(awk '$1 == "godebug" { $1 = ""; sub(/^ /, ""); print; exit }' "$kgomod")"
  # one replace per "k8s.io/X => ./staging/src/k8s.io/X" line, inside or outside a block
  local staging
  mapfile -t staging < <(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[A-Za-z0-9._-]+)[[:space:]]+=>[[:space:]]+\./staging/src/k8s\.io/[A-Za-z0-9._-]+[[:space:]]*$#\2#p' "$kgomod")
  if [ "${#staging[@]}" -eq 0 ]; then
    kube_log "no staging replace lines found in $kgomod"
    return 1
  fi
  kube_log "k8s.io/kubernetes $KUBE_VERSION: go $gover, ${#staging[@]} staging modules -> $KUBE_STAGING_VERSION"
  mkdir -p "$KUBE_SRC"
  {
    echo "// Generated by scripts/lib/kubernetes-module.sh from k8s.io/kubernetes@$KUBE_VERSION's go.mod."
    echo "module knode.local/kubernetes-build"
    echo
    echo "go $gover"
    [ -z "$godebug" ] || echo "godebug $godebug"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    local m
    for m in "${staging[@]}"; do echo "	$m => $m $KUBE_STAGING_VERSION"; done
    echo ")"
  } >"$KUBE_SRC/go.mod.gen.new"
  if ! cmp -s "$KUBE_SRC/go.mod.gen.new" "$KUBE_SRC/go.mod.gen" || [ ! -f "$KUBE_SRC/go.mod" ]; then
    kube_log "writing a fresh $KUBE_SRC/go.mod"
    cp "$KUBE_SRC/go.mod.gen.new" "$KUBE_SRC/go.mod"
    rm -f "$KUBE_SRC/go.sum"
  fi
  mv "$KUBE_SRC/go.mod.gen.new" "$KUBE_SRC/go.mod.gen"
}

# kube_get NAME...: adds what k8s.io/kubernetes/cmd/NAME needs to the module (one `go get`).
kube_get() {
  local args=() n
  for n in "$@"; do args+=("k8s.io/kubernetes/cmd/$n@$KUBE_VERSION"); done
  kube_log "resolving ${args[*]}"
  (cd "$KUBE_SRC" && nice -n 10 "$GO" get "${args[@]}")
}

# kube_build NAME CGO: builds k8s.io/kubernetes/cmd/NAME into KUBE_BIN/NAME (through a
# temporary file: an interrupted build leaves nothing a later run would take as done).
kube_build() {
  local name="$1" cgo="$2" out="$KUBE_BIN/$1" got t0
  pkgv() { echo "-X 'k8s.io/client-go/pkg/version.$1=$2' -X 'k8s.io/component-base/version.$1=$2'"; }
  local ldflags="-s -w $(pkgv gitVersion "$KUBE_VERSION") $(pkgv gitMajor 1) $(pkgv gitMinor "$KUBE_MINOR") \
$(pkgv gitTreeState archive) $(pkgv buildDate "${KUBE_BUILD_DATE:-1970-01-01T00:00:00Z}")"
  kube_log "building $name $KUBE_VERSION (CGO_ENABLED=$cgo, $GOFLAGS, nice)"
  t0=$(date +%s)
  rm -f "$out.tmp"
  (cd "$KUBE_SRC" && CGO_ENABLED="$cgo" nice -n 10 "$GO" build -trimpath -tags selinux,notest,grpcnotrace \
    -ldflags "$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name")
  got="$(kube_version_line "$out.tmp" "$name")"
  if [ "$got" != "$(kube_expected_version_line "$name")" ]; then
    kube_log "built $name reports '$got', not '$(kube_expected_version_line "$name")'"
    rm -f "$out.tmp"
    return 1
  fi
  mv "$out.tmp" "$out"
  kube_log "$name $KUBE_VERSION built in $(( $(date +%s) - t0 )) s: $out"
}
