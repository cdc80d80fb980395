#!/usr/bin/env bash
# Memory of `serve` around large reviews, per allocator: RSS at start, the
# peak, and RSS at idle after ROUNDS rounds of PARALLEL concurrent reviews of
# a pod with CONTAINERS containers (each with a SYSBOX_ variable sysbox-runc
# refuses, so every container is a finding). Everything on 127.0.0.1.
#
#   benches/memory.sh                    # system, jemalloc, mimalloc
#   VARIANTS="system jemalloc" ROUNDS=3 CONTAINERS=100000 PARALLEL=4 benches/memory.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VARIANTS=${VARIANTS:-"system jemalloc mimalloc"}
ROUNDS=${ROUNDS:-3}
PARALLEL=${PARALLEL:-4}
CONTAINERS=${CONTAINERS:-100000}
IDLE=${IDLE:-5}
CARGO=${CARGO:-cargo}

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$CONTAINERS" >"$work/review.json" <<'PY'
import json, sys
n = int(sys.argv[1])
containers = [{"name": f"c{i}", "image": "busybox",
               "env": [{"name": f"SYSBOX_BAD_{i}", "value": "1"}],
               "securityContext": {"readOnlyRootFilesystem": True}} for i in range(n)]
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "memory-bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "namespace": "default", "operation": "CREATE",
    "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "default"},
               "spec": {"runtimeClassName": "sysbox-runc", "hostUsers": False, "containers": containers}}}}))
PY
body_bytes=$(stat -c %s "$work/review.json")

kib() { awk -v k="$1" '/^'"$1"':/ { print $2 }' "/proc/$pid/status"; }

for variant in $VARIANTS; do
  case $variant in
    system) features=(--no-default-features) ;;
    jemalloc) features=() ;;
    mimalloc) features=(--no-default-features --features mimalloc) ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
  nice $CARGO build --release --locked --quiet --bin sysbox-ro-webhook "${features[@]}"
  cp target/release/sysbox-ro-webhook "$work/bin-$variant"
done

"$work/bin-system" certs --ip 127.0.0.1 --dns localhost --out "$work/certs" >/dev/null 2>&1

printf 'review: %d containers, %d bytes; %d rounds of %d concurrent reviews; RSS after %ss idle\n' \
  "$CONTAINERS" "$body_bytes" "$ROUNDS" "$PARALLEL" "$IDLE"
printf '%-10s %10s %10s %12s %10s %8s\n' allocator start_MiB peak_MiB idle_MiB answered seconds
for variant in $VARIANTS; do
  log="$work/log-$variant"
  "$work/bin-$variant" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --shutdown-delay 0 --log-format json --log warn,sysbox_ro_webhook::serve=info \
    --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
    --cluster-state examples/cluster-state.yaml 2>"$log" &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(grep -o '"addr":"127.0.0.1:[0-9]*"' "$log" | head -1 | grep -o '[0-9]*"$' | tr -d '"') && [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "serve did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 1
  start=$(kib VmRSS)
  ok=0
  began=$(date +%s.%N)
  for _ in $(seq "$ROUNDS"); do
    clients=()
    for _ in $(seq "$PARALLEL"); do
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 --cacert "$work/certs/ca.crt" \
        -H 'content-type: application/json' --data-binary "@$work/review.json" \
        "https://127.0.0.1:$port/mutate?timeout=30s" >>"$work/codes-$variant" &
      clients+=($!)
    done
    wait "${clients[@]}" || true
  done
  took=$(echo "$(date +%s.%N) - $began" | bc)
  ok=$(grep -c '^200$' "$work/codes-$variant" || true)
  sleep "$IDLE"
  idle=$(kib VmRSS)
  peak=$(kib VmHWM)
  printf '%-10s %10.1f %10.1f %12.1f %10s %8.1f\n' "$variant" "$(echo "$start/1024" | bc -l)" \
    "$(echo "$peak/1024" | bc -l)" "$(echo "$idle/1024" | bc -l)" "$ok/$((ROUNDS * PARALLEL))" "$took"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
done
