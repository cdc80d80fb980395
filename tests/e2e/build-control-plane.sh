#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl for the end-to-end tests from the Go module proxy, once,
# into a cache folder outside the repository, and prints that bin folder as the last stdout line:
#
#   BIN=$(tests/e2e/build-control-plane.sh | tail -1)
#
# Versions come from the tools-only modules next to this script (tests/e2e/tools/k8s/go.mod and
# tests/e2e/tools/etcd/go.mod, with their committed go.sum), and the cache folder is keyed by both:
#   ${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}/control-plane/k8s-<version>-etcd-<version>/bin
# A folder whose three binaries exist and report the expected versions is reused as is. A build
# goes to a temporary folder next to it and is renamed into place only when complete, so an
# interrupted build never leaves a half-filled cache. Concurrent runs wait for each other.
#
# Measured cold build (2-core VM, empty Go build cache, modules already in the module cache, a
# low-priority Go compile running alongside): 364 s, about 6 minutes, for all three binaries
# (kube-apiserver + kubectl ~4 min, etcd ~2 min); fetching the modules first adds well under a
# minute from a fast proxy. It fills about 3 GB of Go build cache; the binaries take 190 MB. A run that
# finds the cache folder takes about 0.3 s.
#
# Environment:
#   SYSBOX_RO_CACHE   cache root (default $HOME/.cache/sysbox-ro-webhook); must be outside the repo
#   GOCACHE, GOMODCACHE, GOPROXY ...  honoured as usual (the user's normal Go caches by default)
#   REBUILD=1         ignore an existing cache folder and build again
set -euo pipefail

log() { printf 'build-control-plane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
k8s_mod="$here/tools/k8s"
etcd_mod="$here/tools/etcd"

command -v go >/dev/null || die "go is not on PATH"

# The versions are whatever the committed tools modules pin; -mod=readonly makes a go.mod/go.sum
# that is out of date fail loudly instead of being rewritten behind the caller's back.
k8s_version=$(cd "$k8s_mod" && go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$(cd "$etcd_mod" && go list -mod=readonly -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
[[ $k8s_version =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version '$k8s_version'"
k8s_minor=${BASH_REMATCH[1]}
[[ $etcd_version =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "unexpected etcd version '$etcd_version'"

cache_root=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
mkdir -p "$cache_root/control-plane"
cache_root=$(cd "$cache_root" && pwd -P)
case "$cache_root/" in
  "$(cd "$repo" && pwd -P)/"*) die "cache folder $cache_root is inside the repository; set SYSBOX_RO_CACHE elsewhere" ;;
esac
key="k8s-${k8s_version}-etcd-${etcd_version}"
final="$cache_root/control-plane/$key"
bin="$final/bin"

# Succeeds when DIR holds all three binaries and each runs and reports the pinned version.
# (Output is captured before matching: `cmd | grep -q` under pipefail fails at random when grep
# exits early and cmd dies of SIGPIPE.)
binaries_ok() {
  local dir=$1 out
  [[ -x $dir/etcd && -x $dir/kube-apiserver && -x $dir/kubectl ]] || return 1
  out=$("$dir/etcd" --version 2>/dev/null) || return 1
  grep -qx "etcd Version: ${etcd_version#v}" <<<"$out" || return 1
  out=$("$dir/kube-apiserver" --version 2>/dev/null) || return 1
  grep -qx "Kubernetes ${k8s_version}" <<<"$out" || return 1
  out=$("$dir/kubectl" version --client 2>/dev/null) || return 1
  grep -qx "Client Version: ${k8s_version}" <<<"$out" || return 1
}

if [[ ${REBUILD:-} != 1 ]] && binaries_ok "$bin"; then
  log "reusing $bin"
  echo "$bin"
  exit 0
fi

# One builder at a time per cache root; a second caller waits, then finds the finished folder.
exec 9>"$cache_root/control-plane/.lock"
log "waiting for the build lock" && flock 9
if [[ ${REBUILD:-} != 1 ]] && binaries_ok "$bin"; then
  log "reusing $bin (built by a concurrent run)"
  echo "$bin"
  exit 0
fi

# Holding the lock, no other build is running: leftovers are from builds that were killed.
rm -rf "$cache_root/control-plane/".build-* "$cache_root/control-plane/".old-*

tmp=$(mktemp -d "$cache_root/control-plane/.build-$key.XXXXXX")
# Build steps run in the background while the script waits, so an interrupted script can stop
# the step (TERM, then KILL after 5 s) before it removes the temporary folder.
child=
stop_child() {
  local i
  [[ -n $child ]] || return 0
  kill -TERM "$child" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$child" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$child" 2>/dev/null || true
  wait "$child" 2>/dev/null || true
  child=
}
trap 'stop_child; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
step() {
  local rc=0
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  return "$rc"
}
chmod 755 "$tmp"
mkdir "$tmp/bin"

# The same -X variables Kubernetes' own build sets (hack/lib/version.sh), for both the
# server-side (component-base) and the client-side (client-go, what `kubectl version` prints)
# version packages. Without them /version reports v0.0.0-master.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done

export CGO_ENABLED=0
start=$SECONDS
log "building kube-apiserver and kubectl $k8s_version (a cold build takes many minutes)"
step go -C "$k8s_mod" build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
log "building etcd $etcd_version"
step go -C "$etcd_mod" build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/bin/etcd" \
  go.etcd.io/etcd/server/v3
log "built in $((SECONDS - start))s"

binaries_ok "$tmp/bin" || die "the fresh binaries do not report $k8s_version / etcd $etcd_version"

# Swap into place: a rename of a complete folder, so readers see all of it or none of it.
if [[ -e $final ]]; then
  old="$cache_root/control-plane/.old-$key.$$"
  mv -T "$final" "$old"
  rm -rf "$old"
fi
mv -T "$tmp" "$final"
trap - EXIT INT TERM HUP
log "installed $bin"
echo "$bin"
