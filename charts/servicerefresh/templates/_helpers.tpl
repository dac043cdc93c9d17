{{/* Chart name, truncated to the 63 characters a label value may have. */}}
{{- define "servicerefresh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, or release-chart when the release name
does not contain the chart name.
*/}}
{{- define "servicerefresh.fullname" -}}
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

{{- define "servicerefresh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "servicerefresh.labels" -}}
helm.sh/chart: {{ include "servicerefresh.chart" . }}
{{ include "servicerefresh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: servicerefresh
{{- end }}

{{/* Labels that select the operator's pods; never change them (Deployment selectors are immutable). */}}
{{- define "servicerefresh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "servicerefresh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "servicerefresh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "servicerefresh.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "servicerefresh.leaseName" -}}
{{- default (include "servicerefresh.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "servicerefresh.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Combinations of values that values.schema.json cannot express. Each fails rendering with a
message saying what to change.
*/}}
{{- define "servicerefresh.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a Lease every replica would restart Deployments and write status at once. Set leaderElection.enabled=true or replicaCount=1." }}
{{- end }}
{{- if and .Values.watchNamespace .Values.allowCrossNamespace }}
{{- fail (printf "allowCrossNamespace=true cannot be combined with watchNamespace=%s: the operator only sees that namespace. Unset watchNamespace for cluster-wide mode, or set allowCrossNamespace=false." .Values.watchNamespace) }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false needs serviceAccount.name: the existing ServiceAccount the operator runs as." }}
{{- end }}
{{- if .Values.admin.enabled }}
{{- if not .Values.admin.target }}
{{- fail "admin.enabled=true needs admin.target: the ServiceRefresh (NAMESPACE/NAME) that refreshAllServices runs, e.g. --set admin.target=arcgis/refresh-all." }}
{{- end }}
{{- if not .Values.admin.tls.secretName }}
{{- fail "admin.enabled=true needs admin.tls.secretName: a kubernetes.io/tls Secret in the release namespace for the HTTPS listener." }}
{{- end }}
{{- if and .Values.watchNamespace (ne (first (splitList "/" .Values.admin.target)) .Values.watchNamespace) }}
{{- fail (printf "admin.target=%s is outside watchNamespace=%s: the operator only sees ServiceRefreshes in that namespace." .Values.admin.target .Values.watchNamespace) }}
{{- end }}
{{- if and .Values.watchNamespace (not .Values.admin.authDelegator) }}
{{- fail (printf "admin.enabled=true with watchNamespace=%s needs admin.authDelegator=true: the admin API checks tokens with TokenReview and rights with SubjectAccessReview, which are cluster-scoped and cannot be granted by a Role. admin.authDelegator=true adds one ClusterRoleBinding to the built-in ClusterRole system:auth-delegator (see values.yaml)." .Values.watchNamespace) }}
{{- end }}
{{- end }}
{{- end }}
