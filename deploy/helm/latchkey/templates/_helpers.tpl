{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "latchkey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: RELEASE-NAME, or RELEASE when it already contains the chart name.
Truncated to 57 characters so that "-admin" still fits in 63.
*/}}
{{- define "latchkey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the admin Service. */}}
{{- define "latchkey.adminName" -}}
{{- printf "%s-admin" (include "latchkey.fullname" .) }}
{{- end }}

{{/* Name of the migration Job. */}}
{{- define "latchkey.migrateName" -}}
{{- printf "%s-migrate" (include "latchkey.fullname" .) }}
{{- end }}

{{/* chart label value: NAME-VERSION. */}}
{{- define "latchkey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "latchkey.labels" -}}
helm.sh/chart: {{ include "latchkey.chart" . }}
{{ include "latchkey.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the server pods. The component label keeps the migration
Job's pod out of the Services, the PDB and the topology spread.
*/}}
{{- define "latchkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latchkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels of the migration Job and its pod (not matched by the selector). */}}
{{- define "latchkey.migrateLabels" -}}
helm.sh/chart: {{ include "latchkey.chart" . }}
app.kubernetes.io/name: {{ include "latchkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migrate
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* ServiceAccount of the server pods. */}}
{{- define "latchkey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "latchkey.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: repository@digest, or repository:tag. */}}
{{- define "latchkey.image" -}}
{{- if not .Values.image.repository }}
{{- fail "image.repository is required" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Whole seconds of a duration written as "Ns", "Nm" or "Nh"; "" otherwise.
*/}}
{{- define "latchkey.durationSeconds" -}}
{{- $d := toString . }}
{{- if regexMatch "^[0-9]+s$" $d }}
{{- trimSuffix "s" $d | atoi }}
{{- else if regexMatch "^[0-9]+m$" $d }}
{{- mul (trimSuffix "m" $d | atoi) 60 }}
{{- else if regexMatch "^[0-9]+h$" $d }}
{{- mul (trimSuffix "h" $d | atoi) 3600 }}
{{- end }}
{{- end }}

{{/*
Checks the values that would make an unsafe or broken release. Included by
the Deployment, so every render runs it.
*/}}
{{- define "latchkey.validate" -}}
{{- if not .Values.issuer }}
{{- fail "issuer is required (LATCHKEY_ISSUER, e.g. https://auth.example.com)" }}
{{- end }}
{{- $reserved := list "LATCHKEY_ISSUER" "LATCHKEY_HTTP_ADDR" "LATCHKEY_ADMIN_ADDR" "LATCHKEY_MIGRATE" "LATCHKEY_DATA_DIR" "LATCHKEY_SHUTDOWN_TIMEOUT" }}
{{- $fromSecrets := list "LATCHKEY_SECRET" "LATCHKEY_PREVIOUS_SECRETS" "LATCHKEY_DATABASE_URL" "LATCHKEY_SMTP_URL" "LATCHKEY_GOOGLE_CLIENT_ID" "LATCHKEY_GOOGLE_CLIENT_SECRET" "LATCHKEY_METRICS_TOKEN" }}
{{- range $k, $v := .Values.config }}
{{- if has $k $fromSecrets }}
{{- fail (printf "config.%s: secrets never go in values; the chart reads %s from a Kubernetes Secret (see `secrets`)" $k $k) }}
{{- end }}
{{- if has $k $reserved }}
{{- fail (printf "config.%s is set by the chart; use the dedicated value (issuer, containerPorts, shutdownTimeout...)" $k) }}
{{- end }}
{{- if not (hasPrefix "LATCHKEY_" $k) }}
{{- fail (printf "config.%s: only LATCHKEY_* settings go in config (use extraEnv for others)" $k) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if has .name $fromSecrets }}
{{- fail (printf "extraEnv %s: secrets never go in values; the chart reads %s from a Kubernetes Secret (see `secrets`)" .name .name) }}
{{- end }}
{{- if or (has .name $reserved) (hasKey $.Values.config .name) }}
{{- fail (printf "extraEnv %s is already set by the chart or by config" .name) }}
{{- end }}
{{- end }}
{{- if eq (int .Values.containerPorts.http) (int .Values.containerPorts.admin) }}
{{- fail "containerPorts.http and containerPorts.admin must differ" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (empty .Values.networkPolicy.adminFrom) }}
{{- fail "networkPolicy.adminFrom must not be empty: the admin port would be open to every source" }}
{{- end }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- $shutdown := include "latchkey.durationSeconds" .Values.shutdownTimeout }}
{{- if and $shutdown (le $grace (int $shutdown)) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed shutdownTimeout (%s)" $grace .Values.shutdownTimeout) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/*
Secret-backed environment: every entry a secretKeyRef, never a value. The
list is [variable, key under .Values.secrets, required].
*/}}
{{- define "latchkey.secretEnv" -}}
{{- $root := . }}
{{- $refs := list
  (list "LATCHKEY_SECRET" "secret" true)
  (list "LATCHKEY_PREVIOUS_SECRETS" "previousSecrets" false)
  (list "LATCHKEY_DATABASE_URL" "databaseURL" true)
  (list "LATCHKEY_SMTP_URL" "smtpURL" false)
  (list "LATCHKEY_GOOGLE_CLIENT_ID" "googleClientID" false)
  (list "LATCHKEY_GOOGLE_CLIENT_SECRET" "googleClientSecret" false)
  (list "LATCHKEY_METRICS_TOKEN" "metricsToken" false) }}
{{- range $refs }}
{{- $env := index . 0 }}
{{- $field := index . 1 }}
{{- $required := index . 2 }}
{{- $ref := index $root.Values.secrets $field | default dict }}
{{- $name := $ref.name | default $root.Values.secrets.existingSecret | default (include "latchkey.fullname" $root) }}
{{- if $ref.key }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $name | quote }}
      key: {{ $ref.key | quote }}
      {{- if not $required }}
      optional: true
      {{- end }}
{{- else if $required }}
{{- fail (printf "secrets.%s.key is required (%s)" $field $env) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment shared by the server and the migration Job: the chart's own
settings, `config`, the Secret references and `extraEnv`.
*/}}
{{- define "latchkey.env" -}}
- name: LATCHKEY_ISSUER
  value: {{ .Values.issuer | quote }}
- name: LATCHKEY_HTTP_ADDR
  value: {{ printf ":%d" (int .Values.containerPorts.http) | quote }}
# Inside the pod only; the NetworkPolicy and the ClusterIP Service keep it
# in the cluster.
- name: LATCHKEY_ADMIN_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.containerPorts.admin) | quote }}
- name: LATCHKEY_DATA_DIR
  value: /data
- name: LATCHKEY_SHUTDOWN_TIMEOUT
  value: {{ .Values.shutdownTimeout | quote }}
{{- range $k, $v := .Values.config }}
{{- if ne (toString $v) "" }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}
{{- include "latchkey.secretEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
