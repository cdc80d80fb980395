#!/usr/bin/env bash
# The Helm chart installed for real, with `helm install`, onto a throwaway kube-apiserver
# (tests/e2e/control-plane.sh, started by check.sh after apiserver-check.sh has run):
#
#   1. a self-signed release (its TLS Secret from the files `certs` wrote) in a namespace that
#      enforces the restricted Pod Security Standard, with the validating webhook and the
#      ServiceMonitor, and the node agent in its own namespace: every object is created, the
#      caBundle is the given CA, the ServiceAccounts have exactly the access they need, no Pod
#      Security warning is printed, and the agent's admission policy lets its ServiceAccount
#      label only the node its token names;
#   2. `helm upgrade` with the same values changes neither the Secret nor the webhook
#      configurations, and a changed setting reaches the Deployment and nothing else;
#   3. a cert-manager release (the default values) next to it, owning the namespace that
#      --create-namespace made (namespace.create): after a stand-in for the CA injector fills
#      the caBundle, `helm upgrade` keeps it;
#   4. `helm uninstall` removes everything, the cluster-scoped objects and kube-system's Role
#      included.
#
# No request that the webhook configurations match is sent while they exist: they point at a
# Service, and with no kube-proxy the API server would dial its ClusterIP. Which requests reach
# the webhook is shown by apiserver-check.sh on the kustomize rendering, which the chart's
# renders identically (compare_helm_kustomize.py).
#
# Usage: helm-apiserver-check.sh CERTS_DIR   (ca.crt, tls.crt, tls.key from `certs`)
# Env:   KUBECONFIG (required), HELM (required), KUBECTL (default kubectl)
# Prints one line per check and, last, "helm-apiserver: N passed, N failed".
set -euo pipefail

certs=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
chart=$(cd "$here/../../deploy/helm/sysbox-ro-webhook" && pwd)
helm=${HELM:?HELM must name the helm binary}
k=${KUBECTL:-kubectl}
: "${KUBECONFIG:?KUBECONFIG must point at a throwaway API server}"
export KUBECONFIG

# shellcheck source=tally.sh
. "$(dirname "${BASH_SOURCE[0]}")/tally.sh"
scratch=$(mktemp -d)
out=$scratch/out
trap 'rm -rf "$scratch"' EXIT
export HELM_CONFIG_HOME=$scratch/config HELM_CACHE_HOME=$scratch/cache HELM_DATA_HOME=$scratch/data

# expect LABEL CMD...: CMD succeeds (its output is in $out).
expect() {
  local label=$1
  shift
  if "$@" >"$out" 2>&1; then pass "$label"; else fail "$label: $(tail -n 5 "$out")"; fi
}
# get NS KIND/NAME JSONPATH: a field of a live object ("" when it has none or does not exist).
get() {
  local ns_args=()
  [[ -n $1 ]] && ns_args=(-n "$1")
  "$k" "${ns_args[@]}" get "$2" -o "jsonpath=$3" 2>/dev/null || true
}

"$k" apply -f "$here/testdata/stub-crds.yaml" >/dev/null
"$k" wait --for=condition=Established --timeout=30s \
  crd/certificates.cert-manager.io crd/issuers.cert-manager.io crd/servicemonitors.monitoring.coreos.com >/dev/null

# --- 1. a self-signed release ----------------------------------------------------
ns="helm-check"
rel=sro
name=sro-sysbox-ro-webhook
sa=system:serviceaccount:$ns:$name
"$k" create namespace "$ns" >/dev/null
"$k" label namespace "$ns" pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/warn=restricted >/dev/null
# The agent gets a namespace of this release's own: apiserver-check.sh leaves the kustomize
# tree's sysbox-ro-agent namespace behind, which Helm would refuse to adopt.
agent_ns="helm-check-agent"
values=(--set webhook.validating.enabled=true --set serviceMonitor.enabled=true --set "agent.namespace.name=$agent_ns"
  --set certificates.source=self-signed --set-file "certificates.selfSigned.caCert=$certs/ca.crt"
  --set-file "certificates.selfSigned.tlsCert=$certs/tls.crt" --set-file "certificates.selfSigned.tlsKey=$certs/tls.key")
expect_ok "helm install (self-signed, validating, ServiceMonitor) into a restricted namespace" \
  "$helm" install "$rel" "$chart" --namespace "$ns" "${values[@]}"

missing=()
for obj in deployment/$name service/$name serviceaccount/$name poddisruptionbudget/$name \
  secret/$name-tls servicemonitor/$name; do
  "$k" -n "$ns" get "$obj" >/dev/null 2>&1 || missing+=("$ns/$obj")
done
for obj in mutatingwebhookconfiguration/$name validatingwebhookconfiguration/$name \
  clusterrole/$name clusterrolebinding/$name; do
  "$k" get "$obj" >/dev/null 2>&1 || missing+=("$obj")
done
for obj in role/$name rolebinding/$name; do
  "$k" -n kube-system get "$obj" >/dev/null 2>&1 || missing+=("kube-system/$obj")
done
if ((${#missing[@]} == 0)); then
  pass "every object of the release exists"
else
  fail "missing after install: ${missing[*]}"
fi
want_ca=$(base64 -w0 <"$certs/ca.crt")
for kind in mutatingwebhookconfiguration validatingwebhookconfiguration; do
  if [[ $(get "" "$kind/$name" '{.webhooks[0].clientConfig.caBundle}') == "$want_ca" ]]; then
    pass "$kind caBundle is the CA from ca.crt"
  else
    fail "$kind caBundle is not the CA from ca.crt"
  fi
done
if [[ $(get "" "mutatingwebhookconfiguration/$name" '{.webhooks[0].namespaceSelector.matchExpressions[0].values}') == '["kube-system","helm-check"]' ]]; then
  pass "the release namespace is exempt"
else
  fail "namespaceSelector: $(get "" "mutatingwebhookconfiguration/$name" '{.webhooks[0].namespaceSelector}')"
fi
for check in "watch nodes" "list namespaces" "watch runtimeclasses.node.k8s.io" \
  "get configmaps/sysbox-operational-attributes -n kube-system"; do
  # shellcheck disable=SC2086 # the verb, resource and flags are separate words
  if "$k" auth can-i $check --as="$sa" --quiet 2>/dev/null; then
    pass "RBAC: the release's ServiceAccount can $check"
  else
    fail "RBAC: the release's ServiceAccount cannot $check"
  fi
done
for check in "list configmaps -n kube-system" "get secrets -n $ns" "create pods -n default" \
  "patch mutatingwebhookconfigurations" "update nodes"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as="$sa" --quiet 2>/dev/null; then
    fail "RBAC: the release's ServiceAccount can $check"
  else
    pass "RBAC: the release's ServiceAccount cannot $check"
  fi
done

agent=sro-sysbox-ro-agent
agent_sa=system:serviceaccount:$agent_ns:$agent
if "$k" -n "$agent_ns" get "daemonset/$agent" "serviceaccount/$agent" >/dev/null 2>&1 &&
  "$k" get "clusterrole/$agent" "clusterrolebinding/$agent" "validatingadmissionpolicy/$agent-own-node" \
    "validatingadmissionpolicybinding/$agent-own-node" >/dev/null 2>&1; then
  pass "the node agent's objects exist (in its own namespace)"
else
  fail "the node agent's objects are missing"
fi
for check in "patch nodes" "get nodes"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as="$agent_sa" --quiet 2>/dev/null; then
    pass "RBAC: the agent can $check"
  else
    fail "RBAC: the agent cannot $check"
  fi
done
for check in "list pods -A" "get secrets -n $agent_ns" "delete nodes"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as="$agent_sa" --quiet 2>/dev/null; then
    fail "RBAC: the agent can $check"
  else
    pass "RBAC: the agent cannot $check"
  fi
done
# The policy as the API server enforces it, for the chart's agent name: the agent's token names
# its node (impersonated here with the same user extra).
for node in helm-node-a helm-node-b; do
  printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n' "$node" | "$k" create -f - >/dev/null
done
as_agent=(--as="$agent_sa" --as-user-extra=authentication.kubernetes.io/node-name=helm-node-a)
# The API server starts enforcing a new binding asynchronously: wait until it refuses.
for ((i = 0; i < 60; i++)); do
  "$k" "${as_agent[@]}" label node helm-node-b sysbox-ro.dev/relaxed-read-only=true >/dev/null 2>&1 || break
  "$k" label node helm-node-b sysbox-ro.dev/relaxed-read-only- >/dev/null 2>&1
  sleep 0.5
done
expect "admission policy: the agent labels its own node" \
  "$k" "${as_agent[@]}" label node helm-node-a sysbox-ro.dev/relaxed-read-only=true
if "$k" "${as_agent[@]}" label node helm-node-b sysbox-ro.dev/relaxed-read-only=true >"$out" 2>&1; then
  fail "admission policy: the agent labelled another node"
elif grep -q "only the Node its pod runs on" "$out"; then
  pass "admission policy: the agent may not label another node"
else
  fail "admission policy: refused for another reason: $(tail -n 3 "$out")"
fi

# --- 2. upgrades -------------------------------------------------------------------
versions() {
  printf '%s ' "$(get "$ns" "secret/$name-tls" '{.metadata.resourceVersion}')" \
    "$(get "" "mutatingwebhookconfiguration/$name" '{.metadata.resourceVersion}')" \
    "$(get "" "validatingwebhookconfiguration/$name" '{.metadata.resourceVersion}')"
}
before=$(versions)
dep_before=$(get "$ns" "deployment/$name" '{.metadata.resourceVersion}')
expect_ok "helm upgrade with the same values" "$helm" upgrade "$rel" "$chart" --namespace "$ns" "${values[@]}"
if [[ $(versions) == "$before" ]]; then
  pass "upgrade with the same values: the Secret and both webhook configurations are untouched"
else
  fail "upgrade with the same values changed the Secret or a webhook configuration ($before -> $(versions))"
fi
if [[ $(get "$ns" "deployment/$name" '{.metadata.resourceVersion}') == "$dep_before" ]]; then
  pass "upgrade with the same values: the Deployment is untouched (no rollout)"
else
  fail "upgrade with the same values changed the Deployment"
fi
expect_ok "helm upgrade --reuse-values --set mode=warn" \
  "$helm" upgrade "$rel" "$chart" --namespace "$ns" --reuse-values --set mode=warn
mode=$(get "$ns" "deployment/$name" '{.spec.template.spec.containers[0].env[?(@.name=="SYSBOXRO_MODE")].value}')
if [[ $mode == warn && $(versions) == "$before" ]]; then
  pass "upgrade to mode=warn reaches the Deployment and leaves the Secret and webhooks alone"
else
  fail "upgrade to mode=warn: SYSBOXRO_MODE=$mode, versions $before -> $(versions)"
fi

# --- 3. a cert-manager release --------------------------------------------------------
ns2="helm-check-cm"
rel2=cm
name2=cm-sysbox-ro-webhook
expect_ok "helm install with the default values (cert-manager), --create-namespace and namespace.create" \
  "$helm" install "$rel2" "$chart" --namespace "$ns2" --create-namespace --set namespace.create=true \
  --set agent.namespace.name=helm-check-cm-agent
if [[ $(get "" "namespace/$ns2" '{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]]; then
  pass "namespace.create with --create-namespace (Helm 4): the release labels its namespace restricted"
else
  fail "namespace.create: the release namespace is not labelled restricted"
fi
if [[ $(get "$ns2" "certificate/$name2" '{.spec.secretName}') == "$name2-tls" &&
  $(get "" "mutatingwebhookconfiguration/$name2" '{.metadata.annotations.cert-manager\.io/inject-ca-from}') == "$ns2/$name2" ]]; then
  pass "cert-manager: the Certificate writes the mounted Secret and the CA injector is pointed at it"
else
  fail "cert-manager: Certificate or inject-ca-from annotation wrong"
fi
# What cert-manager's cainjector does: fill caBundle with its own field manager.
"$k" patch mutatingwebhookconfiguration "$name2" --field-manager=cert-manager-cainjector --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$want_ca\"}]" >/dev/null
expect_ok "helm upgrade of the cert-manager release" "$helm" upgrade "$rel2" "$chart" --namespace "$ns2" --reuse-values --set mode=audit
if [[ $(get "" "mutatingwebhookconfiguration/$name2" '{.webhooks[0].clientConfig.caBundle}') == "$want_ca" ]]; then
  pass "cert-manager: helm upgrade keeps the injected caBundle"
else
  fail "cert-manager: helm upgrade wiped the injected caBundle"
fi

# --- 4. uninstall -------------------------------------------------------------------
expect "helm uninstall (self-signed release)" "$helm" uninstall "$rel" --namespace "$ns"
expect "helm uninstall (cert-manager release)" "$helm" uninstall "$rel2" --namespace "$ns2"
left=()
for n in "$name" "$name2" "$agent" cm-sysbox-ro-agent; do
  for obj in mutatingwebhookconfiguration/$n validatingwebhookconfiguration/$n clusterrole/$n clusterrolebinding/$n \
    validatingadmissionpolicy/$n-own-node validatingadmissionpolicybinding/$n-own-node; do
    "$k" get "$obj" >/dev/null 2>&1 && left+=("$obj")
  done
  for obj in role/$n rolebinding/$n; do
    "$k" -n kube-system get "$obj" >/dev/null 2>&1 && left+=("kube-system/$obj")
  done
done
for obj in deployment/$name secret/$name-tls service/$name; do
  "$k" -n "$ns" get "$obj" >/dev/null 2>&1 && left+=("$ns/$obj")
done
"$k" -n "$agent_ns" get "daemonset/$agent" >/dev/null 2>&1 && left+=("$agent_ns/daemonset/$agent")
if ((${#left[@]} == 0)); then
  pass "helm uninstall leaves nothing behind (webhook configurations, cluster roles, kube-system Role, the agent and its policy)"
else
  fail "left after uninstall: ${left[*]}"
fi

echo "helm-apiserver: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
