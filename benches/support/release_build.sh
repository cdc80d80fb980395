# Sourced by the benchmarks that run the release binary: builds the examples
# they need, then `serve` alone, as `make build` and the Dockerfile build it.
# Built in one command with examples, the binary would take the features that
# the dev-dependencies turn on in shared crates (tokio's test-util among them)
# and be another build, about 3% slower (BENCHMARKS.md, "Hot functions laid
# out together"), and its symbols would not be the ones link/hot-functions.txt
# names. Cargo keeps both builds, so switching costs nothing after the first.

# release_build EXAMPLE...: the examples, then target/release/sysbox-ro-webhook.
release_build() {
  local examples=() name
  for name in "$@"; do examples+=(--example "$name"); done
  if [ ${#examples[@]} -gt 0 ]; then cargo build --release --locked "${examples[@]}" >&2; fi
  cargo build --release --locked --bin sysbox-ro-webhook >&2
}
