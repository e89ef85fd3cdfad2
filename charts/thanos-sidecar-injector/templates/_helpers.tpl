{{/* Names and labels shared by every template. */}}
{{- define "tsi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tsi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: tsi.selector (dict "ctx" $ "component" "webhook") */}}
{{- define "tsi.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tsi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tsi.tlsSecret" -}}
{{ .Values.certs.secretName | default (printf "%s-tls" (include "tsi.fullname" .)) }}
{{- end -}}

{{/* Namespaces never injected: the system ones, the release's, and the user's list. */}}
{{- define "tsi.excludedNamespaces" -}}
{{- $list := concat (list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace) .Values.webhook.excludedNamespaces | uniq -}}
{{- toJson $list -}}
{{- end -}}

{{/* Pod and container security settings that pass Pod Security "restricted". */}}
{{- define "tsi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "tsi.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The registration job's pod spec, shared by the CronJob, the Job and the watch Deployment. */}}
{{- define "tsi.registerPod" -}}
serviceAccountName: {{ printf "%s-register" (include "tsi.fullname" .) }}
securityContext:
  {{- include "tsi.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: register
    image: {{ include "tsi.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args:
      - register
      # The webhook's own configuration: "would be injected" means here what it means there
      # (excluded namespaces, the injector's namespace), so restartUninjected never deletes a pod
      # the webhook would leave alone.
      - --config=/etc/thanos-injector/config/config.yaml
      - --query-namespace={{ .Release.Namespace }}
      - --configmap={{ .Values.registration.configMapName }}
      # Owner of the Services and the ConfigMap it writes: they go with the install.
      {{- if include "tsi.webhook" . }}
      - --webhook-config={{ include "tsi.fullname" . }}
      {{- else }}
      - --policy={{ include "tsi.fullname" . }}
      {{- end }}
      - --endpoints={{ .Values.registration.endpoints }}
      - --cluster-domain={{ .Values.registration.clusterDomain }}
      {{- range .Values.registration.namespaces }}
      - --namespace={{ . }}
      {{- end }}
      {{- if .Values.registration.restartUninjected }}
      - --restart-uninjected
      {{- end }}
      {{- if eq .Values.registration.mode "watch" }}
      - --watch
      - --metrics-port=8080
      {{- end }}
    env:
      - name: POD_NAMESPACE
        valueFrom:
          fieldRef:
            fieldPath: metadata.namespace
    {{- if eq .Values.registration.mode "watch" }}
    ports:
      - name: http-metrics
        containerPort: 8080
        protocol: TCP
    # Ready once a reconcile has read the cluster; live while the process serves.
    readinessProbe:
      httpGet: { path: /readyz, port: http-metrics }
      periodSeconds: 10
    livenessProbe:
      httpGet: { path: /healthz, port: http-metrics }
      periodSeconds: 10
      failureThreshold: 3
    {{- end }}
    resources:
      {{- toYaml .Values.registration.resources | nindent 6 }}
    securityContext:
      {{- include "tsi.containerSecurityContext" . | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/thanos-injector/config
        readOnly: true
volumes:
  - name: config
    configMap:
      name: {{ include "tsi.fullname" . }}
{{- end -}}

{{/*
The injection mode on this cluster: auto is both where the cluster runs the policy, else webhook.
policy and both need a cluster that serves MutatingAdmissionPolicy v1 and does not crash on the
list values the policy adds (Kubernetes 1.36.6; `thanos-injector policy` says the same).
*/}}
{{- define "tsi.mode" -}}
{{- $supported := semverCompare ">=1.36.6-0" .Capabilities.KubeVersion.Version -}}
{{- $mode := .Values.injection.mode -}}
{{- if eq $mode "auto" -}}
{{- ternary "both" "webhook" $supported -}}
{{- else -}}
{{- if and (ne $mode "webhook") (not $supported) -}}
{{- fail (printf "injection.mode %s needs Kubernetes 1.36.6 or later (MutatingAdmissionPolicy v1; earlier apiservers crash on the policy's list values), and this cluster is %s: use injection.mode webhook (or auto)" $mode .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}
{{- end -}}

{{/* Non-empty when the MutatingAdmissionPolicy injects (mode policy or both). */}}
{{- define "tsi.policy" -}}
{{- if ne (include "tsi.mode" .) "webhook" -}}true{{- end -}}
{{- end -}}

{{/* Non-empty when the webhook injects (mode webhook or both): its server, Service, certificate and configuration. */}}
{{- define "tsi.webhook" -}}
{{- if ne (include "tsi.mode" .) "policy" -}}true{{- end -}}
{{- end -}}
