// gRPC TLS end to end with the real binaries: the sidecar as the injector writes it (grpcTls with
// client certificates required) and Thanos Query as the chart renders it (`helm template` with
// query.grpcClientTls), run as real Prometheus 3.16, sidecar and Query processes, each Secret's
// files standing where its volume is mounted. Query lists the sidecar as a healthy store and answers
// PromQL through it; the same Query without its client certificate, or without TLS, gets nothing.
import t from 'tap';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { endpointsFile } from '../../src/register/plan.ts';
import { ensureNodeTools, ensureTools } from '../cluster/build.ts';
import { exec } from '../cluster/cluster.ts';
import { injectOffline, openssl, processPod, root, startProcess, waitFor } from '../support/node.ts';

t.setTimeout(300_000);

const log = (message: string) => t.comment(message);
const [nodeTools, { helm }] = await Promise.all([ensureNodeTools({ log }), ensureTools({ log })]);
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-node-grpc-tls-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const file = (name: string) => join(work, name);

// One CA; the sidecars' serving certificate names thanos-sidecar, Query's is a client certificate.
await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', file('ca.key'), '-out', file('ca.crt')]);
const secrets = { sidecar: file('sidecar-tls'), query: file('query-tls') };
for (const [name, dir, ext] of [['thanos-sidecar', secrets.sidecar, 'subjectAltName=DNS:thanos-sidecar\nextendedKeyUsage=serverAuth'], ['thanos-query', secrets.query, 'extendedKeyUsage=clientAuth']] as const) {
  await mkdir(dir);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.csr')]);
  await writeFile(join(dir, 'ext'), `${ext}\n`);
  await openssl(['x509', '-req', '-in', join(dir, 'tls.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', join(dir, 'ext'), '-out', join(dir, 'tls.crt')]);
  await copyFile(file('ca.crt'), join(dir, 'ca.crt'));
}

const PROMETHEUS = '127.0.0.1:29090';
const SIDECAR_GRPC = '127.0.0.1:20901';
await writeFile(file('prometheus.yml'), `global:\n  scrape_interval: 2s\n  external_labels:\n    cluster: grpc-tls-test\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['${PROMETHEUS}']\n`);
await writeFile(file('config.yaml'), `image: quay.io/thanos/thanos:v${nodeTools.versions.thanos}\nobjstore:\n  enabled: false\ngrpcTls:\n  secretName: sidecar-tls\n  clientCa: true\n  mountPath: ${secrets.sidecar}\n`);
const injected = await injectOffline(processPod(nodeTools.versions.prometheus, file('data'), [`--config.file=${file('prometheus.yml')}`, `--web.listen-address=${PROMETHEUS}`]), file('config.yaml'), work);
const sidecarArgs = injected.sidecarArgs.map((arg) =>
  arg.startsWith('--grpc-address=') ? `--grpc-address=${SIDECAR_GRPC}` : arg.startsWith('--http-address=') ? '--http-address=127.0.0.1:20902' : arg);

// Query's container as the chart renders it, its mounts pointed at this machine's folders.
const rendered = await exec(helm, ['template', 'tsi', join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos',
  '--set', 'query.enabled=true', '--set', 'injection.grpcTls.secretName=sidecar-tls', '--set', 'injection.grpcTls.clientCa=true',
  '--set', 'query.grpcClientTls.secretName=query-tls', '--set', 'query.grpcClientTls.serverName=thanos-sidecar']);
if (rendered.code !== 0) throw new Error(`helm template failed: ${rendered.stderr}`);
interface Container { name: string; args: string[] }
const deployment = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { template: { spec: { containers: Container[] } } } })
  .find((o) => o.kind === 'Deployment' && o.metadata?.name === 'tsi-thanos-sidecar-injector-query');
const chartQueryArgs = deployment?.spec?.template.spec.containers.find((c) => c.name === 'query')?.args ?? [];
await mkdir(file('endpoints'));
await writeFile(file('endpoints/endpoints.yaml'), endpointsFile([SIDECAR_GRPC]));

let queries = 0;
/** A Query process with `args` on this machine's ports and folders; returns its HTTP address. */
function startQuery(args: string[]): { http: string; log: () => string } {
  const n = queries++;
  const http = `127.0.0.1:${19192 + 10 * n}`;
  const local = args.map((arg) =>
    arg.replace('/etc/thanos/endpoints/', `${file('endpoints')}/`).replace('/etc/thanos/grpc-client-tls/', `${secrets.query}/`)
      .replace(/^--http-address=.*/, `--http-address=${http}`).replace(/^--grpc-address=.*/, `--grpc-address=127.0.0.1:${19191 + 10 * n}`));
  const query = startProcess(t, nodeTools.thanos, local, work);
  return { http, log: query.log };
}

interface Store { name: string; lastError: string | null; labelSets: Record<string, string>[] }
async function healthyStores(http: string): Promise<Store[]> {
  const response = await fetch(`http://${http}/api/v1/stores`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  if (response?.status !== 200) return [];
  const body = (await response.json()) as { data: Record<string, Store[] | null> };
  return Object.values(body.data).flatMap((stores) => stores ?? []).filter((s) => s.name === SIDECAR_GRPC && s.lastError === null);
}

void t.test('the chart\'s Query reaches a sidecar serving gRPC TLS with client certificates required; without its certificate or TLS it does not', async (t) => {
  t.ok(sidecarArgs.includes(`--grpc-server-tls-client-ca=${secrets.sidecar}/ca.crt`), 'the sidecar requires client certificates');
  t.ok(chartQueryArgs.includes('--grpc-client-tls-secure') && chartQueryArgs.includes('--grpc-client-server-name=thanos-sidecar'), `the chart's Query speaks TLS: ${chartQueryArgs.join(' ')}`);
  const prometheus = startProcess(t, nodeTools.prometheus, injected.prometheusArgs, work);
  const sidecar = startProcess(t, nodeTools.thanos, sidecarArgs, work);
  await waitFor('the sidecar ready (it has read Prometheus\' external labels)', async () => {
    if (prometheus.child.exitCode !== null) throw new Error(`prometheus exited:\n${prometheus.log().slice(-2000)}`);
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited:\n${sidecar.log().slice(-2000)}`);
    return (await fetch('http://127.0.0.1:20902/-/ready', { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === 200 ? true : undefined;
  }, 60_000, 500);

  const query = startQuery(chartQueryArgs);
  const [store] = await waitFor('the chart\'s Query to list the sidecar as a healthy store', async () => {
    const stores = await healthyStores(query.http);
    return stores.length > 0 ? stores : undefined;
  }, 60_000, 1000).catch((error: Error) => {
    throw new Error(`${error.message}\n--- query ---\n${query.log().slice(-2000)}\n--- sidecar ---\n${sidecar.log().slice(-1500)}`);
  });
  t.ok(store?.labelSets.some((set) => set.cluster === 'grpc-tls-test'), `with Prometheus' external labels: ${JSON.stringify(store?.labelSets)}`);
  const answer = await waitFor('PromQL through Query', async () => {
    const response = await fetch(`http://${query.http}/api/v1/query?query=up`, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as { data: { result: { metric: Record<string, string> }[] } };
    return body.data.result.length > 0 ? body.data.result : undefined;
  }, 60_000, 1000);
  t.equal(answer[0]?.metric.cluster, 'grpc-tls-test', 'Query answers up{} from the sidecar over TLS');

  const noCertificate = startQuery(chartQueryArgs.filter((a) => !/^--grpc-client-tls-(cert|key)=/.test(a)));
  const plain = startQuery(chartQueryArgs.filter((a) => !a.startsWith('--grpc-client-')));
  // The first Query connected within seconds; give these the same time several times over.
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  for (const other of [noCertificate, plain]) {
    const ready = await fetch(`http://${other.http}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    t.equal(ready?.status, 200, `that Query runs and answers (${other.http})`);
  }
  t.same(await healthyStores(noCertificate.http), [], 'without a client certificate the sidecar refuses Query');
  t.same(await healthyStores(plain.http), [], 'without TLS Query gets nothing either');
  t.ok((await healthyStores(query.http)).length > 0, 'while the chart\'s Query still has it');
});
