#!/usr/bin/env bash
# Runs the webhook on the embedded example (no cluster needed) and shows two
# AdmissionReviews answered: a read-only Sysbox pod (admitted, annotated, with
# a warning about the pool that lacks the flag) and a Deployment pinned to that
# pool (denied, with the fix).
#
#   examples/demo.sh            # or: make demo
#
# Certificates go to certs/dev (made once with `sysbox-ro-webhook certs`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${SYSBOX_RO_BIN:-target/release/sysbox-ro-webhook}
PORT=${DEMO_PORT:-18443}
ADMIN_PORT=${DEMO_ADMIN_PORT:-18080}
[[ -x $BIN ]] || cargo build --release --locked --bin sysbox-ro-webhook

if [[ ! -f certs/dev/tls.crt ]]; then
  "$BIN" certs --service sysbox-ro-webhook --namespace sysbox-ro-webhook --ip 127.0.0.1 --dns localhost --out certs/dev >/dev/null
fi

"$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --shutdown-delay 0 \
  --tls-cert certs/dev/tls.crt --tls-key certs/dev/tls.key \
  --cluster-state examples/cluster-state.yaml 2>certs/dev/serve.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT

for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break
  sleep 0.1
done

show() {
  echo "== $1"
  curl -sS --cacert certs/dev/ca.crt -H 'content-type: application/json' \
    --data-binary "@$2" "https://127.0.0.1:$PORT/mutate?timeout=10s" |
    python3 -c '
import base64, json, sys
review = json.load(sys.stdin)
r = review["response"]
if "patch" in r:
    r["patch (decoded)"] = json.loads(base64.b64decode(r.pop("patch")))
print(json.dumps(review, indent=2))'
  echo
}

show "A read-only Sysbox pod that may land on pools ci-relaxed or ci-strict" examples/review-pod.json
show "A Deployment whose pods can only land on ci-strict (no --relaxed-read-only)" examples/review-deployment.json
echo "== The webhook's log (one line per decision)"
grep "admission decision" certs/dev/serve.log || true
