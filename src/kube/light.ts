// The few API calls `serve` makes (the cluster's version at start; the certificate keeper's Secret
// and webhook configuration), over node:https. In a pod they go with its service account's token
// and CA, read from their files, so the webhook never loads @kubernetes/client-node (about 30 MB of
// its memory); with a kubeconfig (KUBECONFIG or ~/.kube/config, client-node's order), its
// credentials come from client-node's KubeConfig, loaded only then. Every request ends at its
// deadline or when `signal` aborts. A refused call throws an error shaped as client-node's (`code`,
// `body`), so kube/errors.ts reads both alike.
import { existsSync, readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFailure } from '../files.ts';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** An apiserver and how to reach it; `options` is asked before each request (a service account token is rotated in place). */
export interface Connection {
  server: string;
  options(): Promise<RequestOptions>;
}

/** A call the apiserver answered with a status other than 2xx. */
export class HttpStatusError extends Error {
  readonly code: number;
  readonly body: string;
  constructor(code: number, body: string, what: string) {
    super(`${what}: HTTP ${code}`);
    this.code = code;
    this.body = body;
  }
}

function kubeconfigPath(): string | undefined {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? home : undefined;
}

function inCluster(): boolean {
  return Boolean(process.env.KUBERNETES_SERVICE_HOST) && existsSync(join(SERVICE_ACCOUNT, 'token'));
}

/** Whether a cluster is configured at all: a kubeconfig, or a pod's service account. */
export function clusterConfigured(): boolean {
  return kubeconfigPath() !== undefined || inCluster();
}

/** The cluster configured (see the header), or undefined when none is. Throws when a kubeconfig cannot be loaded. */
export async function connectLight(): Promise<Connection | undefined> {
  if (kubeconfigPath() === undefined) {
    if (!inCluster()) return undefined;
    const host = process.env.KUBERNETES_SERVICE_HOST ?? '';
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
    return {
      server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
      options: () => Promise.resolve({
        ca: readFileSync(join(SERVICE_ACCOUNT, 'ca.crt')),
        headers: { authorization: `Bearer ${readFileSync(join(SERVICE_ACCOUNT, 'token'), 'utf8').trim()}` },
      }),
    };
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw new Error(`cannot load kubeconfig ${kubeconfigPath() ?? '(default)'}: ${readFailure(error)}`, { cause: error });
  }
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster; set current-context');
  return {
    server,
    options: async () => {
      const options: RequestOptions = {};
      await kubeConfig.applyToHTTPSOptions(options);
      return options;
    },
  };
}

export interface Call {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH';
  body?: unknown;
  /** Of the body (default application/json). */
  contentType?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The answer's body as text: 2xx, else an HttpStatusError; no answer in time, an Error saying so. */
export async function send(connection: Connection, path: string, call: Call): Promise<string> {
  const base = await connection.options();
  const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
  const headers = {
    ...(base.headers as Record<string, string> | undefined),
    accept: 'application/json',
    ...(payload === undefined ? {} : { 'content-type': call.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
  };
  const what = `${call.method ?? 'GET'} ${path}`;
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, connection.server), { ...base, headers, method: call.method ?? 'GET', timeout: call.timeoutMs, ...(call.signal ? { signal: call.signal } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(text);
        else reject(new HttpStatusError(status, text, what));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${call.timeoutMs / 1000}s`)));
    req.on('error', (error) => reject(new Error(`${what}: ${error.message}`, { cause: error })));
    req.end(payload);
  });
}

/** `send`, its answer parsed as JSON. */
export async function sendJson<T>(connection: Connection, path: string, call: Call): Promise<T> {
  return JSON.parse(await send(connection, path, call)) as T;
}
