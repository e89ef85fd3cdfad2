// A tiny stand-in for kube-apiserver on 127.0.0.1 (HTTPS), for the dependency-fault tests: it
// answers the calls the injector makes (GET /version; GET, POST, PUT of one Secret; GET and PATCH
// of one MutatingWebhookConfiguration, see src/certs/kube.ts) and can be switched to stall: accept
// every request and never answer. Also a black hole (TLS or raw TCP) and a KUBECONFIG writer.
// Not a test file itself.
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { generateCertificates, type CertificateSet } from '../../src/certs/generate.ts';

export interface ApiCall {
  method: string;
  path: string;
  at: number;
  /** False when the request was left hanging (stall mode). */
  answered: boolean;
}

export interface FakeKube {
  port: number;
  certs: CertificateSet;
  calls: ApiCall[];
  /** ca.crt of the Secret, once the injector has created it. */
  caBundle(): string | undefined;
  /** From now on every request is accepted and never answered. */
  stall(): void;
  stalled(): number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function notFound(kind: string, name: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `${kind} "${name}" not found`, reason: 'NotFound', details: { name, kind }, code: 404 };
}

/** Serves one Secret (created on POST, replaced on PUT) and one MutatingWebhookConfiguration. */
export async function startFakeKube(options: { namespace: string; secretName: string; webhookConfiguration: string; gitVersion?: string }): Promise<FakeKube> {
  const certs = await generateCertificates(['127.0.0.1', 'localhost']);
  let secret: Record<string, unknown> | undefined;
  let resourceVersion = 1;
  const webhookConfiguration: { webhooks: ({ name: string; clientConfig: Record<string, unknown> } & Record<string, unknown>)[] } & Record<string, unknown> = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: options.webhookConfiguration, resourceVersion: '1' },
    webhooks: [
      {
        name: 'pods.thanos-injector.io',
        clientConfig: { url: 'https://127.0.0.1:8443/mutate' },
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
      },
    ],
  };
  const calls: ApiCall[] = [];
  const hanging: ServerResponse[] = [];
  let stalled = false;
  const secretPath = `/api/v1/namespaces/${options.namespace}/secrets`;
  const webhookPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${options.webhookConfiguration}`;

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const call: ApiCall = { method: req.method ?? '', path, at: performance.now(), answered: !stalled };
    calls.push(call);
    if (stalled) {
      hanging.push(res);
      return;
    }
    if (req.method === 'GET' && path === '/version') {
      send(res, 200, { major: '1', minor: '33', gitVersion: options.gitVersion ?? 'v1.33.4', platform: 'linux/amd64' });
    } else if (req.method === 'GET' && path === `${secretPath}/${options.secretName}`) {
      if (secret === undefined) send(res, 404, notFound('secrets', options.secretName));
      else send(res, 200, secret);
    } else if (req.method === 'POST' && path === secretPath) {
      const created = JSON.parse(body) as { metadata?: Record<string, unknown> };
      secret = { ...created, metadata: { ...created.metadata, resourceVersion: String(++resourceVersion), uid: 'secret-uid' } };
      send(res, 201, secret);
    } else if (req.method === 'PUT' && path === `${secretPath}/${options.secretName}`) {
      const replaced = JSON.parse(body) as { metadata?: Record<string, unknown> };
      secret = { ...replaced, metadata: { ...replaced.metadata, resourceVersion: String(++resourceVersion) } };
      send(res, 200, secret);
    } else if (req.method === 'GET' && path === webhookPath) {
      send(res, 200, webhookConfiguration);
    } else if (req.method === 'PATCH' && path === webhookPath) {
      // Only what the keeper sends: test + add/replace of clientConfig.caBundle.
      const operations = JSON.parse(body) as { op: string; path: string; value: unknown }[];
      for (const operation of operations) {
        const match = /^\/webhooks\/([0-9]+)\/clientConfig\/caBundle$/.exec(operation.path);
        const webhook = match ? webhookConfiguration.webhooks[Number(match[1])] : undefined;
        if (webhook && (operation.op === 'add' || operation.op === 'replace')) webhook.clientConfig.caBundle = operation.value;
      }
      send(res, 200, webhookConfiguration);
    } else {
      send(res, 404, notFound('path', path));
    }
  };

  const server = https.createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => handle(req, res, body));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    certs,
    calls,
    caBundle: () => {
      const data = (secret?.data ?? {}) as Record<string, string>;
      return data['ca.crt'] === undefined ? undefined : Buffer.from(data['ca.crt'], 'base64').toString('utf8');
    },
    stall: () => {
      stalled = true;
    },
    stalled: () => hanging.length,
    close: async () => {
      for (const res of hanging) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface BlackHole {
  port: number;
  certs: CertificateSet;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Accepts connections and never answers: `tls` completes the TLS handshake and then reads the
 * request forever; `tcp` never even answers the ClientHello.
 */
export async function startBlackHole(kind: 'tls' | 'tcp'): Promise<BlackHole> {
  const certs = await generateCertificates(['127.0.0.1', 'localhost']);
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const keep = (socket: net.Socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = kind === 'tls' ? tls.createServer({ cert: certs.cert, key: certs.key }, keep) : net.createServer(keep);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    certs,
    connections: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A KUBECONFIG for https://127.0.0.1:port that trusts `caCert`, with a bearer token. */
export async function writeKubeconfig(file: string, port: number, caCert: string): Promise<void> {
  const ca = Buffer.from(caCert, 'utf8').toString('base64');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: https://127.0.0.1:${port}`,
      `    certificate-authority-data: ${ca}`,
      'users:',
      '- name: fake',
      '  user:',
      '    token: stress-test-token',
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: fake, namespace: thanos-injector}',
      'current-context: fake',
      '',
    ].join('\n'),
  );
}
