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
