// `thanos-injector check` end to end, against a real control plane (test/cluster): the chart
// installed with helm (webhook.url to an injector on loopback, certs.mode=external with the cluster
// CA as caBundle), the seed's Prometheus injected and registered. A healthy install passes every
// check; then each failure check knows is made for real and must fail its own row with exit 1.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { generateCertificates } from '../../src/certs/generate.ts';
import { freePort, waitFor } from '../support/net.ts';
import { dryRunInjected, root, startE2e, thanosInjector } from '../support/e2e.ts';

const INJECTOR_NAMESPACE = 'thanos-injector';
const RELEASE = 'tsi';
const FULLNAME = `${RELEASE}-thanos-sidecar-injector`;
const chart = join(root, 'charts/thanos-sidecar-injector');

interface Row {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
}

const { cluster, work } = await startE2e(t, 'thanos-injector-check-e2e-');

/** `node src/main.ts ARGS` with the cluster's KUBECONFIG, as a user runs it. */
const run = (args: string[]) => thanosInjector(args, cluster.env);

/** `check ARGS -o json`: the exit code and the rows by name. */
async function check(args: string[]): Promise<{ code: number; rows: Record<string, Row>; stderr: string }> {
  const result = await run(['check', ...args, '-o', 'json']);
  if (result.stdout === '') throw new Error(`check printed nothing (exit ${result.code}): ${result.stderr}`);
  const { checks } = JSON.parse(result.stdout) as { checks: Row[] };
  return { code: result.code, rows: Object.fromEntries(checks.map((row) => [row.name, row])), stderr: result.stderr };
}

/**
 * Only these rows fail (and the rest are ok, or the given statuses). This control plane has no
 * node, so pods never run: their containers are a warning (Pending), their sidecar's uploads and the
 * comparison of running pods' labels are skipped (test/node asks running ones).
 */
/** What a control plane without a node makes of rows about running pods (they stay Pending), and the seed's emptyDir (a warning). */
const NO_NODE: Record<string, Row['status']> = { 'sidecar uploads': 'skip', 'pod containers': 'warn', 'external labels distinct': 'skip', 'tsdb volume': 'warn' };

function expectStatuses(t: Test, rows: Record<string, Row>, expected: Record<string, Row['status']>): void {
  for (const row of Object.values(rows)) {
    t.equal(row.status, expected[row.name] ?? NO_NODE[row.name] ?? 'ok', `${row.name}: ${row.detail}`);
  }
}

// The serving certificate for 127.0.0.1, signed by the cluster CA, which is the webhook's caBundle.
const serving = await cluster.issueCert('thanos-injector', { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
const injectorPort = await freePort();
await cluster.helmOk(['install', RELEASE, chart, '--namespace', INJECTOR_NAMESPACE, '--create-namespace',
  '--set', `webhook.url=https://127.0.0.1:${injectorPort}/mutate`,
  '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${serving.ca}`, '--set', 'registration.enabled=false',
  // Mode auto is both on this cluster, and the policy's hook Job needs a kubelet: the webhook alone here.
  '--set', 'injection.mode=webhook']);

/** The injector as a real process, with the configuration the chart rendered. */
const configFile = join(work, 'config.yaml');
await writeFile(configFile, await cluster.kubectlOk(['-n', INJECTOR_NAMESPACE, 'get', 'configmap', FULLNAME, '-o', 'jsonpath={.data.config\\.yaml}']));
let injector: ChildProcess | undefined;
let injectorLog = '';
async function startInjector(): Promise<void> {
  const healthPort = await freePort();
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--address', '127.0.0.1', '--port', String(injectorPort), '--health-port', String(healthPort),
    '--tls-cert-file', serving.cert, '--tls-key-file', serving.key, '--config', configFile], { cwd: root, env: { ...process.env, ...cluster.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => (injectorLog += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (injectorLog += chunk.toString()));
  injector = child;
  await waitFor('the injector to be ready', async () => {
    const response = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
    return response?.ok ? true : undefined;
  }, 30_000);
}
async function stopInjector(): Promise<void> {
  const child = injector;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
await startInjector();
t.teardown(stopInjector);
t.teardown(() => {
  if (!t.passing()) t.comment(`injector log (tail):\n${injectorLog.split('\n').slice(-30).join('\n')}`);
});

// The user's side: the namespace opted in, the bucket Secret, the seed's Prometheus.
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await cluster.kubectlOk(['apply', '-f', join(root, 'examples/objstore-secret.yaml')]);
const probe = JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace: 'monitoring' },
  spec: { containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0' }] },
});
await waitFor('the webhook configuration to be in force', () => dryRunInjected(cluster, probe), 30_000);
const example = join(root, 'examples/prometheus-deployment.yaml');
await cluster.kubectlOk(['apply', '-f', example]);
const POD = await waitFor('the Prometheus pod', async () => {
  const list = JSON.parse(await cluster.kubectlOk(['-n', 'monitoring', 'get', 'pods', '-l', 'app=prometheus', '-o', 'json'])) as { items: { metadata: { name: string } }[] };
  return list.items[0]?.metadata.name;
});
const registered = await run(['register', '--query-namespace', INJECTOR_NAMESPACE]);
if (registered.code !== 0) throw new Error(`register failed (${registered.code}): ${registered.stdout}${registered.stderr}`);
const podArgs = ['-n', 'monitoring', '--pod', POD];

void t.test('a healthy install, namespace and injected pod: every check ok (but the Pending pod\'s containers), exit 0', async (t) => {
  const { code, rows } = await check(podArgs);
  t.equal(code, 0, 'exit 0');
  expectStatuses(t, rows, {});
  t.same(Object.keys(rows), [
    'webhook configuration', 'webhooks', 'webhook matchConditions', 'injector reachable', 'caBundle', 'serving certificate expiry', 'injector configuration',
    'query registration configmap', 'namespace injection', 'external labels distinct', 'pod would be injected', 'pod injected',
    'pod containers', 'tsdb volume', 'sidecar up to date', 'objstore secret', 'prometheus external_labels', 'pod registered with query', 'sidecar uploads',
  ]);
  t.match(rows['sidecar up to date']?.detail, 'thanos-sidecar is what the current configuration injects', 'the pod as the apiserver stored it, uninjected and injected again with the install\'s configuration: current');
  t.match(rows['sidecar uploads']?.detail, 'the pod is Pending: no upload to look at yet', 'no node here: the sidecar is not asked');
  t.match(rows['tsdb volume']?.detail, /^Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod/, "the seed's emptyDir is a warning");
  t.match(rows['webhook configuration']?.detail, `${FULLNAME} (found by its webhook names)`, 'the default name falls back to the release-prefixed configuration');
  t.match(rows['caBundle']?.detail, `verifies the serving certificate from https://127.0.0.1:${injectorPort}, valid for 127.0.0.1`);
  t.match(rows['injector configuration']?.detail, `ConfigMap ${INJECTOR_NAMESPACE}/${FULLNAME} config.yaml`);
  t.match(rows['prometheus external_labels']?.detail, 'ConfigMap monitoring/prometheus-cm key prometheus.yml (--config.file=/etc/prometheus/prometheus.yml): cluster=prometheus-k8s');
  t.match(rows['pod registered with query']?.detail, 'dnssrv+_grpc._tcp.thanos-sidecar.monitoring.svc.cluster.local');

  const table = await run(['check', ...podArgs, '--webhook-config', FULLNAME]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^CHECK +STATUS +DETAIL\n/, 'a table by default');
  t.match(table.stdout, `webhook configuration         ok      MutatingWebhookConfiguration ${FULLNAME}\n`);
  t.match(table.stdout, /\npassed with warnings: 15 ok, 2 warn, 0 fail, 2 skip\n$/, 'only the Pending pod\'s containers and the seed\'s emptyDir warn');

  const install = await check([]);
  t.equal(install.code, 0, 'the install alone');
  t.equal(Object.keys(install.rows).length, 8);
});

void t.test('the namespace label removed: the namespace warns, the pod fails (it would come back without the sidecar)', async (t) => {
  await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection-']);
  t.teardown(() => cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']));
  const { code, rows } = await check(podArgs);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { 'namespace injection': 'warn', 'pod would be injected': 'fail' });
  t.match(rows['namespace injection']?.detail, 'not labelled thanos-injection: only pods labelled thanos-injection=enabled are injected');
  t.match(rows['pod would be injected']?.detail, 'no webhook selects it (namespace monitoring is not labelled thanos-injection and the pod is not labelled thanos-injection): a re-created pod (rollout, eviction) starts WITHOUT the sidecar; kubectl label namespace monitoring thanos-injection=enabled --overwrite');
  const namespaceOnly = await check(['-n', 'monitoring']);
  t.equal(namespaceOnly.code, 0, 'the namespace alone: a warning, exit 0 (pods may opt in one by one)');
});

void t.test('the objstore Secret deleted', async (t) => {
  await cluster.kubectlOk(['-n', 'monitoring', 'delete', 'secret', 'thanos-objstore']);
  t.teardown(() => cluster.kubectlOk(['apply', '-f', join(root, 'examples/objstore-secret.yaml')]));
  const { code, rows } = await check(podArgs);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { 'objstore secret': 'fail' });
  t.match(rows['objstore secret']?.detail, 'Secret monitoring/thanos-objstore not found (mounted by thanos-sidecar for --objstore.config-file=/etc/thanos/objstore/objstore.yml): the sidecar\'s volume cannot mount, so the pod cannot start; kubectl -n monitoring create secret generic thanos-objstore');
});

void t.test('the Prometheus ConfigMap without external_labels', async (t) => {
  const docs = parseAllDocuments(await readFile(example, 'utf8')).map((doc) => doc.toJS() as { kind: string; data?: Record<string, string> });
  const configMap = docs.find((doc) => doc.kind === 'ConfigMap');
  if (configMap?.data === undefined) throw new Error('the example has no ConfigMap');
  configMap.data['prometheus.yml'] = stringify({ global: { scrape_interval: '5s' }, scrape_configs: [{ job_name: 'prometheus', static_configs: [{ targets: ['localhost:9090'] }] }] });
  await cluster.kubectlOk(['apply', '-f', '-'], stringify(configMap));
  t.teardown(() => cluster.kubectlOk(['apply', '-f', example]));
  const { code, rows } = await check(podArgs);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { 'prometheus external_labels': 'fail' });
  t.match(rows['prometheus external_labels']?.detail, 'ConfigMap monitoring/prometheus-cm key prometheus.yml (--config.file=/etc/prometheus/prometheus.yml) has no global.external_labels: the sidecar exits without unique external labels');
});

void t.test("a stale caBundle (helm upgrade with another CA's bundle)", async (t) => {
  const other = await generateCertificates(['127.0.0.1']);
  const otherCa = join(work, 'other-ca.crt');
  await writeFile(otherCa, other.caCert);
  await cluster.helmOk(['upgrade', RELEASE, chart, '--namespace', INJECTOR_NAMESPACE, '--reuse-values', '--set-file', `certs.caBundle=${otherCa}`]);
  t.teardown(() => cluster.helmOk(['upgrade', RELEASE, chart, '--namespace', INJECTOR_NAMESPACE, '--reuse-values', '--set-file', `certs.caBundle=${serving.ca}`]));
  const { code, rows } = await check(podArgs);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { caBundle: 'fail' });
  t.match(rows['caBundle']?.detail, /^stale caBundle \(CN=thanos-injector-ca-[0-9a-f]+\): it does not verify the serving certificate from https:\/\/127\.0\.0\.1:\d+: .*pods are created WITHOUT the sidecar \(failurePolicy Ignore\)/);
});

void t.test('a release that calls its Service: the certificate from its Secret, no ready injector pod', async (t) => {
  // No kubelet here, so the chart's injector pods stay Pending: the Service has no ready endpoint.
  const release = 'svc';
  const namespace = 'injector-svc';
  const fullname = `${release}-thanos-sidecar-injector`;
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  const pair = await cluster.issueCert('svc-injector', { dnsNames: [`${fullname}.${namespace}.svc`, `${fullname}.${namespace}.svc.cluster.local`] });
  await cluster.kubectlOk(['-n', namespace, 'create', 'secret', 'tls', `${fullname}-tls`, `--cert=${pair.cert}`, `--key=${pair.key}`]);
  await cluster.helmOk(['install', release, chart, '--namespace', namespace, '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${pair.ca}`, '--set', 'registration.enabled=false', '--set', 'injection.mode=webhook']);
  t.teardown(async () => {
    // No kubelet here either for the chart's pre-delete hook (its Job deletes the webhook configuration
    // first; the node's install test runs it): Helm deletes everything itself.
    await cluster.helmOk(['uninstall', release, '--namespace', namespace, '--wait', '--no-hooks']);
    await cluster.kubectlOk(['delete', 'namespace', namespace, '--wait=false']);
  });
  const { code, rows } = await check(['--webhook-config', fullname]);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { 'injector reachable': 'fail', 'query registration configmap': 'warn' });
  t.match(rows['webhooks']?.detail, `calls Service ${namespace}/${fullname}:443/mutate`);
  t.match(rows['injector reachable']?.detail, `Service ${namespace}/${fullname} has no ready endpoint`);
  t.match(rows['caBundle']?.detail, `verifies the serving certificate from Secret ${namespace}/${fullname}-tls, valid for ${fullname}.${namespace}.svc`);
  t.match(rows['injector configuration']?.detail, `ConfigMap ${namespace}/${fullname} config.yaml`);
  t.match(rows['query registration configmap']?.detail, `ConfigMap ${namespace}/thanos-query-endpoints not found`);

  await cluster.kubectlOk(['-n', namespace, 'delete', 'secret', `${fullname}-tls`]);
  const noSecret = await check(['--webhook-config', fullname]);
  expectStatuses(t, noSecret.rows, { 'injector reachable': 'fail', 'query registration configmap': 'warn', caBundle: 'fail', 'serving certificate expiry': 'skip' });
  t.match(noSecret.rows['caBundle']?.detail, `Secret ${namespace}/${fullname}-tls (the Secret volume at --cert-dir of Deployment ${fullname}) not found`);

  const two = await check([]);
  t.match(two.rows['webhook configuration'], { status: 'warn', detail: `2 configurations have *.thanos-sidecar-injector.io webhooks (${fullname}, ${FULLNAME})` },
    'two releases: a warning that names both');
});

void t.test('the injector stopped: its url does not answer', async (t) => {
  await stopInjector();
  t.teardown(startInjector);
  const { code, rows } = await check(podArgs);
  t.equal(code, 1, 'exit 1');
  expectStatuses(t, rows, { 'injector reachable': 'fail', caBundle: 'skip', 'serving certificate expiry': 'skip' });
  t.match(rows['injector reachable']?.detail, `https://127.0.0.1:${injectorPort}/mutate: ECONNREFUSED: the injector is not running or not reachable, so pods are created WITHOUT the sidecar`);
});

void t.test('API errors are one line, exit 1; bad flags exit 2', async (t) => {
  const kubeconfig = join(work, 'dead.kubeconfig');
  const port = await freePort();
  await writeFile(kubeconfig, (await readFile(cluster.kubeconfig, 'utf8')).replace(cluster.server, `https://127.0.0.1:${port}`));
  const dead = await run(['check', '--kubeconfig', kubeconfig]);
  t.equal(dead.code, 1);
  t.equal(dead.stdout, '');
  t.equal(dead.stderr, `thanos-injector: cannot read MutatingWebhookConfiguration thanos-sidecar-injector: no answer from the API server https://127.0.0.1:${port}: ECONNREFUSED\n`);
  const noNamespace = await run(['check', '--pod', POD]);
  t.equal(noNamespace.code, 2);
  t.match(noNamespace.stderr, '--pod needs -n NAMESPACE');
  const badOutput = await run(['check', '-o', 'yaml']);
  t.equal(badOutput.code, 2);
  t.match(badOutput.stderr, '--output: "yaml" is not valid; expected table or json');
});
