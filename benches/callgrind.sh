#!/usr/bin/env bash
# Instructions per engine decision, counted by callgrind (repeatable on a
# noisy machine, unlike time): the 6 KB read-only Sysbox pod against the
# generated clusters of 10, 5,000 and 65,000 nodes (CALLGRIND_NODES).
#
#   bash benches/callgrind.sh
#
# Runs the `engine` bench binary with SYSBOX_RO_CALLGRIND=NODES:LOW,HIGH under
# `valgrind --tool=callgrind --dump-before=*run_decisions
# --dump-after=*run_decisions`: the cost of each call of `run_decisions` lands
# in a dump of its own, apart from building the cluster state; the difference
# between the HIGH and the LOW call divided by HIGH-LOW is the cost of one
# decision, without what the first calls pay once (allocator warm-up).
# Prints the counts, the ratios to 10 nodes and PASS/FAIL against the targets
# (5,000 nodes at most 1.3x, 65,000 at most 1.5x the instructions of 10 nodes).
# BENCH_STRICT=1 makes a failed target exit 1. CALLGRIND_TEXTS=shown counts
# the decision `serve` asks for (only the texts a response shows); the
# default, all, counts the one `check` asks for (every finding's texts).
set -euo pipefail

cd "$(dirname "$0")/.."
LOW=${CALLGRIND_LOW:-20}
HIGH=${CALLGRIND_HIGH:-220}
read -r -a NODES <<<"${CALLGRIND_NODES:-10 5000 65000}"

# valgrind comes from the distribution: installed here when missing (Debian/Ubuntu).
if ! command -v valgrind >/dev/null && command -v apt-get >/dev/null; then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing valgrind with apt-get" >&2
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind >&2
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed and apt-get cannot install it" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-callgrind.XXXXXX")
# CALLGRIND_KEEP=DIR keeps the callgrind out files (cg.NODES.2 is the LOW
# call, cg.NODES.4 the HIGH one) in DIR for callgrind_annotate.
trap 'if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP" && cp "$WORK"/cg.* "$CALLGRIND_KEEP"/; fi; rm -rf "$WORK"' EXIT

# The bench binary, built as `cargo bench` builds it (release, line tables).
cargo bench --bench engine --no-run --message-format=json >"$WORK/build.json" 2>"$WORK/build.log" ||
  { cat "$WORK/build.log" >&2; echo "cannot build the engine bench" >&2; exit 1; }
BIN=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "engine" and m.get("executable"):
        print(m["executable"])' "$WORK/build.json")
[ -x "$BIN" ] || { echo "no engine bench binary in cargo's output" >&2; exit 1; }

# The bench binary turns instrumentation on itself once the cluster state is
# built (a callgrind client request, x86_64 only): building 65,000 nodes
# instrumented takes most of an hour.
INSTR=()
[ "$(uname -m)" = x86_64 ] && INSTR=(--instr-atstart=no)

count() { # nodes -> "instructions-of-LOW instructions-of-HIGH" inside run_decisions
  local out="$WORK/cg.$1"
  SYSBOX_RO_CALLGRIND="$1:$LOW,$HIGH" SYSBOX_RO_CALLGRIND_TEXTS="${CALLGRIND_TEXTS:-all}" valgrind --tool=callgrind "${INSTR[@]}" --dump-before='*run_decisions' \
    --dump-after='*run_decisions' --callgrind-out-file="$out" "$BIN" 2>"$WORK/log.$1" ||
    { cat "$WORK/log.$1" >&2; exit 1; }
  # dumps: .1 setup, .2 the LOW call, .3 in between, .4 the HIGH call
  local d
  for d in 2 4; do
    [ -f "$out.$d" ] || { echo "callgrind wrote no dump $out.$d" >&2; exit 1; }
    awk '/^(summary|totals):/ {print $2; exit}' "$out.$d"
  done | paste -sd' '
}

echo "valgrind: $(valgrind --version); binary: $BIN"
declare -A PER
for nodes in "${NODES[@]}"; do
  counts=$(count "$nodes")
  read -r low high <<<"$counts"
  PER[$nodes]=$(((high - low) / (HIGH - LOW)))
  grep -m1 'nodes,' "$WORK/log.$nodes" | sed 's/^/  /'
  printf '%5s nodes: %d instructions per decision  (%d decisions: %d, %d decisions: %d)\n' \
    "$nodes" "${PER[$nodes]}" "$LOW" "$low" "$HIGH" "$high"
done
ARGS=()
for nodes in "${NODES[@]}"; do ARGS+=("$nodes=${PER[$nodes]}"); done
python3 - "${ARGS[@]}" <<'EOF'
import os, sys
per = dict((int(k), int(v)) for k, v in (a.split("=") for a in sys.argv[1:]))
limits = {5000: 1.3, 65000: 1.5}
base = min(per)
failed = False
for nodes, count in sorted(per.items()):
    if nodes == base:
        continue
    ratio = count / per[base]
    print(f"ratio {nodes}/{base}: {ratio:.2f}")
    if nodes in limits:
        ok = ratio <= limits[nodes]
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'}  instructions per decision {nodes}/{base} <= {limits[nodes]:g}: {ratio:.2f}")
if failed and os.environ.get("BENCH_STRICT") == "1":
    sys.exit(1)
EOF
