// Carries out a registration plan against the API: Services, then the ConfigMap, then events on
// pods (registered, sidecar problems, missing sidecar), then restarts. One failed write does not
// stop the others (a ResourceQuota in one namespace must not keep every other namespace
// unregistered); each failure is one line in the result.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Kube } from '../kube/client.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';
import { eventName, missingEvent, missingMessage, problemEvent, registeredEvent } from './events.ts';
import { SERVICE_NAME } from '../inject/names.ts';
import { REGISTERED_REASON, type MissingSidecar, type Plan, type PodRef, type ServiceAction } from './plan.ts';
import { PROBLEM_REASONS } from './problems.ts';

export interface ApplyOptions {
  now: () => Date;
  /** This instance (the pod's hostname), for the events' source. */
  host: string;
  /**
   * Names of events recorded once per pod (ThanosSidecarRegistered, the sidecar problems) known to
   * exist. Filled as events are created or found; the watch keeps it across reconciles so a
   * registered pod costs no request the next time.
   */
  recorded: Set<string>;
}

export interface ApplyResult {
  failures: string[];
  /** Namespaces whose Service write failed. */
  failedServices: Set<string>;
  configMapFailed: boolean;
  newlyRegistered: PodRef[];
  restarted: PodRef[];
}

const CONCURRENCY = 8;

/** Runs `task` over `items`, at most CONCURRENCY at a time. */
async function forEachLimited<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}

/** Writes the endpoints ConfigMap as planned; false when that failed. */
async function applyConfigMap(kube: Kube, configMap: Plan['configMap'], attempt: Attempt): Promise<boolean> {
  const where = `ConfigMap ${configMap.namespace}/${configMap.name}`;
  if (configMap.action === 'create') {
    return attempt(`cannot create ${where}`, () => kube.core.createNamespacedConfigMap({ namespace: configMap.namespace, body: configMap.configMap }));
  }
  if (configMap.action === 'update') {
    // resourceVersion is the one read: a concurrent writer makes this a 409, retried next run.
    return attempt(`cannot update ${where}`, () =>
      kube.core.replaceNamespacedConfigMap({ namespace: configMap.namespace, name: configMap.name, body: configMap.configMap }));
  }
  return true;
}

/**
 * Creates an event that is recorded once per pod and reason: true when it was created now, false
 * when an earlier run had (409) or `recorded` knows it, undefined when the create failed.
 */
async function recordOnce(kube: Kube, event: CoreV1Event, options: ApplyOptions, attempt: Attempt): Promise<boolean | undefined> {
  const name = event.metadata?.name ?? '';
  if (options.recorded.has(name)) return false;
  const namespace = event.metadata?.namespace ?? '';
  let isNew = true;
  const recorded = await attempt(`cannot record event ${event.reason} on pod ${namespace}/${event.involvedObject.name}`, async () => {
    try {
      await kube.core.createNamespacedEvent({ namespace, body: event });
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      isNew = false; // recorded by an earlier run
    }
  });
  if (!recorded) return undefined;
  options.recorded.add(name);
  return isNew;
}

/** Records a ThanosSidecarRegistered event on each registered pod once; returns the pods recorded now. */
async function recordRegistrations(kube: Kube, plan: Plan, options: ApplyOptions, failedServices: Set<string>, attempt: Attempt): Promise<PodRef[]> {
  const recordedNow: PodRef[] = [];
  await forEachLimited(plan.registrations, async (registration) => {
    const { pod } = registration;
    if (registration.viaService && failedServices.has(pod.namespace)) return;
    if (await recordOnce(kube, registeredEvent(registration, plan.configMap, options.now(), options.host), options, attempt)) recordedNow.push(pod);
  });
  return recordedNow;
}

/** Event names this plan may record once per pod; `recorded` forgets the others (pods gone), so a long watch does not grow without bound. */
function forgetOthers(plan: Plan, recorded: Set<string>): void {
  const current = new Set([
    ...plan.registrations.map((r) => eventName(r.pod, REGISTERED_REASON)),
    ...plan.problems.map((p) => eventName(p.pod, PROBLEM_REASONS[p.problem])),
  ]);
  for (const name of recorded) if (!current.has(name)) recorded.delete(name);
}

export async function applyPlan(kube: Kube, plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
  const result: ApplyResult = { failures: [], failedServices: new Set(), configMapFailed: false, newlyRegistered: [], restarted: [] };
  const attempt: Attempt = async (operation, request, tolerated = []) => {
    try {
      await request();
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status !== undefined && tolerated.includes(status)) return true;
      result.failures.push(describeApiError(operation, error, kube.server));
      return false;
    }
  };
  forgetOthers(plan, options.recorded);
  await forEachLimited(plan.services, async (action) => {
    if (!(await applyService(kube, action, attempt))) result.failedServices.add(action.namespace);
  });
  result.configMapFailed = !(await applyConfigMap(kube, plan.configMap, attempt));
  // A pod is registered once Query can read its address: not before the ConfigMap says so.
  if (!result.configMapFailed) result.newlyRegistered = await recordRegistrations(kube, plan, options, result.failedServices, attempt);
  // Once per pod, like the registration: the metric and the summary say whether it still holds.
  await forEachLimited(plan.problems, async (problem) => {
    await recordOnce(kube, problemEvent(problem, options.now(), options.host), options, attempt);
  });
  await forEachLimited(plan.missing, async (missing) => {
    await recordMissing(kube, missing, options, attempt);
    if (!missing.restart) return;
    const { pod } = missing;
    // The uid precondition: never delete a replacement that took the same name meanwhile.
    const deleted = await attempt(`cannot delete pod ${pod.namespace}/${pod.name}`, () =>
      kube.core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name, body: { preconditions: { uid: pod.uid } } }), [404, 409]);
    if (deleted) result.restarted.push(pod);
  });
  result.newlyRegistered.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return result;
}

type Attempt = (operation: string, request: () => Promise<unknown>, tolerated?: number[]) => Promise<boolean>;

async function applyService(kube: Kube, action: ServiceAction, attempt: Attempt): Promise<boolean> {
  const { namespace } = action;
  const where = `Service ${namespace}/${SERVICE_NAME}`;
  const remove = (uid: string) =>
    attempt(`cannot delete ${where}`, () => kube.core.deleteNamespacedService({ namespace, name: SERVICE_NAME, body: { preconditions: { uid } } }), [404]);
  switch (action.action) {
    case 'create':
      return attempt(`cannot create ${where}`, () => kube.core.createNamespacedService({ namespace, body: action.service }));
    case 'update':
      return attempt(`cannot update ${where}`, () => kube.core.replaceNamespacedService({ namespace, name: SERVICE_NAME, body: action.service }));
    case 'recreate':
      return (await remove(action.uid)) && attempt(`cannot create ${where}`, () => kube.core.createNamespacedService({ namespace, body: action.service }));
    case 'delete':
      return remove(action.uid);
    case 'unchanged':
    case 'conflict':
      return true;
  }
}

/**
 * The Warning on a pod missing its sidecar: created once, then refreshed each run (lastTimestamp,
 * message) so it stays visible while the pod is there. (Without get on events the count cannot
 * be incremented; the refreshed lastTimestamp says it still holds.)
 */
async function recordMissing(kube: Kube, missing: MissingSidecar, options: ApplyOptions, attempt: Attempt): Promise<void> {
  const now = options.now();
  const event: CoreV1Event = missingEvent(missing, now, options.host);
  const { pod } = missing;
  const operation = `cannot record event ${event.reason} on pod ${pod.namespace}/${pod.name}`;
  let exists = false;
  const created = await attempt(operation, async () => {
    try {
      await kube.core.createNamespacedEvent({ namespace: pod.namespace, body: event });
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      exists = true;
    }
  });
  if (!created || !exists) return;
  const patch = [
    { op: 'replace', path: '/lastTimestamp', value: now.toISOString() },
    { op: 'replace', path: '/message', value: missingMessage(missing) },
  ];
  await attempt(operation, () => kube.core.patchNamespacedEvent({ namespace: pod.namespace, name: event.metadata?.name ?? '', body: patch }));
}
