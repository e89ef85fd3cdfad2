// The few API calls `serve` makes (the cluster's version at start; the certificate keeper's Secret
// and webhook configuration), over node:https. In a pod they go with its service account's token
// and CA, read from their files, so the webhook never loads @kubernetes/client-node (about 30 MB of
// its memory); with a kubeconfig (KUBECONFIG or ~/.kube/config, client-node's order), its
// current context is read here too when it is a plain one (a token or a client certificate), and
// through client-node's KubeConfig, loaded only then, when it is not. Every request ends at its
// deadline or when `signal` aborts. A refused call throws an error shaped as client-node's (`code`,
// `body`), so kube/errors.ts reads both alike.
import { existsSync, readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
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

/** A kubeconfig's current cluster and user, as far as this client reads them (see `plainKubeconfig`). */
interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name?: string; context?: { cluster?: string; user?: string } }[];
  clusters?: { name?: string; cluster?: { server?: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean } }[];
  users?: { name?: string; user?: Record<string, unknown> }[];
}

/** The user fields this client handles itself: a token (inline or in a file), a client certificate, or none. */
const PLAIN_USER_FIELDS = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data']);

/**
 * One kubeconfig file whose current context uses a token or a client certificate: read here, so
 * the webhook does not load client-node for it. Undefined for anything else (several files in
 * KUBECONFIG, exec plugins, auth providers, a proxy): client-node reads those.
 */
function plainKubeconfig(file: string): Connection | undefined {
  if (file.includes(':')) return undefined;
  const config = parse(readFileSync(file, 'utf8')) as KubeconfigFile | null;
  const context = config?.contexts?.find((c) => c.name === config['current-context'])?.context;
  const cluster = config?.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = config?.users?.find((u) => u.name === context?.user)?.user ?? {};
  if (cluster?.server === undefined || Object.keys(cluster).some((key) => key === 'proxy-url' || key === 'tls-server-name')) return undefined;
  if (Object.keys(user).some((key) => !PLAIN_USER_FIELDS.has(key))) return undefined;
  const near = (path: unknown) => readFileSync(resolve(dirname(file), String(path)));
  const data = (inline: unknown, path: unknown) => (typeof inline === 'string' ? Buffer.from(inline, 'base64') : path === undefined ? undefined : near(path));
  const ca = data(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = data(user['client-certificate-data'], user['client-certificate']);
  const key = data(user['client-key-data'], user['client-key']);
  const token = typeof user.token === 'string' ? user.token : undefined;
  const tokenFile = user.tokenFile;
  return {
    server: cluster.server,
    options: () => {
      const bearer = token ?? (tokenFile === undefined ? undefined : near(tokenFile).toString('utf8').trim());
      return Promise.resolve({
        ...(ca === undefined ? {} : { ca }),
        ...(cert === undefined ? {} : { cert }),
        ...(key === undefined ? {} : { key }),
        ...(cluster['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
        ...(bearer === undefined ? {} : { headers: { authorization: `Bearer ${bearer}` } }),
      });
    },
  };
}

/** The cluster configured (see the header), or undefined when none is. Throws when a kubeconfig cannot be loaded. */
export async function connectLight(): Promise<Connection | undefined> {
  const file = kubeconfigPath();
  if (file === undefined) {
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
  const unreadable = (error: unknown) => new Error(`cannot load kubeconfig ${file}: ${readFailure(error)}`, { cause: error });
  let plain: Connection | undefined;
  try {
    plain = plainKubeconfig(file);
  } catch (error) {
    throw unreadable(error);
  }
  if (plain !== undefined) return plain;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw unreadable(error);
  }
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster; set current-context');
  return kubeConfigConnection(kubeConfig, server);
}

/** A connection with a client-node KubeConfig's credentials (exec plugins and auth providers run per request, as client-node runs them). */
export function kubeConfigConnection(kubeConfig: Pick<KubeConfig, 'applyToHTTPSOptions'>, server: string): Connection {
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
    const req = request(new URL(path, connection.server), { ...base, headers, method: call.method ?? 'GET', ...(call.signal ? { signal: call.signal } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        clearTimeout(deadline);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(text);
        else reject(new HttpStatusError(status, text, what));
      });
      res.on('error', (error) => req.destroy(error));
    });
    // The whole call, connection and answer, within the deadline (a socket timeout would let a peer that trickles bytes hold it).
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within its ${call.timeoutMs / 1000}s timeout`)), call.timeoutMs);
    req.on('error', (error) => {
      clearTimeout(deadline);
      reject(new Error(`${what}: ${error.message}`, { cause: error }));
    });
    req.end(payload);
  });
}

/** `send`, its answer parsed as JSON. */
export async function sendJson<T>(connection: Connection, path: string, call: Call): Promise<T> {
  return JSON.parse(await send(connection, path, call)) as T;
}
