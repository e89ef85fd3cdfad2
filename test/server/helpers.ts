// Shared helpers for the server tests: raw HTTPS/HTTP calls (no test double in between), pods
// from the fixtures, AdmissionReview envelopes and free ports (the spawned `serve` process is in
// ../support/serve.ts).
// Not a test file itself (tap runs *.test.ts only).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
export { freePort, waitFor } from '../support/net.ts';

export const root = new URL('../..', import.meta.url).pathname;
const fixtures = join(root, 'test/fixtures/inject');

export type Json = Record<string, unknown>;

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, undefined when it is not JSON. */
  json: unknown;
  /** Whether the request went over a socket that was already used (keep-alive). */
  reusedSocket: boolean;
}

export interface CallOptions {
  port: number;
  ca?: string | string[];
  method?: string;
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  agent?: https.Agent | false;
  timeoutMs?: number;
}

function collect(req: http.ClientRequest, resolve: (answer: Answer) => void, reject: (error: Error) => void): void {
  req.on('response', (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('error', reject);
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
    });
  });
  req.on('error', reject);
}

/** One HTTPS call to 127.0.0.1, verified against `ca` (never rejectUnauthorized: false). */
export function httpsCall(options: CallOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: options.port,
      method: options.method ?? 'POST',
      path: options.path ?? '/mutate?timeout=10s',
      ca: options.ca,
      agent: options.agent ?? false,
      headers: {
        ...(options.body !== undefined ? { 'content-length': Buffer.byteLength(options.body) } : {}),
        ...options.headers,
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    collect(req, resolve, reject);
    req.end(options.body);
  });
}

/** One plain-HTTP call to 127.0.0.1 (the health port). */
export function httpCall(port: number, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, signal: AbortSignal.timeout(5000) });
    collect(req, resolve, reject);
    req.end();
  });
}

/** POST a JSON value (or a raw string) to /mutate as the apiserver would. */
export function postReview(port: number, ca: string, body: unknown, path = '/mutate?timeout=10s'): Promise<Answer> {
  return httpsCall({
    port,
    ca,
    path,
    headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The first Pod (or pod template, as a Pod) in a fixture file. */
export function fixturePod(name: string): Json {
  const docs = parseAllDocuments(readFileSync(join(fixtures, name), 'utf8')).map((d) => d.toJS() as Json);
  for (const doc of docs) {
    const metadata = (doc.metadata ?? {}) as Json;
    if (doc.kind === 'Pod') return doc;
    const spec = doc.spec as Json | undefined;
    const template = spec?.template as Json | undefined;
    if (template !== undefined) {
      const meta = { ...((template.metadata ?? {}) as Json), name: `${String(metadata.name)}-abc12`, namespace: metadata.namespace };
      return { apiVersion: 'v1', kind: 'Pod', ...template, metadata: meta };
    }
  }
  throw new Error(`no pod in ${name}`);
}

/** A small Prometheus pod: the Prometheus container keeps its TSDB on a volume. */
export function prometheusPod(extra: { annotations?: Record<string, string>; env?: { name: string; value: string }[]; name?: string } = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: extra.name ?? 'prometheus-0', namespace: 'monitoring', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      containers: [
        {
          name: 'prometheus',
          image: 'quay.io/prometheus/prometheus:v3.5.0',
          args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
          ...(extra.env ? { env: extra.env } : {}),
          volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

export interface ReviewOptions {
  uid?: string;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  namespace?: string;
  oldObject?: unknown;
}

/** An admission.k8s.io/v1 AdmissionReview as kube-apiserver sends it. */
export function admissionReview(object: unknown, options: ReviewOptions = {}): Json {
  const kind = options.kind ?? { group: '', version: 'v1', kind: 'Pod' };
  const resource = options.resource ?? { group: '', version: 'v1', resource: 'pods' };
  const operation = options.operation ?? 'CREATE';
  const metadata = (object as { metadata?: { name?: string } } | null)?.metadata;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? randomUUID(),
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      name: metadata?.name ?? '',
      namespace: options.namespace ?? 'monitoring',
      operation,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:authenticated'] },
      object,
      oldObject: options.oldObject ?? null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
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
