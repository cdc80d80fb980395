#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 60) with cargo-afl and AFL++,
# on stable Rust. Installs cargo-afl (crates.io) and builds AFL++ through it
# the first time. Inputs that crash or hang are copied into
# fuzz/corpus/<target>/ so that `cargo test --test fuzz_corpus` replays them
# (and fails until they are fixed); new coverage stays in fuzz/out/.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
# The instrumented build is large: keep it with the other heavy builds,
# outside the repository.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sysbox-ro-webhook/fuzz-target}"
targets=(admission_review manifest_stream cluster_state flags)

if ! cargo afl --version >/dev/null 2>&1; then
  cargo install --locked cargo-afl
fi
# Builds AFL++ once per Rust version; a second --build only says it is built.
if ! config=$(cargo afl config --build 2>&1) && ! grep -q 'already built' <<<"$config"; then
  echo "$config" >&2
  exit 1
fi
cargo afl build --release

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
found=0
broken=0
mkdir -p out
for t in "${targets[@]}"; do
  out="out/$t"
  rm -rf "$out"
  echo "== $t: ${seconds}s"
  cargo afl fuzz -V "$seconds" -t 2000 -i "corpus/$t" -o "$out" "$CARGO_TARGET_DIR/release/$t" >"out-$t.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  if [[ -f "$stats" ]]; then
    grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs) ' "$stats" | tr -s ' ' | sed 's/^/   /'
  else
    # A fuzzer that never ran found nothing: that is a failure, not a pass.
    echo "   afl-fuzz did not run; the end of fuzz/out-$t.log:" >&2
    tail -n 5 "out-$t.log" >&2
    broken=$((broken + 1))
  fi
  for kind in crashes hangs; do
    for f in "$out"/default/"$kind"/id:*; do
      [[ -e "$f" ]] || continue
      found=$((found + 1))
      cp "$f" "corpus/$t/found-$kind-$(sha256sum "$f" | cut -c1-16)"
    done
  done
done
echo "inputs that crashed or hung: $found (copied into fuzz/corpus/<target>/found-*); targets that did not run: $broken"
[[ "$found" -eq 0 && "$broken" -eq 0 ]]
