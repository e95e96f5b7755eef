{{/* Names and labels shared by every object of the chart. */}}

{{- define "sandlada.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sandlada.controlPlane" -}}{{ include "sandlada.fullname" . }}-controlplane{{- end -}}
{{- define "sandlada.operator" -}}{{ include "sandlada.fullname" . }}-operator{{- end -}}

{{- define "sandlada.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: sandlada
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sandlada
{{- end -}}

{{/* Selector labels of one component: "controlplane", "operator" or "migrations". */}}
{{- define "sandlada.selector" -}}
app.kubernetes.io/name: sandlada
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sandlada.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod-level security context that passes Pod Security "restricted". */}}
{{- define "sandlada.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sandlada.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment of the control plane and its migration Job (controlplane/settings.py). */}}
{{- define "sandlada.controlPlaneEnv" -}}
- name: SANDLADA_ENVIRONMENT
  value: {{ .Values.environment | quote }}
- name: SANDLADA_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret: name the Secret holding the database URL" .Values.database.existingSecret | quote }}
      key: {{ .Values.database.secretKey | quote }}
- name: SANDLADA_OIDC_ISSUER
  value: {{ .Values.oidc.issuer | quote }}
- name: SANDLADA_OIDC_AUDIENCE
  value: {{ .Values.oidc.audience | quote }}
- name: SANDLADA_PLATFORM_ADMIN_ROLE
  value: {{ .Values.oidc.platformAdminRole | quote }}
- name: SANDLADA_KEYCLOAK_URL
  value: {{ .Values.keycloak.url | quote }}
- name: SANDLADA_KEYCLOAK_REALM
  value: {{ .Values.keycloak.realm | quote }}
- name: SANDLADA_KEYCLOAK_CLIENT_ID
  value: {{ .Values.keycloak.clientId | quote }}
- name: SANDLADA_KEYCLOAK_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "keycloak.existingSecret: name the Secret holding the Keycloak client secret" .Values.keycloak.existingSecret | quote }}
      key: {{ .Values.keycloak.secretKey | quote }}
- name: SANDLADA_PORTAL_CLIENT_ID
  value: {{ .Values.portal.clientId | quote }}
- name: SANDLADA_PORTAL_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "portal.existingSecret: name the Secret holding the portal's client and session secrets" .Values.portal.existingSecret | quote }}
      key: {{ .Values.portal.clientSecretKey | quote }}
- name: SANDLADA_PORTAL_SESSION_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.portal.existingSecret | quote }}
      key: {{ .Values.portal.sessionSecretKey | quote }}
{{- if .Values.operator.mlflow.url }}
{{- /* The operator runs tenants' MLflow workspaces: grant them egress to it. */}}
- name: SANDLADA_MLFLOW_ENABLED
  value: "true"
{{- end }}
{{- with .Values.portal.mlflowUrl }}
- name: SANDLADA_PORTAL_MLFLOW_URL
  value: {{ . | quote }}
{{- end }}
- name: SANDLADA_LOG_JSON
  value: "true"
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- range $name, $value := .Values.controlPlane.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
