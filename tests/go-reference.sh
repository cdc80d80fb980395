#!/usr/bin/env bash
# Builds one of the Go reference programs under tests/ (tests/NAME: its own Go module) once and
# prints the binary's path as the last stdout line:
#
#   BIN=$(tests/go-reference.sh schedref | tail -1)
#   "$BIN" < cases.json > results.json
#
# The binary lives outside the repository, in
#   ${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}/NAME/NAME
# and is rebuilt when the hash of that folder's sources (go.mod, go.sum, *.go) or the Go version
# changes. Concurrent callers (parallel test threads) wait for one build; the binary is replaced
# by a rename, never written in place. Progress goes to stderr.
set -euo pipefail

name=${1:?usage: go-reference.sh NAME (a folder under tests/)}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/$name" && pwd)
command -v go >/dev/null || { echo "$name: go is not on PATH" >&2; exit 1; }

out_dir=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}/$name
mkdir -p "$out_dir"
bin="$out_dir/$name"
stamp="$out_dir/$name.sha256"

hash=$(
  cd "$here"
  { go version; for f in go.mod go.sum $(ls ./*.go | LC_ALL=C sort); do sha256sum "$f"; done; } \
    | sha256sum | cut -d' ' -f1
)

current() { [[ -x $bin && -f $stamp && $(cat "$stamp") == "$hash" ]]; }

if ! current; then
  exec 9>"$out_dir/.lock"
  flock 9
  if ! current; then
    echo "$name: building $bin" >&2
    tmp=$(mktemp "$out_dir/.$name.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    (cd "$here" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$tmp" .)
    mv -f "$tmp" "$bin"
    trap - EXIT
    echo "$hash" > "$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
  fi
fi
echo "$bin"
