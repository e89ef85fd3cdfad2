// Names this injector reads and writes on pods: labels, annotations, the sidecar's name.
export const PREFIX = 'thanos-injector/';

/** Namespace or pod label that opts in (`enabled`) or out (`disabled`). */
export const INJECTION_LABEL = 'thanos-injection';
/**
 * The opt-in rule, as the chart's two webhooks select pods (a test holds the chart to it): a pod
 * of a namespace labelled enabled unless the pod is labelled disabled, or a pod labelled enabled in
 * a namespace without the label. Any other value on the namespace opts it out.
 */
export function optedIn(namespaceLabels: Record<string, string> | undefined, podLabels: Record<string, string> | undefined): boolean {
  const namespaceLabel = namespaceLabels?.[INJECTION_LABEL];
  if (namespaceLabel === 'enabled') return podLabels?.[INJECTION_LABEL] !== 'disabled';
  return namespaceLabel === undefined && podLabels?.[INJECTION_LABEL] === 'enabled';
}

/** Label set on injected pods; the registration job selects on it. */
export const INJECTED_LABEL = `${PREFIX}injected`;
/** Annotation recording what was injected (JSON). */
export const STATUS_ANNOTATION = `${PREFIX}status`;
export const SIDECAR_NAME = 'thanos-sidecar';
/** The headless Service registration makes per namespace, named after the container it reaches. */
export const SERVICE_NAME = SIDECAR_NAME;
/** The keys of the endpoints ConfigMap: Thanos Query `--endpoint.sd-config-file` (v0.38+), and `--store.sd-files` (file_sd) before v0.38. */
export const ENDPOINTS_KEY = 'endpoints.yaml';
export const TARGETS_KEY = 'targets.yaml';
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
/** What the injector labels the objects it creates and owns (Services, the endpoints ConfigMap, the certificate Secret). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGER = 'thanos-sidecar-injector';

/** Per-pod override annotations, by their short name after the prefix. */
export const OVERRIDE_KEYS = [
  'image',
  'objstore-secret',
  'objstore-config-file',
  'block-duration',
  'compaction',
  'sidecar-mode',
  'prometheus-container',
  'run-as-user',
  'log-level',
  'cpu-request',
  'memory-request',
  'memory-limit',
  'cpu-limit',
  'min-time',
  'prometheus-scheme',
  'prometheus-http-client-secret',
  'existing-sidecar',
  'ephemeral-tsdb',
  'upload-history',
] as const;
export type OverrideKey = (typeof OVERRIDE_KEYS)[number];
