// Carries out a rollout plan step by step, saying on the terminal what it does and waits for. An HA
// set is evicted one pod at a time: the next only once the replacement is ready and (with a Query
// known) listed by Query without error, so Query always has a replica to answer from; and each pod
// leaves Query before it is evicted, so no query waits on a replica that is stopping. A restart
// waits until the controller has rolled the new template out. A step that does not finish in time
// stops the rollout: what is left stays as it is, and the command says so.
import type { V1Pod } from '@kubernetes/client-node';
import { workloadOf } from '../check/owner.ts';
import type { Drift } from '../check/drift.ts';
import { sidecarOf } from '../check/pod.ts';
import { uninjectPod } from '../inject/uninject.ts';
import { isDeleting, isReady } from '../kube/pods.ts';
import type { QueryRef, RolloutCluster } from './cluster.ts';
import type { RolloutPod, RolloutStep } from './plan.ts';

export interface RolloutContext {
  cluster: RolloutCluster;
  /** Thanos Query, whose endpoint list gates each eviction of an HA set; undefined: readiness only. */
  query: QueryRef | undefined;
  /** The sidecar's gRPC port: Query lists it as `<pod IP>:<port>`. */
  grpcPort: number;
  /** How long one pod (or one workload's rollout) may take. */
  timeoutMs: number;
  pollMs: number;
  log: (line: string) => void;
  judge: (pod: V1Pod) => Drift;
}

export class RolloutStopped extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const named = (pod: V1Pod) => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
const workloadKey = (pod: V1Pod) => {
  const workload = workloadOf(pod);
  return workload === undefined ? `pod/${pod.metadata?.name ?? ''}` : `${workload.kind}/${workload.name}`;
};
const seconds = (since: number) => `${Math.round((Date.now() - since) / 1000)} s`;
const hasSidecar = (pod: V1Pod) => sidecarOf(pod) !== undefined;

function driftText(drift: Drift): string {
  if (drift.state === 'outdated') return `outdated (${drift.differences.join('; ')})`;
  if (drift.state === 'current') return 'current';
  return `${drift.state === 'unknown' ? 'cannot tell' : 'not judged'}: ${drift.reason}`;
}

/** Polls `probe` until it returns a value, or stops the rollout with `timeout` after the context's time. */
async function waitFor<T>(context: RolloutContext, probe: () => Promise<T | undefined>, timeout: () => string): Promise<T> {
  const deadline = Date.now() + context.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new RolloutStopped(timeout());
    await sleep(context.pollMs);
  }
}

/** The address Query lists for a pod's sidecar. */
function endpointOf(pod: V1Pod, port: number): string | undefined {
  const ip = pod.status?.podIP;
  if (!ip) return undefined;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Takes the pod out of Query before it goes: labelled `draining`, registration stops listing it, and
 * once Query no longer lists it (no query fans out to a pod about to stop) it is evicted. False, with
 * the label put back, when the eviction is refused after all.
 */
async function drainThenEvict(context: RolloutContext, pod: V1Pod, endpoint: string): Promise<boolean> {
  const { cluster, query } = context;
  await cluster.labelInjected(pod, 'draining');
  context.log(`  ${named(pod)}: draining: waiting for Thanos Query to drop ${endpoint}`);
  try {
    await waitFor(context, async () => (!(await cluster.queryEndpoints(query!)).includes(endpoint) ? true : undefined),
      () => `Thanos Query still lists ${named(pod)} (${endpoint}) ${context.timeoutMs / 1000} s after it was taken out of registration (is thanos-injector register running?)`);
  } catch (error) {
    await cluster.labelInjected(pod, 'true');
    throw error;
  }
  const eviction = await cluster.evict(pod);
  if (!eviction.evicted) await cluster.labelInjected(pod, 'true');
  return eviction.evicted;
}

/** Evicts one pod (retrying while a PodDisruptionBudget refuses; drained from Query first) and waits for its replacement. */
async function replaceOne(context: RolloutContext, entry: RolloutPod): Promise<void> {
  const { cluster } = context;
  const namespace = entry.pod.metadata?.namespace ?? '';
  const key = workloadKey(entry.pod);
  const current = await cluster.pod(namespace, entry.pod.metadata?.name ?? '');
  if (current?.metadata?.uid !== entry.pod.metadata?.uid) {
    context.log(`  ${named(entry.pod)}: already replaced`);
    return;
  }
  const before = new Set((await cluster.pods(namespace)).filter((pod) => workloadKey(pod) === key).map((pod) => pod.metadata?.uid));
  const started = Date.now();
  const endpoint = context.query !== undefined && hasSidecar(entry.pod) ? endpointOf(entry.pod, context.grpcPort) : undefined;
  let refused: string | undefined;
  await waitFor(context, async () => {
    const eviction = await cluster.evict(entry.pod, endpoint !== undefined);
    if (eviction.evicted && endpoint === undefined) return true;
    if (eviction.evicted && endpoint !== undefined && (await drainThenEvict(context, entry.pod, endpoint))) return true;
    const why = eviction.evicted ? 'the eviction was refused once drained (a PodDisruptionBudget)' : eviction.why;
    if (refused !== why) context.log(`  ${named(entry.pod)}: waiting to evict: ${why}`);
    refused = why;
    return undefined;
  }, () => `${named(entry.pod)} could not be evicted within ${context.timeoutMs / 1000} s: ${refused ?? ''}`);
  context.log(`  ${named(entry.pod)}: evicted; waiting for its replacement to be ready${context.query === undefined ? '' : ' and listed by Thanos Query'}`);
  let waitingFor = 'a new pod';
  const replacement = await waitFor(context, async () => {
    const fresh = (await cluster.pods(namespace)).find((pod) => workloadKey(pod) === key && !before.has(pod.metadata?.uid) && !isDeleting(pod));
    if (fresh === undefined) return undefined;
    waitingFor = `${named(fresh)} to be ready`;
    if (!isReady(fresh)) return undefined;
    if (context.query === undefined || !hasSidecar(fresh)) return fresh;
    const endpoint = endpointOf(fresh, context.grpcPort);
    waitingFor = `Thanos Query to list ${named(fresh)} (${endpoint ?? 'no IP'})`;
    const listed = await cluster.queryEndpoints(context.query);
    return endpoint !== undefined && listed.includes(endpoint) ? fresh : undefined;
  }, () => `no ready replacement for ${named(entry.pod)} within ${context.timeoutMs / 1000} s (waiting for ${waitingFor})`);
  const listed = context.query !== undefined && hasSidecar(replacement) ? ', listed by Thanos Query' : '';
  context.log(`  ${named(entry.pod)}: replaced by ${replacement.metadata?.name ?? ''} in ${seconds(started)}: ready${listed}; sidecar ${hasSidecar(replacement) ? driftText(context.judge(replacement)) : 'absent (not injected)'}`);
}

/** A bare pod deleted and created again from its own spec, without the injection (the webhook adds the current one). */
async function recreate(context: RolloutContext, entry: RolloutPod): Promise<void> {
  const { cluster } = context;
  const back = uninjectPod(entry.pod);
  if ('error' in back) throw new RolloutStopped(`${named(entry.pod)} cannot be created again: ${back.error}`);
  const { name, namespace, labels, annotations } = back.pod.metadata ?? {};
  const fresh: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels, annotations }, spec: back.pod.spec };
  const started = Date.now();
  await cluster.deletePod(entry.pod);
  context.log(`  ${named(entry.pod)}: deleted; waiting for it to be gone`);
  await waitFor(context, async () => ((await cluster.pod(namespace ?? '', name ?? '')) === undefined ? true : undefined), () => `${named(entry.pod)} was not gone within ${context.timeoutMs / 1000} s`);
  await cluster.createPod(fresh);
  const created = await waitFor(context, async () => {
    const pod = await cluster.pod(namespace ?? '', name ?? '');
    return pod !== undefined && isReady(pod) ? pod : undefined;
  }, () => `${named(entry.pod)} was created again but not ready within ${context.timeoutMs / 1000} s`);
  context.log(`  ${named(entry.pod)}: created again in ${seconds(started)}: ready; sidecar ${hasSidecar(created) ? driftText(context.judge(created)) : 'absent (not injected)'}`);
}

/** One step of the plan, done. Throws RolloutStopped when it cannot finish. */
export async function runStep(context: RolloutContext, step: RolloutStep): Promise<void> {
  const { cluster } = context;
  switch (step.action) {
    case 'evict-one-by-one':
      context.log(`${step.namespace}: ${step.pods.length === 1 ? 'evicting' : `one at a time (${step.why})`}: ${step.pods.map((p) => p.pod.metadata?.name ?? '').join(', ')}`);
      for (const entry of step.pods) await replaceOne(context, entry);
      return;
    case 'restart': {
      const { workload } = step;
      context.log(`${step.namespace}: restarting ${workload.kind} ${workload.name} (${step.pods.map((p) => p.pod.metadata?.name ?? '').join(', ')})`);
      const started = Date.now();
      await cluster.restart(step.namespace, workload, new Date());
      let last = '';
      await waitFor(context, async () => {
        const state = await cluster.rolledOut(step.namespace, workload);
        if (state.status !== last) context.log(`  ${workload.kind} ${workload.name}: ${state.status}`);
        last = state.status;
        return state.done ? true : undefined;
      }, () => `${workload.kind} ${step.namespace}/${workload.name} did not finish its rollout within ${context.timeoutMs / 1000} s (${last})`);
      context.log(`  ${workload.kind} ${workload.name}: rolled out in ${seconds(started)}`);
      return;
    }
    case 'recreate':
      context.log(`${step.namespace}: re-creating the bare pod ${step.pods[0].pod.metadata?.name ?? ''}`);
      await recreate(context, step.pods[0]);
      return;
    case 'leave':
      context.log(`${step.namespace}: left as it is: ${step.pods[0].pod.metadata?.name ?? ''} (${step.why})`);
      return;
  }
}
