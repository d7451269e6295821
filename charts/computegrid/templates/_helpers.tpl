{{- define "computegrid.name" -}}computegrid{{- end -}}
{{- define "computegrid.labels" -}}
app.kubernetes.io/name: computegrid
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "computegrid.selector" -}}
app.kubernetes.io/name: computegrid
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "computegrid.policyConfigMap" -}}{{ .Release.Name }}-policy{{- end -}}

{{- /* "true" when the ServiceMonitor is rendered: asked for ("always"), or "auto" and the
cluster serves the prometheus-operator's API; never without the metrics Service. */}}
{{- define "computegrid.serviceMonitor" -}}
{{- $sm := .Values.metrics.serviceMonitor -}}
{{- $served := .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" -}}
{{- if and .Values.metrics.service.enabled (or (eq $sm.create "always") (and (eq $sm.create "auto") $served)) -}}
true
{{- end -}}
{{- end -}}
