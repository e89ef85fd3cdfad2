// The reader's own I/O: a TLS handshake with a real local HTTPS server (the chain it sends, never
// verified here), a port nobody listens on, an API server that does not answer (one line), and
// what a plain HTTP API server is asked for a previous instance's log and a namespace's pods.
import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../src/certs/generate.ts';
import { kubeReader, tlsHandshake } from '../../src/check/cluster.ts';
import { connect } from '../../src/kube/client.ts';
import { freePort } from '../support/net.ts';


void t.test('a handshake reads the served chain, leaf first, whoever signed it', async (t) => {
  const pair = await generateCertificates(['127.0.0.1']);
  const server = createServer({ cert: `${pair.cert.trim()}\n${pair.caCert.trim()}\n`, key: pair.key }, (_request, response) => response.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  const result = await tlsHandshake('127.0.0.1', port, 2000);
  if (!('certificate' in result)) throw new Error(`no certificate: ${result.error}`);
  t.equal(result.certificate.source, `https://127.0.0.1:${port}`);
  t.equal(result.certificate.chain.length, 2, 'the leaf and the CA the server sent');
  t.ok(result.certificate.chain[0]?.checkIP('127.0.0.1'), 'the leaf first');
  t.ok(result.certificate.chain[1]?.ca, 'then its issuer');
});

void t.test('nobody listening: the error code', async (t) => {
  t.same(await tlsHandshake('127.0.0.1', await freePort(), 2000), { error: 'ECONNREFUSED' });
});

void t.test('a server that accepts but never answers TLS: a timeout', async (t) => {
  const silent = createNetServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    silent.close();
  });
  const { port } = silent.address() as AddressInfo;
  t.same(await tlsHandshake('127.0.0.1', port, 300), { error: 'no TLS answer within 0.3s' });
});

void t.test('an API server that does not answer is one line naming the read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'check-kubeconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'kubeconfig');
  const port = await freePort();
  await writeFile(file, [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    `clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}"}}]`,
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
    'users: [{name: u, user: {token: x}}]', '',
  ].join('\n'));
  const reader = kubeReader(connect(file));
  await t.rejects(reader.webhookConfiguration('thanos-sidecar-injector'), {
    message: `cannot read MutatingWebhookConfiguration thanos-sidecar-injector: no answer from the API server https://127.0.0.1:${port}: ECONNREFUSED`,
    exitCode: 1,
  });
  await t.rejects(reader.pods('monitoring'), {
    message: `cannot list pods in namespace monitoring: no answer from the API server https://127.0.0.1:${port}: ECONNREFUSED`,
    exitCode: 1,
  });
  await t.rejects(reader.podLog('monitoring', 'prometheus-0', 'thanos-sidecar', { lines: 40, previous: true }), {
    message: `cannot read the previous log of monitoring/prometheus-0 container thanos-sidecar: no answer from the API server https://127.0.0.1:${port}: ECONNREFUSED`,
  });
});

void t.test("the previous instance's log and the pod list are what the API is asked for", async (t) => {
  const requests: string[] = [];
  const api = createHttpServer((request, response) => {
    requests.push(request.url ?? '');
    const path = decodeURIComponent((request.url ?? '').split('?')[0] ?? '');
    if (path === '/api/v1/namespaces/monitoring/pods/prometheus-0/log') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('level=error err="no external labels configured on Prometheus server"\n');
    } else if (path === '/api/v1/namespaces/monitoring/pods/prometheus-0:9090/proxy/api/v1/status/tsdb/blocks') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { blocks: [] } }));
    } else if (path === '/api/v1/namespaces/monitoring/pods/prometheus-0:10902/proxy/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('thanos_shipper_uploads_total 3\n');
    } else if (path === '/api/v1/namespaces/monitoring/pods') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: {}, items: [{ metadata: { name: 'prometheus-0' } }] }));
    } else {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{}');
    }
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => api.close(resolve)));
  const dir = await mkdtemp(join(tmpdir(), 'check-kubeconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'kubeconfig');
  await writeFile(file, [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    `clusters: [{name: c, cluster: {server: "http://127.0.0.1:${(api.address() as AddressInfo).port}", insecure-skip-tls-verify: true}}]`,
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
    'users: [{name: u, user: {token: x}}]', '',
  ].join('\n'));
  const reader = kubeReader(connect(file));
  t.equal(await reader.podLog('monitoring', 'prometheus-0', 'thanos-sidecar', { lines: 40, previous: true }), 'level=error err="no external labels configured on Prometheus server"\n');
  t.match(requests.at(-1), /^\/api\/v1\/namespaces\/monitoring\/pods\/prometheus-0\/log\?/);
  const query = new URLSearchParams((requests.at(-1) ?? '').split('?')[1]);
  t.same([query.get('container'), query.get('previous'), query.get('tailLines')], ['thanos-sidecar', 'true', '40']);
  await reader.podLog('monitoring', 'prometheus-0', 'thanos-sidecar', { lines: 400 });
  t.equal(new URLSearchParams((requests.at(-1) ?? '').split('?')[1]).get('previous'), 'false', 'the running instance by default');
  t.same((await reader.pods('monitoring')).map((pod) => pod.metadata?.name), ['prometheus-0']);
  // Through the pod proxy: text as served, and JSON (which the client parses) as text too.
  t.equal(await reader.podProxy('monitoring', 'prometheus-0', 10902, '/metrics'), 'thanos_shipper_uploads_total 3\n');
  t.same(JSON.parse(await reader.podProxy('monitoring', 'prometheus-0', 9090, '/api/v1/status/tsdb/blocks')), { status: 'success', data: { blocks: [] } }, "Prometheus' API answers as JSON text");
});
