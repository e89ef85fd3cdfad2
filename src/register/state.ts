// Reads what registration plans from: injected pods, thanos-sidecar Services, opted-in namespaces,
// the pods the webhook may select, the endpoints ConfigMap, the ConfigMaps behind the injected
// pods' --config.file, and what each running injected pod's sidecar and Prometheus say about
// uploads (at the pod's IP, as Prometheus scrapes them). Lists are paged; any failure is an ApiError naming the read, except for
// those ConfigMaps: they only serve the external-labels check, so a failed read is one line in
// `unreadable` and registration goes on.
import { VersionApi, type V1ConfigMap, type V1ListMeta, type V1Namespace, type V1OwnerReference, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { deadline } from '../kube/deadline.ts';
import { ownerOf } from '../kube/owner.ts';
import { INJECTED_LABEL, INJECTION_LABEL } from '../inject/names.ts';
import { ApiError, call, type Kube } from '../kube/client.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';
import { SERVICE_NAME } from '../inject/names.ts';
import { messageOf } from '../errors.ts';
import type { ClusterState, InstallOwner } from './plan.ts';
import { configMapsToRead } from './problems.ts';
import { readUploadEvidence, sidecarRuns, type PodGet, type UploadEvidence } from '../check/uploads.ts';
import { isDeleting } from '../kube/pods.ts';

/** `undefined`: every namespace; otherwise only these (from repeated --namespace). */
export type Scope = readonly string[] | undefined;

const PAGE_SIZE = 500;

async function listAll<T>(page: (continueToken: string | undefined) => Promise<{ items: T[]; metadata?: V1ListMeta }>): Promise<T[]> {
  const items: T[] = [];
  let continueToken: string | undefined;
  do {
    const list = await page(continueToken);
    items.push(...list.items);
    continueToken = list.metadata?._continue || undefined;
  } while (continueToken !== undefined);
  return items;
}

const where = (namespace: string | undefined) => (namespace === undefined ? 'in all namespaces' : `in namespace ${namespace}`);

async function listPods(kube: Kube, namespace: string | undefined, labelSelector: string | undefined): Promise<V1Pod[]> {
  const selector = labelSelector === undefined ? '' : ` labelled ${labelSelector}`;
  return call(kube, `cannot list pods${selector} ${where(namespace)}`, () =>
    listAll((_continue) =>
      namespace === undefined
        ? kube.core.listPodForAllNamespaces({ labelSelector, limit: PAGE_SIZE, _continue })
        : kube.core.listNamespacedPod({ namespace, labelSelector, limit: PAGE_SIZE, _continue }),
    ),
  );
}

async function listServices(kube: Kube, namespace: string | undefined): Promise<V1Service[]> {
  const fieldSelector = `metadata.name=${SERVICE_NAME}`;
  return call(kube, `cannot list Services named ${SERVICE_NAME} ${where(namespace)}`, () =>
    listAll((_continue) =>
      namespace === undefined
        ? kube.core.listServiceForAllNamespaces({ fieldSelector, limit: PAGE_SIZE, _continue })
        : kube.core.listNamespacedService({ namespace, fieldSelector, limit: PAGE_SIZE, _continue }),
    ),
  );
}

/** Over every namespace in scope (one request for all, or one per namespace). */
async function perScope<T>(scope: Scope, read: (namespace: string | undefined) => Promise<T[]>): Promise<T[]> {
  if (scope === undefined) return read(undefined);
  return (await Promise.all(scope.map((namespace) => read(namespace)))).flat();
}

export async function readConfigMap(kube: Kube, namespace: string, name: string): Promise<V1ConfigMap | undefined> {
  try {
    return await kube.core.readNamespacedConfigMap({ namespace, name });
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw new ApiError(describeApiError(`cannot read ConfigMap ${namespace}/${name}`, error, kube.server));
  }
}

/** The ConfigMaps behind the injected pods' --config.file (one get each: the pods name them), and the reads that failed. */
async function readPrometheusConfigMaps(kube: Kube, pods: V1Pod[]): Promise<{ configMaps: V1ConfigMap[]; unreadable: string[] }> {
  const unreadable: string[] = [];
  const read = await Promise.all(configMapsToRead(pods).map(({ namespace, name }) =>
    readConfigMap(kube, namespace, name).catch((error: unknown) => {
      unreadable.push(messageOf(error));
      return undefined;
    })));
  return { configMaps: read.filter((configMap) => configMap !== undefined), unreadable: unreadable.sort() };
}

export async function readState(kube: Kube, scope: Scope, configMap: { namespace: string; name: string }, owner: InstallOwner): Promise<ClusterState> {
  const inScope = (namespace: string | undefined) => scope === undefined || (namespace !== undefined && scope.includes(namespace));
  // The owner of the Services and the ConfigMap, read first: without a required one nothing is written.
  const ownerReference = await readOwner(kube, owner);
  // For sidecarMode auto in the drift judgement; without an answer the configuration's kubernetesVersion stands.
  const kubernetesVersion = (async () => (await kube.kubeConfig.makeApiClient(VersionApi).getCode(deadline(VERSION_TIMEOUT_MS))).gitVersion)().catch(() => undefined);
  const [injectedPods, services, labelledNamespaces, labelledPods, existing] = await Promise.all([
    perScope(scope, (namespace) => listPods(kube, namespace, `${INJECTED_LABEL}=true`)),
    perScope(scope, (namespace) => listServices(kube, namespace)),
    call(kube, `cannot list namespaces labelled ${INJECTION_LABEL}`, () =>
      listAll((_continue) => kube.core.listNamespace({ labelSelector: INJECTION_LABEL, limit: PAGE_SIZE, _continue })),
    ).then((namespaces: V1Namespace[]) => namespaces.filter((ns) => inScope(ns.metadata?.name))),
    perScope(scope, (namespace) => listPods(kube, namespace, `${INJECTION_LABEL}=enabled`)),
    readConfigMap(kube, configMap.namespace, configMap.name),
  ]);
  // Every pod of an opted-in namespace may be selected (unless labelled disabled, which the planner checks).
  const enabled = labelledNamespaces.filter((ns) => ns.metadata?.labels?.[INJECTION_LABEL] === 'enabled').map((ns) => ns.metadata?.name ?? '');
  const [namespacePods, prometheusConfigs, uploads] = await Promise.all([
    Promise.all(enabled.map((namespace) => listPods(kube, namespace, undefined))).then((lists) => lists.flat()),
    readPrometheusConfigMaps(kube, injectedPods),
    readUploads(injectedPods),
  ]);
  return {
    injectedPods,
    services,
    labelledNamespaces,
    selectablePods: [...namespacePods, ...labelledPods],
    configMap: existing,
    prometheusConfigMaps: prometheusConfigs.configMaps,
    unreadable: prometheusConfigs.unreadable,
    uploads,
    readAt: Date.now(),
    kubernetesVersion: await kubernetesVersion,
    owner: ownerReference,
  };
}

const VERSION_TIMEOUT_MS = 10_000;

/**
 * The ownerReference to the install's MutatingWebhookConfiguration (or MutatingAdmissionPolicy).
 * Optional (the default name): none when it cannot be read, and what is written is not owned.
 * Required: its absence is an ApiError, since a Service or ConfigMap written now (say by a run of
 * the CronJob while `helm uninstall` deletes the install) would be left behind unowned.
 */
async function readOwner(kube: Kube, { kind, name, required }: InstallOwner): Promise<V1OwnerReference | undefined> {
  const flag = kind === 'MutatingWebhookConfiguration' ? '--webhook-config' : '--policy';
  try {
    const options = deadline(VERSION_TIMEOUT_MS);
    return ownerOf(await (kind === 'MutatingWebhookConfiguration'
      ? kube.admission.readMutatingWebhookConfiguration({ name }, options)
      : kube.admission.readMutatingAdmissionPolicy({ name }, options)), kind);
  } catch (error) {
    if (!required) return undefined;
    if (statusOf(error) === 404) {
      throw new ApiError(`${kind} ${name} (${flag}) not found: the install is gone or being removed, so nothing is registered (what register writes is owned by it, and would outlive it)`);
    }
    throw new ApiError(describeApiError(`cannot read ${kind} ${name} (${flag}), the owner of what register writes`, error, kube.server));
  }
}

/** How long one pod may take to answer a GET (its sidecar's metrics, its Prometheus' status). */
const POD_READ_TIMEOUT_MS = 5_000;
/** Pods asked at once. */
const POD_READS = 8;

/** GET a port of a pod at its IP, as Prometheus scrapes it (no API permission, and NetworkPolicies apply). */
function podGet(ip: string): PodGet {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return async (port, path) => {
    const response = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(POD_READ_TIMEOUT_MS) });
    const text = await response.text();
    if (!response.ok) throw new Error(`HTTP ${response.status} from ${host}:${port}${path}`);
    return text;
  };
}

/**
 * What the sidecar and Prometheus of each running injected pod say about uploads, read at the
 * pod's IP; a pod that cannot be asked (not running, no IP, unreachable) is left out: it is
 * judged stalled only on what it said.
 */
async function readUploads(pods: V1Pod[]): Promise<Map<string, UploadEvidence>> {
  const asked = pods.filter((pod) => sidecarRuns(pod) && !isDeleting(pod) && pod.status?.podIP);
  const read = new Map<string, UploadEvidence>();
  let next = 0;
  const worker = async () => {
    while (next < asked.length) {
      const pod = asked[next++] as V1Pod;
      const evidence = await readUploadEvidence(pod, podGet(pod.status?.podIP ?? ''), Promise.resolve(''));
      if (!('error' in evidence.sidecar.metrics)) read.set(pod.metadata?.uid ?? '', evidence);
    }
  };
  await Promise.all(Array.from({ length: Math.min(POD_READS, asked.length) }, worker));
  return read;
}
