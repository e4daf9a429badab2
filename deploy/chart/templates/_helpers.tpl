{{/* Names, labels and the checks every render passes. */}}

{{- define "regroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The base name of every object: the release name when it contains the chart's name, as helm create does. */}}
{{- define "regroute.fullname" -}}
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

{{/* Labels of every object: the kustomize manifests' app.kubernetes.io/part-of, and Helm's own. */}}
{{- define "regroute.labels" -}}
app.kubernetes.io/part-of: regroute
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{/* What selects the pods of one component (webhook, pull-secret-sync). */}}
{{- define "regroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regroute.name" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
{{- end -}}

{{- define "regroute.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "regroute.configName" -}}{{ include "regroute.fullname" . }}-config{{- end -}}

{{/* The Secret the webhook pods mount: the chart's own, or the one you name. */}}
{{- define "regroute.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existing-secret" -}}
{{- .Values.certificates.existingSecret.name -}}
{{- else -}}
{{- include "regroute.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{- define "regroute.syncName" -}}{{ include "regroute.fullname" . }}-pull-secret-sync{{- end -}}

{{/* Where the pull-secret sync reads its sources: the config's pullSecretSync.namespace, or the release's. */}}
{{- define "regroute.sourceNamespace" -}}
{{- $sync := .Values.config.pullSecretSync | default dict -}}
{{- $sync.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The pull-secret names as a JSON list: every registries.<host>.pullSecret of the config, and pullSecretSync.names. */}}
{{- define "regroute.pullSecretNames" -}}
{{- $names := list -}}
{{- range $host, $registry := .Values.config.registries -}}
{{- if and $registry $registry.pullSecret -}}
{{- $names = append $names $registry.pullSecret -}}
{{- end -}}
{{- end -}}
{{- $names = concat $names .Values.pullSecretSync.names | uniq | sortAlpha -}}
{{- toJson $names -}}
{{- end -}}

{{/* The DNS names the apiserver may call the Service by. */}}
{{- define "regroute.serviceDnsNames" -}}
{{- $service := include "regroute.fullname" . -}}
{{- $namespace := .Release.Namespace -}}
{{- toJson (list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace)) -}}
{{- end -}}

{{/* Values the schema cannot relate to each other; a render that breaks one fails with the reason. */}}
{{- define "regroute.checks" -}}
{{- $deadlineMs := int (.Values.config.admission.deadlineMs | default 2000) -}}
{{- if lt (mul (int .Values.webhook.timeoutSeconds) 1000) (add $deadlineMs 1000) -}}
{{- fail (printf "webhook.timeoutSeconds (%d) must be at least a second above config.admission.deadlineMs (%d ms): the apiserver would give up before regroute answers" (int .Values.webhook.timeoutSeconds) $deadlineMs) -}}
{{- end -}}
{{- if ne .Values.config.server.tlsCert "/etc/regroute/tls/tls.crt" -}}
{{- fail "config.server.tlsCert must be /etc/regroute/tls/tls.crt: the pods mount the serving certificate's Secret there" -}}
{{- end -}}
{{- if ne .Values.config.server.tlsKey "/etc/regroute/tls/tls.key" -}}
{{- fail "config.server.tlsKey must be /etc/regroute/tls/tls.key: the pods mount the serving certificate's Secret there" -}}
{{- end -}}
{{- if and .Values.config.pullSecretSync .Values.config.pullSecretSync.enabled -}}
{{- fail "config.pullSecretSync.enabled would start the sync inside the webhook pods, which have no API credentials: set pullSecretSync.enabled instead" -}}
{{- end -}}
{{- if and .Values.pullSecretSync.enabled (eq (include "regroute.pullSecretNames" .) "[]") -}}
{{- fail "pullSecretSync.enabled needs a pull secret to copy: set registries.<host>.pullSecret in config, or pullSecretSync.names" -}}
{{- end -}}
{{- if and .Values.pullSecretSync.enabled (not .Values.pullSecretSync.clusterWideCopies) (empty .Values.pullSecretSync.copyNamespaces) -}}
{{- fail "pullSecretSync.clusterWideCopies false needs pullSecretSync.copyNamespaces: the namespaces the copies may be written in" -}}
{{- end -}}
{{- if and (eq .Values.certificates.mode "existing-secret") (or (empty .Values.certificates.existingSecret.name) (empty .Values.certificates.existingSecret.caCert)) -}}
{{- fail "certificates.mode existing-secret needs certificates.existingSecret.name and certificates.existingSecret.caCert" -}}
{{- end -}}
{{- if and (or .Values.serviceMonitor.enabled .Values.prometheusRule.enabled) (not .Values.config.server.metricsPort) -}}
{{- fail "serviceMonitor and prometheusRule need the metrics listener: config.server.metricsPort must not be 0" -}}
{{- end -}}
{{- end -}}
