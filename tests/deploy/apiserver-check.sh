#!/usr/bin/env bash
# The rendered manifests against a real kube-apiserver (a throwaway one:
# tests/e2e/control-plane.sh, started by check.sh). No webhook server runs:
#
#   1. the base is applied for real and every overlay is applied as a
#      server-side dry run (schema, strict field validation, webhook and CEL
#      validation, Pod Security "restricted" on the namespace);
#   2. the webhook configurations, pointed at a closed loopback port instead
#      of the Service, show which requests the API server would send to the
#      webhook: a request that reaches it fails with "failed calling
#      webhook" (failurePolicy Fail), one that is filtered out succeeds;
#   3. the node agent's RBAC and ValidatingAdmissionPolicy, applied for real
#      and exercised by impersonating the agent's ServiceAccount with and
#      without the node name its bound token would carry.
#
# Usage: apiserver-check.sh DIR    (DIR holds check.sh's rendered-<name>.yaml)
# Env:   KUBECONFIG (required), KUBECTL (default kubectl), PYTHON (with PyYAML)
# Prints one line per check and, last, "apiserver: N passed, N failed".
set -euo pipefail

dir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k=${KUBECTL:-kubectl}
py=${PYTHON:-python3}
: "${KUBECONFIG:?KUBECONFIG must point at a throwaway API server}"
# The webhook "server": a loopback port where nothing listens, so a call
# fails at once with connection refused. Never a Service: with no kube-proxy
# the API server would dial a ClusterIP.
readonly DEAD_URL=https://127.0.0.1:1

# shellcheck source=tally.sh
. "$(dirname "${BASH_SOURCE[0]}")/tally.sh"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# select_docs FILE MODE: the documents of FILE without (MODE=rest) or only
# (MODE=webhooks) the webhook configurations, or only those of kind MODE; the
# webhooks' clientConfig then points at DEAD_URL.
select_docs() {
  "$py" - "$1" "$2" "$DEAD_URL" <<'EOF'
import sys, yaml
path, mode, url = sys.argv[1:]
kinds = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
if mode in kinds:
    kinds = {mode}
docs = [d for d in yaml.safe_load_all(open(path)) if d]
if mode == "agent":
    # Everything of the node agent but its DaemonSet (no kubelet runs here).
    docs = [d for d in docs if d["metadata"]["name"].startswith("sysbox-ro-agent") and d["kind"] != "DaemonSet"]
elif mode == "rest":
    docs = [d for d in docs if d["kind"] not in kinds]
else:
    docs = [d for d in docs if d["kind"] in kinds]
    for d in docs:
        for w in d["webhooks"]:
            svc = w["clientConfig"].pop("service")
            w["clientConfig"]["url"] = url + svc.get("path", "/")
            w["clientConfig"].pop("caBundle", None)
print(yaml.safe_dump_all(docs, sort_keys=False), end="")
EOF
}

# expect_refused LABEL TEXT CMD...: CMD fails and its output contains TEXT.
expect_refused() {
  local label=$1 text=$2
  shift 2
  if "$@" >"$out" 2>&1; then
    fail "$label: was admitted"
  elif grep -qF -- "$text" "$out"; then
    pass "$label"
  else
    fail "$label: refused for another reason: $(tail -n 3 "$out")"
  fi
}

# --- 1. schema and validation ------------------------------------------------
expect_ok "stand-in CRDs for cert-manager and the Prometheus Operator" \
  "$k" apply -f "$here/testdata/stub-crds.yaml"
"$k" wait --for=condition=Established --timeout=30s \
  crd/certificates.cert-manager.io crd/issuers.cert-manager.io crd/servicemonitors.monitoring.coreos.com >/dev/null

expect_ok "base (without the webhook configuration) applies for real" \
  "$k" apply --server-side --field-manager=deploy-check -f <(select_docs "$dir/rendered-base.yaml" rest)
# The overlays add the node agent in a namespace of its own, which a dry run
# does not create: apply the agent's objects but its DaemonSet for real first.
agent_sa=system:serviceaccount:sysbox-ro-agent:sysbox-ro-agent
expect_ok "agent: namespace, ServiceAccount, RBAC and policy apply for real" \
  "$k" apply --server-side --field-manager=deploy-check -f <(select_docs "$dir/rendered-cert-manager.yaml" agent)
for f in "$dir"/rendered-*.yaml; do
  name=${f##*/rendered-}
  name=${name%.yaml}
  expect_ok "$name: server-side dry run of every object" \
    "$k" apply --server-side --dry-run=server --field-manager=deploy-check -f "$f"
done
if "$k" auth can-i list configmaps -n kube-system \
  --as=system:serviceaccount:sysbox-ro-webhook:sysbox-ro-webhook --quiet 2>/dev/null; then
  fail "RBAC: the ServiceAccount can list every ConfigMap in kube-system"
else
  pass "RBAC: the ServiceAccount cannot list ConfigMaps in kube-system in general"
fi
for check in "get configmaps/sysbox-operational-attributes -n kube-system" "watch nodes" "list runtimeclasses.node.k8s.io" "watch namespaces" "watch services -A"; do
  # shellcheck disable=SC2086 # the verb, resource and flags are separate words
  if "$k" auth can-i $check --as=system:serviceaccount:sysbox-ro-webhook:sysbox-ro-webhook --quiet 2>/dev/null; then
    pass "RBAC: the ServiceAccount can $check"
  else
    fail "RBAC: the ServiceAccount cannot $check"
  fi
done
for check in "get configmaps/kubeadm-config -n kube-system" "get secrets -n sysbox-ro-webhook" "create pods -n default" "update nodes" "list pods -A" "update services -n default"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as=system:serviceaccount:sysbox-ro-webhook:sysbox-ro-webhook --quiet 2>/dev/null; then
    fail "RBAC: the ServiceAccount can $check"
  else
    pass "RBAC: the ServiceAccount cannot $check"
  fi
done

# --- 2. what the API server sends to the webhook -----------------------------
ns=deploy-check-$RANDOM
"$k" create namespace "$ns" >/dev/null
"$k" apply -f - >/dev/null <<'EOF'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: sysbox-runc
handler: sysbox-runc
EOF

pod() { # pod NAME NAMESPACE RUNTIMECLASS|""
  local rc=""
  [[ -n $3 ]] && rc="runtimeClassName: $3"
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $2}
spec:
  $rc
  containers:
    - name: c
      image: example.invalid/app:1
      # Also passes the restricted Pod Security level of sysbox-ro-webhook.
      securityContext:
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        runAsNonRoot: true
        capabilities: {drop: [ALL]}
        seccompProfile: {type: RuntimeDefault}
EOF
}
deployment() { # deployment NAME RUNTIMECLASS|"" IMAGE
  local rc=""
  [[ -n $2 ]] && rc="runtimeClassName: $2"
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, namespace: $ns}
spec:
  replicas: 1
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      $rc
      containers:
        - name: c
          image: $3
          securityContext: {readOnlyRootFilesystem: true}
EOF
}
cronjob() { # cronjob NAME RUNTIMECLASS|""
  local rc=""
  [[ -n $2 ]] && rc="runtimeClassName: $2"
  cat <<EOF
apiVersion: batch/v1
kind: CronJob
metadata: {name: $1, namespace: $ns}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          $rc
          restartPolicy: Never
          containers:
            - name: c
              image: example.invalid/app:1
EOF
}
podtemplate() { # podtemplate NAME RUNTIMECLASS|""
  local rc=""
  [[ -n $2 ]] && rc="runtimeClassName: $2"
  cat <<EOF
apiVersion: v1
kind: PodTemplate
metadata: {name: $1, namespace: $ns}
template:
  spec:
    $rc
    containers:
      - name: c
        image: example.invalid/app:1
EOF
}
create() { "$k" create --dry-run=server -f -; }

# A Sysbox Deployment that exists before the webhook, to update later.
deployment existing sysbox-runc example.invalid/app:1 | "$k" apply -f - >/dev/null

expect_ok "mutating webhook configuration (Fail, pointed at a closed port) applies" \
  "$k" apply -f <(select_docs "$dir/rendered-base.yaml" webhooks)
refused="failed calling webhook \"relaxed-read-only.sysbox-ro.dev\""
# The API server picks configurations up asynchronously: wait until a
# Sysbox pod reaches the webhook.
for ((i = 0; i < 60; i++)); do
  if ! pod probe "$ns" sysbox-runc | create >"$out" 2>&1 && grep -qF "$refused" "$out"; then
    break
  fi
  sleep 0.5
done

expect_refused "Fail: a Sysbox pod is sent to the webhook (refused while it is down)" "$refused" \
  create < <(pod p1 "$ns" sysbox-runc)
expect_ok "a pod without runtimeClassName never reaches the webhook" \
  create < <(pod p2 "$ns" "")
expect_ok "a Sysbox pod in kube-system is not sent (namespaceSelector)" \
  create < <(pod p3 kube-system sysbox-runc)
expect_ok "a Sysbox pod in sysbox-ro-webhook is not sent (namespaceSelector)" \
  create < <(pod p4 sysbox-ro-webhook sysbox-runc)
expect_refused "a Sysbox Deployment is sent" "$refused" \
  create < <(deployment d1 sysbox-runc example.invalid/app:1)
expect_ok "a Deployment without runtimeClassName is not sent" \
  create < <(deployment d2 "" example.invalid/app:1)
expect_refused "a Sysbox CronJob is sent" "$refused" create < <(cronjob c1 sysbox-runc)
expect_ok "a CronJob without runtimeClassName is not sent" create < <(cronjob c2 "")
expect_refused "a Sysbox PodTemplate is sent" "$refused" create < <(podtemplate t1 sysbox-runc)
expect_ok "a PodTemplate without runtimeClassName is not sent" create < <(podtemplate t2 "")
expect_ok "scaling a Sysbox Deployment (template unchanged) is not sent" \
  "$k" -n "$ns" patch deployment existing --type merge -p '{"spec":{"replicas":3}}'
expect_ok "labelling a Sysbox Deployment (template unchanged) is not sent" \
  "$k" -n "$ns" label deployment existing team=a
expect_refused "changing a Sysbox Deployment's template is sent" "$refused" \
  "$k" -n "$ns" set image deployment/existing c=example.invalid/app:2
expect_ok "deleting a Sysbox Deployment is not blocked" \
  "$k" -n "$ns" delete deployment existing --wait=false

expect_ok "failure-ignore: webhook configuration applies" \
  "$k" apply -f <(select_docs "$dir/rendered-failure-ignore.yaml" webhooks)
for ((i = 0; i < 60; i++)); do
  pod probe "$ns" sysbox-runc | create >/dev/null 2>&1 && break
  sleep 0.5
done
expect_ok "Ignore: a Sysbox pod is admitted unchecked while the webhook is down" \
  create < <(pod p5 "$ns" sysbox-runc)

refused_v="failed calling webhook \"validate.relaxed-read-only.sysbox-ro.dev\""
# Only the validating configuration: the mutating one stays at Ignore, so a
# refusal can only come from the validating webhook.
expect_ok "validating: webhook configuration applies" \
  "$k" apply -f <(select_docs "$dir/rendered-validating.yaml" ValidatingWebhookConfiguration)
for ((i = 0; i < 60; i++)); do
  if ! pod probe "$ns" sysbox-runc | create >"$out" 2>&1 && grep -qF "$refused_v" "$out"; then
    break
  fi
  sleep 0.5
done
expect_refused "validating: a Sysbox pod is sent to /validate" "$refused_v" \
  create < <(pod p6 "$ns" sysbox-runc)
expect_ok "validating: a pod without runtimeClassName is not sent" \
  create < <(pod p7 "$ns" "")

"$k" delete validatingwebhookconfiguration sysbox-ro-webhook --ignore-not-found >/dev/null
"$k" delete mutatingwebhookconfiguration sysbox-ro-webhook --ignore-not-found >/dev/null

# --- 3. the node agent's permissions ------------------------------------------
for check in "get nodes" "patch nodes"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as=$agent_sa --quiet 2>/dev/null; then
    pass "agent RBAC: can $check"
  else
    fail "agent RBAC: cannot $check"
  fi
done
for check in "list nodes" "delete nodes" "create nodes" "patch nodes --subresource=status" "get secrets -A" "list pods -A" "patch pods -n default"; do
  # shellcheck disable=SC2086
  if "$k" auth can-i $check --as=$agent_sa --quiet 2>/dev/null; then
    fail "agent RBAC: can $check"
  else
    pass "agent RBAC: cannot $check"
  fi
done
# Kubeconfigs impersonating the agent: with the node-name extra that a token
# bound to a pod on that node carries, and without one.
kc_as() { # kc_as FILE [NODE]
  "$py" - "$KUBECONFIG" "$1" "$agent_sa" "${2:-}" <<'EOF'
import sys, yaml
src, dst, user, node = sys.argv[1:]
kc = yaml.safe_load(open(src))
for u in kc["users"]:
    u["user"]["as"] = user
    u["user"]["as-groups"] = ["system:serviceaccounts", "system:serviceaccounts:sysbox-ro-agent", "system:authenticated"]
    if node:
        u["user"]["as-user-extra"] = {"authentication.kubernetes.io/node-name": [node]}
yaml.safe_dump(kc, open(dst, "w"))
EOF
}
kc_a=$(mktemp)
kc_none=$(mktemp)
trap 'rm -f "$out" "$kc_a" "$kc_none"' EXIT
kc_as "$kc_a" agent-node-a
kc_as "$kc_none"
for n in agent-node-a agent-node-b; do
  "$k" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $n
  labels: {team: ci}
  annotations: {example.com/owner: platform}
EOF
done
as_a() { "$k" --kubeconfig "$kc_a" "$@"; }
expect_ok "agent policy: the agent labels its own node sysbox-ro.dev/relaxed-read-only" \
  as_a label node agent-node-a sysbox-ro.dev/relaxed-read-only=true
expect_ok "agent policy: the agent annotates its own node sysbox-ro.dev/sysbox-mgr" \
  as_a annotate node agent-node-a 'sysbox-ro.dev/sysbox-mgr={"state":"running"}'
expect_ok "agent policy: the agent removes its label from its own node" \
  as_a label node agent-node-a sysbox-ro.dev/relaxed-read-only-
expect_refused "agent policy: another node is refused" "may change only the Node its pod runs on (agent-node-a), not agent-node-b" \
  as_a label node agent-node-b sysbox-ro.dev/relaxed-read-only=true
expect_refused "agent policy: another label is refused" "may change only labels under sysbox-ro.dev/" \
  as_a label node agent-node-a team=other --overwrite
expect_refused "agent policy: a new label elsewhere is refused" "may change only labels under sysbox-ro.dev/" \
  as_a label node agent-node-a node-role.kubernetes.io/control-plane=
expect_refused "agent policy: removing another label is refused" "may change only labels under sysbox-ro.dev/" \
  as_a label node agent-node-a team-
expect_refused "agent policy: another annotation is refused" "may change only annotations under sysbox-ro.dev/" \
  as_a annotate node agent-node-a example.com/owner=me --overwrite
expect_refused "agent policy: a taint (spec) is refused" "may not change a Node's spec" \
  as_a taint node agent-node-a evil=yes:NoSchedule
expect_refused "agent policy: a token without a node name is refused" "carries no node name" \
  "$k" --kubeconfig "$kc_none" label node agent-node-a sysbox-ro.dev/relaxed-read-only=true
expect_refused "agent policy: deleting a node is refused by RBAC" "forbidden" \
  as_a delete node agent-node-a
"$k" delete node agent-node-a agent-node-b --ignore-not-found >/dev/null

echo "apiserver: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
