# Sourced by the load benchmarks (benches/run.sh, benches/ab.sh), after they
# define log(): what they need of the machine, and the load generator.
# load_machine: exits 2 unless there are 2 CPUs (servers on CPU 0, load on
# CPU 1) and taskset, curl and python3; installs oha with
# `cargo install oha --locked` into $OHA_ROOT when $OHA is missing.
load_machine() {
  if [ "$(nproc)" -lt 2 ]; then
    log "needs 2 CPUs (servers on CPU 0, load generators on CPU 1); this machine has $(nproc)"
    exit 2
  fi
  local tool
  for tool in taskset curl python3; do
    command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
  done
  if [ ! -x "$OHA" ]; then
    log "installing oha into $OHA_ROOT (cargo install oha --locked)"
    if ! cargo install oha --locked --root "$OHA_ROOT"; then
      log "cargo install oha failed: the load benchmarks need oha (see the error above)"
      exit 2
    fi
  fi
}
