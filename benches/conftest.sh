#!/usr/bin/env bash
# `sysbox-ro-webhook check` next to the same check written as a Rego policy for
# conftest (benches/conftest/sysbox_ro.rego), over the same 10,000 documents:
# the Helm-style mix of benches/check_throughput.rs, written to a file by
# `examples/gen_cluster.rs check-mix`. Without a cluster state, the part both
# can express: objects of the judged kinds whose pod uses a Sysbox
# RuntimeClass name and has a container with readOnlyRootFilesystem: true.
#
# 1. Agreement: `check -o json` (objects with the `pools-not-evaluated`
#    finding) and conftest's warnings must name the same objects; the script
#    prints both counts and fails when they differ.
# 2. Speed: both run ROUNDS times, alternately, pinned to one CPU (taskset),
#    writing their default report to /dev/null; best and median wall time,
#    manifests/s, and the ratio.
#
#     benches/conftest.sh                     # or: make bench-conftest
#     ROUNDS=9 BENCH_CPU=0 benches/conftest.sh
#
# conftest is built once with `go install` into
# ${SYSBOX_RO_CACHE:-~/.cache/sysbox-ro-webhook}/conftest-$CONFTEST_VERSION
# and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFTEST_VERSION=${CONFTEST_VERSION:-v0.71.1}
CACHE=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
CONFTEST_DIR=$CACHE/conftest-$CONFTEST_VERSION
CONFTEST=$CONFTEST_DIR/conftest
ROUNDS=${ROUNDS:-5}
CPU=${BENCH_CPU:-1}
DOCS=10000
POLICY=benches/conftest
BIN=target/release/sysbox-ro-webhook
GEN=target/release/examples/gen_cluster

if [ ! -x "$CONFTEST" ]; then
    echo "building conftest $CONFTEST_VERSION into $CONFTEST_DIR" >&2
    GOBIN=$CONFTEST_DIR go install "github.com/open-policy-agent/conftest@$CONFTEST_VERSION"
fi
# shellcheck source=support/release_build.sh
. benches/support/release_build.sh
release_build gen_cluster

work=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-conftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
INPUT=$work/mix.yaml
"$GEN" check-mix --count "$DOCS" >"$INPUT"

# Exit status 0 or 1 is a verdict; anything else is a failure of the tool.
run_check() { "$BIN" check -f "$INPUT" "$@" || [ $? -eq 1 ]; }
run_conftest() { "$CONFTEST" test --no-color -p "$POLICY" "$@" "$INPUT" || [ $? -eq 1 ]; }

# 1. Agreement on the flagged objects.
run_check -o json >"$work/check.json"
run_conftest -o json >"$work/conftest.json"
python3 - "$work/check.json" "$work/conftest.json" <<'PY'
import json, sys
from collections import Counter

check = json.load(open(sys.argv[1]))
flagged_check = Counter(
    f"{o['kind']} {o['namespace']}/{o['name'] or '<unnamed>'}"
    for o in check["objects"]
    if any(f["rule"] == "pools-not-evaluated" for f in o["findings"])
)
flagged_conftest = Counter()
for result in json.load(open(sys.argv[2])):
    for w in result.get("warnings") or []:
        flagged_conftest[w["msg"].split(":", 1)[0]] += 1
    if result.get("failures"):
        sys.exit(f"conftest reported failures: {result['failures'][:3]}")
print(f"flagged objects: check {sum(flagged_check.values())}, conftest {sum(flagged_conftest.values())} "
      f"(of {check['totals']['objects']} objects in {check['totals']['documents']} documents)")
if flagged_check != flagged_conftest:
    only_check = list((flagged_check - flagged_conftest).elements())[:5]
    only_conftest = list((flagged_conftest - flagged_check).elements())[:5]
    sys.exit(f"check and conftest disagree: only check {only_check}, only conftest {only_conftest}")
print("check and conftest flag the same objects")
PY

# 2. Speed, alternating the two tools round by round.
: >"$work/times"
for round in $(seq "$ROUNDS"); do
    for tool in check conftest; do
        start=$(date +%s%N)
        if [ "$tool" = check ]; then
            taskset -c "$CPU" "$BIN" check -f "$INPUT" >/dev/null || [ $? -eq 1 ]
        else
            taskset -c "$CPU" "$CONFTEST" test --no-color -p "$POLICY" "$INPUT" >/dev/null || [ $? -eq 1 ]
        fi
        end=$(date +%s%N)
        echo "$tool $((end - start))" >>"$work/times"
    done
done
echo "load: $(uptime)"
echo "input: $DOCS documents, $(wc -c <"$INPUT") bytes; $ROUNDS rounds on CPU $CPU; conftest $CONFTEST_VERSION"
python3 - "$work/times" "$DOCS" <<'PY'
import statistics, sys
docs = int(sys.argv[2])
times = {}
for line in open(sys.argv[1]):
    tool, ns = line.split()
    times.setdefault(tool, []).append(int(ns) / 1e9)
rate = {}
for tool in ("check", "conftest"):
    t = sorted(times[tool])
    best, median = t[0], statistics.median(t)
    rate[tool] = docs / median
    print(f"  {tool:<9} best {best * 1e3:8.1f} ms ({docs / best:9.0f} manifests/s)   "
          f"median {median * 1e3:8.1f} ms ({docs / median:9.0f} manifests/s)")
print(f"  check / conftest (medians): {rate['check'] / rate['conftest']:.1f}x")
PY
