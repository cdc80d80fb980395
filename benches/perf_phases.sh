#!/usr/bin/env bash
# Where a request's CPU *time* goes, phase by phase (benches/phases.sh counts
# instructions; this samples time, which also sees the kernel, cache misses
# and everything callgrind does not count):
#
#   bash benches/perf_phases.sh
#
# Starts the lean reference (examples/bare_server.rs) and `serve` with the
# 10-node cluster state, each pinned to CPU 0, and loads each in turn with oha
# on CPU 1 (PERF_REQUESTS requests of the 6 KB pod review, 32 keep-alive HTTPS
# connections) while `perf record -e cpu-clock --call-graph dwarf` samples it;
# benches/perf_phases.py puts each sample in a phase by its call stack and
# prints CPU us per request and share by phase, side by side. It also prints
# each server's CPU per request from /proc without perf, since perf's
# unwinding inflates the sampled totals (read the shares).
#
# Needs perf (Debian: linux-perf) and a kernel that lets it sample
# (perf_event_paranoid <= 2 for one's own processes); oha is installed as
# benches/run.sh installs it. Knobs: PERF_REQUESTS (40000), PERF_FREQ (1000
# samples/s), PERF_PORT (18520), PERF_KEEP=1 keeps the work folder.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${PERF_REQUESTS:-40000}
FREQ=${PERF_FREQ:-1000}
PORT=${PERF_PORT:-18520}
CACHE=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
OHA=$CACHE/cargo-bin/bin/oha

log() { printf '[perf-phases] %s\n' "$*" >&2; }
for tool in perf taskset curl python3; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done
perf stat -e cpu-clock true >/dev/null 2>&1 || { log "perf cannot sample here (perf_event_paranoid: $(cat /proc/sys/kernel/perf_event_paranoid))"; exit 2; }
if [ ! -x "$OHA" ]; then
  log "installing oha into $CACHE/cargo-bin"
  cargo install oha --locked --root "$CACHE/cargo-bin" >&2
fi

# shellcheck source=support/release_build.sh
. benches/support/release_build.sh
release_build bare_server gen_cluster
BIN=target/release/sysbox-ro-webhook
GEN=target/release/examples/gen_cluster

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-perf.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [ "${PERF_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" certs --service bench --namespace bench --ip 127.0.0.1 --out "$WORK/certs" >/dev/null 2>&1
"$GEN" bodies --out "$WORK/bodies" 2>/dev/null
"$GEN" cluster --nodes 10 >"$WORK/cluster-10.yaml"
TLS=(--tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key")

# shellcheck source=support/cpu_ns.sh
. benches/support/cpu_ns.sh

start() { # name port command...
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >/dev/null 2>"$WORK/$name.log" &
  PIDS+=("$!")
  PID[$name]=$!
  for _ in $(seq 300); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "https://127.0.0.1:$port/mutate" || true)" != 000 ] && return
    sleep 0.1
  done
  log "$name did not come up"; cat "$WORK/$name.log" >&2; exit 1
}

load() { # port requests
  taskset -c 1 "$OHA" -c 32 -n "$2" --no-tui --output-format json --insecure -m POST \
    -H 'content-type: application/json' -D "$WORK/bodies/pod.json" "https://127.0.0.1:$1/mutate?timeout=10s" >"$WORK/oha.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["summary"]; sys.exit(0 if r["successRate"] == 1 else 1)' "$WORK/oha.json" ||
    { log "not every request succeeded"; exit 1; }
}

declare -A PID
start bare "$PORT" target/release/examples/bare_server --listen "127.0.0.1:$PORT" "${TLS[@]}"
start wh-10 $((PORT + 1)) "$BIN" serve --listen "127.0.0.1:$((PORT + 1))" --admin-listen "127.0.0.1:$((PORT + 2))" \
  "${TLS[@]}" --shutdown-delay 0 --cluster-state "$WORK/cluster-10.yaml"

ARGS=()
for name in bare wh-10; do
  port=$PORT
  [ "$name" = wh-10 ] && port=$((PORT + 1))
  load "$port" 5000 # warm-up
  before=$(cpu_ns "${PID[$name]}")
  load "$port" "$N"
  after=$(cpu_ns "${PID[$name]}")
  echo "$name: $(((after - before) / N / 1000)) us CPU per request without perf"
  perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,32768 -p "${PID[$name]}" -o "$WORK/$name.data" 2>"$WORK/$name.perf.log" &
  recorder=$!
  sleep 0.5
  load "$port" "$N"
  kill -INT "$recorder"
  wait "$recorder" || true
  ARGS+=("$name=$WORK/$name.data")
done
echo "perf: $(perf --version); body pod ($(stat -c %s "$WORK/bodies/pod.json") bytes); $N requests, 32 connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/perf_phases.py "$N" "${ARGS[@]}"
