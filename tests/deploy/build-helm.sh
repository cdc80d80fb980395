#!/usr/bin/env bash
# Builds the helm CLI for the chart tests from the Go module proxy, once, into a cache folder
# outside the repository, and prints the binary's path as the last stdout line:
#
#   HELM=$(tests/deploy/build-helm.sh | tail -1)
#
# The version is whatever the tools-only module next to this script pins
# (tests/deploy/tools/helm/go.mod, with its committed go.sum); no release archive is downloaded.
# The cache folder is keyed by that version:
#   ${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}/helm/<version>/bin/helm
# A binary that exists and reports the pinned version is reused as is. A build goes to a
# temporary folder and is renamed into place only when complete; concurrent runs wait for
# each other. The compile runs under `nice`: it shares the machine with everything else.
#
# Environment:
#   SYSBOX_RO_CACHE   cache root (default $HOME/.cache/sysbox-ro-webhook); must be outside the repo
#   GOCACHE, GOMODCACHE, GOPROXY ...  honoured as usual
#   REBUILD=1         build again even if the cache folder is complete
set -euo pipefail

log() { printf 'build-helm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mod=$here/tools/helm

command -v go >/dev/null || die "go is not on PATH"

# -mod=readonly: a go.mod/go.sum out of date fails loudly instead of being rewritten.
version=$(cd "$mod" && go list -mod=readonly -m -f '{{.Version}}' helm.sh/helm/v4)
[[ $version =~ ^v4\.[0-9]+\.[0-9]+$ ]] || die "unexpected helm.sh/helm/v4 version '$version'"

cache_root=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
mkdir -p "$cache_root/helm"
cache_root=$(cd "$cache_root" && pwd -P)
case "$cache_root/" in
  "$(cd "$repo" && pwd -P)/"*) die "cache folder $cache_root is inside the repository; set SYSBOX_RO_CACHE elsewhere" ;;
esac
final=$cache_root/helm/$version
bin=$final/bin/helm

# helm_ok FILE: FILE runs and reports the pinned version.
helm_ok() {
  local out
  [[ -x $1 ]] || return 1
  out=$("$1" version --template '{{.Version}}' 2>/dev/null) || return 1
  [[ $out == "$version" ]]
}

if [[ ${REBUILD:-} != 1 ]] && helm_ok "$bin"; then
  log "reusing $bin"
  echo "$bin"
  exit 0
fi

exec 9>"$cache_root/helm/.lock"
log "waiting for the build lock" && flock 9
if [[ ${REBUILD:-} != 1 ]] && helm_ok "$bin"; then
  log "reusing $bin (built by a concurrent run)"
  echo "$bin"
  exit 0
fi
# Holding the lock, no other build runs: leftovers are from killed builds.
rm -rf "$cache_root/helm/".build-* "$cache_root/helm/".old-*

tmp=$(mktemp -d "$cache_root/helm/.build-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir "$tmp/bin"

# The variables helm's own Makefile sets, so `helm version` reports the release and not the
# development default. The Kubernetes version helm assumes for `helm template` comes from the
# k8s.io/client-go version recorded in the binary's build information, which a module build has.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version"
ldflags+=" -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

start=$SECONDS
log "building helm $version (a cold build takes a few minutes)"
CGO_ENABLED=0 nice -n 10 go -C "$mod" build -mod=readonly -trimpath -ldflags "$ldflags" \
  -o "$tmp/bin/helm" helm.sh/helm/v4/cmd/helm
log "built in $((SECONDS - start))s"
helm_ok "$tmp/bin/helm" || die "the fresh binary does not report $version"

if [[ -e $final ]]; then
  old="$cache_root/helm/.old-$version.$$"
  mv -T "$final" "$old"
  rm -rf "$old"
fi
mv -T "$tmp" "$final"
trap - EXIT
log "installed $bin"
echo "$bin"
