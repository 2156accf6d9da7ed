{{/*
The objects come from files/ (the kustomize manifests, rendered by `npm run chart`); these helpers change
them in place from the values. At the chart's defaults every helper leaves an object as kustomize made it:
a test renders both and compares them.
*/}}

{{- define "shoal.namespace" -}}
{{- .Values.namespaceOverride | default "shoal" -}}
{{- end -}}

{{/* The image: the values', else the one k8s/components/image names (.rendered, from files/). */}}
{{- define "shoal.image" -}}
{{- $v := .root.Values.image -}}
{{- $repository := $v.repository | default (regexReplaceAll ":[^:/@]+$" .rendered "") -}}
{{- $tag := $v.tag | default (regexFind "[^:/@]+$" .rendered) -}}
{{- if $v.digest -}}
{{- printf "%s:%s@%s" $repository $tag $v.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A map with every value made a string, as annotations and labels must be ("yes" reads as true). */}}
{{- define "shoal.strings" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- $_ := set $out $k (toString $v) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Sets env var .name of container .c to .value, adding it at the end when missing. */}}
{{- define "shoal.setEnv" -}}
{{- $found := false -}}
{{- range $e := .c.env -}}
{{- if eq $e.name $.name -}}
{{- $_ := set $e "value" $.value -}}
{{- $found = true -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- $_ := set .c "env" (append (.c.env | default list) (dict "name" .name "value" .value)) -}}
{{- end -}}
{{- end -}}

{{/* The value of env var .name of container .c, or "". */}}
{{- define "shoal.getEnv" -}}
{{- range $e := .c.env -}}
{{- if eq $e.name $.name -}}{{- $e.value -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/* Points hostPath volume .name of pod .pod at .path. */}}
{{- define "shoal.hostPath" -}}
{{- range $v := .pod.volumes -}}
{{- if and (eq $v.name $.name) $v.hostPath -}}
{{- $_ := set $v.hostPath "path" $.path -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Every object: what its kind takes from the values, then its namespace and the common labels. */}}
{{- define "shoal.object" -}}
{{- $o := .o -}}
{{- $ns := include "shoal.namespace" .root -}}
{{- if eq $o.kind "ServiceAccount" -}}
{{- with .root.Values.serviceAccount.annotations -}}
{{- $_ := set $o.metadata "annotations" (include "shoal.strings" . | fromJson) -}}
{{- end -}}
{{- end -}}
{{- if or (eq $o.kind "DaemonSet") (eq $o.kind "Deployment") -}}
{{- include "shoal.workload" . -}}
{{- end -}}
{{- if and (eq $o.kind "Service") (eq $o.metadata.name "shoal-registry") .root.Values.service.registry.trafficDistribution -}}
{{- $_ := set $o.spec "trafficDistribution" .root.Values.service.registry.trafficDistribution -}}
{{- end -}}
{{- if eq $o.kind "ServiceMonitor" -}}
{{- include "shoal.serviceMonitor" . -}}
{{- end -}}
{{- if and (eq $o.kind "ResourceQuota") (hasPrefix "system-" .root.Values.priorityClassName) -}}
{{- range $e := $o.spec.scopeSelector.matchExpressions -}}
{{- if eq $e.scopeName "PriorityClass" }}{{ $_ := set $e "values" (list $.root.Values.priorityClassName) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if eq $o.kind "MutatingWebhookConfiguration" -}}
{{- range $hook := $o.webhooks -}}
{{- $_ := set $hook.clientConfig.service "namespace" $ns -}}
{{- range $e := $hook.namespaceSelector.matchExpressions -}}
{{- if eq $e.key "kubernetes.io/metadata.name" -}}
{{- $_ := set $e "values" (list $ns "kube-system") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $o.kind "Namespace" -}}
{{- $_ := set $o.metadata "name" $ns -}}
{{- else if hasKey $o.metadata "namespace" -}}
{{- $_ := set $o.metadata "namespace" $ns -}}
{{- end -}}
{{- with .root.Values.commonLabels -}}
{{- $_ := set $o.metadata "labels" (merge ($o.metadata.labels | default dict) (include "shoal.strings" . | fromJson)) -}}
{{- end -}}
{{- end -}}

{{/* The settings every pod reads. */}}
{{- define "shoal.configMap" -}}
{{- $o := .o -}}
{{- $s := .root.Values.spegel -}}
{{- if hasKey $o.data "MIRRORED_REGISTRIES" -}}
{{- $_ := set $o.data "MIRRORED_REGISTRIES" (join "," $s.mirroredRegistries) -}}
{{- $_ := set $o.data "RESOLVE_TAGS" (toString $s.resolveTags) -}}
{{- $_ := set $o.data "LOG_LEVEL" $s.logLevel -}}
{{- if $s.registryFilters -}}
{{- $_ := set $o.data "REGISTRY_FILTERS" (join "," $s.registryFilters) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "shoal.serviceMonitor" -}}
{{- $o := .o -}}
{{- $m := .root.Values.serviceMonitor -}}
{{- $_ := set $o.metadata "labels" (merge (dict "app.kubernetes.io/name" "shoal") (deepCopy ($m.labels | default dict))) -}}
{{- range $e := $o.spec.endpoints -}}
{{- $_ := set $e "interval" $m.interval -}}
{{- with $m.scrapeTimeout }}{{ $_ := set $e "scrapeTimeout" . }}{{ end -}}
{{- with $m.relabelings }}{{ $_ := set $e "relabelings" . }}{{ end -}}
{{- with $m.metricRelabelings }}{{ $_ := set $e "metricRelabelings" . }}{{ end -}}
{{- end -}}
{{- end -}}

{{/* A DaemonSet or the webhook's Deployment. */}}
{{- define "shoal.workload" -}}
{{- $o := .o -}}
{{- $v := .root.Values -}}
{{- $pod := $o.spec.template.spec -}}
{{- $image := include "shoal.image" (dict "root" .root "rendered" .image) -}}
{{- range $c := concat ($pod.initContainers | default list) $pod.containers -}}
{{- if $c.image -}}
{{- $_ := set $c "image" $image -}}
{{- $_ := set $c "imagePullPolicy" $v.image.pullPolicy -}}
{{- end -}}
{{- range $from := $c.envFrom -}}
{{- if and $from.configMapRef $.config.to (eq $from.configMapRef.name $.config.from) -}}
{{- $_ := set $from.configMapRef "name" $.config.to -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $v.imagePullSecrets -}}
{{- $_ := set $pod "imagePullSecrets" (deepCopy .) -}}
{{- end -}}
{{- $_ := set $pod "nodeSelector" (merge (dict "kubernetes.io/os" "linux") (deepCopy $v.nodeSelector)) -}}
{{- if eq $o.kind "DaemonSet" -}}
{{- if eq $o.metadata.name "shoal" -}}
{{- include "shoal.registryPod" . -}}
{{- end -}}
{{- else if eq $o.kind "Deployment" -}}
{{- $_ := set $o.spec "replicas" $v.shoal.webhook.replicas -}}
{{- end -}}
{{- end -}}

{{/* The registry DaemonSet: scheduling, the registry container, containerd's paths on the node. */}}
{{- define "shoal.registryPod" -}}
{{- $o := .o -}}
{{- $v := .root.Values -}}
{{- $s := $v.spegel -}}
{{- $pod := $o.spec.template.spec -}}
{{- $_ := set $pod "tolerations" (deepCopy $v.tolerations) -}}
{{- $_ := set $pod "priorityClassName" $v.priorityClassName -}}
{{- with $v.affinity }}{{ $_ := set $pod "affinity" (deepCopy .) }}{{ end -}}
{{- with $v.podSecurityContext }}{{ $_ := set $pod "securityContext" (deepCopy .) }}{{ end -}}
{{- with $v.daemonsetAnnotations }}{{ $_ := set $o.metadata "annotations" (include "shoal.strings" . | fromJson) }}{{ end -}}
{{- with $v.podAnnotations }}{{ $_ := set $o.spec.template.metadata "annotations" (include "shoal.strings" . | fromJson) }}{{ end -}}
{{- if ne (int $v.revisionHistoryLimit) 10 }}{{ $_ := set $o.spec "revisionHistoryLimit" $v.revisionHistoryLimit }}{{ end -}}
{{- $_ := set $o.spec "updateStrategy" (deepCopy $v.updateStrategy) -}}
{{- with $v.extraVolumes }}{{ $_ := set $pod "volumes" (concat $pod.volumes .) }}{{ end -}}
{{- with $v.extraInitContainers }}{{ $_ := set $pod "initContainers" (concat $pod.initContainers .) }}{{ end -}}
{{- include "shoal.hostPath" (dict "pod" $pod "name" "containerd-run" "path" (dir $s.containerdSock)) -}}
{{- include "shoal.hostPath" (dict "pod" $pod "name" "containerd-content" "path" $s.containerdContentPath) -}}
{{- include "shoal.hostPath" (dict "pod" $pod "name" "containerd-certs" "path" $s.containerdRegistryConfigPath) -}}
{{- include "shoal.hostPath" (dict "pod" $pod "name" "containerd-config" "path" $v.shoal.containerdConfigPath) -}}
{{- range $c := $pod.initContainers -}}
{{- if eq $c.name "configuration" -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "PREPEND_EXISTING" "value" (toString $s.prependExisting)) -}}
{{- with $s.additionalMirrorTargets -}}
{{- $targets := include "shoal.getEnv" (dict "c" $c "name" "MIRROR_TARGETS") -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "MIRROR_TARGETS" "value" (join "," (prepend . $targets))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $c := $pod.containers -}}
{{- if eq $c.name "registry" -}}
{{- $_ := set $c "resources" (deepCopy $v.resources) -}}
{{- $_ := set $c "securityContext" (merge (deepCopy ($v.securityContext | default dict)) $c.securityContext) -}}
{{- if not $v.livenessProbe.enabled }}{{ $_ := unset $c "livenessProbe" }}{{ end -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "CONTAINERD_SOCK" "value" (printf "/run/containerd/%s" (base $s.containerdSock))) -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "CONTAINERD_NAMESPACE" "value" $s.containerdNamespace) -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "UPSTREAM_FALLBACK" "value" (toString $v.shoal.upstreamFallback)) -}}
{{- if ne (int $s.mirrorResolveRetries) 3 -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "MIRROR_RESOLVE_RETRIES" "value" (toString $s.mirrorResolveRetries)) -}}
{{- end -}}
{{- if ne $s.mirrorResolveTimeout "20ms" -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "MIRROR_RESOLVE_TIMEOUT" "value" $s.mirrorResolveTimeout) -}}
{{- end -}}
{{- if not $s.debugWebEnabled -}}
{{- include "shoal.setEnv" (dict "c" $c "name" "DEBUG_WEB" "value" "false") -}}
{{- end -}}
{{- with $v.shoal.p2pPskSecretName -}}
{{- $_ := set $c "env" (prepend $c.env (dict "name" "P2P_PSK_FILE" "value" "/etc/shoal/psk/psk")) -}}
{{- $_ := set $c "volumeMounts" (prepend $c.volumeMounts (dict "name" "psk" "mountPath" "/etc/shoal/psk" "readOnly" true)) -}}
{{- $_ := set $pod "volumes" (prepend $pod.volumes (dict "name" "psk" "secret" (dict "secretName" . "defaultMode" 256))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
