// Shared helpers for the stress tests (not a test file: tap runs *.test.ts only). Everything talks
// to 127.0.0.1 only; every wait has a deadline. Kept independent of test/server/helpers.ts so the
// stress suite does not move when those tests do; the spawned `serve` process, which both suites
// use, is in ../support/serve.ts.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
export { freePort, waitFor } from '../support/net.ts';

export type Json = Record<string, unknown>;

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

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** Parsed JSON, undefined when the body is not JSON. */
  json: unknown;
  /** The request went over a socket that had been used before (keep-alive). */
  reusedSocket: boolean;
  /** SHA-256 fingerprint of the certificate the server presented on this connection. */
  fingerprint?: string;
  elapsedMs: number;
}

export interface PostOptions {
  port: number;
  ca?: string | string[];
  agent?: https.Agent | false;
  path?: string;
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  timeoutMs?: number;
}

/** One HTTPS request to 127.0.0.1, verified against `ca` (never rejectUnauthorized: false). */
export function request(options: PostOptions): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const body = options.body;
    const req = https.request({
      host: '127.0.0.1',
      port: options.port,
      method: options.method ?? 'POST',
      path: options.path ?? '/mutate?timeout=10s',
      ca: options.ca,
      agent: options.agent ?? false,
      headers: {
        ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}),
        ...options.headers,
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const socket = res.socket as tls.TLSSocket | null;
      const fingerprint = socket?.getPeerCertificate?.()?.fingerprint256;
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        const text = buffer.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buffer,
          text,
          json,
          reusedSocket: req.reusedSocket,
          ...(fingerprint ? { fingerprint } : {}),
          elapsedMs: performance.now() - started,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST an AdmissionReview (JSON value) as the apiserver does. */
export function postReview(port: number, ca: string | string[], review: unknown, agent?: https.Agent | false, timeoutMs = 10_000): Promise<Answer> {
  return request({
    port,
    ca,
    agent: agent ?? false,
    headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
    body: JSON.stringify(review),
    timeoutMs,
  });
}

/** A plain-HTTP GET to 127.0.0.1 (the health port). */
export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, signal: AbortSignal.timeout(timeoutMs) });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample of a Prometheus text exposition, undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? '';
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

export async function readMetric(healthPort: number, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const answer = await httpGet(healthPort, '/metrics');
  return metricValue(answer.text, name, labels);
}

/** The SHA-256 fingerprint a NEW TLS connection is served, verified against `ca`. */
export function servedFingerprint(port: number, ca: string | string[], timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

/** An admission.k8s.io/v1 AdmissionReview of a Pod CREATE, as kube-apiserver sends it. */
export function podReview(object: unknown, options: { uid?: string; namespace?: string } = {}): Json {
  const kind = { group: '', version: 'v1', kind: 'Pod' };
  const resource = { group: '', version: 'v1', resource: 'pods' };
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
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

/** A small Prometheus pod that is injected (its TSDB on an emptyDir volume). */
export function prometheusPod(name = 'prometheus-0'): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'monitoring' },
    spec: {
      containers: [
        {
          name: 'prometheus',
          image: 'quay.io/prometheus/prometheus:v3.5.0',
          args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
          volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
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
