#!/usr/bin/env python3
"""Assertions on the rendered deploy manifests (output of `kubectl kustomize`).

Usage: assert_rendered.py NAME=FILE [NAME=FILE ...] [--ca-bundle FILE] [--examples DIR]

NAME is the kustomization that produced FILE: base, cert-manager, failure-ignore,
monitoring, validating, self-signed, combined (agent + validating +
failure-ignore + monitoring + cert-manager components together) or
self-signed-combined (the self-signed overlay with its commented components
list switched on: validating + failure-ignore + monitoring), or helm-<case> for the Helm
chart's rendering of tests/deploy/helm-cases/<case>. Every overlay
includes the node agent component; the base does not. Each name gets the checks that
hold for the base plus those of its features. Prints one line per check and, last,
"assertions: N passed, N failed"; exits 1 if any failed.
"""

import base64
import sys

import yaml

NS = "sysbox-ro-webhook"
NAME = "sysbox-ro-webhook"
TLS_SECRET = "sysbox-ro-webhook-tls"
WEBHOOK = "relaxed-read-only.sysbox-ro.dev"
ANNOTATION = ("cert-manager.io/inject-ca-from", "sysbox-ro-webhook/sysbox-ro-webhook")
SVC_DNS = [
    "sysbox-ro-webhook.sysbox-ro-webhook.svc",
    "sysbox-ro-webhook.sysbox-ro-webhook.svc.cluster.local",
]
WORKLOAD_RULES = {
    ("", "podtemplates"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}

AGENT_NS = "sysbox-ro-agent"
AGENT = "sysbox-ro-agent"
AGENT_POLICY = "sysbox-ro-agent-own-node"
# The host folders the agent may mount (read-only), and nothing else.
AGENT_HOST_PATHS = {
    "/proc",
    "/run/sysbox",
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/var/lib/sysbox-deploy-k8s",
}

# Which optional pieces each rendering has.
FEATURES = {
    "base": set(),
    "cert-manager": {"agent", "cert-manager"},
    "failure-ignore": {"agent", "ignore"},
    "monitoring": {"agent", "monitoring"},
    "validating": {"agent", "validating"},
    "self-signed": {"agent", "self-signed"},
    "combined": {"agent", "validating", "ignore", "monitoring", "cert-manager"},
    "self-signed-combined": {"agent", "self-signed", "validating", "ignore", "monitoring"},
    # The Helm chart's renderings of tests/deploy/helm-cases/<case>; "no-namespace": the chart
    # leaves the release namespace to `helm install --create-namespace`; "agent": the node agent.
    "helm-default": {"cert-manager", "no-namespace", "agent"},
    "helm-failure-ignore": {"ignore", "cert-manager", "no-namespace", "agent"},
    "helm-validating": {"validating", "cert-manager", "no-namespace", "agent"},
    "helm-monitoring": {"monitoring", "cert-manager", "no-namespace", "agent"},
    "helm-combined": {"validating", "ignore", "monitoring", "cert-manager", "agent"},
    "helm-self-signed": {"self-signed", "validating", "agent"},
    "helm-settings": {"cert-manager", "no-namespace", "agent"},
    "helm-no-agent": {"cert-manager", "no-namespace"},
    # The audit of running pods on a timer (deploy/components/audit; the chart's audit.enabled).
    "helm-audit": {"cert-manager", "no-namespace", "agent", "audit"},
}

passed = 0
failed = 0


def check(label, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {label}")
    else:
        failed += 1
        print(f"FAIL {label}{': ' + detail if detail else ''}")
    return ok


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None, namespace=None):
    return [
        d
        for d in docs
        if d.get("kind") == kind
        and (name is None or d["metadata"].get("name") == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def one(docs, kind, name=None, namespace=None):
    found = find(docs, kind, name, namespace)
    return found[0] if len(found) == 1 else None


def selector_matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_rbac(t, docs):
    cr = one(docs, "ClusterRole", NAME)
    if check(f"{t}: ClusterRole {NAME}", cr is not None):
        granted = set()
        verbs_ok = True
        for rule in cr.get("rules", []):
            verbs_ok &= set(rule.get("verbs", [])) <= {"get", "list", "watch"}
            verbs_ok &= not rule.get("resourceNames") and not rule.get("nonResourceURLs")
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    granted.add((g, r))
        check(f"{t}: ClusterRole grants only get/list/watch", verbs_ok)
        want = {
            ("", "nodes"),
            ("", "namespaces"),
            ("", "services"),
            ("node.k8s.io", "runtimeclasses"),
            ("karpenter.sh", "nodepools"),
        }
        check(
            f"{t}: ClusterRole covers exactly nodes, namespaces, services, runtimeclasses, nodepools",
            granted == want,
            str(granted),
        )
    crb = one(docs, "ClusterRoleBinding", NAME)
    check(
        f"{t}: ClusterRoleBinding binds the ServiceAccount",
        crb is not None
        and crb["roleRef"]["name"] == NAME
        and {"kind": "ServiceAccount", "name": NAME, "namespace": NS} in crb.get("subjects", []),
    )
    role = one(docs, "Role", NAME, "kube-system")
    if check(f"{t}: Role in kube-system", role is not None):
        rules = role.get("rules", [])
        check(
            f"{t}: Role reads only ConfigMaps sysbox-operational-attributes and sysbox-ro-node-groups",
            len(rules) == 1
            and rules[0].get("apiGroups") == [""]
            and rules[0].get("resources") == ["configmaps"]
            and rules[0].get("resourceNames") == ["sysbox-operational-attributes", "sysbox-ro-node-groups"]
            and set(rules[0].get("verbs", [])) == {"get", "list", "watch"},
            str(rules),
        )
    rb = one(docs, "RoleBinding", NAME, "kube-system")
    check(
        f"{t}: RoleBinding in kube-system binds the ServiceAccount",
        rb is not None
        and rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
        and {"kind": "ServiceAccount", "name": NAME, "namespace": NS} in rb.get("subjects", []),
    )
    sa = one(docs, "ServiceAccount", NAME, NS)
    check(f"{t}: ServiceAccount exists", sa is not None)


def env_value(container, name):
    for e in container.get("env", []):
        if e["name"] == name:
            return e
    return None


def check_deployment(t, docs):
    dep = one(docs, "Deployment", NAME, NS)
    if not check(f"{t}: Deployment {NS}/{NAME}", dep is not None):
        return None
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    check(f"{t}: Deployment selector matches its pod labels", selector_matches(spec["selector"]["matchLabels"], labels))
    check(f"{t}: at least 2 replicas", spec.get("replicas", 1) >= 2)
    check(f"{t}: rolling update never drops below the ready replicas", spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0)
    psc = pod.get("securityContext", {})
    check(f"{t}: pod runAsNonRoot with uid/gid 65532", psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532 and psc.get("runAsGroup") == 65532)
    check(f"{t}: pod seccomp RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check(f"{t}: uses the ServiceAccount with a token", pod.get("serviceAccountName") == NAME and pod.get("automountServiceAccountToken") is True)
    check(f"{t}: no priorityClassName (not admitted outside kube-system by default)", "priorityClassName" not in pod)
    check(f"{t}: no host namespaces", not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
    spread = pod.get("topologySpreadConstraints", [])
    check(f"{t}: spread across kubernetes.io/hostname", any(c.get("topologyKey") == "kubernetes.io/hostname" and selector_matches(c["labelSelector"]["matchLabels"], labels) for c in spread))
    anti = pod.get("affinity", {}).get("podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [])
    check(f"{t}: preferred pod anti-affinity on hostname", any(a["podAffinityTerm"].get("topologyKey") == "kubernetes.io/hostname" for a in anti))

    containers = pod.get("containers", [])
    if not check(f"{t}: one container", len(containers) == 1):
        return dep
    c = containers[0]
    sc = c.get("securityContext", {})
    check(f"{t}: readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
    check(f"{t}: allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
    check(f"{t}: all capabilities dropped, none added", sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"))
    check(f"{t}: container not privileged, runs as non-root", not sc.get("privileged") and sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True)
    check(f"{t}: runs `serve`", c.get("args", [None])[0] == "serve" or (not c.get("args") and not c.get("command")))
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(f"{t}: container ports https=8443, admin=8080", ports == {"https": 8443, "admin": 8080}, str(ports))

    def probe_ok(probe, path):
        get = (probe or {}).get("httpGet", {})
        return get.get("path") == path and get.get("port") in ("admin", 8080) and get.get("scheme", "HTTP") == "HTTP"

    check(f"{t}: liveness probe GET /healthz on the admin port", probe_ok(c.get("livenessProbe"), "/healthz"))
    check(f"{t}: readiness probe GET /readyz on the admin port", probe_ok(c.get("readinessProbe"), "/readyz"))
    res = c.get("resources", {})
    check(f"{t}: cpu/memory requests and a memory limit", {"cpu", "memory"} <= set(res.get("requests", {})) and "memory" in res.get("limits", {}))

    ns_env = env_value(c, "SYSBOXRO_NAMESPACE")
    check(f"{t}: SYSBOXRO_NAMESPACE from the downward API", ns_env is not None and ns_env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace")
    mode = env_value(c, "SYSBOXRO_MODE")
    check(f"{t}: SYSBOXRO_MODE is a valid mode", mode is None or mode.get("value") in ("enforce", "warn", "audit", "off"))
    grace = env_value(c, "SYSBOXRO_SHUTDOWN_GRACE")
    drain = int(grace["value"]) if grace else 15
    delay_env = env_value(c, "SYSBOXRO_SHUTDOWN_DELAY")
    delay = int(delay_env["value"]) if delay_env else 10
    check(f"{t}: terminationGracePeriodSeconds > shutdown delay + grace ({delay}s + {drain}s)", pod.get("terminationGracePeriodSeconds", 30) > delay + drain)
    for var, path in (("SYSBOXRO_TLS_CERT", "/etc/sysbox-ro-webhook/tls/tls.crt"), ("SYSBOXRO_TLS_KEY", "/etc/sysbox-ro-webhook/tls/tls.key")):
        e = env_value(c, var)
        check(f"{t}: {var} is {path}", e is None or e.get("value") == path)

    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/sysbox-ro-webhook/tls"]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    ok = len(mounts) == 1 and "subPath" not in mounts[0] and mounts[0].get("readOnly") is True
    ok = ok and vols.get(mounts[0]["name"], {}).get("secret", {}).get("secretName") == TLS_SECRET
    check(f"{t}: Secret {TLS_SECRET} mounted read-only as a directory (no subPath) at /etc/sysbox-ro-webhook/tls", ok)
    writable = [v for v in vols.values() if "emptyDir" in v or "hostPath" in v]
    check(f"{t}: no writable volumes", not writable)
    return dep


def check_pdb_service(t, docs, dep):
    labels = dep["spec"]["template"]["metadata"]["labels"] if dep else {}
    pdb = one(docs, "PodDisruptionBudget", NAME, NS)
    check(
        f"{t}: PodDisruptionBudget minAvailable 1 selecting the webhook pods",
        pdb is not None and pdb["spec"].get("minAvailable") == 1 and selector_matches(pdb["spec"]["selector"]["matchLabels"], labels),
    )
    svc = one(docs, "Service", NAME, NS)
    if not check(f"{t}: Service {NS}/{NAME}", svc is not None):
        return
    check(f"{t}: Service selects the webhook pods", selector_matches(svc["spec"]["selector"], labels) and svc["spec"]["selector"])
    ports = {p["name"]: (p["port"], p.get("targetPort")) for p in svc["spec"]["ports"]}
    container_ports = {}
    if dep:
        container_ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0].get("ports", [])}

    def target(port):
        return container_ports.get(port, port)

    check(f"{t}: Service https 443 -> 8443", "https" in ports and ports["https"][0] == 443 and target(ports["https"][1]) == 8443, str(ports))
    check(f"{t}: Service metrics 8080 -> 8080", "metrics" in ports and ports["metrics"][0] == 8080 and target(ports["metrics"][1]) == 8080, str(ports))


def check_rules(t, hook, kind):
    rules = hook.get("rules", [])
    seen = set()
    ok = True
    for r in rules:
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                seen.add((g, res))
                ops = set(r.get("operations", []))
                ok &= "/" not in res and "*" not in res and g != "*"
                ok &= not ({"DELETE", "CONNECT", "*"} & ops)
                if (g, res) == ("", "pods"):
                    ok &= ops == {"CREATE"}
                else:
                    ok &= ops == {"CREATE", "UPDATE"}
                ok &= r.get("apiVersions") == ["v1"]
    check(f"{t}: {kind} rules: pods CREATE; workloads CREATE/UPDATE; no subresources, DELETE or wildcards", ok, str(rules))
    check(f"{t}: {kind} rules cover pods and every workload kind", seen == WORKLOAD_RULES | {("", "pods")}, str(seen))


def check_webhook_common(t, hook, kind, path):
    check(f"{t}: {kind} sideEffects None", hook.get("sideEffects") == "None")
    check(f"{t}: {kind} admissionReviewVersions [v1]", hook.get("admissionReviewVersions") == ["v1"])
    check(f"{t}: {kind} timeoutSeconds <= 5", 1 <= hook.get("timeoutSeconds", 10) <= 5)
    svc = hook.get("clientConfig", {}).get("service", {})
    check(
        f"{t}: {kind} calls service {NS}/{NAME}:443{path}",
        svc == {"name": NAME, "namespace": NS, "path": path, "port": 443} and "url" not in hook.get("clientConfig", {}),
        str(svc),
    )
    exprs = hook.get("namespaceSelector", {}).get("matchExpressions", [])
    check(
        f"{t}: {kind} namespaceSelector excludes kube-system and {NS}",
        any(
            e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn" and {"kube-system", NS} <= set(e.get("values", []))
            for e in exprs
        ),
    )
    conds = hook.get("matchConditions", [])
    check(f"{t}: {kind} has matchConditions", len(conds) > 0)
    text = " ".join(c.get("expression", "") for c in conds)
    for fieldpath in (
        "object.spec.runtimeClassName",
        "object.spec.template.spec.runtimeClassName",
        "object.spec.jobTemplate.spec.template.spec.runtimeClassName",
        "object.template.spec.runtimeClassName",
    ):
        check(f"{t}: {kind} matchConditions test {fieldpath}", f"has({fieldpath})" in text)
    check_rules(t, hook, kind)


def webhook_config(t, docs, kind):
    configs = find(docs, kind, NAME)
    if not check(f"{t}: one {kind} {NAME}", len(configs) == 1):
        return None
    return configs[0]


def check_mutating(t, docs, failure_policy):
    mwc = webhook_config(t, docs, "MutatingWebhookConfiguration")
    if mwc is None:
        return None
    hooks = mwc.get("webhooks", [])
    if not check(f"{t}: exactly one mutating webhook named {WEBHOOK}", len(hooks) == 1 and hooks[0].get("name") == WEBHOOK):
        return mwc
    hook = hooks[0]
    check(f"{t}: mutating failurePolicy {failure_policy}", hook.get("failurePolicy") == failure_policy, str(hook.get("failurePolicy")))
    check(f"{t}: mutating reinvocationPolicy IfNeeded", hook.get("reinvocationPolicy") == "IfNeeded")
    check_webhook_common(t, hook, "mutating", "/mutate")
    return mwc


def check_validating(t, docs, failure_policy, mwc):
    vwc = webhook_config(t, docs, "ValidatingWebhookConfiguration")
    if vwc is None:
        return None
    hooks = vwc.get("webhooks", [])
    if not check(f"{t}: exactly one validating webhook", len(hooks) == 1):
        return vwc
    hook = hooks[0]
    check(f"{t}: validating failurePolicy {failure_policy}", hook.get("failurePolicy") == failure_policy)
    check_webhook_common(t, hook, "validating", "/validate")
    if mwc:
        m = mwc["webhooks"][0]
        check(f"{t}: validating matchConditions identical to mutating", hook.get("matchConditions") == m.get("matchConditions"))
        check(f"{t}: validating rules identical to mutating", hook.get("rules") == m.get("rules"))
        check(f"{t}: validating namespaceSelector identical to mutating", hook.get("namespaceSelector") == m.get("namespaceSelector"))
    return vwc


def check_namespaces(t, docs, features):
    cluster_scoped = {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    bad = []
    for d in docs:
        ns = d["metadata"].get("namespace")
        kind = d["kind"]
        if kind in ("ServiceAccount", "DaemonSet") and d["metadata"]["name"] == AGENT:
            if ns != AGENT_NS:
                bad.append(f"{kind}/{AGENT} in {ns}")
        elif kind in cluster_scoped:
            if ns:
                bad.append(f"{kind}/{d['metadata']['name']} has a namespace")
        elif kind in ("Role", "RoleBinding"):
            if ns != "kube-system":
                bad.append(f"{kind} in {ns}")
        elif ns != NS:
            bad.append(f"{kind}/{d['metadata']['name']} in {ns}")
    check(f"{t}: every object in {NS} (Role/RoleBinding in kube-system, the agent in {AGENT_NS})", not bad, "; ".join(bad))
    if "no-namespace" in features:
        check(f"{t}: no Namespace object but the agent's", not [d for d in find(docs, "Namespace") if d["metadata"]["name"] != AGENT_NS])
        return
    check(f"{t}: Namespace {NS} enforces the restricted Pod Security Standard", (one(docs, "Namespace", NS) or {}).get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted")


def check_cert_manager(t, docs, configs):
    for cfg in configs:
        if cfg is None:
            continue
        ann = cfg["metadata"].get("annotations", {})
        check(f"{t}: {cfg['kind']} annotated {ANNOTATION[0]}: {ANNOTATION[1]}", ann.get(ANNOTATION[0]) == ANNOTATION[1])
        check(
            f"{t}: {cfg['kind']} has no caBundle placeholder for apply to wipe",
            all("caBundle" not in w.get("clientConfig", {}) for w in cfg["webhooks"]),
        )
    cert = one(docs, "Certificate", NAME, NS)
    if check(f"{t}: serving Certificate {NS}/{NAME}", cert is not None):
        spec = cert["spec"]
        check(f"{t}: Certificate writes Secret {TLS_SECRET}", spec.get("secretName") == TLS_SECRET)
        check(f"{t}: Certificate has the Service DNS names", set(SVC_DNS) <= set(spec.get("dnsNames", [])))
        check(f"{t}: Certificate rotates its key", spec.get("privateKey", {}).get("rotationPolicy") == "Always")
        issuer = spec.get("issuerRef", {})
        ca_issuer = one(docs, "Issuer", issuer.get("name"), NS)
        ok = issuer.get("kind", "Issuer") == "Issuer" and ca_issuer is not None and "ca" in ca_issuer["spec"]
        check(f"{t}: serving Certificate issued by a CA Issuer", ok)
        if ok:
            ca_cert = [c for c in find(docs, "Certificate", namespace=NS) if c["spec"].get("secretName") == ca_issuer["spec"]["ca"]["secretName"]]
            ok = len(ca_cert) == 1 and ca_cert[0]["spec"].get("isCA") is True
            check(f"{t}: the CA Issuer's Secret comes from a CA Certificate", ok)
            if ok:
                root = one(docs, "Issuer", ca_cert[0]["spec"]["issuerRef"]["name"], NS)
                check(f"{t}: the CA Certificate is self-signed", root is not None and "selfSigned" in root["spec"])


def check_self_signed(t, docs, configs, ca_bundle_file):
    secret = one(docs, "Secret", TLS_SECRET, NS)
    if not check(f"{t}: generated Secret {NS}/{TLS_SECRET} (fixed name, no hash suffix)", secret is not None):
        return
    check(f"{t}: Secret type kubernetes.io/tls", secret.get("type") == "kubernetes.io/tls")
    data = secret.get("data", {})
    check(f"{t}: Secret holds tls.crt, tls.key, ca.crt", {"tls.crt", "tls.key", "ca.crt"} <= set(data))
    ca_pem = base64.b64decode(data.get("ca.crt", ""))
    check(f"{t}: ca.crt is a PEM certificate", ca_pem.startswith(b"-----BEGIN CERTIFICATE-----"))
    for cfg in configs:
        if cfg is None:
            continue
        for w in cfg["webhooks"]:
            bundle = base64.b64decode(w.get("clientConfig", {}).get("caBundle", "") or "")
            check(f"{t}: {cfg['kind']} {w['name']} caBundle is the generated CA", bundle == ca_pem)
    if ca_bundle_file:
        with open(ca_bundle_file, encoding="utf-8") as f:
            printed = base64.b64decode("".join(f.read().split()))
        check(f"{t}: caBundle equals the one `certs` printed", printed == ca_pem)


def check_monitoring(t, docs):
    sm = one(docs, "ServiceMonitor", NAME, NS)
    svc = one(docs, "Service", NAME, NS)
    if not check(f"{t}: ServiceMonitor {NS}/{NAME}", sm is not None):
        return
    check(f"{t}: ServiceMonitor apiVersion monitoring.coreos.com/v1", sm.get("apiVersion") == "monitoring.coreos.com/v1")
    endpoints = sm["spec"].get("endpoints", [])
    check(f"{t}: ServiceMonitor scrapes port metrics at /metrics", any(e.get("port") == "metrics" and e.get("path", "/metrics") == "/metrics" for e in endpoints))
    check(
        f"{t}: ServiceMonitor selects the Service",
        svc is not None and selector_matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})),
    )


def check_agent(t, docs, dep):
    ns = one(docs, "Namespace", AGENT_NS)
    if check(f"{t}: Namespace {AGENT_NS}", ns is not None):
        level = ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
        check(f"{t}: {AGENT_NS} enforces the privileged Pod Security level (hostPath volumes)", level == "privileged", str(level))
    sa = one(docs, "ServiceAccount", AGENT, AGENT_NS)
    check(f"{t}: ServiceAccount {AGENT_NS}/{AGENT}", sa is not None)
    cr = one(docs, "ClusterRole", AGENT)
    check(
        f"{t}: agent ClusterRole grants get and patch on nodes, nothing else",
        cr is not None
        and len(cr.get("rules", [])) == 1
        and cr["rules"][0].get("apiGroups") == [""]
        and cr["rules"][0].get("resources") == ["nodes"]
        and sorted(cr["rules"][0].get("verbs", [])) == ["get", "patch"],
        str(cr and cr.get("rules")),
    )
    crb = one(docs, "ClusterRoleBinding", AGENT)
    check(
        f"{t}: agent ClusterRoleBinding binds only the agent's ServiceAccount",
        crb is not None and crb["roleRef"]["name"] == AGENT and crb.get("subjects") == [{"kind": "ServiceAccount", "name": AGENT, "namespace": AGENT_NS}],
    )
    vap = one(docs, "ValidatingAdmissionPolicy", AGENT_POLICY)
    if check(f"{t}: ValidatingAdmissionPolicy {AGENT_POLICY}", vap is not None):
        spec = vap["spec"]
        check(f"{t}: agent policy apiVersion admissionregistration.k8s.io/v1", vap["apiVersion"] == "admissionregistration.k8s.io/v1")
        check(f"{t}: agent policy failurePolicy Fail", spec.get("failurePolicy") == "Fail")
        rules = spec.get("matchConstraints", {}).get("resourceRules", [])
        check(f"{t}: agent policy matches nodes", any(r.get("resources") == ["nodes"] and "UPDATE" in r.get("operations", []) for r in rules))
        conds = " ".join(c.get("expression", "") for c in spec.get("matchConditions", []))
        check(f"{t}: agent policy applies to the {AGENT} ServiceAccount", f"':{AGENT}'" in conds, conds)
        text = " ".join(str(v.get("expression", "")) for v in spec.get("variables", []) + spec.get("validations", []))
        check(f"{t}: agent policy compares the token's node name", "authentication.kubernetes.io/node-name" in text and "object.metadata.name" in text)
        check(f"{t}: agent policy confines labels and annotations to sysbox-ro.dev/", "'sysbox-ro.dev/'" in text and "labels" in text and "annotations" in text)
    binding = one(docs, "ValidatingAdmissionPolicyBinding", AGENT_POLICY)
    check(
        f"{t}: ValidatingAdmissionPolicyBinding denies",
        binding is not None and binding["spec"].get("policyName") == AGENT_POLICY and binding["spec"].get("validationActions") == ["Deny"],
    )

    ds = one(docs, "DaemonSet", AGENT, AGENT_NS)
    if not check(f"{t}: DaemonSet {AGENT_NS}/{AGENT}", ds is not None):
        return
    pod = ds["spec"]["template"]["spec"]
    check(f"{t}: agent selector matches its pod labels", selector_matches(ds["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"]))
    check(f"{t}: agent uses its ServiceAccount with a token", pod.get("serviceAccountName") == AGENT and pod.get("automountServiceAccountToken") is True)
    check(f"{t}: agent runs on Sysbox nodes (nodeSelector sysbox-install=yes)", pod.get("nodeSelector", {}).get("sysbox-install") == "yes")
    tols = pod.get("tolerations", [])
    check(
        f"{t}: agent tolerates the installer's sysbox-runtime NoSchedule taint",
        any(x.get("effect") == "NoSchedule" and x.get("operator") == "Exists" and x.get("key") in ("sysbox-runtime", None) for x in tols),
    )
    check(f"{t}: agent uses no host namespaces", not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
    psc = pod.get("securityContext", {})
    check(f"{t}: agent pod seccomp RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    containers = pod.get("containers", [])
    if not check(f"{t}: agent has one container", len(containers) == 1):
        return
    c = containers[0]
    sc = c.get("securityContext", {})
    check(f"{t}: agent not privileged, no privilege escalation", sc.get("privileged") is False and sc.get("allowPrivilegeEscalation") is False)
    check(f"{t}: agent drops all capabilities and adds none", sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"))
    check(f"{t}: agent read-only root filesystem", sc.get("readOnlyRootFilesystem") is True)
    check(f"{t}: agent runs `agent`", c.get("args", [None])[0] == "agent")
    if dep:
        check(f"{t}: agent uses the webhook's image", c.get("image") == dep["spec"]["template"]["spec"]["containers"][0].get("image"), c.get("image"))
    node = env_value(c, "NODE_NAME")
    check(f"{t}: NODE_NAME from the downward API spec.nodeName", node is not None and node.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    check(f"{t}: every agent mount is read-only", mounts and all(m.get("readOnly") is True for m in mounts))
    paths = {v.get("hostPath", {}).get("path") for v in vols.values()}
    check(f"{t}: agent volumes are exactly the host folders it reads", all("hostPath" in v for v in vols.values()) and paths == AGENT_HOST_PATHS, str(paths))
    check(f"{t}: agent host folders never created on the host (type Directory)", all(v.get("hostPath", {}).get("type") == "Directory" for v in vols.values()))
    check(
        f"{t}: each host folder mounted at /host + its path",
        all(vols.get(m["name"], {}).get("hostPath", {}).get("path") and m["mountPath"] == "/host" + vols[m["name"]]["hostPath"]["path"] for m in mounts),
    )

    def probe_ok(probe, path):
        get = (probe or {}).get("httpGet", {})
        return get.get("path") == path and get.get("port") in ("admin", 8080)

    check(f"{t}: agent liveness /healthz and readiness /readyz", probe_ok(c.get("livenessProbe"), "/healthz") and probe_ok(c.get("readinessProbe"), "/readyz"))
    res = c.get("resources", {})
    check(f"{t}: agent cpu/memory requests and a memory limit", {"cpu", "memory"} <= set(res.get("requests", {})) and "memory" in res.get("limits", {}))


def check_rendered(name, path, ca_bundle_file):
    docs = load(path)
    t = name
    check(f"{t}: every document has apiVersion, kind and metadata.name", all(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name") for d in docs))
    check_rbac(t, docs)
    dep = check_deployment(t, docs)
    check_pdb_service(t, docs, dep)
    features = FEATURES[name]
    check_namespaces(t, docs, features)
    failure = "Ignore" if "ignore" in features else "Fail"
    mwc = check_mutating(t, docs, failure)
    vwc = None
    if "validating" in features:
        vwc = check_validating(t, docs, failure, mwc)
    else:
        check(f"{t}: no ValidatingWebhookConfiguration", not find(docs, "ValidatingWebhookConfiguration"))

    if "cert-manager" in features:
        check_cert_manager(t, docs, [mwc, vwc])
    else:
        check(f"{t}: no cert-manager objects", not [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")])
    if "self-signed" in features:
        check_self_signed(t, docs, [mwc, vwc], ca_bundle_file)
    else:
        check(f"{t}: no Secret rendered (TLS comes from cert-manager or the self-signed overlay)", not find(docs, "Secret"))
    if not features & {"cert-manager", "self-signed"}:
        for cfg in (mwc, vwc):
            if cfg:
                check(f"{t}: {cfg['kind']} has an empty caBundle placeholder", all(w.get("clientConfig", {}).get("caBundle") == "" for w in cfg["webhooks"]))
    if "agent" in features:
        check_agent(t, docs, dep)
    else:
        check(f"{t}: no node agent", not find(docs, "DaemonSet") and not find(docs, "ValidatingAdmissionPolicy"))
    if "monitoring" in features:
        check_monitoring(t, docs)
    else:
        check(f"{t}: no ServiceMonitor", not find(docs, "ServiceMonitor"))
    check_audit(t, docs, dep, "audit" in features)


AUDIT = NAME + "-audit"


def check_audit(t, docs, dep, enabled):
    """The audit on a timer: its interval on the webhook, and exactly the rights it needs."""
    containers = (dep or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    interval = env_value(containers[0], "SYSBOXRO_AUDIT_INTERVAL")
    cr = one(docs, "ClusterRole", AUDIT)
    crb = one(docs, "ClusterRoleBinding", AUDIT)
    if not enabled:
        check(f"{t}: no audit (no interval, no audit ClusterRole)", interval is None and cr is None and crb is None)
        return
    check(f"{t}: SYSBOXRO_AUDIT_INTERVAL set to at least 10 s", interval is not None and int(interval.get("value", "0")) >= 10, str(interval))
    want = {
        ("", "pods"): ["list"],
        ("apps", "replicasets"): ["get"],
        ("wgpolicyk8s.io", "policyreports"): ["create", "delete", "get", "list", "patch"],
        ("wgpolicyk8s.io", "clusterpolicyreports"): ["create", "delete", "get", "list", "patch"],
    }
    granted = {}
    for rule in (cr or {}).get("rules", []):
        for g in rule.get("apiGroups", []):
            for r in rule.get("resources", []):
                granted[(g, r)] = sorted(rule.get("verbs", []))
    check(f"{t}: audit ClusterRole grants exactly list pods, get replicasets, write (cluster)policyreports", granted == want, str(granted))
    check(
        f"{t}: audit ClusterRoleBinding binds only the webhook's ServiceAccount",
        crb is not None and crb["roleRef"]["name"] == AUDIT and [s["name"] for s in crb.get("subjects", [])] == [NAME],
    )


def check_examples(directory):
    import glob
    import os

    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    check("examples: YAML files present", bool(files))
    for path in files:
        base = os.path.basename(path)
        try:
            docs = load(path)
        except yaml.YAMLError as e:
            check(f"examples: {base} parses", False, str(e))
            continue
        check(f"examples: {base} parses", all(d.get("apiVersion") and d.get("kind") for d in docs))
        for d in docs:
            spec = None
            if d["kind"] == "Pod":
                spec = d["spec"]
            elif d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
                spec = d["spec"]["template"]["spec"]
            if spec is None:
                continue
            check(f"examples: {base} runs on sysbox-runc", spec.get("runtimeClassName") == "sysbox-runc")
            check(f"examples: {base} has hostUsers: false", spec.get("hostUsers") is False)
            check(
                f"examples: {base} has a read-only root filesystem and no privileged container",
                all(c.get("securityContext", {}).get("readOnlyRootFilesystem") is True and not c.get("securityContext", {}).get("privileged") for c in spec["containers"]),
            )
            check(f"examples: {base} uses no host namespaces", not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
            if d["kind"] != "Pod":
                check(f"examples: {base} selector matches its template", selector_matches(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]))
        for d in docs:
            labels = d.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) if d["kind"] == "NodePool" else {}
            labels = labels or {}
            for group in d.get("managedNodeGroups", []) or []:
                labels = group.get("labels", {})
            if d["kind"] in ("NodePool", "ClusterConfig"):
                check(f"examples: {base} sets the node label as a string", labels.get("sysbox-ro.dev/relaxed-read-only") in ("true", "false"))
            if d["kind"] == "Namespace":
                mode = d["metadata"].get("labels", {}).get("sysbox-ro.dev/mode")
                check(f"examples: {base} uses a valid mode", mode in ("enforce", "warn", "audit", "off"))


def main(argv):
    ca_bundle_file = None
    examples = None
    rendered = []
    args = iter(argv)
    for arg in args:
        if arg == "--ca-bundle":
            ca_bundle_file = next(args)
        elif arg == "--examples":
            examples = next(args)
        elif "=" in arg:
            rendered.append(arg.split("=", 1))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    for name, path in rendered:
        if name not in FEATURES:
            print(f"unknown rendering name {name}", file=sys.stderr)
            return 2
        check_rendered(name, path, ca_bundle_file if "self-signed" in FEATURES[name] else None)
    if examples:
        check_examples(examples)
    print(f"assertions: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
