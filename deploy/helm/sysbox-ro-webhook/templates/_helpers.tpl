{{/*
Names, labels and the pieces the two webhook configurations share.
*/}}

{{- define "sysbox-ro-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release name when it already contains the chart name (helm install sysbox-ro-webhook ...),
so the default install carries the same names as the kustomize tree. */}}
{{- define "sysbox-ro-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object: the kustomize tree's two plus Helm's usual ones. */}}
{{- define "sysbox-ro-webhook.labels" -}}
app.kubernetes.io/name: {{ include "sysbox-ro-webhook.name" . }}
app.kubernetes.io/part-of: sysbox-ro-webhook
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Selects the webhook's pods. Immutable on a Deployment: never add to it. */}}
{{- define "sysbox-ro-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sysbox-ro-webhook.name" . }}
app.kubernetes.io/component: admission-webhook
{{- end -}}

{{- define "sysbox-ro-webhook.tlsSecret" -}}
{{- include "sysbox-ro-webhook.fullname" . }}-tls
{{- end -}}

{{/* The namespaces neither the API server nor the webhook judges: the configured ones plus the
release namespace, without duplicates, in order. */}}
{{- define "sysbox-ro-webhook.exemptNamespaces" -}}
{{- $all := list -}}
{{- range (concat .Values.exemptNamespaces (list .Release.Namespace)) -}}
{{- if not (has . $all) -}}{{- $all = append $all . -}}{{- end -}}
{{- end -}}
{{- toJson $all -}}
{{- end -}}

{{- define "sysbox-ro-webhook.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Validation that a schema cannot express. Included by deployment.yaml. */}}
{{- define "sysbox-ro-webhook.validate" -}}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicas)) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below replicas (%d), or no node drain could ever evict a replica; for a single replica set podDisruptionBudget.enabled=false" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicas)) -}}
{{- end -}}
{{- if ge (add (int .Values.shutdownDelaySeconds) (int .Values.shutdownGraceSeconds)) (int .Values.terminationGracePeriodSeconds) -}}
{{- fail (printf "shutdownDelaySeconds + shutdownGraceSeconds (%d + %d) must be below terminationGracePeriodSeconds (%d), or the kubelet kills the webhook while it drains" (int .Values.shutdownDelaySeconds) (int .Values.shutdownGraceSeconds) (int .Values.terminationGracePeriodSeconds)) -}}
{{- end -}}
{{- if and .Values.agent.enabled .Values.agent.namespace.create (eq .Values.agent.namespace.name .Release.Namespace) -}}
{{- fail (printf "agent.namespace.name is the release namespace %s: the agent's hostPath volumes need a namespace of their own that allows them (the webhook's enforces the restricted Pod Security level); choose another name, or set agent.namespace.create=false if you labelled this one privileged yourself" .Release.Namespace) -}}
{{- end -}}
{{- if eq .Values.certificates.source "self-signed" -}}
{{- $s := .Values.certificates.selfSigned -}}
{{- if not (hasPrefix "-----BEGIN CERTIFICATE-----" (trim $s.caCert)) -}}
{{- fail "certificates.source=self-signed needs certificates.selfSigned.caCert, the PEM CA certificate: make the files with `sysbox-ro-webhook certs --service <fullname> --namespace <namespace> --out DIR` and pass --set-file certificates.selfSigned.caCert=DIR/ca.crt (see the chart README)" -}}
{{- end -}}
{{- if ne (empty $s.tlsCert) (empty $s.tlsKey) -}}
{{- fail "certificates.selfSigned: set both tlsCert and tlsKey (the chart then creates the Secret), or neither (you create the Secret yourself)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The part of a webhook both configurations share: what is sent, from where, to which path.
Argument: a dict with "ctx" (the root context) and "path". */}}
{{- define "sysbox-ro-webhook.webhookCommon" -}}
{{- $ctx := .ctx -}}
admissionReviewVersions: ["v1"]
sideEffects: None
timeoutSeconds: {{ $ctx.Values.webhook.timeoutSeconds }}
failurePolicy: {{ $ctx.Values.webhook.failurePolicy }}
{{- if eq .path "/mutate" }}
reinvocationPolicy: IfNeeded
{{- end }}
matchPolicy: Equivalent
clientConfig:
  service:
    name: {{ include "sysbox-ro-webhook.fullname" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if eq $ctx.Values.certificates.source "self-signed" }}
  caBundle: {{ $ctx.Values.certificates.selfSigned.caCert | trim | printf "%s\n" | b64enc }}
  {{- end }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "sysbox-ro-webhook.exemptNamespaces" $ctx }}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["podtemplates"]
    scope: Namespaced
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
# Only objects whose pod spec or pod template names a runtimeClassName are sent (and, on UPDATE,
# only when the template changed); every field access is guarded by has(), so no condition can
# end in an error. deploy/base/mutatingwebhook.yaml explains each one; tests/deploy/check.sh
# fails if the chart and the kustomize tree drift apart.
matchConditions:
  - name: pod-has-runtimeclass
    expression: >-
      request.resource.resource != 'pods' ||
      (has(object.spec) && has(object.spec.runtimeClassName))
  - name: workload-template-has-runtimeclass
    expression: >-
      !(request.resource.resource in
      ['deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs']) ||
      (has(object.spec) && has(object.spec.template) &&
      has(object.spec.template.spec) &&
      has(object.spec.template.spec.runtimeClassName))
  - name: cronjob-template-has-runtimeclass
    expression: >-
      request.resource.resource != 'cronjobs' ||
      (has(object.spec) && has(object.spec.jobTemplate) &&
      has(object.spec.jobTemplate.spec) &&
      has(object.spec.jobTemplate.spec.template) &&
      has(object.spec.jobTemplate.spec.template.spec) &&
      has(object.spec.jobTemplate.spec.template.spec.runtimeClassName))
  - name: podtemplate-has-runtimeclass
    expression: >-
      request.resource.resource != 'podtemplates' ||
      (has(object.template) && has(object.template.spec) &&
      has(object.template.spec.runtimeClassName))
  - name: update-changes-pod-template
    expression: >-
      request.operation != 'UPDATE' || oldObject == null ||
      (request.resource.resource == 'podtemplates' ?
        !(has(oldObject.template) && has(object.template) &&
          oldObject.template == object.template) :
      request.resource.resource == 'cronjobs' ?
        !(has(oldObject.spec) && has(object.spec) &&
          has(oldObject.spec.jobTemplate) && has(object.spec.jobTemplate) &&
          oldObject.spec.jobTemplate == object.spec.jobTemplate) :
        !(has(oldObject.spec) && has(object.spec) &&
          has(oldObject.spec.template) && has(object.spec.template) &&
          oldObject.spec.template == object.spec.template))
{{- end -}}

{{/* Metadata of a webhook configuration: the CA injector's annotation with cert-manager. */}}
{{- define "sysbox-ro-webhook.webhookMetadata" -}}
name: {{ include "sysbox-ro-webhook.fullname" . }}
labels:
  {{- include "sysbox-ro-webhook.labels" . | nindent 2 }}
{{- if eq .Values.certificates.source "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "sysbox-ro-webhook.fullname" . }}
{{- end }}
{{- end -}}

{{/* The node agent's name: the kustomize tree's sysbox-ro-agent for the default release, and
"sysbox-ro-webhook" replaced by "sysbox-ro-agent" in the full name otherwise. The
ValidatingAdmissionPolicy recognises the agent by this ServiceAccount name. */}}
{{- define "sysbox-ro-webhook.agentFullname" -}}
{{- $full := include "sysbox-ro-webhook.fullname" . -}}
{{- if hasSuffix "sysbox-ro-webhook" $full -}}
{{- printf "%ssysbox-ro-agent" (trimSuffix "sysbox-ro-webhook" $full) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-agent" $full | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sysbox-ro-webhook.agentLabels" -}}
app.kubernetes.io/name: sysbox-ro-agent
app.kubernetes.io/part-of: sysbox-ro-webhook
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "sysbox-ro-webhook.agentSelectorLabels" -}}
app.kubernetes.io/name: sysbox-ro-agent
app.kubernetes.io/component: node-agent
{{- end -}}
