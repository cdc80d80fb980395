#!/usr/bin/env bash
# Two builds of a server, paired on one core: which one costs less CPU per
# request, to a fraction of a percent.
#
#   bash benches/ab.sh A B
#
# A and B are server binaries: a path is started as `serve` (the webhook, with
# a generated cluster state of AB_NODES nodes), `ref:PATH` as a reference
# server of the load benchmark (examples/bare_server.rs or
# examples/kube_typed_server.rs). Typical uses: the release binary of this tree
# against one built from another commit or with another profile (build it in a
# `git worktree`, which has its own target folder), or `serve` against the bare
# reference as `benches/run.sh` pairs them.
#
# Both servers run pinned to CPU 0 and are loaded at the same time by two oha
# pinned to CPU 1 (32 HTTPS keep-alive connections each, AB_DURATION s a round,
# AB_ROUNDS rounds), so both see the same machine at the same moment; a round
# prints each server's requests and CPU time per request (schedstat of all its
# threads) and the ratio A/B, then the median and range of the ratios. The
# ratio of two runs on a shared host drifts with the host's speed (the
# reference's own CPU per request swung from 79 to 145 us between runs on one
# machine); the ratio of a pair moves by less than 1% from round to round.
# Between runs it can move more (the same pair gave 0.992 and 0.935 on one
# host, BENCHMARKS.md "Only the texts a response shows"), and swapping A and B
# moves it by 1% to 2%: run a comparison twice, once in each order.
# Each round also prints user and system time per request (/proc/PID/stat, in
# clock ticks: read them over rounds of several seconds).
#
# The inputs (certificates, cluster state, bodies) come from this tree's
# release `serve` and `examples/gen_cluster`, built when missing.
#
# Knobs (environment): AB_ROUNDS (6), AB_DURATION (8), AB_NODES (10),
# AB_BODY (pod: see examples/gen_cluster.rs), AB_PORT_BASE (18600),
# AB_KEEP=1 (keep the work folder with the servers' logs and oha's reports).
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
ROUNDS=${AB_ROUNDS:-6}
DURATION=${AB_DURATION:-8}
NODES=${AB_NODES:-10}
BODY=${AB_BODY:-pod}
PORT_BASE=${AB_PORT_BASE:-18600}
CACHE=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
OHA_ROOT=$CACHE/cargo-bin
OHA=$OHA_ROOT/bin/oha

log() { printf '[ab] %s\n' "$*" >&2; }

# shellcheck source=support/release_build.sh
. benches/support/release_build.sh
# shellcheck source=support/load_bench.sh
. benches/support/load_bench.sh
load_machine
for spec in "$1" "$2"; do
  [ -x "${spec#ref:}" ] || { log "not an executable: ${spec#ref:}"; exit 2; }
done

BIN=target/release/sysbox-ro-webhook
GEN=target/release/examples/gen_cluster
if [ ! -x "$BIN" ] || [ ! -x "$GEN" ]; then
  log "building this tree's release serve and gen_cluster for the inputs"
  release_build gen_cluster
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-ab.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${AB_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" certs --service bench --namespace bench --ip 127.0.0.1 --out "$WORK/certs" >/dev/null 2>&1
"$GEN" cluster --nodes "$NODES" >"$WORK/cluster.yaml"
"$GEN" bodies --out "$WORK/bodies" 2>/dev/null
[ -f "$WORK/bodies/$BODY.json" ] || { log "no body $BODY (see examples/gen_cluster.rs)"; exit 2; }
TLS=(--tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key")

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A PID PORT
start() { # name spec port
  local name=$1 spec=$2 port=$3
  port_free "$port" && port_free $((port + 1)) || { log "port $port or $((port + 1)) is in use; set AB_PORT_BASE"; exit 2; }
  if [[ $spec == ref:* ]]; then
    taskset -c 0 "${spec#ref:}" --listen "127.0.0.1:$port" "${TLS[@]}" 2>"$WORK/$name.log" >/dev/null &
  else
    taskset -c 0 "$spec" serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" "${TLS[@]}" \
      --shutdown-delay 0 --cluster-state "$WORK/cluster.yaml" 2>"$WORK/$name.log" >/dev/null &
  fi
  PID[$name]=$!
  PIDS+=("$!")
  PORT[$name]=$port
}
start A "$1" "$PORT_BASE"
start B "$2" $((PORT_BASE + 2))

for name in A B; do
  await_server "$name" "$WORK/bodies/$BODY.json" /dev/null
done
log "A: $1 (pid ${PID[A]}); B: $2 (pid ${PID[B]}); $NODES nodes, body $BODY"
log "$(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); servers on CPU 0, oha on CPU 1"
# how much of this tree's hot-function list each build of serve follows (build.rs)
for spec in "$1" "$2"; do
  [[ $spec == ref:* ]] || log "$(python3 benches/hot_functions.py check "$spec" link/hot-functions.txt || true)"
done

# shellcheck source=support/cpu_ns.sh
. benches/support/cpu_ns.sh
ticks() { awk '{print $14 " " $15}' "/proc/$1/stat"; }
load() { # name report
  taskset -c 1 "$OHA" -c 32 -z "${DURATION}s" --no-tui --output-format json --insecure \
    --wait-ongoing-requests-after-deadline -m POST -H 'content-type: application/json' \
    -D "$WORK/bodies/$BODY.json" "https://127.0.0.1:${PORT[$1]}/mutate" >"$2"
}
HZ=$(getconf CLK_TCK)
: >"$WORK/rounds"
for round in $(seq "$ROUNDS"); do
  declare -A cpu0 tick0
  for name in A B; do cpu0[$name]=$(cpu_ns "${PID[$name]}"); tick0[$name]=$(ticks "${PID[$name]}"); done
  load A "$WORK/A.$round.json" &
  la=$!
  load B "$WORK/B.$round.json" &
  lb=$!
  wait "$la" "$lb"
  line="$round"
  for name in A B; do
    line+=" $(($(cpu_ns "${PID[$name]}") - cpu0[$name])) ${tick0[$name]} $(ticks "${PID[$name]}")"
  done
  echo "$line" >>"$WORK/rounds"
done

python3 - "$WORK" "$HZ" <<'PY'
import json, statistics, sys

work, hz = sys.argv[1], int(sys.argv[2])
ratios = []
for row in open(f"{work}/rounds"):
    f = row.split()
    rnd, figures = f[0], {}
    for i, name in enumerate("AB"):
        ns, u0, s0, u1, s1 = map(int, f[1 + 5 * i: 6 + 5 * i])
        report = json.load(open(f"{work}/{name}.{rnd}.json"))
        ok = report["statusCodeDistribution"].get("200", 0)
        bad = sum(report["statusCodeDistribution"].values()) - ok + sum(report.get("errorDistribution", {}).values())
        if ok == 0:
            sys.exit(f"round {rnd}: {name} answered no request with 200")
        tick_us = 1e6 / hz
        figures[name] = (ok, ns / ok / 1e3, (u1 - u0) * tick_us / ok, (s1 - s0) * tick_us / ok, bad)
    (na, ca, ua, sa, ea), (nb, cb, ub, sb, eb) = figures["A"], figures["B"]
    ratios.append(ca / cb)
    print(f"round {rnd}: A {na} req {ca:.1f} us/req (user {ua:.1f}, system {sa:.1f}), "
          f"B {nb} req {cb:.1f} us/req (user {ub:.1f}, system {sb:.1f}); "
          f"A/B CPU {ca / cb:.3f}, requests {na / nb:.3f}"
          + (f"; not 200 or failed: A {ea}, B {eb}" if ea or eb else ""))
print(f"A/B CPU per request: median {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} rounds)")
PY
