#!/usr/bin/env bash
# Checks of the Helm chart deploy/helm/sysbox-ro-webhook, without a cluster:
#
#   1. `helm lint --strict`, with the defaults and with every case's values;
#   2. every case of tests/deploy/helm-cases rendered by `helm template` and by kustomize
#      (the case's kustomization.yaml over the scratch copy of deploy/): the chart's rendering
#      gets the same assertions as the kustomize overlays (assert_rendered.py, as helm-<case>),
#      and the two renderings must hold the same objects (compare_helm_kustomize.py);
#   3. what a schema or a template must refuse: misspelt and out-of-range values, self-signed
#      TLS without its CA, a PodDisruptionBudget that blocks every drain, ...;
#   4. renderings that kustomize has no counterpart for: a TLS Secret made outside Helm, an
#      issuer of your own, another release name and namespace; and that rendering twice gives
#      the same bytes (nothing generated at render time, so `helm upgrade` changes nothing);
#   5. with SYSBOX_RO_BIN, every environment variable the chart sets is one the subcommand it
#      runs reads, and the binary accepts the settings case's values; the packaged chart
#      renders the same as the folder.
#
# Usage: helm-check.sh WORK
#   WORK holds check.sh's scratch copy of deploy/ (WORK/deploy, with the self-signed overlay's
#   certs/ filled). The chart's renderings are written to WORK/rendered-helm-<case>.yaml, where
#   apiserver-check.sh picks them up for its server-side dry run.
# Env: HELM (required), KUBECTL (default kubectl), PYTHON (with PyYAML; default python3),
#      SYSBOX_RO_BIN (the binary, for step 5)
# Prints one line per check and, last, "helm: N passed, N failed".
set -euo pipefail

work=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$root/deploy/helm/sysbox-ro-webhook
helm=${HELM:?HELM must name the helm binary}
k=${KUBECTL:-kubectl}
py=${PYTHON:-python3}
certs=$work/deploy/overlays/self-signed/certs
readonly RELEASE=sysbox-ro-webhook NS=sysbox-ro-webhook

# shellcheck source=tally.sh
. "$(dirname "${BASH_SOURCE[0]}")/tally.sh"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Helm keeps its configuration and caches out of the user's home for these runs.
export HELM_CONFIG_HOME=$work/helm/config HELM_CACHE_HOME=$work/helm/cache HELM_DATA_HOME=$work/helm/data

# case_args CASE: the extra helm arguments a case needs.
case_args() {
  if [[ $1 == self-signed ]]; then
    printf '%s\n' --set-file "certificates.selfSigned.caCert=$certs/ca.crt" \
      --set-file "certificates.selfSigned.tlsCert=$certs/tls.crt" \
      --set-file "certificates.selfSigned.tlsKey=$certs/tls.key"
  fi
}

# tally LABEL FILE: add the "...: N passed, N failed" summary of a sub-check's output FILE.
tally() {
  local label=$1 file=$2 status=$3 summary
  grep -v '^ok ' "$file" || true
  summary=$(tail -n 1 "$file")
  if [[ $summary =~ :\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    [[ $status -eq 0 || ${BASH_REMATCH[2]} -gt 0 ]] || fail "$label exited $status"
  else
    fail "$label exited $status without a summary"
  fi
}

"$helm" version --template 'using helm {{.Version}} (Kubernetes {{.KubeClientVersion}})
'

# --- 1. lint -------------------------------------------------------------------
if "$helm" lint --strict "$chart" >"$out" 2>&1; then
  pass "helm lint --strict (defaults)"
else
  fail "helm lint --strict (defaults): $(cat "$out")"
fi

# --- 2. every case: lint, render, assert, compare ---------------------------------
cases=()
for dir in "$here"/helm-cases/*/; do
  cases+=("$(basename "$dir")")
done
assert_args=()
for case in "${cases[@]}"; do
  mapfile -t extra < <(case_args "$case")
  values=$here/helm-cases/$case/values.yaml
  if "$helm" lint --strict "$chart" --namespace "$NS" -f "$values" "${extra[@]}" >"$out" 2>&1; then
    pass "$case: helm lint --strict"
  else
    fail "$case: helm lint --strict: $(cat "$out")"
  fi
  rendered=$work/rendered-helm-$case.yaml
  if "$helm" template "$RELEASE" "$chart" --namespace "$NS" -f "$values" "${extra[@]}" >"$rendered" 2>"$out"; then
    pass "$case: helm template ($(grep -c '^kind:' "$rendered") objects)"
    assert_args+=("helm-$case=$rendered")
  else
    fail "$case: helm template: $(cat "$out")"
    continue
  fi
  overlay=$work/deploy/overlays/helm-$case
  mkdir -p "$overlay"
  cp "$here/helm-cases/$case/kustomization.yaml" "$overlay/"
  [[ $case != self-signed ]] || cp -R "$certs" "$overlay/certs"
  if "$k" kustomize "$overlay" >"$work/kustomize-helm-$case.yaml" 2>"$out"; then
    if "$py" "$here/compare_helm_kustomize.py" "$case" "$work/kustomize-helm-$case.yaml" "$rendered" >"$work/compare.out"; then
      status=0
    else
      status=$?
    fi
    tally "compare_helm_kustomize.py $case" "$work/compare.out" "$status"
  else
    fail "$case: kubectl kustomize of its kustomization: $(cat "$out")"
  fi
done
if "$py" "$here/assert_rendered.py" "${assert_args[@]}" >"$work/assert-helm.out"; then
  status=0
else
  status=$?
fi
tally "assert_rendered.py (chart)" "$work/assert-helm.out" "$status"

# --- 3. what must be refused ------------------------------------------------------
# expect_refused LABEL TEXT HELM-ARGS...: `helm template` fails and says TEXT.
expect_refused() {
  local label=$1 text=$2
  shift 2
  if "$helm" template "$RELEASE" "$chart" --namespace "$NS" "$@" >/dev/null 2>"$out"; then
    fail "refused: $label: rendered without error"
  elif grep -qF -- "$text" "$out"; then
    pass "refused: $label"
  else
    fail "refused: $label: failed for another reason: $(head -c 600 "$out")"
  fi
}
schema="values don't meet the specifications of the schema"
expect_refused "a misspelt top-level key (replica)" "$schema" --set replica=3
expect_refused "the misspelt key is named" "'replica'" --set replica=3
expect_refused "a misspelt nested key (webhook.failurPolicy)" "failurPolicy" --set webhook.failurPolicy=Ignore
expect_refused "an unknown mode" "$schema" --set mode=enforcing
expect_refused "an unknown failurePolicy" "$schema" --set webhook.failurePolicy=ignore
expect_refused "timeoutSeconds above Kubernetes' 30" "$schema" --set webhook.timeoutSeconds=31
expect_refused "an unknown certificate source" "$schema" --set certificates.source=selfsigned
expect_refused "an unknown hygiene rule" "$schema" --set 'disableRules={user-namespaces}'
expect_refused "replicas as a string" "$schema" --set-string replicas=2
expect_refused "an issuerRef without a name" "$schema" --set certificates.certManager.issuerRef.kind=ClusterIssuer
expect_refused "self-signed without the CA certificate" "needs certificates.selfSigned.caCert" \
  --set certificates.source=self-signed
expect_refused "self-signed with a certificate but no key" "set both tlsCert and tlsKey" \
  --set certificates.source=self-signed --set-file "certificates.selfSigned.caCert=$certs/ca.crt" \
  --set-file "certificates.selfSigned.tlsCert=$certs/tls.crt"
expect_refused "a PodDisruptionBudget that no drain could satisfy" "must be below replicas" --set replicas=1
expect_refused "a drain longer than the termination grace period" "must be below terminationGracePeriodSeconds" \
  --set shutdownGraceSeconds=30
expect_refused "a delay and drain together longer than the termination grace period" "must be below terminationGracePeriodSeconds" \
  --set shutdownDelaySeconds=16
expect_refused "a misspelt agent key (agent.enable)" "'enable'" --set agent.enable=false
expect_refused "the agent in the webhook's (restricted) namespace" "need a namespace of their own" \
  --set agent.namespace.name="$NS"
expect_refused "Kubernetes older than 1.30 (no GA matchConditions)" "kubeVersion" --kube-version 1.29.0

# --- 4. renderings without a kustomize counterpart -------------------------------
# render NAME HELM-ARGS...: render into $work/extra-NAME.yaml (not picked up by the dry run).
render() {
  local name=$1
  shift
  if "$helm" template "$@" "$chart" >"$work/extra-$name.yaml" 2>"$out"; then
    return 0
  fi
  fail "$name: helm template: $(cat "$out")"
  return 1
}
# query LABEL FILE PYTHON-EXPRESSION: the expression, over `docs` (the file's objects) and the
# helpers one(kind, name=None) and kinds, is true.
query() {
  local label=$1 file=$2 expr=$3
  if "$py" - "$file" "$expr" >"$out" 2>&1 <<'EOF'; then
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
def one(kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
    pass "$label"
  else
    fail "$label: $(cat "$out")"
  fi
}

if render own-secret "$RELEASE" --namespace "$NS" --set certificates.source=self-signed \
  --set-file "certificates.selfSigned.caCert=$certs/ca.crt"; then
  query "self-signed, Secret made outside Helm: no Secret rendered, no private key in the output" \
    "$work/extra-own-secret.yaml" "'Secret' not in kinds and 'PRIVATE KEY' not in open(sys.argv[1]).read()"
  ca_b64=$(base64 -w0 <"$certs/ca.crt")
  query "self-signed, Secret made outside Helm: caBundle is the given CA" "$work/extra-own-secret.yaml" \
    "one('MutatingWebhookConfiguration')['webhooks'][0]['clientConfig']['caBundle'] == '$ca_b64'"
  query "self-signed: no cert-manager objects and no inject-ca-from annotation" "$work/extra-own-secret.yaml" \
    "not any(d['apiVersion'].startswith('cert-manager.io/') for d in docs) and not one('MutatingWebhookConfiguration')['metadata'].get('annotations')"
fi

if render issuer "$RELEASE" --namespace "$NS" --set certificates.certManager.issuerRef.kind=ClusterIssuer \
  --set certificates.certManager.issuerRef.name=corp-ca; then
  query "issuerRef: the serving Certificate comes from that issuer, and no private CA is made" \
    "$work/extra-issuer.yaml" \
    "one('Certificate')['spec']['issuerRef'] == {'group': 'cert-manager.io', 'kind': 'ClusterIssuer', 'name': 'corp-ca'} and 'Issuer' not in kinds"
fi

if render other-release sro --namespace platform-admission --set webhook.validating.enabled=true \
  --set serviceMonitor.enabled=true; then
  f=$work/extra-other-release.yaml
  query "another release: objects are named sro-sysbox-ro-webhook" "$f" \
    "one('Deployment', 'sro-sysbox-ro-webhook') and one('ClusterRole', 'sro-sysbox-ro-webhook') and one('Role', 'sro-sysbox-ro-webhook')['metadata']['namespace'] == 'kube-system'"
  query "another release: both webhooks call the release's Service in its namespace" "$f" \
    "all(w['clientConfig']['service'] == {'name': 'sro-sysbox-ro-webhook', 'namespace': 'platform-admission', 'path': p, 'port': 443} for k, p in (('MutatingWebhookConfiguration', '/mutate'), ('ValidatingWebhookConfiguration', '/validate')) for w in one(k)['webhooks'])"
  query "another release: its namespace, not sysbox-ro-webhook, is exempt" "$f" \
    "one('MutatingWebhookConfiguration')['webhooks'][0]['namespaceSelector']['matchExpressions'][0]['values'] == ['kube-system', 'platform-admission']"
  query "another release: the certificate names the release's Service and the CA injector its Certificate" "$f" \
    "one('Certificate', 'sro-sysbox-ro-webhook')['spec']['dnsNames'] == ['sro-sysbox-ro-webhook.platform-admission.svc', 'sro-sysbox-ro-webhook.platform-admission.svc.cluster.local'] and one('ValidatingWebhookConfiguration')['metadata']['annotations']['cert-manager.io/inject-ca-from'] == 'platform-admission/sro-sysbox-ro-webhook'"
  query "another release: RBAC subjects, Secret mount and selectors follow the release" "$f" \
    "one('ClusterRoleBinding', 'sro-sysbox-ro-webhook')['subjects'] == [{'kind': 'ServiceAccount', 'name': 'sro-sysbox-ro-webhook', 'namespace': 'platform-admission'}] and one('Deployment')['spec']['template']['spec']['volumes'][0]['secret']['secretName'] == 'sro-sysbox-ro-webhook-tls' and one('Certificate', 'sro-sysbox-ro-webhook')['spec']['secretName'] == 'sro-sysbox-ro-webhook-tls'"
  query "another release: the agent, its RBAC and its admission policy carry the release's agent name" "$f" \
    "one('DaemonSet', 'sro-sysbox-ro-agent')['spec']['template']['spec']['serviceAccountName'] == 'sro-sysbox-ro-agent' and one('ClusterRoleBinding', 'sro-sysbox-ro-agent')['subjects'] == [{'kind': 'ServiceAccount', 'name': 'sro-sysbox-ro-agent', 'namespace': 'sysbox-ro-agent'}] and \"endsWith(':sro-sysbox-ro-agent')\" in one('ValidatingAdmissionPolicy')['spec']['matchConditions'][0]['expression'] and one('ValidatingAdmissionPolicyBinding')['spec']['policyName'] == one('ValidatingAdmissionPolicy')['metadata']['name'] == 'sro-sysbox-ro-agent-own-node'"
fi

if render scheduling "$RELEASE" --namespace "$NS" --set priorityClassName=platform-critical \
  --set 'tolerations[0].key=dedicated' --set 'tolerations[0].operator=Exists' \
  --set podAnnotations.team=platform --set podLabels.tier=admission; then
  query "priorityClassName, tolerations, pod annotations and labels reach the pod template" \
    "$work/extra-scheduling.yaml" \
    "(lambda t: t['spec']['priorityClassName'] == 'platform-critical' and t['spec']['tolerations'] == [{'key': 'dedicated', 'operator': 'Exists'}] and t['metadata']['annotations'] == {'team': 'platform'} and t['metadata']['labels']['tier'] == 'admission')(one('Deployment')['spec']['template'])"
  query "pod labels stay out of the (immutable) selector" "$work/extra-scheduling.yaml" \
    "one('Deployment')['spec']['selector']['matchLabels'] == {'app.kubernetes.io/name': 'sysbox-ro-webhook', 'app.kubernetes.io/component': 'admission-webhook'}"
fi

if render single "$RELEASE" --namespace "$NS" --set replicas=1 --set podDisruptionBudget.enabled=false \
  --set 'extraEnv[0].name=SYSBOXRO_POOL_LABELS' --set 'extraEnv[0].value=example.com/pool'; then
  query "one replica without a PodDisruptionBudget; extraEnv comes after the chart's settings" \
    "$work/extra-single.yaml" \
    "'PodDisruptionBudget' not in kinds and one('Deployment')['spec']['replicas'] == 1 and one('Deployment')['spec']['template']['spec']['containers'][0]['env'][-1] == {'name': 'SYSBOXRO_POOL_LABELS', 'value': 'example.com/pool'}"
fi

digest=sha256:$(printf '%064d' 7)
if render digest "$RELEASE" --namespace "$NS" --set image.repository=registry.example.com/sro \
  --set image.digest="$digest"; then
  query "image.digest pins the webhook's and the agent's image" "$work/extra-digest.yaml" \
    "all(d['spec']['template']['spec']['containers'][0]['image'] == 'registry.example.com/sro@$digest' for d in docs if d['kind'] in ('Deployment', 'DaemonSet')) and len([d for d in docs if d['kind'] in ('Deployment', 'DaemonSet')]) == 2"
fi

if render no-policy "$RELEASE" --namespace "$NS" --set agent.admissionPolicy.enabled=false; then
  query "agent.admissionPolicy.enabled=false: the agent without its ValidatingAdmissionPolicy" \
    "$work/extra-no-policy.yaml" "'DaemonSet' in kinds and 'ValidatingAdmissionPolicy' not in kinds and 'ValidatingAdmissionPolicyBinding' not in kinds"
fi

if render extra-ns "$RELEASE" --namespace "$NS" --set 'exemptNamespaces={kube-system,ci,sysbox-ro-webhook}'; then
  query "exemptNamespaces that repeat the release namespace list it once" "$work/extra-extra-ns.yaml" \
    "one('MutatingWebhookConfiguration')['webhooks'][0]['namespaceSelector']['matchExpressions'][0]['values'] == ['kube-system', 'ci', 'sysbox-ro-webhook']"
fi

# Nothing is generated at render time: the same values give the same bytes, so an upgrade with
# unchanged values changes no object (in particular no certificate or key).
for case in default self-signed; do
  mapfile -t extra < <(case_args "$case")
  if "$helm" template "$RELEASE" "$chart" --namespace "$NS" -f "$here/helm-cases/$case/values.yaml" \
    "${extra[@]}" >"$work/again-$case.yaml" 2>"$out" &&
    cmp -s "$work/again-$case.yaml" "$work/rendered-helm-$case.yaml"; then
    pass "$case: a second render is byte-identical (an upgrade regenerates nothing)"
  else
    fail "$case: a second render differs: $(diff "$work/rendered-helm-$case.yaml" "$work/again-$case.yaml" | head -n 20)"
  fi
done

# The settings reach the binary: a misspelt SYSBOXRO_* name would be ignored silently, so every
# variable the chart sets must be one the subcommand it runs documents (`--help` lists them),
# and the settings case's values must parse (`check` shares the policy flags with `serve`).
if [[ -z ${SYSBOX_RO_BIN:-} ]]; then
  echo "not checked: the chart's environment variables against the binary (set SYSBOX_RO_BIN)"
else
  "$py" - "$work"/rendered-helm-*.yaml >"$work/env-names" <<'EOF'
import sys, yaml
seen = set()
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        if not d or d["kind"] not in ("Deployment", "DaemonSet"):
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        for e in c.get("env", []):
            if e["name"].startswith("SYSBOXRO_") or e["name"] == "NODE_NAME":
                seen.add((c["args"][0], e["name"]))
for sub, name in sorted(seen):
    print(sub, name)
EOF
  while read -r sub name; do
    if help=$("$SYSBOX_RO_BIN" "$sub" --help 2>&1) && grep -qF "[env: $name=" <<<"$help"; then
      pass "the chart's $name is a setting of \`$sub\`"
    else
      fail "the chart sets $name, which \`sysbox-ro-webhook $sub\` does not read"
    fi
  done <"$work/env-names"
  mapfile -t settings_env < <("$py" - "$work/rendered-helm-settings.yaml" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "value" in e:
                print(f"{e['name']}={e['value']}")
EOF
  )
  if printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n' |
    env "${settings_env[@]}" "$SYSBOX_RO_BIN" check -f - >"$out" 2>&1; then
    pass "settings case: the binary accepts the chart's policy settings"
  else
    fail "settings case: the binary refuses the chart's settings: $(tail -n 3 "$out")"
  fi
fi

# What a chart repository or an OCI registry would serve: the packaged chart renders the same.
rm -rf "$work/package"
mkdir -p "$work/package"
if "$helm" package "$chart" --destination "$work/package" >"$out" 2>&1 &&
  "$helm" template "$RELEASE" "$work"/package/sysbox-ro-webhook-*.tgz --namespace "$NS" \
    -f "$here/helm-cases/default/values.yaml" >"$work/packaged-default.yaml" 2>>"$out" &&
  cmp -s "$work/packaged-default.yaml" "$work/rendered-helm-default.yaml"; then
  pass "helm package: the packaged chart renders the same objects"
else
  fail "helm package: $(tail -n 5 "$out")"
fi
# (Listed first, then matched: `tar | grep -q` under pipefail fails when grep exits early.)
listing=$(tar -tzf "$work"/package/sysbox-ro-webhook-*.tgz 2>/dev/null || true)
if grep -qx 'sysbox-ro-webhook/values.schema.json' <<<"$listing"; then
  pass "helm package: values.schema.json is in the package"
else
  fail "helm package: values.schema.json is missing from the package"
fi

echo "helm: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
