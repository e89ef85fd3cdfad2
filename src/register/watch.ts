// `register --watch`: reconcile within seconds of a change to an injected pod (an informer on pods
// labelled thanos-injector/injected=true), plus a full resync every --resync seconds, which also
// catches what the informer does not see (uninjected Prometheus pods, foreign Services).
// Reconciles never overlap; a burst of pod changes becomes one reconcile.
import { makeInformer, type V1Pod } from '@kubernetes/client-node';
import { INJECTED_LABEL } from '../inject/names.ts';
import type { Kube } from '../kube/client.ts';
import { describeApiError } from '../kube/errors.ts';
import type { Scope } from './state.ts';
import { messageOf } from '../errors.ts';
import { isDeleting, isReady } from '../kube/pods.ts';
import { sidecarLacksLabels } from './problems.ts';

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
  // A sidecar that exits for want of external labels leaves the pod not ready, as it was: only its
  // termination message tells, and it is a reason to reconcile (the event and the metric).
  return JSON.stringify([pod.status?.phase, pod.status?.podIP, isReady(pod), isDeleting(pod), pod.metadata?.labels?.[INJECTED_LABEL], sidecarLacksLabels(pod)]);
}

/**
 * Runs reconciles: after `debounceMs` of quiet, never two at once (a request while one runs makes
 * exactly one more follow it), a failed one retried after `retryMs`; nothing starts once aborted.
 */
class ReconcileScheduler {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly options: WatchOptions & { debounceMs: number; retryMs: number };

  constructor(options: WatchOptions & { debounceMs: number; retryMs: number }) {
    this.options = options;
  }

  /** Runs `action` after `ms`, unless aborted by then; cancelled by stop(). */
  later(ms: number, action: () => void): NodeJS.Timeout {
    const handle = setTimeout(() => {
      this.timers.delete(handle);
      if (!this.options.signal.aborted) action();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  /** Reconcile after `delay` ms of quiet. */
  schedule(delay = this.options.debounceMs): void {
    if (this.options.signal.aborted) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = this.later(delay, () => {
      this.timer = undefined;
      if (this.running !== undefined) this.again = true;
      else this.start();
    });
  }

  /** Cancels what is pending and waits for a reconcile in progress. */
  async stop(): Promise<void> {
    for (const handle of this.timers) clearTimeout(handle);
    await this.running;
  }

  private start(): void {
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
      if (this.again && !this.options.signal.aborted) {
        this.again = false;
        this.start();
      }
    });
  }

  private async runOnce(): Promise<void> {
    const { retryMs } = this.options;
    try {
      await this.options.reconcile();
    } catch (error) {
      this.options.log(`${messageOf(error)}; retrying in ${Math.round(retryMs / 1000)}s`);
      this.later(retryMs, () => this.schedule(0));
    }
  }
}

/** An informer on the injected pods of `namespace` (undefined: all) that asks for a reconcile when a pod's registration may change. */
function injectedPodInformer(options: WatchOptions & { retryMs: number }, scheduler: ReconcileScheduler, namespace: string | undefined) {
  const { kube, log, signal, retryMs } = options;
  const labelSelector = `${INJECTED_LABEL}=true`;
  const where = namespace === undefined ? 'in all namespaces' : `in namespace ${namespace}`;
  const informer = makeInformer<V1Pod>(
    kube.kubeConfig,
    namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
    () => (namespace === undefined ? kube.core.listPodForAllNamespaces({ labelSelector }) : kube.core.listNamespacedPod({ namespace, labelSelector })),
    labelSelector,
  );
  const keys = new Map<string, string>();
  const changed = (pod: V1Pod) => {
    const uid = pod.metadata?.uid ?? '';
    const key = registrationKey(pod);
    if (keys.get(uid) === key) return;
    keys.set(uid, key);
    scheduler.schedule();
  };
  informer.on('add', changed);
  informer.on('update', changed);
  informer.on('delete', (pod) => {
    keys.delete(pod.metadata?.uid ?? '');
    scheduler.schedule();
  });
  // client-node's informer stops on an error (it only reconnects by itself after a timeout or a
  // 410): start it again, with a fresh list.
  informer.on('error', (error: unknown) => {
    if (signal.aborted) return;
    log(`${describeApiError(`watch of pods labelled ${labelSelector} ${where} failed`, error, kube.server)}; restarting in ${Math.round(retryMs / 1000)}s`);
    scheduler.later(retryMs, () => void informer.start().catch(() => undefined));
  });
  return informer;
}

export async function watch(options: WatchOptions): Promise<void> {
  const settings = { ...options, debounceMs: options.debounceMs ?? 1000, retryMs: options.retryMs ?? 10_000 };
  const scheduler = new ReconcileScheduler(settings);
  const informers = (options.scope ?? [undefined]).map((namespace) => injectedPodInformer(settings, scheduler, namespace));
  // The informers' first lists report every pod as added; the reconcile right after covers them all.
  await Promise.all(informers.map((informer) => informer.start().catch(() => undefined)));
  scheduler.schedule(0);
  const resync = setInterval(() => scheduler.schedule(0), options.resyncSeconds * 1000);
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    else options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(resync);
  await Promise.all(informers.map((informer) => informer.stop()));
  await scheduler.stop();
}
