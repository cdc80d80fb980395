#!/usr/bin/env bash
# Writes link/hot-functions.txt, the functions every admission request runs,
# which build.rs hands to the linker so that release builds lay them out
# together (BENCHMARKS.md, "Hot functions laid out together"):
#
#   bash benches/hot_functions.sh          # write the list, rebuild, check
#   bash benches/hot_functions.sh check    # how well the current binary follows it
#
# Run it again after a change of toolchain, Cargo.lock or release profile:
# they rename the symbols, and a stale list still builds but no longer lays
# anything out (`check` then finds few of its functions in the binary).
#
# The list comes from the shipping binary (built as `make build` builds it)
# run under callgrind by benches/phases.sh, `serve` only, with 10 and 5,000
# nodes, for the pod review and for the Deployment review: the lines of code
# run at least once a request, mapped to the symbols holding them, hottest
# first (benches/hot_functions.py).
#
# Knobs: HOT_REQUESTS (500 per run), HOT_NODES ("10 5000").
set -euo pipefail

cd "$(dirname "$0")/.."
LIST=link/hot-functions.txt
BIN=target/release/sysbox-ro-webhook
log() { printf '[hot-functions] %s\n' "$*" >&2; }

# shellcheck source=support/release_build.sh
. benches/support/release_build.sh

if [ "${1:-}" = check ]; then
  release_build
  python3 benches/hot_functions.py check "$BIN" "$LIST"
  exit
fi

N=${HOT_REQUESTS:-500}
# phases.sh builds the shipping binary (release_build) before it profiles it
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-hot.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DUMPS=()
for body in pod deployment; do
  mkdir "$WORK/$body"
  log "profiling serve with the $body review"
  TMPDIR="$WORK/$body" PHASES_SERVERS=wh PHASES_BODY=$body PHASES_NODES="${HOT_NODES:-10 5000}" \
    PHASES_REQUESTS=$N PHASES_WARM=50 PHASES_FOOTPRINT=1 PHASES_KEEP=1 bash benches/phases.sh >"$WORK/$body.report"
  for dump in "$WORK/$body"/sysbox-ro-phases.*/cg.wh-*.[0-9]*; do DUMPS+=("$dump"); done
done
[ ${#DUMPS[@]} -gt 0 ] || { log "no callgrind dumps"; exit 1; }

python3 benches/hot_functions.py list "$BIN" "$N" "${DUMPS[@]}" >"$WORK/list"
COUNT=$(wc -l <"$WORK/list")
{
  echo "# The functions every admission request runs, hottest first: build.rs passes"
  echo "# this file to the linker (--symbol-ordering-file) for release builds, which"
  echo "# then lays these functions out together. Written by benches/hot_functions.sh"
  echo "# for $(rustc --version | cut -d' ' -f1-2), Cargo.lock $(sha256sum Cargo.lock | cut -c1-12); run it again when either"
  echo "# changes. $COUNT functions."
  cat "$WORK/list"
} >"$LIST"
log "wrote $LIST ($COUNT functions); relinking"
release_build
python3 benches/hot_functions.py check "$BIN" "$LIST"
