# Sourced by the load benchmarks (benches/run.sh, benches/ab.sh), after they
# define log(): what they need of the machine, the load generator, and the
# wait for a server they started.

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

# await_server NAME BODY ANSWER: waits up to a minute for server NAME
# (its port in PORT[NAME], its pid in PID[NAME], its stderr in
# $WORK/NAME.log) to take HTTPS connections, then posts the review in file
# BODY to /mutate and writes the answer to file ANSWER; exits 1 when the
# server exits, never comes up, or does not answer with a 2xx.
await_server() {
  local name=$1 body=$2 answer=$3 code=000
  for _ in $(seq 600); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "https://127.0.0.1:${PORT[$name]}/mutate" || true)
    [ "$code" != 000 ] && break
    kill -0 "${PID[$name]}" 2>/dev/null || { log "$name exited:"; cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [ "$code" != 000 ] || { log "$name did not come up"; exit 1; }
  curl -sk --fail -H 'content-type: application/json' --data-binary "@$body" \
    "https://127.0.0.1:${PORT[$name]}/mutate" >"$answer" || { log "$name does not answer the review in $body"; exit 1; }
}
