// What `check` reads from the cluster, behind one small interface (so the diagnosis can be tested
// with objects in memory): single objects (undefined when 404), a few lists, and a TLS handshake
// with a url webhook. Any other API failure is an ApiError: one line naming the read, exit 1.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import type {
  V1ConfigMap,
  V1Deployment,
  V1EndpointSlice,
  V1MutatingAdmissionPolicy,
  V1MutatingAdmissionPolicyBinding,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1Pod,
  V1Secret,
  V1Service,
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { AppsV1Api, DiscoveryV1Api, VersionApi } from '@kubernetes/client-node';
import { ApiError, call, type Kube } from '../kube/client.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';
import { deadline } from '../kube/deadline.ts';
import { getRaw } from '../kube/raw.ts';
import type { Handshake } from './injector.ts';

export interface LogRequest {
  lines: number;
  previous?: boolean;
}

export interface WarningPolicy {
  policy: V1ValidatingAdmissionPolicy | undefined;
  bindings: V1ValidatingAdmissionPolicyBinding[];
}

export interface ClusterReader {
  webhookConfiguration(name: string): Promise<V1MutatingWebhookConfiguration | undefined>;
  webhookConfigurations(): Promise<V1MutatingWebhookConfiguration[]>;
  /** The MutatingAdmissionPolicy of that name (undefined: none, or a cluster that serves none). */
  admissionPolicy(name: string): Promise<V1MutatingAdmissionPolicy | undefined>;
  /** Every MutatingAdmissionPolicyBinding ([] on a cluster that serves none). */
  admissionPolicyBindings(): Promise<V1MutatingAdmissionPolicyBinding[]>;
  /** The ValidatingAdmissionPolicy of that name (the mutating policy's warnings) and the bindings that bind it. */
  warningPolicy(name: string): Promise<WarningPolicy>;
  namespace(name: string): Promise<V1Namespace | undefined>;
  /** Every pod of a namespace (the pods with a sidecar are picked from them, and compared). */
  pods(namespace: string): Promise<V1Pod[]>;
  service(namespace: string, name: string): Promise<V1Service | undefined>;
  endpointSlices(namespace: string, service: string): Promise<V1EndpointSlice[]>;
  deployments(namespace: string): Promise<V1Deployment[]>;
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** A TLS handshake with host:port, for the certificate it serves (never verified here: that is the check). */
  handshake(host: string, port: number): Promise<Handshake>;
  /** GET `path` of a pod's port through the API's pod proxy (e.g. a sidecar's /metrics). */
  podProxy(namespace: string, pod: string, port: number, path: string): Promise<string>;
  /**
   * The last `lines` log lines of a container ('' when it has none yet); `previous`: of the
   * instance before the running one, where a crash-looping container said why it exited.
   */
  podLog(namespace: string, pod: string, container: string, log: LogRequest): Promise<string>;
  /** The cluster's Kubernetes version (gitVersion), for sidecarMode auto. */
  version(): Promise<string>;
  /** The apiserver's own metrics (Prometheus text), for the policy's evaluation errors. */
  apiserverMetrics(): Promise<string>;
}

/** The certificates the server sent, leaf first (Node links them through issuerCertificate). */
function peerChain(leaf: DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: PeerCertificate | DetailedPeerCertificate | undefined = leaf;
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = (current as DetailedPeerCertificate).issuerCertificate;
  }
  return chain;
}

export function tlsHandshake(host: string, port: number, timeoutMs: number): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: false });
    const finish = (result: Handshake) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => finish({ error: `no TLS answer within ${timeoutMs / 1000}s` }));
    socket.once('secureConnect', () => {
      const chain = peerChain(socket.getPeerCertificate(true));
      finish(chain.length > 0 ? { certificate: { source: `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`, chain } } : { error: 'the server sent no certificate' });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ error: error.code ?? error.message }));
  });
}

export function kubeReader(kube: Kube, timeoutMs = 10_000): ClusterReader {
  const apps = kube.kubeConfig.makeApiClient(AppsV1Api);
  const discovery = kube.kubeConfig.makeApiClient(DiscoveryV1Api);
  const versionApi = kube.kubeConfig.makeApiClient(VersionApi);
  const { core, admission } = kube;
  const options = deadline(timeoutMs);
  const optional = async <T>(operation: string, request: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await request();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new ApiError(describeApiError(operation, error, kube.server));
    }
  };
  return {
    webhookConfiguration: (name) =>
      optional(`cannot read MutatingWebhookConfiguration ${name}`, () => admission.readMutatingWebhookConfiguration({ name }, options)),
    webhookConfigurations: async () =>
      (await call(kube, 'cannot list MutatingWebhookConfigurations', () => admission.listMutatingWebhookConfiguration({}, options))).items,
    admissionPolicy: (name) => optional(`cannot read MutatingAdmissionPolicy ${name}`, () => admission.readMutatingAdmissionPolicy({ name }, options)),
    admissionPolicyBindings: async () =>
      (await optional('cannot list MutatingAdmissionPolicyBindings', () => admission.listMutatingAdmissionPolicyBinding({}, options)))?.items ?? [],
    warningPolicy: async (name) => {
      const [policy, bindings] = await Promise.all([
        optional(`cannot read ValidatingAdmissionPolicy ${name}`, () => admission.readValidatingAdmissionPolicy({ name }, options)),
        optional('cannot list ValidatingAdmissionPolicyBindings', () => admission.listValidatingAdmissionPolicyBinding({}, options)),
      ]);
      return { policy, bindings: (bindings?.items ?? []).filter((binding) => binding.spec?.policyName === name) };
    },
    namespace: (name) => optional(`cannot read namespace ${name}`, () => core.readNamespace({ name }, options)),
    pods: async (namespace) =>
      (await call(kube, `cannot list pods in namespace ${namespace}`, () => core.listNamespacedPod({ namespace }, options))).items,
    service: (namespace, name) => optional(`cannot read Service ${namespace}/${name}`, () => core.readNamespacedService({ namespace, name }, options)),
    endpointSlices: async (namespace, service) =>
      (await call(kube, `cannot list EndpointSlices of Service ${namespace}/${service}`, () =>
        discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` }, options))).items,
    deployments: async (namespace) =>
      (await call(kube, `cannot list Deployments in namespace ${namespace}`, () => apps.listNamespacedDeployment({ namespace }, options))).items,
    secret: (namespace, name) => optional(`cannot read Secret ${namespace}/${name}`, () => core.readNamespacedSecret({ namespace, name }, options)),
    configMap: (namespace, name) => optional(`cannot read ConfigMap ${namespace}/${name}`, () => core.readNamespacedConfigMap({ namespace, name }, options)),
    handshake: (host, port) => tlsHandshake(host, port, Math.min(timeoutMs, 5_000)),
    podProxy: async (namespace, pod, port, path) => {
      const body: unknown = await call(kube, `cannot read ${path} of pod ${namespace}/${pod} port ${port} through the API`, () =>
        core.connectGetNamespacedPodProxyWithPath({ namespace, name: `${pod}:${port}`, path: path.replace(/^\//, '') }, options));
      // The client parses a JSON answer (Prometheus' API); the caller reads text.
      return typeof body === 'string' ? body : JSON.stringify(body);
    },
    podLog: async (namespace, pod, container, { lines, previous = false }) =>
      (await optional(`cannot read the ${previous ? 'previous ' : ''}log of ${namespace}/${pod} container ${container}`, () =>
        core.readNamespacedPodLog({ namespace, name: pod, container, tailLines: lines, previous }, options))) ?? '',
    version: async () => (await call(kube, 'cannot read the Kubernetes version', () => versionApi.getCode(options))).gitVersion,
    apiserverMetrics: () => getRaw(kube, '/metrics', timeoutMs),
  };
}
