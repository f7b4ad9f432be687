{{/* Names: the usual Helm conventions, so that two releases never collide on cluster-scoped objects. */}}
{{- define "keyturn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyturn.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keyturn.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "keyturn.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyturn
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keyturn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyturn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keyturn.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keyturn.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Leader election: "true" or empty. Off with leaderElection.enabled: false, or with the value of
charts before 0.2, peering.enabled: false (kept so that `helm upgrade --reuse-values` still works).
*/}}
{{- define "keyturn.leaderElection" -}}
{{- $peering := .Values.peering | default dict }}
{{- $legacyOff := and (hasKey $peering "enabled") (not $peering.enabled) }}
{{- if and .Values.leaderElection.enabled (not $legacyOff) }}true{{ end }}
{{- end }}

{{/* The Lease's name: leaderElection.leaseName, else the pre-0.2 peering.name, else the full name. */}}
{{- define "keyturn.leaseName" -}}
{{- $peering := .Values.peering | default dict }}
{{- .Values.leaderElection.leaseName | default $peering.name | default (include "keyturn.fullname" .) }}
{{- end }}

{{- define "keyturn.metricsServiceName" -}}
{{- printf "%s-metrics" (include "keyturn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyturn.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's permissions on namespaced resources: exactly what it calls, verb by verb
(docs/install.md explains each rule). Shared by the ClusterRole (cluster-wide mode) and by the Role
in each watched namespace (namespaced mode), so the two modes cannot drift apart.
*/}}
{{- define "keyturn.namespacedRules" -}}
# The watch delivers keysets; a pass reads one the watch has not delivered yet. Patch: only to remove
# the finalizer that versions up to 0.1 put on keysets, when such a keyset is deleted.
- apiGroups: [keyturn.dev]
  resources: [jwtkeysets]
  verbs: [get, list, watch, patch]
# Status is written as merge patches of the changed fields only.
- apiGroups: [keyturn.dev]
  resources: [jwtkeysets/status]
  verbs: [patch]
# Key Secrets and JWKS ConfigMaps: created, then replaced whole under resourceVersion. Never deleted
# (deletionPolicy Delete relies on ownerReferences and the garbage collector).
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get, list, watch, create, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Targets of every kind (annotated keyturn.dev/keyset): watched into an index (and listed again every
# 10 minutes), and rolled through a pod-template annotation. Never read one by one: no get.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list, watch, patch]
{{- end }}

{{/*
The cluster-scoped reads kopf itself makes in cluster-wide mode (observed: without them it retries
the list for about two minutes, logging 403s, before it starts handling keysets at all): it follows
CRDs to notice the JwtKeySet CRD being installed or upgraded while it runs. Namespaced mode needs
none: given exact namespaces, the operator turns kopf's scanning (of CRDs and Namespaces) off.
*/}}
{{- define "keyturn.scanningRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}

{{/* The JWKS server (`keyturn serve-jwks`): its own name label, so that no selector of the
operator's (Deployment, PodDisruptionBudget, Service, NetworkPolicy) ever matches its Pods. */}}
{{- define "keyturn.jwksServer.fullname" -}}
{{- printf "%s-jwks-server" (include "keyturn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyturn.jwksServer.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-jwks-server" (include "keyturn.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: jwks-server
{{- end }}

{{- define "keyturn.jwksServer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "keyturn.jwksServer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyturn
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keyturn.jwksServer.serviceAccountName" -}}
{{- if .Values.jwksServer.serviceAccount.create }}
{{- default (include "keyturn.jwksServer.fullname" .) .Values.jwksServer.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.jwksServer.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* All the JWKS server may do: read the ConfigMaps it serves. No Secrets, no JwtKeySets. */}}
{{- define "keyturn.jwksServer.rules" -}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
{{- end }}
