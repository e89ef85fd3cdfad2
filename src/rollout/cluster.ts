// What `rollout` reads and writes in the cluster, behind one small interface: the injected pods,
// a pod by name, evictions (which PodDisruptionBudgets may refuse), a workload's restart and its
// rollout status, a bare pod deleted and created, and the endpoints Thanos Query lists.
import { AppsV1Api, PatchStrategy, setHeaderOptions, type V1DaemonSet, type V1Deployment, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { call, type Kube } from '../kube/client.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';
import { deadline } from '../kube/deadline.ts';
import { INJECTED_LABEL } from '../inject/names.ts';
import type { Workload } from '../check/owner.ts';
import { escapePointer } from '../inject/pod.ts';
import { ApiError } from '../kube/client.ts';

/** The pod template annotation `kubectl rollout restart` sets. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

export type Eviction = { evicted: true } | { evicted: false; why: string };

export interface QueryRef {
  namespace: string;
  service: string;
  port: number;
}

export interface RolloutCluster {
  injectedPods(namespace: string | undefined): Promise<V1Pod[]>;
  pods(namespace: string): Promise<V1Pod[]>;
  pod(namespace: string, name: string): Promise<V1Pod | undefined>;
  /** Evicts the pod; `dryRun`: only asks whether its PodDisruptionBudgets allow it now. */
  evict(pod: V1Pod, dryRun?: boolean): Promise<Eviction>;
  /** Sets the pod's `thanos-injector/injected` label: `draining` takes it out of registration (and so out of Query) before it goes. */
  labelInjected(pod: V1Pod, value: string): Promise<void>;
  restart(namespace: string, workload: Workload, at: Date): Promise<void>;
  /** Whether the workload's controller has rolled out its current template to every replica, ready. */
  rolledOut(namespace: string, workload: Workload): Promise<Rollout>;
  deletePod(pod: V1Pod): Promise<void>;
  createPod(pod: V1Pod): Promise<void>;
  /** The endpoints Thanos Query lists with no error (`host:port`), through the API's service proxy. */
  queryEndpoints(query: QueryRef): Promise<string[]>;
}

interface StoresAnswer {
  data?: Record<string, { name?: string; lastError?: string | null }[] | null>;
}

type Rollout = { done: boolean; status: string };

const unseen = (metadata: { generation?: number } | undefined, status: { observedGeneration?: number } | undefined): Rollout | undefined =>
  (status?.observedGeneration ?? 0) < (metadata?.generation ?? 0) ? { done: false, status: 'the controller has not seen the restart yet' } : undefined;

function deploymentRollout(d: V1Deployment): Rollout {
  const want = d.spec?.replicas ?? 1;
  const { updatedReplicas = 0, availableReplicas = 0, replicas = 0 } = d.status ?? {};
  return unseen(d.metadata, d.status) ?? { done: updatedReplicas === want && availableReplicas === want && replicas === want, status: `${updatedReplicas}/${want} updated, ${availableReplicas} available, ${replicas} in all` };
}

function statefulSetRollout(s: V1StatefulSet): Rollout {
  const want = s.spec?.replicas ?? 1;
  const { updatedReplicas = 0, readyReplicas = 0, currentRevision, updateRevision } = s.status ?? {};
  return unseen(s.metadata, s.status) ?? { done: currentRevision === updateRevision && readyReplicas === want && updatedReplicas === want, status: `${updatedReplicas}/${want} updated, ${readyReplicas} ready` };
}

function daemonSetRollout(ds: V1DaemonSet): Rollout {
  const { desiredNumberScheduled = 0, updatedNumberScheduled = 0, numberAvailable = 0 } = ds.status ?? {};
  return unseen(ds.metadata, ds.status) ?? { done: updatedNumberScheduled === desiredNumberScheduled && numberAvailable === desiredNumberScheduled, status: `${updatedNumberScheduled}/${desiredNumberScheduled} updated, ${numberAvailable} available` };
}

export function kubeRolloutCluster(kube: Kube, timeoutMs = 30_000): RolloutCluster {
  const apps = kube.kubeConfig.makeApiClient(AppsV1Api);
  const { core } = kube;
  const options = () => deadline(timeoutMs);
  const read = (kind: string, namespace: string, name: string) => {
    const what = `cannot read ${kind} ${namespace}/${name}`;
    if (kind === 'Deployment') return call(kube, what, () => apps.readNamespacedDeployment({ namespace, name }, options()));
    if (kind === 'StatefulSet') return call(kube, what, () => apps.readNamespacedStatefulSet({ namespace, name }, options()));
    if (kind === 'DaemonSet') return call(kube, what, () => apps.readNamespacedDaemonSet({ namespace, name }, options()));
    throw new ApiError(`${kind} ${namespace}/${name} cannot be restarted (Deployment, StatefulSet or DaemonSet)`);
  };
  return {
    injectedPods: async (namespace) => {
      // Any value: a pod a stopped rollout left `draining` is still one to roll.
      const labelSelector = INJECTED_LABEL;
      const list = namespace === undefined
        ? await call(kube, 'cannot list injected pods', () => core.listPodForAllNamespaces({ labelSelector }, options()))
        : await call(kube, `cannot list injected pods in namespace ${namespace}`, () => core.listNamespacedPod({ namespace, labelSelector }, options()));
      return list.items;
    },
    pods: async (namespace) => (await call(kube, `cannot list pods in namespace ${namespace}`, () => core.listNamespacedPod({ namespace }, options()))).items,
    pod: async (namespace, name) => {
      try {
        return await core.readNamespacedPod({ namespace, name }, options());
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw new ApiError(describeApiError(`cannot read pod ${namespace}/${name}`, error, kube.server));
      }
    },
    evict: async (pod, dryRun = false) => {
      const namespace = pod.metadata?.namespace ?? '';
      const name = pod.metadata?.name ?? '';
      try {
        await core.createNamespacedPodEviction({
          namespace, name, ...(dryRun ? { dryRun: 'All' } : {}),
          body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { namespace, name }, deleteOptions: { preconditions: { uid: pod.metadata?.uid } } },
        }, options());
        return { evicted: true };
      } catch (error) {
        const status = statusOf(error);
        // 429: a PodDisruptionBudget allows no disruption now; 404 or a changed uid: already gone.
        if (status === 429) return { evicted: false, why: describeApiError('a PodDisruptionBudget allows no disruption now', error).replace(/^.*?: /, '') };
        if (status === 404 || status === 409) return { evicted: true };
        throw new ApiError(describeApiError(`cannot evict pod ${namespace}/${name}`, error, kube.server));
      }
    },
    labelInjected: async (pod, value) => {
      const namespace = pod.metadata?.namespace ?? '';
      const name = pod.metadata?.name ?? '';
      const patch = [
        { op: 'test', path: '/metadata/uid', value: pod.metadata?.uid },
        { op: 'replace', path: `/metadata/labels/${escapePointer(INJECTED_LABEL)}`, value },
      ];
      try {
        await core.patchNamespacedPod({ namespace, name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, options()));
      } catch (error) {
        // Gone (or replaced) meanwhile: nothing to label.
        if (statusOf(error) !== 404 && statusOf(error) !== 422) throw new ApiError(describeApiError(`cannot label pod ${namespace}/${name}`, error, kube.server));
      }
    },
    restart: async (namespace, workload, at) => {
      // A workload's template always has metadata: its labels match the selector.
      const object = await read(workload.kind, namespace, workload.name);
      const annotations = object.spec?.template.metadata?.annotations;
      const patch = annotations === undefined || annotations === null
        ? [{ op: 'add', path: '/spec/template/metadata/annotations', value: { [RESTARTED_AT]: at.toISOString() } }]
        : [{ op: 'add', path: `/spec/template/metadata/annotations/${escapePointer(RESTARTED_AT)}`, value: at.toISOString() }];
      const what = `cannot restart ${workload.kind} ${namespace}/${workload.name}`;
      const json = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, options());
      if (workload.kind === 'Deployment') await call(kube, what, () => apps.patchNamespacedDeployment({ namespace, name: workload.name, body: patch }, json));
      else if (workload.kind === 'StatefulSet') await call(kube, what, () => apps.patchNamespacedStatefulSet({ namespace, name: workload.name, body: patch }, json));
      else await call(kube, what, () => apps.patchNamespacedDaemonSet({ namespace, name: workload.name, body: patch }, json));
    },
    rolledOut: async (namespace, { kind, name }) => {
      const what = `cannot read ${kind} ${namespace}/${name}`;
      if (kind === 'Deployment') return deploymentRollout(await call(kube, what, () => apps.readNamespacedDeployment({ namespace, name }, options())));
      if (kind === 'StatefulSet') return statefulSetRollout(await call(kube, what, () => apps.readNamespacedStatefulSet({ namespace, name }, options())));
      return daemonSetRollout(await call(kube, what, () => apps.readNamespacedDaemonSet({ namespace, name }, options())));
    },
    deletePod: async (pod) => {
      const namespace = pod.metadata?.namespace ?? '';
      const name = pod.metadata?.name ?? '';
      try {
        await core.deleteNamespacedPod({ namespace, name, body: { preconditions: { uid: pod.metadata?.uid } } }, options());
      } catch (error) {
        if (statusOf(error) !== 404) throw new ApiError(describeApiError(`cannot delete pod ${namespace}/${name}`, error, kube.server));
      }
    },
    createPod: async (pod) => {
      const namespace = pod.metadata?.namespace ?? '';
      await call(kube, `cannot create pod ${namespace}/${pod.metadata?.name ?? ''}`, () => core.createNamespacedPod({ namespace, body: pod }, options()));
    },
    queryEndpoints: async ({ namespace, service, port }) => {
      const body: unknown = await call(kube, `cannot read the endpoints of Thanos Query (Service ${namespace}/${service} port ${port}, /api/v1/stores)`, () =>
        core.connectGetNamespacedServiceProxyWithPath({ namespace, name: `${service}:${port}`, path: 'api/v1/stores' }, options()));
      const answer = (typeof body === 'string' ? JSON.parse(body) : body) as StoresAnswer;
      return Object.values(answer.data ?? {}).flatMap((list) => list ?? []).filter((entry) => !entry.lastError).map((entry) => entry.name ?? '');
    },
  };
}
