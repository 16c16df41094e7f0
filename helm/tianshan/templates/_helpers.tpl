{{/* Chart name, or nameOverride. */}}
{{- define "tianshan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: fullnameOverride, or the release name plus the chart name
unless the release name already contains it. */}}
{{- define "tianshan.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "tianshan.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the headless Service that gives the pods their stable DNS names. */}}
{{- define "tianshan.peersName" -}}
{{- printf "%s-peers" (include "tianshan.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "tianshan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tianshan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "tianshan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tianshan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Where the pod mounts the tokens and the TLS files. */}}
{{- define "tianshan.tokensDir" -}}/etc/tianshan/tokens{{- end }}
{{- define "tianshan.tlsDir" -}}/etc/tianshan/tls{{- end }}

{{/* How many nodes cluster.peers lists: the replicas, or the most an autoscaler may run. */}}
{{- define "tianshan.listedNodes" -}}
{{- if .Values.keda.enabled }}
{{- .Values.keda.maxReplicaCount | int }}
{{- else if .Values.autoscaling.enabled }}
{{- .Values.autoscaling.maxReplicas | int }}
{{- else }}
{{- .Values.replicaCount | int }}
{{- end }}
{{- end }}

{{/* Whether the nodes call each other ("true" or empty): more than one node is listed. */}}
{{- define "tianshan.hasPeers" -}}
{{- if gt (include "tianshan.listedNodes" . | int) 1 }}true{{- end }}
{{- end }}

{{/* cluster.peers: every pod of the StatefulSet by its stable name under the headless Service. */}}
{{- define "tianshan.peers" -}}
{{- $peers := list }}
{{- range $ordinal := until (include "tianshan.listedNodes" . | int) }}
{{- $peers = append $peers (printf "%s-%d.%s.%s.svc:%d" (include "tianshan.fullname" $) $ordinal (include "tianshan.peersName" $) $.Release.Namespace (int $.Values.ports.grpc)) }}
{{- end }}
{{- toJson $peers }}
{{- end }}

{{/* Secret holding tokens.csv: the existing one, or the chart's (which the nodes' peer row needs
when there is more than one node). Empty when there are no tokens. */}}
{{- define "tianshan.tokensSecret" -}}
{{- if .Values.tokens.existingSecret }}
{{- .Values.tokens.existingSecret }}
{{- else if or .Values.tokens.csv (include "tianshan.hasPeers" .) }}
{{- include "tianshan.fullname" . }}
{{- end }}
{{- end }}

{{/* The token the nodes present to each other: tokens.peerToken, else the one the chart's Secret
already holds (kept across upgrades), else a new random one. */}}
{{- define "tianshan.peerToken" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "tianshan.fullname" .) }}
{{- if .Values.tokens.peerToken }}
{{- .Values.tokens.peerToken }}
{{- else if and $existing (hasKey ($existing.data | default dict) "peer-token") }}
{{- index $existing.data "peer-token" | b64dec }}
{{- else }}
{{- randAlphaNum 40 }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt and tls.key: the existing one, or the chart's. Empty without TLS. */}}
{{- define "tianshan.tlsSecret" -}}
{{- if .Values.tls.enabled }}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else if and .Values.tls.cert .Values.tls.key }}
{{- if and (include "tianshan.hasPeers" .) (not .Values.tls.ca) }}
{{- fail "tls.ca is needed with more than one node: the nodes call each other over TLS and verify each other against it" }}
{{- end }}
{{- include "tianshan.fullname" . }}
{{- else }}
{{- fail "tls.enabled needs tls.existingSecret, or both tls.cert and tls.key" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether the chart renders its own Secret ("true" or empty). */}}
{{- define "tianshan.ownsSecret" -}}
{{- $name := include "tianshan.fullname" . }}
{{- if or (eq (include "tianshan.tokensSecret" .) $name) (eq (include "tianshan.tlsSecret" .) $name) }}true{{- end }}
{{- end }}

{{/* The tianshan.toml of the ConfigMap: files/default.toml, then `config`, then the keys the chart
owns (listen addresses, token file, TLS files, the peers), which `config` may not set. Each pod
sets cluster.node-id to its name, so it leaves itself out of the peers. */}}
{{- define "tianshan.configToml" -}}
{{- $config := .Files.Get "files/default.toml" | fromToml }}
{{- if hasKey $config "Error" }}
{{- fail (printf "files/default.toml is not valid TOML: %s" $config.Error) }}
{{- end }}
{{- $overrides := .Values.config | fromToml }}
{{- if hasKey $overrides "Error" }}
{{- fail (printf "config is not valid TOML: %s" $overrides.Error) }}
{{- end }}
{{- range $key := list "grpc-addr" "http-addr" "tokens" "tls-cert" "tls-key" "tls-ca" }}
{{- if hasKey (get $overrides "node" | default dict) $key }}
{{- fail (printf "config may not set node.%s: the chart sets it (see values.yaml)" $key) }}
{{- end }}
{{- end }}
{{- range $key := list "node-id" "peers" }}
{{- if hasKey (get $overrides "cluster" | default dict) $key }}
{{- fail (printf "config may not set cluster.%s: the chart sets it (see values.yaml)" $key) }}
{{- end }}
{{- end }}
{{- $config = mergeOverwrite $config $overrides }}
{{- $_ := set $config.node "grpc-addr" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) }}
{{- $_ = set $config.node "http-addr" (printf "0.0.0.0:%d" (int .Values.ports.http)) }}
{{- if include "tianshan.tokensSecret" . }}
{{- $_ = set $config.node "tokens" (printf "%s/tokens.csv" (include "tianshan.tokensDir" .)) }}
{{- end }}
{{- if include "tianshan.tlsSecret" . }}
{{- $_ = set $config.node "tls-cert" (printf "%s/tls.crt" (include "tianshan.tlsDir" .)) }}
{{- $_ = set $config.node "tls-key" (printf "%s/tls.key" (include "tianshan.tlsDir" .)) }}
{{- if include "tianshan.hasPeers" . }}
{{- $_ = set $config.node "tls-ca" (printf "%s/ca.crt" (include "tianshan.tlsDir" .)) }}
{{- end }}
{{- end }}
{{- $cluster := get $config "cluster" | default dict }}
{{- $_ = set $cluster "peers" (include "tianshan.peers" . | fromJsonArray) }}
{{- $_ = set $config "cluster" $cluster }}
{{- toToml $config }}
{{- end }}

{{/* Fails when two scalers would fight over the StatefulSet's replicas. */}}
{{- define "tianshan.checkScaling" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled exclude each other: KEDA makes its own HorizontalPodAutoscaler" }}
{{- end }}
{{- end }}
