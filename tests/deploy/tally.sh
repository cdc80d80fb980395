# shellcheck shell=bash
# Sourced by the deploy checks: one line per check ("ok   ..." or "FAIL ..."),
# counted in $passed and $failed, which each script prints last.

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

# expect_ok LABEL CMD...: CMD succeeds and prints no Pod Security warning.
# Its output goes to the file named by $out, which the sourcing script sets.
# shellcheck disable=SC2154 # $out is set by the sourcing script
expect_ok() {
  local label=$1
  shift
  if "$@" >"$out" 2>&1; then
    if grep -q 'would violate PodSecurity' "$out"; then
      fail "$label: $(grep 'would violate' "$out" | head -n 3)"
    else
      pass "$label"
    fi
  else
    fail "$label: $(tail -n 8 "$out")"
  fi
}
