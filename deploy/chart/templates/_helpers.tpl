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

{{/*
The config file the pods read, as YAML: the values' config, with cluster.warm.enabled and cluster.repair.enabled
false for a part cluster.warm or cluster.repair leaves out (config.cluster.enabled comes from REGROUTE_CLUSTER).
*/}}
{{- define "regroute.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.cluster.enabled -}}
{{- $off := dict -}}
{{- range $part := list "warm" "repair" -}}
{{- if not (get $.Values.cluster $part) -}}
{{- $_ := set $off $part (dict "enabled" false) -}}
{{- end -}}
{{- end -}}
{{- if $off -}}
{{- $config = mustMergeOverwrite $config (dict "cluster" $off) -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Whether the webhook's pods hold an API token: only for the parts that use the Kubernetes API. */}}
{{- define "regroute.apiAccess" -}}{{ or .Values.admissionEvents.enabled .Values.cluster.enabled }}{{- end -}}

{{/* The Secret the webhook pods mount: the chart's own, or the one you name. */}}
{{- define "regroute.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existing-secret" -}}
{{- .Values.certificates.existingSecret.name -}}
{{- else -}}
{{- include "regroute.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/*
The server settings the pods run with: config.server's, else the chart's (REGROUTE_* in the environment ConfigMap,
the defaults the config takes them from). The TLS paths are where the pods mount the Secret.
*/}}
{{- define "regroute.port" -}}{{ dig "server" "port" 10250 .Values.config }}{{- end -}}
{{- define "regroute.healthPort" -}}{{ dig "server" "healthPort" 8081 .Values.config }}{{- end -}}
{{- define "regroute.metricsPort" -}}{{ dig "server" "metricsPort" 9090 .Values.config }}{{- end -}}
{{- define "regroute.shutdownDelaySeconds" -}}{{ dig "server" "shutdownDelaySeconds" 5 .Values.config }}{{- end -}}

{{/* A memory quantity in MiB, for the quantities Mi and Gi; empty for any other form (not checked then). */}}
{{- define "regroute.mebibytes" -}}
{{- $quantity := toString . -}}
{{- if regexMatch "^[0-9]+Mi$" $quantity -}}{{ trimSuffix "Mi" $quantity }}
{{- else if regexMatch "^[0-9]+Gi$" $quantity -}}{{ mul (trimSuffix "Gi" $quantity | int) 1024 }}
{{- end -}}
{{- end -}}

{{/* The pods' priority class: the one named, else the chart's own when it makes one. */}}
{{- define "regroute.priorityClassName" -}}
{{- if .Values.priorityClassName -}}{{ .Values.priorityClassName }}
{{- else if .Values.priorityClass.create -}}{{ include "regroute.fullname" . }}
{{- end -}}
{{- end -}}

{{/*
The ports the NetworkPolicy lets the webhook pods reach, as a JSON list: 443, the port of every registry, route
source, prefix and candidate of the config that names one (80 for an insecure registry that names none), and
networkPolicy.extraEgressPorts.
*/}}
{{- define "regroute.egressPorts" -}}
{{- $registries := .Values.config.registries | default dict -}}
{{- $locations := keys $registries | sortAlpha -}}
{{- range (.Values.config.routes | default list) -}}
{{- $locations = concat $locations (list .prefix) (.registries | default list) (compact (list .source)) -}}
{{- end -}}
{{- $ports := list 443 -}}
{{- range $locations -}}
{{- $host := first (splitList "/" .) -}}
{{- $port := regexFind ":[0-9]+$" $host -}}
{{- if $port -}}
{{- $ports = append $ports (trimPrefix ":" $port | int) -}}
{{- else if dig $host "insecure" false $registries -}}
{{- $ports = append $ports 80 -}}
{{- end -}}
{{- end -}}
{{- range .Values.networkPolicy.extraEgressPorts -}}
{{- $ports = append $ports (int .) -}}
{{- end -}}
{{- toJson ($ports | uniq) -}}
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
{{- if ne (dig "server" "tlsCert" "/etc/regroute/tls/tls.crt" .Values.config) "/etc/regroute/tls/tls.crt" -}}
{{- fail "config.server.tlsCert must be /etc/regroute/tls/tls.crt (or unset): the pods mount the serving certificate's Secret there" -}}
{{- end -}}
{{- if ne (dig "server" "tlsKey" "/etc/regroute/tls/tls.key" .Values.config) "/etc/regroute/tls/tls.key" -}}
{{- fail "config.server.tlsKey must be /etc/regroute/tls/tls.key (or unset): the pods mount the serving certificate's Secret there" -}}
{{- end -}}
{{- if eq (include "regroute.healthPort" .) "0" -}}
{{- fail "config.server.healthPort must not be 0: the pods' probes use the health port" -}}
{{- end -}}
{{- $limit := include "regroute.mebibytes" (dig "limits" "memory" "" .Values.resources) -}}
{{- if and $limit (gt (add (int .Values.maxOldSpaceSizeMiB) 48 96) (int $limit)) -}}
{{- fail (printf "maxOldSpaceSizeMiB (%d) must stay 144 MiB below resources.limits.memory (%s): the heap limit is the old space plus 48 MiB of young generation, and the process holds about 96 MiB beside it" (int .Values.maxOldSpaceSizeMiB) .Values.resources.limits.memory) -}}
{{- end -}}
{{- if and .Values.config.pullSecretSync .Values.config.pullSecretSync.enabled -}}
{{- fail "config.pullSecretSync.enabled would start the sync inside the webhook pods, which have no API credentials: set pullSecretSync.enabled instead" -}}
{{- end -}}
{{- $configCluster := .Values.config.cluster | default dict -}}
{{- if and (hasKey $configCluster "enabled") (ne $configCluster.enabled .Values.cluster.enabled) -}}
{{- fail (printf "config.cluster.enabled (%v) contradicts cluster.enabled (%v): set cluster.enabled alone, which turns config.cluster on with the API token and RBAC it needs" $configCluster.enabled .Values.cluster.enabled) -}}
{{- end -}}
{{- if .Values.cluster.enabled -}}
{{- range $part := list "warm" "repair" -}}
{{- $settings := get $configCluster $part | default dict -}}
{{- if and (hasKey $settings "enabled") (ne $settings.enabled (get $.Values.cluster $part)) -}}
{{- fail (printf "config.cluster.%s.enabled (%v) contradicts cluster.%s (%v): set cluster.%s alone, which renders the config and the RBAC together" $part $settings.enabled $part (get $.Values.cluster $part) $part) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.cluster.enabled (not .Values.cluster.clusterWide) (empty .Values.cluster.namespaces) -}}
{{- fail "cluster.clusterWide false needs cluster.namespaces: the namespaces whose pods, workloads and Events the webhook may read and write" -}}
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
{{- if and (or .Values.serviceMonitor.enabled .Values.prometheusRule.enabled) (eq (include "regroute.metricsPort" .) "0") -}}
{{- fail "serviceMonitor and prometheusRule need the metrics listener: config.server.metricsPort must not be 0" -}}
{{- end -}}
{{- end -}}
