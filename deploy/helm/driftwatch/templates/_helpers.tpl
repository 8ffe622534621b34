{{/* The release's full name, at most 63 characters. */}}
{{- define "driftwatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "driftwatch.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "driftwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "driftwatch.serviceAccountName" -}}
{{- default (include "driftwatch.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag. */}}
{{- define "driftwatch.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The chosen runtime's paths (runtime.runtimes[runtime.type]) as JSON: use with fromJson. */}}
{{- define "driftwatch.runtime" -}}
{{- $r := get .Values.runtime.runtimes .Values.runtime.type -}}
{{- if not $r -}}
{{- fail (printf "runtime.type %q is not one of runtime.runtimes: %s" .Values.runtime.type (keys .Values.runtime.runtimes | sortAlpha | join ", ")) -}}
{{- end -}}
{{- range $k := list "api" "socket" "runDir" "contentDir" -}}
{{- if not (get $r $k) -}}
{{- fail (printf "runtime.runtimes.%s.%s is required" $.Values.runtime.type $k) -}}
{{- end -}}
{{- end -}}
{{- if not (has $r.api (list "containerd" "cri-o")) -}}
{{- fail (printf "runtime.runtimes.%s.api %q is not containerd or cri-o" .Values.runtime.type $r.api) -}}
{{- end -}}
{{- toJson $r -}}
{{- end -}}

{{/* A customRules name must be a plain file name the rules directory loads. */}}
{{- define "driftwatch.checkRuleNames" -}}
{{- range $name, $_ := .Values.customRules -}}
{{- if not (regexMatch "^[A-Za-z0-9][-._A-Za-z0-9]*\\.ya?ml$" $name) -}}
{{- fail (printf "customRules: %q is not a file name ending in .yaml or .yml (letters, digits, - . _)" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
