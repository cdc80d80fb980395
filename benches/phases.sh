#!/usr/bin/env bash
# Where a request's CPU goes, phase by phase, counted in instructions by
# callgrind inside the running servers (repeatable on a shared machine,
# unlike time):
#
#   bash benches/phases.sh
#
# Starts each server of benches/run.sh under `valgrind --tool=callgrind`
# (bare: examples/bare_server.rs, kube-typed: examples/kube_typed_server.rs,
# wh-N: `serve --cluster-state <N nodes>`, default flags, log level info to a
# file), sends it WARM requests with curl (one HTTPS keep-alive connection),
# zeroes the counters (`callgrind_control -z`), sends N requests, dumps
# (`callgrind_control -d`) and stops it. The dump holds exactly those N
# requests, so its total divided by N is the instructions per request; the
# inclusive cost of the functions below, divided by N, is each phase's share.
#
# With PHASES_CACHE=1 callgrind also simulates the caches and the branch
# predictor (--cache-sim=yes --branch-sim=yes, several times slower), and the
# report adds, per request and by phase, the L1 instruction-cache misses and
# the mispredicted branches, and per request the data-cache misses and
# KCachegrind's cycle estimate (Ir + 10 x (L1 misses + mispredicted branches)
# + 100 x last-level misses): what separates instructions from time, counted
# the same way on every run (a model, not this CPU's exact penalties).
#
# With PHASES_FOOTPRINT=1 callgrind also records each instruction's address
# (--dump-instr=yes), and benches/footprint.py prints per server how much code
# a request runs, in 64-byte cache lines, and the functions holding most of it
# (use 500 requests or more, see there).
#
# Knobs: PHASES_NODES ("10 5000"), PHASES_REQUESTS (2000), PHASES_WARM (300),
# PHASES_SERVERS ("bare kube-typed wh": which servers to run, wh being `serve`
# with each of PHASES_NODES), PHASES_BODY (pod: the 6 KB pod review of
# benches/run.sh; deployment, pod-1mib: see examples/gen_cluster.rs), PHASES_CACHE=1,
# PHASES_FOOTPRINT=1, PHASES_LL (with PHASES_CACHE=1: the simulated last-level
# cache, size,associativity,line-size), PHASES_KEEP=1 keeps the dumps (then read them with
# callgrind_annotate --inclusive=yes).
set -euo pipefail

cd "$(dirname "$0")/.."
read -r -a NODES <<<"${PHASES_NODES:-10 5000}"
N=${PHASES_REQUESTS:-2000}
WARM=${PHASES_WARM:-300}
BODY=${PHASES_BODY:-pod}
SERVERS=${PHASES_SERVERS:-bare kube-typed wh}
PORT=${PHASES_PORT:-18490}
CACHE=${PHASES_CACHE:-0}
CALLGRIND=()
[ "$CACHE" = 1 ] && CALLGRIND=(--cache-sim=yes --branch-sim=yes)
# the simulated last-level cache (size,associativity,line): by default
# valgrind takes this machine's; PHASES_LL=524288,8,64 models a 512 KiB L2
[ "$CACHE" = 1 ] && [ -n "${PHASES_LL:-}" ] && CALLGRIND+=(--LL="$PHASES_LL")
FOOTPRINT=${PHASES_FOOTPRINT:-0}
[ "$FOOTPRINT" = 1 ] && CALLGRIND+=(--dump-instr=yes)

log() { printf '[phases] %s\n' "$*" >&2; }
for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done

# shellcheck source=support/release_build.sh
. benches/support/release_build.sh
release_build bare_server kube_typed_server gen_cluster
BIN=target/release/sysbox-ro-webhook
GEN=target/release/examples/gen_cluster

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-phases.XXXXXX")
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  if [ "${PHASES_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" certs --service bench --namespace bench --ip 127.0.0.1 --out "$WORK/certs" >/dev/null 2>&1
"$GEN" bodies --out "$WORK/bodies" 2>/dev/null
for n in "${NODES[@]}"; do "$GEN" cluster --nodes "$n" >"$WORK/cluster-$n.yaml"; done
TLS=(--tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key")
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"

load() { # requests: sent one after the other on one keep-alive connection; every answer must be 200
  local urls=()
  for _ in $(seq "$1"); do urls+=("$URL"); done
  curl -sk -H 'content-type: application/json' --data-binary "@$WORK/bodies/$BODY.json" \
    -w '%{stderr}%{http_code}\n' -o /dev/null "${urls[@]}" >/dev/null 2>"$WORK/codes"
  local bad
  bad=$(grep -cv '^200$' "$WORK/codes" || true)
  [ "$(wc -l <"$WORK/codes")" = "$1" ] && [ "$bad" = 0 ] || { log "not every answer was 200: $(sort "$WORK/codes" | uniq -c)"; exit 1; }
}

profile() { # name command...
  local name=$1
  shift
  log "$name: starting under callgrind"
  valgrind --tool=callgrind "${CALLGRIND[@]}" --callgrind-out-file="$WORK/cg.$name" "$@" 2>"$WORK/$name.log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 3000); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$URL" || true)
    [ "$code" != 000 ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$name exited"; cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.2
  done
  load "$WARM"
  callgrind_control -z "$SERVER_PID" >/dev/null
  load "$N"
  callgrind_control -d "$SERVER_PID" >/dev/null
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  # the dump of the N requests: the one written by -d (suffix .1 or later, the highest but the final one)
  local dump
  dump=$(ls "$WORK"/cg."$name".* 2>/dev/null | sort -t. -k3 -n | head -1)
  [ -n "$dump" ] || { log "no callgrind dump for $name"; exit 1; }
  callgrind_annotate --inclusive=yes --threshold=100 --show=Ir --sort=Ir "$dump" >"$WORK/$name.annotate" 2>/dev/null
  if [ "$CACHE" = 1 ]; then
    # one report per event, each sorted by that event, for the phases; and
    # the totals of every event
    for event in I1mr Bcm Bim; do
      callgrind_annotate --inclusive=yes --threshold=100 --show="$event" --sort="$event" "$dump" \
        >"$WORK/$name.$event.annotate" 2>/dev/null
    done
    callgrind_annotate --threshold=100 "$dump" 2>/dev/null | grep -E '^Events shown|PROGRAM TOTALS' >"$WORK/$name.totals"
  fi
  NAMES+=("$name")
  DUMPS+=("$name=$dump")
}

NAMES=()
DUMPS=()
runs() { [[ " $SERVERS " == *" $1 "* ]]; }
runs bare && profile bare target/release/examples/bare_server --listen "127.0.0.1:$PORT" "${TLS[@]}"
runs kube-typed && profile kube-typed target/release/examples/kube_typed_server --listen "127.0.0.1:$PORT" "${TLS[@]}"
if runs wh; then
  for n in "${NODES[@]}"; do
    profile "wh-$n" "$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$((PORT + 1))" "${TLS[@]}" \
      --shutdown-delay 0 --cluster-state "$WORK/cluster-$n.yaml"
  done
fi

SIMULATED=""
[ "$CACHE" = 1 ] && SIMULATED=" (caches and branches simulated)"
echo "valgrind: $(valgrind --version)$SIMULATED; body $BODY ($(stat -c %s "$WORK/bodies/$BODY.json") bytes); $N requests after $WARM, one keep-alive connection"
python3 benches/phases.py "$N" "$WORK" "${NAMES[@]}"
if [ "$FOOTPRINT" = 1 ]; then
  echo
  python3 benches/footprint.py "$N" "${DUMPS[@]}"
fi
