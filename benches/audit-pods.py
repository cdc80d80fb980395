#!/usr/bin/env python3
"""Writes N Running read-only Sysbox pods as one `kubectl get pods -o yaml` List, for
measuring `sysbox-ro-webhook audit --cluster-state` against examples/cluster-state.yaml:
even pods on gke-ci-strict-1 (no flag: at risk), odd ones on gke-ci-relaxed-1, 40 namespaces,
400 ReplicaSets (none in the file, so each is named as a ReplicaSet: 200 groups at risk).

    benches/audit-pods.py 50000 > /tmp/pods-50k.yaml
    /usr/bin/time -v target/debug/sysbox-ro-webhook audit -o json \\
      --cluster-state examples/cluster-state.yaml,/tmp/pods-50k.yaml >/dev/null
"""
import sys


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    out = sys.stdout
    out.write("apiVersion: v1\nkind: List\nitems:\n")
    for i in range(n):
        node = "gke-ci-strict-1" if i % 2 == 0 else "gke-ci-relaxed-1"
        out.write(
            f"""- apiVersion: v1
  kind: Pod
  metadata:
    name: runner-{i}
    namespace: team-{i % 40}
    labels: {{app: runner, team: t{i % 40}}}
    ownerReferences:
    - {{apiVersion: apps/v1, kind: ReplicaSet, name: runner-{i % 400}, uid: u{i % 400}, controller: true}}
  spec:
    nodeName: {node}
    runtimeClassName: sysbox-runc
    hostUsers: false
    containers:
    - name: dind
      image: docker:27-dind
      env: [{{name: DOCKER_TLS_CERTDIR, value: ""}}]
      securityContext: {{readOnlyRootFilesystem: true}}
      resources: {{requests: {{cpu: 100m, memory: 256Mi}}}}
  status: {{phase: Running}}
"""
        )


if __name__ == "__main__":
    main()
