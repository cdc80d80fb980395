#!/usr/bin/env bash
# Load benchmark of `serve` against a bare reference server on the same stack,
# with a kube-typed peer alongside.
#
#   bash benches/run.sh
#
# Builds in release mode; installs the load generator oha (crates.io) into
# ${SYSBOX_RO_CACHE:-~/.cache/sysbox-ro-webhook}/cargo-bin when missing;
# generates certificates, cluster states of 10 and 5,000 nodes (BENCH_NODES) and
# the request bodies; starts the servers pinned to CPU 0:
#   bare        examples/bare_server.rs: checks the body is UTF-8 once, parses it
#               into a serde_json::Value, reads the uid, answers allowed (the least
#               this stack can do)
#   kube-typed  examples/kube_typed_server.rs: deserialises kube's typed
#               AdmissionReview<DynamicObject> (axum's Json extractor), answers
#               allowed with the uid, as kube-rs webhooks do (a peer)
#   wh-10       sysbox-ro-webhook serve --cluster-state <10 nodes>
#   wh-5000     sysbox-ro-webhook serve --cluster-state <5,000 nodes>
# and loads them from oha pinned to CPU 1, over HTTPS keep-alive on loopback,
# body by body; for each body first the closed-loop rounds, then the open-loop
# rounds, the servers back to back in each round (order rotated), so a
# burst of load from the machine's neighbours hits all three alike:
#   closed loop: 64 connections, BENCH_ROUNDS x BENCH_DURATION s -> requests/s
#   open loop:   a fixed rate well below saturation, with latency correction,
#                BENCH_OPEN_ROUNDS x BENCH_OPEN_DURATION s (x3 for the 1 MiB
#                body) -> p50 / p99 / p99.9
# then, for the small bodies, the paired rounds: the bare server and one webhook
# loaded at the same time (two oha on CPU 1, 32 connections each, for
# BENCH_DURATION s), so both see the same machine at the same moment: the
# ratio of their CPU per request is free of the drift in the machine's speed
# that separate runs suffer on a shared host (BENCH_PAIRED_ROUNDS, 6).
# Then prints per server and body the medians over the rounds, errors, the
# server's CPU time per request (from /proc/PID/task/*/schedstat, so a load
# generator that saturates first does not hide the server's cost), peak RSS
# (VmHWM, reset before each body; and after start-up), the ratios, and PASS or
# FAIL per target. Every server it starts is stopped on exit.
#
# Knobs (environment): BENCH_NODES ("10 5000": one webhook per cluster size; the
# first is the base of the scaling ratios), BENCH_BODIES ("pod deployment
# pod-1mib"), BENCH_ROUNDS (6), BENCH_DURATION (2), BENCH_OPEN_ROUNDS
# (3), BENCH_OPEN_DURATION (4), BENCH_RATE_POD / BENCH_RATE_DEPLOYMENT (500/s),
# BENCH_RATE_1MIB (40/s), BENCH_PORT_BASE (18400), BENCH_STRICT=1 (exit 1 when
# a target fails), BENCH_KEEP=1 (keep the work folder with every oha report and
# server log).
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-6}
read -r -a NODES <<<"${BENCH_NODES:-10 5000}"
read -r -a BODIES <<<"${BENCH_BODIES:-pod deployment pod-1mib}"
DURATION=${BENCH_DURATION:-2}
OPEN_ROUNDS=${BENCH_OPEN_ROUNDS:-3}
PAIRED_ROUNDS=${BENCH_PAIRED_ROUNDS:-6}
PORT_BASE=${BENCH_PORT_BASE:-18400}
CACHE=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
OHA_ROOT=$CACHE/cargo-bin
OHA=$OHA_ROOT/bin/oha
# Open-loop rates (requests/s), well below every server's saturation on this
# 2-core machine (see BENCHMARKS.md): latency is measured, not queueing.
declare -A RATE=([pod]=${BENCH_RATE_POD:-500} [deployment]=${BENCH_RATE_DEPLOYMENT:-500} [pod-1mib]=${BENCH_RATE_1MIB:-40})
OPEN=${BENCH_OPEN_DURATION:-4}
declare -A OPEN_SECONDS=([pod]=$OPEN [deployment]=$OPEN [pod-1mib]=$((OPEN * 3)))

log() { printf '[bench] %s\n' "$*" >&2; }

# shellcheck source=support/release_build.sh
. benches/support/release_build.sh
# shellcheck source=support/load_bench.sh
. benches/support/load_bench.sh
load_machine
log "$("$OHA" --version)"

log "building release binaries"
release_build bare_server kube_typed_server gen_cluster
BIN=target/release/sysbox-ro-webhook
BARE=target/release/examples/bare_server
TYPED=target/release/examples/kube_typed_server
GEN=target/release/examples/gen_cluster

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-bench.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "generating inputs in $WORK"
"$BIN" certs --service bench --namespace bench --ip 127.0.0.1 --out "$WORK/certs" >/dev/null 2>&1
for n in "${NODES[@]}"; do
  "$GEN" cluster --nodes "$n" >"$WORK/cluster-$n.yaml"
  log "cluster-$n.yaml: $(stat -c %s "$WORK/cluster-$n.yaml") bytes"
done
"$GEN" bodies --out "$WORK/bodies" 2>/dev/null
for b in "${BODIES[@]}"; do
  log "body $b: $(stat -c %s "$WORK/bodies/$b.json") bytes"
done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SERVERS=(bare kube-typed)
for n in "${NODES[@]}"; do SERVERS+=("wh-$n"); done
declare -A PORT PID
start() { # name port [admin-port] -- command...
  local name=$1 port=$2
  shift 2
  port_free "$port" || { log "port $port is in use; set BENCH_PORT_BASE"; exit 2; }
  taskset -c 0 "$@" 2>"$WORK/$name.log" >/dev/null &
  PID[$name]=$!
  PIDS+=("$!")
  PORT[$name]=$port
}
TLS=(--tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key")
start bare $((PORT_BASE + 1)) "$BARE" --listen "127.0.0.1:$((PORT_BASE + 1))" "${TLS[@]}"
start kube-typed $((PORT_BASE + 2)) "$TYPED" --listen "127.0.0.1:$((PORT_BASE + 2))" "${TLS[@]}"
i=2
for n in "${NODES[@]}"; do
  i=$((i + 1))
  start "wh-$n" $((PORT_BASE + i)) "$BIN" serve --listen "127.0.0.1:$((PORT_BASE + i))" \
    --admin-listen "127.0.0.1:$((PORT_BASE + 10 + i))" "${TLS[@]}" --shutdown-delay 0 --cluster-state "$WORK/cluster-$n.yaml"
done

for name in "${SERVERS[@]}"; do
  # a request the server must answer with an AdmissionReview
  await_server "$name" "$WORK/bodies/pod.json" "$WORK/$name.answer.json"
  log "$name up (pid ${PID[$name]}, https://127.0.0.1:${PORT[$name]}), answers: $(head -c 300 "$WORK/$name.answer.json")"
done

# shellcheck source=support/cpu_ns.sh
. benches/support/cpu_ns.sh

RESULTS=$WORK/results.tsv
: >"$RESULTS"
run() { # round body server mode
  local round=$1 body=$2 name=$3 mode=$4 out args before after t0 t1
  out="$WORK/r$round-$body-$name-$mode.json"
  case $mode in
    closed) args=(-c 64 -z "${DURATION}s") ;;
    open) args=(-c 32 -q "${RATE[$body]}" --latency-correction -z "${OPEN_SECONDS[$body]}s") ;;
  esac
  before=$(cpu_ns "${PID[$name]}")
  t0=$(date +%s%N)
  taskset -c 1 "$OHA" "${args[@]}" --no-tui --output-format json --insecure --wait-ongoing-requests-after-deadline \
    -m POST -H 'content-type: application/json' -D "$WORK/bodies/$body.json" \
    "https://127.0.0.1:${PORT[$name]}/mutate?timeout=10s" >"$out"
  t1=$(date +%s%N)
  after=$(cpu_ns "${PID[$name]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$body" "$name" "$mode" "$out" $((after - before)) $((t1 - t0)) >>"$RESULTS"
}

# Loads the bare server and webhook $3 at once, each from its own oha: the
# two share CPU 0, so each gets the same machine at the same moment.
paired() { # round body webhook
  local round=$1 body=$2 w=$3 name out pids=() t0 t1
  declare -A before after
  for name in bare "$w"; do before[$name]=$(cpu_ns "${PID[$name]}"); done
  t0=$(date +%s%N)
  for name in bare "$w"; do
    taskset -c 1 "$OHA" -c 32 -z "${DURATION}s" --no-tui --output-format json --insecure --wait-ongoing-requests-after-deadline \
      -m POST -H 'content-type: application/json' -D "$WORK/bodies/$body.json" \
      "https://127.0.0.1:${PORT[$name]}/mutate?timeout=10s" >"$WORK/r$round-$body-$name-paired-$w.json" &
    pids+=("$!")
  done
  wait "${pids[@]}"
  t1=$(date +%s%N)
  for name in bare "$w"; do after[$name]=$(cpu_ns "${PID[$name]}"); done
  for name in bare "$w"; do
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$body" "$name" "paired:$w" "$WORK/r$round-$body-$name-paired-$w.json" \
      $((after[$name] - before[$name])) $((t1 - t0)) >>"$RESULTS"
  done
}

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
RSS=$WORK/rss.tsv
: >"$RSS"
# peak RSS after start-up (the cluster state loaded), before any request
for name in "${SERVERS[@]}"; do
  printf '%s\tstart\t%s\n' "$name" "$(hwm "${PID[$name]}")" >>"$RSS"
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up"
for name in "${SERVERS[@]}"; do
  taskset -c 1 "$OHA" -c 64 -z 1s --no-tui --output-format quiet --insecure -m POST \
    -H 'content-type: application/json' -D "$WORK/bodies/pod.json" "https://127.0.0.1:${PORT[$name]}/mutate" >/dev/null
done

# Body by body (so each body gets its own peak RSS), the servers interleaved
# within each round, their order rotated from round to round.
for body in "${BODIES[@]}"; do
  for name in "${SERVERS[@]}"; do
    echo 5 >"/proc/${PID[$name]}/clear_refs" # reset VmHWM to the current RSS
  done
  for mode in closed open; do
    rounds=$([ "$mode" = closed ] && echo "$ROUNDS" || echo "$OPEN_ROUNDS")
    for round in $(seq "$rounds"); do
      shift_by=$(((round - 1) % ${#SERVERS[@]}))
      order=("${SERVERS[@]:$shift_by}" "${SERVERS[@]:0:$shift_by}")
      log "$body  $mode loop  round $round/$rounds  ${order[*]}"
      for name in "${order[@]}"; do
        run "$round" "$body" "$name" "$mode"
      done
    done
  done
  if [ "$body" != pod-1mib ]; then
    for round in $(seq "$PAIRED_ROUNDS"); do
      for name in "${SERVERS[@]}"; do
        case $name in wh-*) ;; *) continue ;; esac
        log "$body  paired  round $round/$PAIRED_ROUNDS  bare and $name at once"
        paired "$round" "$body" "$name"
      done
    done
  fi
  for name in "${SERVERS[@]}"; do
    kill -0 "${PID[$name]}" 2>/dev/null || { log "$name died during the runs"; cat "$WORK/$name.log" >&2; exit 1; }
    printf '%s\t%s\t%s\n' "$name" "$body" "$(hwm "${PID[$name]}")" >>"$RSS"
  done
done

echo "load average before the runs: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -m | awk '/^Mem:/ {print $2 " MiB"}') memory; $(uname -sr)"
echo "load generator: $("$OHA" --version); servers on CPU 0, oha on CPU 1; loopback HTTPS keep-alive"
echo "code layout: $(python3 benches/hot_functions.py check "$BIN" link/hot-functions.txt || true)"
echo "closed loop: $ROUNDS rounds, 64 connections, ${DURATION}s; open loop: $OPEN_ROUNDS rounds, 32 connections, --latency-correction," \
  "rates pod ${RATE[pod]}/s (${OPEN_SECONDS[pod]}s), deployment ${RATE[deployment]}/s (${OPEN_SECONDS[deployment]}s)," \
  "pod-1mib ${RATE[pod-1mib]}/s (${OPEN_SECONDS[pod-1mib]}s); paired: $PAIRED_ROUNDS rounds, 2 x 32 connections, ${DURATION}s"
SERVERS="${SERVERS[*]}" BODIES="${BODIES[*]}" python3 benches/summarize.py "$RESULTS" "$RSS" "$WORK/bodies"
