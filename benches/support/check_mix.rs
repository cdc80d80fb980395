//! The `check` benchmark input: a Helm-style mix of ten documents repeated,
//! shared by `benches/check_throughput.rs` (in memory) and
//! `examples/gen_cluster.rs check-mix` (written to a file, for the release
//! binary and for `benches/conftest.sh`). Deterministic: the same count gives
//! the same bytes.
//!
//! Of every ten documents, five are read-only Sysbox workloads that `check`
//! judges (a Deployment, two Pods, a StatefulSet, a CronJob), two are
//! workloads it skips (a Pod without a RuntimeClass, a Job without a read-only
//! container) and three are kinds it does not judge (Service, ConfigMap,
//! ServiceAccount).
#![allow(dead_code)]

/// Documents in one [`block`].
pub const BLOCK_DOCUMENTS: usize = 10;

/// Ten documents as a Helm chart renders them: workloads that are judged
/// (allowed, warned, denied, patched) and kinds that are skipped.
pub fn block(i: usize) -> String {
    format!(
        r#"---
# Source: ci-stack/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: runner-{i}
  namespace: ci
  labels: {{app.kubernetes.io/name: runner, app.kubernetes.io/instance: r{i}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app.kubernetes.io/instance: r{i}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/instance: r{i}}}
    spec:
      runtimeClassName: sysbox-runc
      hostUsers: false
      containers:
        - name: runner
          image: gitlab/gitlab-runner:v17.5.0
          env: [{{name: RUNNER_NAME, value: runner-{i}}}]
          securityContext: {{readOnlyRootFilesystem: true}}
        - name: dind
          image: docker:27-dind
          securityContext: {{readOnlyRootFilesystem: true}}
---
apiVersion: v1
kind: Service
metadata: {{name: runner-{i}, namespace: ci}}
spec:
  selector: {{app.kubernetes.io/instance: r{i}}}
  ports: [{{port: 2375, targetPort: 2375}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: runner-{i}-config, namespace: ci}}
data:
  config.toml: |
    concurrent = 4
    [[runners]]
      name = "runner-{i}"
---
apiVersion: v1
kind: Pod
metadata:
  name: dind-{i}
  namespace: default
spec:
  runtimeClassName: sysbox-runc
  hostUsers: false
  nodeSelector: {{cloud.google.com/gke-nodepool: ci-relaxed}}
  containers:
    - name: dind
      image: docker:27-dind
      securityContext: {{readOnlyRootFilesystem: true}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-{i}
  namespace: default
spec:
  containers: [{{name: nginx, image: "nginx:1.27"}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: buildkitd-{i}, namespace: build}}
spec:
  serviceName: buildkitd
  selector: {{matchLabels: {{app: buildkitd}}}}
  template:
    metadata: {{labels: {{app: buildkitd}}}}
    spec:
      runtimeClassName: sysbox-runc
      hostUsers: false
      nodeSelector: {{pool-role: strict}}
      containers: [{{name: buildkitd, image: "moby/buildkit:v0.17.0", securityContext: {{readOnlyRootFilesystem: true}}}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly-{i}, namespace: ci}}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          runtimeClassName: sysbox-runc
          containers: [{{name: build, image: "docker:27-dind", securityContext: {{readOnlyRootFilesystem: true}}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: runner-{i}, namespace: ci}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate-{i}, namespace: payments}}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{{name: migrate, image: "example/migrate:2"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: anywhere-{i}, namespace: sandbox}}
spec:
  runtimeClassName: sysbox-runc
  hostUsers: false
  containers: [{{name: dind, image: "docker:27-dind", securityContext: {{readOnlyRootFilesystem: true}}}}]
"#
    )
}

/// `documents` documents (a multiple of [`BLOCK_DOCUMENTS`]) as one YAML stream.
pub fn stream(documents: usize) -> String {
    (0..documents / BLOCK_DOCUMENTS).map(block).collect()
}
