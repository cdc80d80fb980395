#!/usr/bin/env bash
# Runs a bare Kubernetes control plane (etcd + kube-apiserver, no controller-manager, no
# scheduler, no kubelet) on loopback for the end-to-end tests.
#
#   KUBECONFIG=$(tests/e2e/control-plane.sh start "$DIR" | tail -1)
#   ...
#   tests/e2e/control-plane.sh stop "$DIR"
#
# start DIR  creates DIR if needed and keeps everything there: etcd data, certificates, logs
#            (DIR/logs/*.log), pid files (DIR/run/*.pid), an admin kubeconfig (DIR/kubeconfig,
#            user in group system:masters, certificates embedded) and DIR/control-plane.env
#            (APISERVER_URL, ETCD_URL, KUBECONFIG, BIN, CA_FILE, as shell assignments). It picks
#            free loopback ports, waits up to 60s for /readyz and for the default and kube-system
#            namespaces, and prints the kubeconfig path as the last stdout line. On failure it
#            prints the logs' tails to stderr, stops what it started and exits non-zero.
# stop-apiserver DIR [NAME]   stops kube-apiserver (or the extra one named NAME) and leaves etcd
#            running, as an outage of the API server alone.
# start-apiserver DIR [NAME]  starts kube-apiserver again on its recorded port, or an extra one
#            named NAME on a free port, against the same etcd; waits for /readyz and prints its URL.
# stop DIR   stops whatever start left running in DIR (also after a failed or interrupted start);
#            running it again, or on a DIR that never started, does nothing. DIR itself is kept
#            (logs are worth reading); the caller removes it.
#
# Environment:
#   CONTROL_PLANE_BIN        folder with etcd, kube-apiserver, kubectl; default: the output of
#                            build-control-plane.sh (which builds them once, then reuses them;
#                            the first, cold build takes minutes and is not part of the 60s)
#   CONTROL_PLANE_OWNER_PID  when set, a watchdog stops the control plane as soon as that process
#                            is gone (pass the test process's pid so a crashed or killed test
#                            run does not leak etcd and kube-apiserver)
#   READY_TIMEOUT            seconds to wait for readiness (default 60)
#
# What a bare control plane like this one gives a test, and what it does not:
# - kube-apiserver itself creates the namespaces default, kube-system, kube-public and
#   kube-node-lease, the bootstrap RBAC roles and the system PriorityClasses.
# - Nothing creates ServiceAccounts (that is kube-controller-manager's job). The ServiceAccount
#   admission plugin is disabled, so pods are admitted without a "default" ServiceAccount; a test
#   only has to create the namespaces it uses (other than the ones above).
# - A pod with spec.runtimeClassName is rejected unless that RuntimeClass exists (the
#   RuntimeClass admission plugin), so create RuntimeClasses before pods that name them.
# - Pods stay Pending; workloads (Deployments, Jobs...) create no pods; a deleted namespace stays
#   Terminating forever (no namespace controller): use fresh namespace names instead of reusing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"

log() { printf 'control-plane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { echo "usage: $0 start DIR | stop DIR | stop-apiserver DIR [NAME] | start-apiserver DIR [NAME]" >&2; exit 2; }

# --- process bookkeeping -------------------------------------------------------------------------

# Prints the pid recorded for NAME when that process is still the one we started.
live_pid() {
  local dir=$1 name=$2 pid exe
  [[ -f $dir/run/$name.pid ]] || return 1
  pid=$(cat "$dir/run/$name.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must still run what we recorded.
  if [[ -f $dir/run/$name.exe ]]; then
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    exe=${exe% (deleted)} # the binary was rebuilt while it ran
    [[ $exe == "$(cat "$dir/run/$name.exe")" ]] || return 1
  fi
  echo "$pid"
}

stop_one() {
  local dir=$1 name=$2 pid i
  if pid=$(live_pid "$dir" "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop within 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$dir/run/$name.pid" "$dir/run/$name.exe"
}

cmd_stop() {
  local dir=$1 pid
  [[ -d $dir/run ]] || return 0
  # The watchdog first, unless it is the one asking: it runs stop when the owner is gone, and
  # bash may exec that last command in place, so the asker can be this very process.
  if pid=$(live_pid "$dir" watchdog) && [[ $pid != "$$" && $pid != "$PPID" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/run/watchdog.pid" "$dir/run/watchdog.exe"
  stop_one "$dir" kube-apiserver-2
  stop_one "$dir" kube-apiserver
  stop_one "$dir" etcd
}

# Starts NAME in the background with its output in DIR/logs/NAME.log and records its pid at once,
# so that stop can find it even if start fails right after.
launch() {
  local dir=$1 name=$2 exe=$3
  shift 3
  "$exe" "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/run/$name.pid"
  readlink -f "$exe" >"$dir/run/$name.exe"
}

# --- ports ---------------------------------------------------------------------------------------

declare -a taken_ports=()
port=

# Sets $port to a port below the kernel's ephemeral range (so outgoing connections do not grab
# it) that nothing listens on or connects from right now and that this run has not used yet. Two
# starts racing for the same port are caught later: the loser fails to bind and start retries.
free_port() {
  local p hex i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [[ " ${taken_ports[*]-} " == *" $p "* ]] && continue
    hex=$(printf ':%04X ' "$p")
    if ! grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      taken_ports+=("$p")
      port=$p
      return 0
    fi
  done
  die "no free port found"
}

# Succeeds when etcd at 127.0.0.1:PORT answers /health with health true (bash's /dev/tcp, so no
# HTTP client is needed).
etcd_healthy() {
  local reply
  reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' _ "$1") || return 1
  [[ $reply == *'"health":"true"'* ]]
}

# --- certificates --------------------------------------------------------------------------------

# One throwaway CA signs the apiserver's serving certificate (SAN 127.0.0.1, localhost) and the
# admin's client certificate (O=system:masters); a separate key signs service-account tokens.
make_pki() {
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout ca.key -out ca.crt -subj "/CN=sysbox-ro-webhook e2e CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -out apiserver.crt -extfile <(printf '%s\n' \
        "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1")
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=e2e-admin"
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -out admin.crt -extfile <(printf '%s\n' \
        "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth")
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out service-account.key
    openssl pkey -in service-account.key -pubout -out service-account.pub
    rm -f ./*.csr ca.srl
  ) 2>"$pki/openssl.log" || { cat "$pki/openssl.log" >&2; die "openssl failed"; }
}

write_kubeconfig() {
  local dir=$1 url=$2
  cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $url
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: e2e-admin
  user:
    client-certificate-data: $(base64 -w0 <"$dir/pki/admin.crt")
    client-key-data: $(base64 -w0 <"$dir/pki/admin.key")
contexts:
- name: e2e
  context:
    cluster: e2e
    user: e2e-admin
    namespace: default
current-context: e2e
EOF
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

show_logs() {
  local dir=$1 f
  for f in "$dir"/logs/etcd.log "$dir"/logs/kube-apiserver.log; do
    [[ -f $f ]] || continue
    log "last lines of $f:"
    tail -n 25 "$f" | sed 's/^/    /' >&2
  done
}

# --- start ---------------------------------------------------------------------------------------

start_etcd() {
  local dir=$1 client=$2 peer=$3
  rm -rf "$dir/etcd"
  launch "$dir" etcd "$bin/etcd" \
    --name e2e \
    --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "e2e=http://127.0.0.1:$peer" \
    --unsafe-no-fsync \
    --log-level warn
}

start_apiserver() {
  local dir=$1 port=$2 etcd_url=$3 name=${4:-kube-apiserver}
  launch "$dir" "$name" "$bin/kube-apiserver" \
    --etcd-servers "$etcd_url" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$port" \
    --cert-dir "$dir/apiserver" \
    --tls-cert-file "$dir/pki/apiserver.crt" \
    --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/pki/service-account.pub" \
    --service-account-signing-key-file "$dir/pki/service-account.key" \
    --disable-admission-plugins ServiceAccount \
    --allow-privileged=true \
    --v=1
}

# Waits until CHECK succeeds, the process NAME dies, or DEADLINE ($SECONDS) passes.
wait_for() {
  local dir=$1 name=$2 deadline=$3
  shift 3
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    live_pid "$dir" "$name" >/dev/null || return 2
    sleep 0.3
  done
  return 1
}

cmd_start() {
  local deadline attempt etcd_client etcd_peer api_port etcd_url url
  umask 077
  # dir and rc are globals: the EXIT trap below reads them.
  dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  if live_pid "$dir" etcd >/dev/null || live_pid "$dir" kube-apiserver >/dev/null; then
    die "a control plane is already running in $dir; stop it first"
  fi

  bin=${CONTROL_PLANE_BIN:-}
  if [[ -z $bin ]]; then
    bin=$("$here/build-control-plane.sh" | tail -n 1)
  fi
  for b in etcd kube-apiserver kubectl; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing (run tests/e2e/build-control-plane.sh)"
  done

  mkdir -p "$dir/run" "$dir/logs" "$dir/apiserver"
  rm -f "$dir/control-plane.env" "$dir/kubeconfig"
  # From here on, whatever goes wrong, leave nothing running.
  trap 'rc=$?; if ((rc != 0)); then show_logs "$dir"; cmd_stop "$dir"; fi' EXIT
  trap 'exit 130' INT TERM

  if [[ -n ${CONTROL_PLANE_OWNER_PID:-} ]]; then
    local owner=$CONTROL_PLANE_OWNER_PID
    kill -0 "$owner" 2>/dev/null || die "CONTROL_PLANE_OWNER_PID $owner is not a running process"
    (
      trap - EXIT INT TERM
      while kill -0 "$owner" 2>/dev/null; do sleep 1; done
      echo "owner $owner is gone; stopping the control plane"
      "$self" stop "$dir"
    ) </dev/null >>"$dir/logs/watchdog.log" 2>&1 &
    echo $! >"$dir/run/watchdog.pid"
    readlink -f /proc/$$/exe >"$dir/run/watchdog.exe"
  fi

  make_pki "$dir/pki"
  deadline=$((SECONDS + ${READY_TIMEOUT:-60}))

  for attempt in 1 2 3 4 5; do
    free_port && etcd_client=$port
    free_port && etcd_peer=$port
    etcd_url="http://127.0.0.1:$etcd_client"
    log "starting etcd on $etcd_url"
    start_etcd "$dir" "$etcd_client" "$etcd_peer"
    rc=0
    wait_for "$dir" etcd "$deadline" etcd_healthy "$etcd_client" || rc=$?
    ((rc == 0)) && break
    if ((rc == 2)) && grep -q 'address already in use' "$dir/logs/etcd.log"; then
      log "etcd lost a port race; trying other ports"
      stop_one "$dir" etcd
      continue
    fi
    ((rc == 2)) && die "etcd exited"
    die "etcd did not become healthy within ${READY_TIMEOUT:-60}s"
  done
  ((rc == 0)) || die "etcd could not find free ports"

  for attempt in 1 2 3 4 5; do
    free_port && api_port=$port
    url="https://127.0.0.1:$api_port"
    write_kubeconfig "$dir" "$url"
    log "starting kube-apiserver on $url"
    start_apiserver "$dir" "$api_port" "$etcd_url"
    rc=0
    # /readyz covers etcd, the RBAC bootstrap roles and the other post-start hooks; the system
    # namespaces are created just after, by a controller inside the apiserver.
    wait_for "$dir" kube-apiserver "$deadline" \
      "$bin/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout 5s get --raw /readyz || rc=$?
    ((rc == 0)) && break
    if ((rc == 2)) && grep -q 'address already in use' "$dir/logs/kube-apiserver.log"; then
      log "kube-apiserver lost a port race; trying another port"
      stop_one "$dir" kube-apiserver
      continue
    fi
    ((rc == 2)) && die "kube-apiserver exited"
    die "kube-apiserver did not become ready within ${READY_TIMEOUT:-60}s"
  done
  ((rc == 0)) || die "kube-apiserver could not find a free port"
  wait_for "$dir" kube-apiserver "$deadline" \
    "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get namespace default kube-system \
    || die "the default and kube-system namespaces did not appear"

  cat >"$dir/control-plane.env" <<EOF
APISERVER_URL=$url
ETCD_URL=$etcd_url
KUBECONFIG=$dir/kubeconfig
CA_FILE=$dir/pki/ca.crt
BIN=$bin
EOF
  trap - EXIT INT TERM
  log "ready: $url (etcd $etcd_url, logs in $dir/logs)"
  echo "$dir/kubeconfig"
}

# Starts kube-apiserver again (or an extra one) against the etcd of a running control plane.
cmd_start_apiserver() {
  local name=${2:-kube-apiserver} api_port url etcd_url deadline rc=0
  dir=$(cd "$1" && pwd -P)
  [[ -f $dir/control-plane.env ]] || die "no control plane started in $dir"
  url=$(sed -n 's/^APISERVER_URL=//p' "$dir/control-plane.env")
  etcd_url=$(sed -n 's/^ETCD_URL=//p' "$dir/control-plane.env")
  bin=$(sed -n 's/^BIN=//p' "$dir/control-plane.env")
  live_pid "$dir" etcd >/dev/null || die "etcd is not running in $dir"
  live_pid "$dir" "$name" >/dev/null && die "$name is already running"
  if [[ $name == kube-apiserver ]]; then
    api_port=${url##*:}
  else
    free_port && api_port=$port
    url="https://127.0.0.1:$api_port"
  fi
  log "starting $name on $url"
  start_apiserver "$dir" "$api_port" "$etcd_url" "$name"
  deadline=$((SECONDS + ${READY_TIMEOUT:-60}))
  wait_for "$dir" "$name" "$deadline" \
    "$bin/kubectl" --kubeconfig "$dir/kubeconfig" --server "$url" --request-timeout 5s get --raw /readyz || rc=$?
  ((rc == 0)) || { stop_one "$dir" "$name"; die "$name did not become ready (wait status $rc)"; }
  echo "$url"
}

case ${1:-} in
  start) [[ $# == 2 ]] || usage; cmd_start "$2" ;;
  stop-apiserver) [[ $# == 2 || $# == 3 ]] || usage; stop_one "$2" "${3:-kube-apiserver}" ;;
  start-apiserver) [[ $# == 2 || $# == 3 ]] || usage; cmd_start_apiserver "$2" "${3:-}" ;;
  stop) [[ $# == 2 ]] || usage; cmd_stop "$2" ;;
  *) usage ;;
esac
