// What the stress tests share (test/stress; not a test file: tap runs *.test.ts only). Everything
// talks to 127.0.0.1 only; every wait has a deadline. The helpers every suite uses (the spawned
// `serve` process, raw HTTPS/HTTP calls, the AdmissionReview and Prometheus pod builders, metric
// values) are re-exported here from their own files in this folder.
import type https from 'node:https';
import { httpGet, httpsCall, type Answer } from './http.ts';
import { metricValue } from './metrics.ts';
export { freePort, waitFor } from './net.ts';
export { admissionReview, prometheusPod, type Json } from './admission.ts';
export { httpGet, httpsCall, partialRequest, servedFingerprint, type Answer } from './http.ts';
export { metricValue } from './metrics.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or undefined after `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** POST an AdmissionReview (JSON value) as the apiserver does. */
export function postReview(port: number, ca: string | string[], review: unknown, agent?: https.Agent | false, timeoutMs = 10_000): Promise<Answer> {
  return httpsCall({
    port,
    ca,
    agent: agent ?? false,
    headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
    body: JSON.stringify(review),
    timeoutMs,
  });
}

export async function readMetric(healthPort: number, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const answer = await httpGet(healthPort, '/metrics');
  return metricValue(answer.text, name, labels);
}

/** Checks that an answer is the 200 AdmissionReview of an injected pod for `uid`; '' when it is. */
export function injectedProblem(answer: Pick<Answer, 'status' | 'json' | 'text'>, uid: string): string {
  if (answer.status !== 200) return `HTTP ${answer.status}: ${answer.text.slice(0, 200)}`;
  const review = answer.json as { apiVersion?: unknown; kind?: unknown; response?: { uid?: unknown; allowed?: unknown; patchType?: unknown; patch?: unknown } } | undefined;
  if (review?.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') return `not an AdmissionReview: ${answer.text.slice(0, 200)}`;
  if (review.response?.uid !== uid) return `uid ${String(review.response?.uid)} instead of ${uid}`;
  if (review.response.allowed !== true || review.response.patchType !== 'JSONPatch' || typeof review.response.patch !== 'string') {
    return `not injected: ${answer.text.slice(0, 200)}`;
  }
  return '';
}

/**
 * Ms from `since` until /readyz stopped answering 200, polled every `everyMs` as a kubelet probes:
 * a refused connection (the process has exited) counts as off. Undefined: still ready after `waitMs`.
 */
export async function readinessOff(healthPort: number, since: number, waitMs: number, everyMs = 20): Promise<number | undefined> {
  while (performance.now() - since < waitMs) {
    const status = await httpGet(healthPort, '/readyz', 1000).then((a) => a.status, () => 0);
    if (status !== 200) return performance.now() - since;
    await sleep(everyMs);
  }
  return undefined;
}

/** Runs `work` for each item with at most `concurrency` in flight. */
export async function pool<T>(items: Iterable<T>, concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let index = 0;
  const workers = Array.from({ length: concurrency }, async () => {
    for (;;) {
      const next = iterator.next();
      if (next.done) return;
      await work(next.value, index++);
    }
  });
  await Promise.all(workers);
}
