// `register --watch`: reconcile within seconds of a change to an injected pod (an informer on pods
// labelled thanos-injector/injected=true), plus a full resync every --resync seconds, which also
// catches what the informer does not see (uninjected Prometheus pods, foreign Services).
// Reconciles never overlap; a burst of pod changes becomes one reconcile.
import { makeInformer, type V1Pod } from '@kubernetes/client-node';
import { INJECTED_LABEL } from '../inject/names.ts';
import { describeApiError, type Kube } from './kube.ts';
import type { Scope } from './state.ts';

export interface WatchOptions {
  kube: Kube;
  scope: Scope;
  resyncSeconds: number;
  /** One reconcile; throws (one-line message) when it fails. */
  reconcile: () => Promise<void>;
  log: (line: string) => void;
  /** Aborted on SIGTERM/SIGINT: stop watching, let a running reconcile finish, resolve. */
  signal: AbortSignal;
  /** Quiet time before reconciling after a change (default 1 s). */
  debounceMs?: number;
  /** Delay before retrying a failed reconcile or a broken watch (default 10 s). */
  retryMs?: number;
}

/** What about a pod changes registration: anything else (a new annotation, say) is no reason to reconcile. */
function registrationKey(pod: V1Pod): string {
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  return JSON.stringify([pod.status?.phase, pod.status?.podIP, ready, pod.metadata?.deletionTimestamp !== undefined, pod.metadata?.labels?.[INJECTED_LABEL]]);
}

export async function watch(options: WatchOptions): Promise<void> {
  const { kube, log, signal } = options;
  const debounceMs = options.debounceMs ?? 1000;
  const retryMs = options.retryMs ?? 10_000;
  const labelSelector = `${INJECTED_LABEL}=true`;

  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, action: () => void) => {
    const handle = setTimeout(() => {
      timers.delete(handle);
      if (!signal.aborted) action();
    }, ms);
    timers.add(handle);
    return handle;
  };

  const runOnce = async () => {
    try {
      await options.reconcile();
    } catch (error) {
      log(`${(error as Error).message}; retrying in ${Math.round(retryMs / 1000)}s`);
      later(retryMs, () => schedule(0));
    }
  };
  const start = () => {
    running = runOnce().finally(() => {
      running = undefined;
      if (again && !signal.aborted) {
        again = false;
        start();
      }
    });
  };
  /** Reconcile after `delay` ms of quiet; while one runs, exactly one more follows it. */
  function schedule(delay = debounceMs): void {
    if (signal.aborted) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = later(delay, () => {
      timer = undefined;
      if (running !== undefined) again = true;
      else start();
    });
  }

  const keys = new Map<string, string>();
  const informers = (options.scope ?? [undefined]).map((namespace) => {
    const where = namespace === undefined ? 'in all namespaces' : `in namespace ${namespace}`;
    const informer = makeInformer<V1Pod>(
      kube.kubeConfig,
      namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      () => (namespace === undefined ? kube.core.listPodForAllNamespaces({ labelSelector }) : kube.core.listNamespacedPod({ namespace, labelSelector })),
      labelSelector,
    );
    const changed = (pod: V1Pod) => {
      const uid = pod.metadata?.uid ?? '';
      const key = registrationKey(pod);
      if (keys.get(uid) === key) return;
      keys.set(uid, key);
      schedule();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', (pod) => {
      keys.delete(pod.metadata?.uid ?? '');
      schedule();
    });
    // client-node's informer stops on an error (it only reconnects by itself after a timeout or a
    // 410): start it again, with a fresh list.
    informer.on('error', (error: unknown) => {
      if (signal.aborted) return;
      log(`${describeApiError(`watch of pods labelled ${labelSelector} ${where} failed`, error, kube.server)}; restarting in ${Math.round(retryMs / 1000)}s`);
      later(retryMs, () => void informer.start().catch(() => undefined));
    });
    return informer;
  });

  // The informers' first lists report every pod as added; the reconcile right after covers them all.
  await Promise.all(informers.map((informer) => informer.start().catch(() => undefined)));
  schedule(0);
  const resync = setInterval(() => schedule(0), options.resyncSeconds * 1000);

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(resync);
  for (const handle of timers) clearTimeout(handle);
  await Promise.all(informers.map((informer) => informer.stop()));
  await running;
}
