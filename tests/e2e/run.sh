#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e.rs): the real webhook behind a real kube-apiserver.
#
#   tests/e2e/run.sh [extra libtest arguments]
#
# 1. builds etcd, kube-apiserver and kubectl once into the cache, or reuses them
#    (tests/e2e/build-control-plane.sh: about 6 minutes cold, 0.3 s when cached; needs Go);
# 2. builds the sysbox-mgr stand-in the node agent scenarios run (examples/sysbox_mgr_stand_in.rs);
# 3. runs `cargo test --locked --test e2e -- --ignored --test-threads=1 --skip bench --nocapture`
#    with SYSBOX_RO_CONTROL_PLANE_BIN pointing at those binaries.
#
# The benchmark is left out; run it with
#   SYSBOX_RO_CONTROL_PLANE_BIN=... cargo test --release --test e2e -- --ignored bench:: --nocapture
#
# Environment:
#   SYSBOX_RO_CACHE             cache root for the control-plane build (see build-control-plane.sh)
#   SYSBOX_RO_CONTROL_PLANE_BIN use these binaries instead of building
#   SYSBOX_RO_E2E_SCENARIOS     comma-separated words: run only the scenarios whose names hold one
#   SYSBOX_RO_E2E_KEEP=1        keep the work folder (logs, certificates) even when all pass
#   CARGO                       cargo to use (default: cargo)
#
# Exit status: that of cargo test (0 when every scenario passed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
start=$SECONDS

if [[ -z ${SYSBOX_RO_CONTROL_PLANE_BIN:-} ]]; then
  SYSBOX_RO_CONTROL_PLANE_BIN=$("$here/build-control-plane.sh" | tail -n 1)
fi
export SYSBOX_RO_CONTROL_PLANE_BIN
echo "e2e: control plane binaries in $SYSBOX_RO_CONTROL_PLANE_BIN ($((SECONDS - start))s)" >&2

cd "$root"
"${CARGO:-cargo}" build --locked --example sysbox_mgr_stand_in
status=0
"${CARGO:-cargo}" test --locked --test e2e -- --ignored --test-threads=1 --skip bench --nocapture "$@" || status=$?
echo "e2e: finished in $((SECONDS - start))s (exit $status)" >&2
exit "$status"
