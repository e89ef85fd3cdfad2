// The stand-in for the cluster `check` reads (its ClusterReader over objects in memory), a healthy
// chart install in it (Service mode, certs auto) and a namespace `monitoring` labelled for
// injection, and the pod status the kubelet reports for a pod whose containers all run. Shared
// by the diagnosis tests; not a test file itself.
import type {
  V1ConfigMap,
  V1ContainerStatus,
  V1Deployment,
  V1EndpointSlice,
  V1MutatingAdmissionPolicy,
  V1MutatingAdmissionPolicyBinding,
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1Pod,
  V1PodStatus,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { generateCertificates } from '../../src/certs/generate.ts';
import type { ClusterReader, LogRequest } from '../../src/check/cluster.ts';
import type { Handshake } from '../../src/check/injector.ts';
import { buildConfig } from '../../src/config/load.ts';
import { desiredService, dnssrvAddress, endpointsFile, targetsFile } from '../../src/register/plan.ts';
import { matchConditions } from '../../src/inject/match-conditions.ts';

export const NS = 'thanos-injector';
export const NAME = 'tsi-thanos-sidecar-injector';
export const b64 = (text: string) => Buffer.from(text).toString('base64');
export const certs = await generateCertificates([`${NAME}.${NS}.svc`, `${NAME}.${NS}.svc.cluster.local`]);

/** A fake API: objects by `<kind>/<namespace>/<name>`, plus the answer of a TLS handshake. */
export class MemoryCluster implements ClusterReader {
  objects = new Map<string, unknown>();
  handshakeResult: Handshake = { error: 'ECONNREFUSED' };
  put(kind: string, namespace: string, name: string, object: unknown): void {
    this.objects.set(`${kind}/${namespace}/${name}`, object);
  }
  remove(kind: string, namespace: string, name: string): void {
    this.objects.delete(`${kind}/${namespace}/${name}`);
  }
  private get<T>(kind: string, namespace: string, name: string): Promise<T | undefined> {
    return Promise.resolve(structuredClone(this.objects.get(`${kind}/${namespace}/${name}`)) as T | undefined);
  }
  private list<T>(kind: string, namespace: string): Promise<T[]> {
    return Promise.resolve([...this.objects.entries()].filter(([key]) => key.startsWith(`${kind}/${namespace}/`)).map(([, value]) => structuredClone(value) as T));
  }
  webhookConfiguration = (name: string) => this.get<V1MutatingWebhookConfiguration>('mwc', '', name);
  webhookConfigurations = () => this.list<V1MutatingWebhookConfiguration>('mwc', '');
  admissionPolicy = (name: string) => this.get<V1MutatingAdmissionPolicy>('map', '', name);
  admissionPolicyBindings = () => this.list<V1MutatingAdmissionPolicyBinding>('mapb', '');
  warningPolicy = async (name: string) => ({
    policy: await this.get<V1ValidatingAdmissionPolicy>('vap', '', name),
    bindings: (await this.list<V1ValidatingAdmissionPolicyBinding>('vapb', '')).filter((binding) => binding.spec?.policyName === name),
  });
  namespace = (name: string) => this.get<V1Namespace>('namespace', '', name);
  pods = (namespace: string) => this.list<V1Pod>('pod', namespace);
  service = (namespace: string, name: string) => this.get<V1Service>('service', namespace, name);
  endpointSlices = (namespace: string, service: string) => this.list<V1EndpointSlice>('slice', namespace).then((slices) => slices.filter((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === service));
  deployments = (namespace: string) => this.list<V1Deployment>('deployment', namespace);
  secret = (namespace: string, name: string) => this.get<V1Secret>('secret', namespace, name);
  configMap = (namespace: string, name: string) => this.get<V1ConfigMap>('configmap', namespace, name);
  handshake = () => Promise.resolve(this.handshakeResult);
  /** What a pod's proxied port serves, by `<namespace>/<pod>:<port><path>` (unset: the API's error). */
  proxied = new Map<string, string>();
  /** Logs by `<namespace>/<pod>/<container>`; a previous instance's by the same key plus `/previous`. */
  logs = new Map<string, string>();
  /** Every log read, as `<namespace>/<pod>/<container>[/previous]`. */
  logReads: string[] = [];
  podProxy = (namespace: string, pod: string, port: number, path: string) => {
    const text = this.proxied.get(`${namespace}/${pod}:${port}${path}`);
    return text === undefined ? Promise.reject(new Error(`cannot read ${path} of pod ${namespace}/${pod} port ${port} through the API: 503 error trying to reach service`)) : Promise.resolve(text);
  };
  kubernetesVersion = 'v1.37.2';
  version = () => Promise.resolve(this.kubernetesVersion);
  /** The apiserver's /metrics, or the error reading them gives. */
  metrics: string | Error = '';
  apiserverMetrics = () => (typeof this.metrics === 'string' ? Promise.resolve(this.metrics) : Promise.reject(this.metrics));
  podLog = (namespace: string, pod: string, container: string, { previous = false }: LogRequest) => {
    const key = `${namespace}/${pod}/${container}${previous ? '/previous' : ''}`;
    this.logReads.push(key);
    const text = this.logs.get(key);
    // The API answers 400 when there is no previous instance to read.
    if (text === undefined && previous) {
      return Promise.reject(new Error(`cannot read the previous log of ${namespace}/${pod} container ${container}: previous terminated container "${container}" in pod "${pod}" not found`));
    }
    return Promise.resolve(text ?? '');
  };
}

const selector = { 'app.kubernetes.io/name': 'thanos-sidecar-injector', 'app.kubernetes.io/instance': 'tsi', 'app.kubernetes.io/component': 'webhook' };
export const EXCLUDED = ['kube-system', 'kube-public', 'kube-node-lease', NS];
// Mode webhook, as the chart writes it for an install of the webhook alone.
export const config = buildConfig({ injectorNamespace: NS, excludedNamespaces: EXCLUDED.slice(0, 3), mode: 'webhook' });

export function webhookConfiguration(clientConfig: { service?: { name: string; namespace: string; path: string; port: number }; url?: string }, caBundle: string): V1MutatingWebhookConfiguration {
  return {
    metadata: { name: NAME, annotations: { 'meta.helm.sh/release-name': 'tsi', 'meta.helm.sh/release-namespace': NS } },
    webhooks: (['namespace', 'pod'] as const).map((scope) => ({
      name: `${scope}.thanos-sidecar-injector.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
      matchPolicy: 'Equivalent',
      matchConditions: matchConditions(),
      clientConfig: { ...clientConfig, caBundle },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
      namespaceSelector: {
        matchExpressions: [
          scope === 'namespace' ? { key: 'thanos-injection', operator: 'In', values: ['enabled'] } : { key: 'thanos-injection', operator: 'DoesNotExist' },
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: EXCLUDED },
        ],
      },
      objectSelector: scope === 'namespace'
        ? { matchExpressions: [{ key: 'thanos-injection', operator: 'NotIn', values: ['disabled'] }] }
        : { matchLabels: { 'thanos-injection': 'enabled' } },
    })),
  };
}

/**
 * A healthy chart install in certs mode auto, registration included, and namespace `monitoring`
 * labelled thanos-injection=enabled with the objstore Secret and registration's Service; no pod yet.
 */
export function installCluster(): MemoryCluster {
  const cluster = new MemoryCluster();
  cluster.put('mwc', '', NAME, webhookConfiguration({ service: { name: NAME, namespace: NS, path: '/mutate', port: 443 } }, b64(certs.caCert)));
  cluster.put('mwc', '', 'other-webhook', { metadata: { name: 'other-webhook' }, webhooks: [] });
  cluster.put('service', NS, NAME, { metadata: { name: NAME, namespace: NS }, spec: { selector, ports: [{ name: 'https', port: 443, targetPort: 'https' }] } });
  cluster.put('slice', NS, `${NAME}-abcde`, {
    metadata: { name: `${NAME}-abcde`, labels: { 'kubernetes.io/service-name': NAME } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.0.0.5'], conditions: { ready: true } }, { addresses: ['10.0.0.6'], conditions: { ready: true } }],
  });
  cluster.put('deployment', NS, NAME, {
    metadata: { name: NAME, namespace: NS },
    spec: { selector: { matchLabels: selector }, template: { metadata: { labels: selector }, spec: { containers: [{ name: 'injector', args: ['serve', `--certs-secret=${NAME}-tls`] }] } } },
  });
  cluster.put('secret', NS, `${NAME}-tls`, { data: { 'tls.crt': b64(certs.cert), 'tls.key': b64(certs.key), 'ca.crt': b64(certs.caCert) } });
  cluster.put('configmap', NS, NAME, { data: { 'config.yaml': stringify({ injectorNamespace: NS, excludedNamespaces: EXCLUDED.slice(0, 3), mode: 'webhook', objstore: { enabled: true, secretName: 'thanos-objstore', secretKey: 'objstore.yml' } }) } });
  const dnssrv = dnssrvAddress('monitoring', 'cluster.local');
  cluster.put('configmap', NS, 'thanos-query-endpoints', { data: { 'endpoints.yaml': endpointsFile([dnssrv]), 'targets.yaml': targetsFile([dnssrv]) } });
  cluster.put('namespace', '', 'monitoring', { metadata: { name: 'monitoring', labels: { 'kubernetes.io/metadata.name': 'monitoring', 'thanos-injection': 'enabled' } } });
  cluster.put('secret', 'monitoring', 'thanos-objstore', { data: { 'objstore.yml': b64('type: S3\nconfig:\n  bucket: thanos\n  endpoint: minio:9000\n') } });
  cluster.put('service', 'monitoring', 'thanos-sidecar', desiredService('monitoring'));
  return cluster;
}

/** When the pods of these tests started: an hour before `now`, long past any start-up grace. */
const STARTED = new Date(Date.now() - 3_600_000);

const running = (name: string, image: string | undefined): V1ContainerStatus => ({
  name, image: image ?? '', imageID: '', ready: true, restartCount: 0, started: true, state: { running: { startedAt: STARTED } },
});

/** The status the kubelet reports once every container of the pod runs and is ready (init containers that are not sidecars have completed). */
export function runningStatus(pod: V1Pod, podIP = '10.244.0.17'): V1PodStatus {
  const initContainerStatuses = (pod.spec?.initContainers ?? []).map((c): V1ContainerStatus => c.restartPolicy === 'Always'
    ? running(c.name, c.image)
    : { name: c.name, image: c.image ?? '', imageID: '', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
  return {
    phase: 'Running',
    podIP,
    conditions: [{ type: 'Ready', status: 'True' }],
    ...(initContainerStatuses.length > 0 ? { initContainerStatuses } : {}),
    containerStatuses: (pod.spec?.containers ?? []).map((c) => running(c.name, c.image)),
  };
}
