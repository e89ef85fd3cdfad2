// Pods and AdmissionReview envelopes as kube-apiserver sends them, for every suite that talks to
// the webhook (server, stress, e2e): one builder each, so the suites agree on what a review is.
import { randomUUID } from 'node:crypto';

export type Json = Record<string, unknown>;

export interface PrometheusPodOptions {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The Prometheus container's env. */
  env?: { name: string; value: string }[];
}

/** A small Prometheus pod that is injected: the Prometheus container keeps its TSDB on an emptyDir volume. */
export function prometheusPod(options: PrometheusPodOptions = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name ?? 'prometheus-0',
      namespace: options.namespace ?? 'monitoring',
      ...(options.labels ? { labels: options.labels } : {}),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    },
    spec: {
      containers: [
        {
          name: 'prometheus',
          image: 'quay.io/prometheus/prometheus:v3.5.0',
          args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
          ...(options.env ? { env: options.env } : {}),
          volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

export interface ReviewOptions {
  uid?: string;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  namespace?: string;
  oldObject?: unknown;
}

/** An admission.k8s.io/v1 AdmissionReview (by default of a Pod CREATE) as kube-apiserver sends it. */
export function admissionReview(object: unknown, options: ReviewOptions = {}): Json {
  const kind = options.kind ?? { group: '', version: 'v1', kind: 'Pod' };
  const resource = options.resource ?? { group: '', version: 'v1', resource: 'pods' };
  const metadata = (object as { metadata?: { name?: unknown } } | null)?.metadata;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? randomUUID(),
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      name: typeof metadata?.name === 'string' ? metadata.name : '',
      namespace: options.namespace ?? 'monitoring',
      operation: options.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:authenticated'] },
      object,
      oldObject: options.oldObject ?? null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
