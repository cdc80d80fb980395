#!/usr/bin/env python3
"""The Helm chart and the kustomize tree render the same objects for the same settings.

Usage: compare_helm_kustomize.py CASE KUSTOMIZE.yaml HELM.yaml

Both files are renderings of one setting (tests/deploy/helm-cases/CASE). Every object is
matched by apiVersion, kind, namespace and name, and must be equal after this normalisation,
which is all that is allowed to differ:

  - Helm's standard labels (helm.sh/chart, app.kubernetes.io/instance, app.kubernetes.io/version,
    app.kubernetes.io/managed-by) are removed from metadata.labels, a pod template's labels and a
    cert-manager Certificate's secretTemplate.labels. Selectors are not touched: a selector that
    differs is a real difference (and an immutable one on a Deployment).
  - In CEL (any `expression` or `messageExpression` field), a run of line breaks counts as one.
    The kustomize tree writes CEL as folded scalars with more-indented lines; kustomize's YAML
    library (go-yaml v3) reads the break before such a line as two, where the YAML spec,
    sigs.k8s.io/yaml (what Helm and `kubectl apply -f` use) and PyYAML read one. CEL ignores the
    difference.
  - Base64 fields (a Secret's data, a webhook's caBundle) are compared as the bytes they decode
    to: kustomize wraps long base64 over several lines, which the API server decodes the same.
  - The Namespace object may be missing from the chart's rendering: the chart leaves the release
    namespace to `helm install --create-namespace` unless namespace.create is true.

Everything else counts: field order inside lists (env, rules, matchConditions), values, comments
aside. Prints one line per object and, last, "compare: N passed, N failed"; exits 1 on a failure.
"""

import base64
import difflib
import re
import sys

import yaml

import assert_rendered
from assert_rendered import check, load

HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
}

def strip_helm_labels(mapping):
    labels = (mapping or {}).get("labels")
    if isinstance(labels, dict):
        for key in HELM_LABELS:
            labels.pop(key, None)


def decode(value):
    return base64.b64decode("".join(value.split()), validate=True)


def collapse_cel(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expression", "messageExpression") and isinstance(v, str):
                node[k] = re.sub(r"\n\n+", "\n", v)
            else:
                collapse_cel(v)
    elif isinstance(node, list):
        for v in node:
            collapse_cel(v)


def normalise(doc):
    strip_helm_labels(doc.get("metadata"))
    if doc.get("kind") == "Secret":
        doc["data"] = {k: decode(v) for k, v in (doc.get("data") or {}).items()}
    for hook in doc.get("webhooks") or []:
        config = hook.get("clientConfig") or {}
        if config.get("caBundle"):
            config["caBundle"] = decode(config["caBundle"])
    spec = doc.get("spec") or {}
    strip_helm_labels((spec.get("template") or {}).get("metadata"))
    collapse_cel(doc)
    if doc.get("kind") == "Certificate":
        strip_helm_labels(spec.get("secretTemplate"))
    return doc


def key(doc):
    meta = doc.get("metadata", {})
    return (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace", ""), meta.get("name"))


def show(k):
    api, kind, ns, name = k
    return f"{kind} {ns + '/' if ns else ''}{name} ({api})"


def dump(doc):
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).splitlines()


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    case, kustomize_path, helm_path = argv
    kust = {key(d): normalise(d) for d in load(kustomize_path)}
    helm = {key(d): normalise(d) for d in load(helm_path)}
    check(f"{case}: the chart rendered objects", bool(helm))
    for k in sorted(set(kust) | set(helm), key=lambda k: (k[1], k[2], k[3], k[0])):
        label = f"{case}: {show(k)}"
        if k not in helm:
            if k[1] == "Namespace":
                continue  # left to --create-namespace; see the docstring
            check(label, False, "rendered by kustomize only")
        elif k not in kust:
            check(label, False, "rendered by the chart only")
        elif kust[k] == helm[k]:
            check(f"{label} identical", True)
        else:
            diff = difflib.unified_diff(dump(kust[k]), dump(helm[k]), "kustomize", "helm", lineterm="", n=2)
            check(f"{label} identical", False, "\n" + "\n".join(diff))
    print(f"compare: {assert_rendered.passed} passed, {assert_rendered.failed} failed")
    return 1 if assert_rendered.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
