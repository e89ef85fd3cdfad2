// certs.mode=auto end to end, against a real control plane (test/cluster): the injector runs as a
// real process with KUBECONFIG and keeps its CA and serving certificate in a Secret and the
// webhook configuration's caBundle equal to that CA. The apiserver verifying our certificate
// against the caBundle we patched is the proof that matters; every change is made with kubectl,
// as a user, Helm or a GitOps tool would, and the time to recover is measured.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { issueServingCertificate } from '../../src/certs/generate.ts';
import { exec, startCluster, type ExecResult } from '../cluster/cluster.ts';
import { freePort, waitFor } from '../support/net.ts';

const root = new URL('../..', import.meta.url).pathname;
const NAMESPACE = 'thanos-injector';
const SECRET = 'thanos-injector-tls';
const WEBHOOK_CONFIG = 'thanos-sidecar-injector-auto';
const TEST_NAMESPACE = 'monitoring';

interface SecretJson {
  type?: string;
  metadata: { resourceVersion: string };
  data: Record<string, string>;
}
interface WebhookConfigurationJson {
  webhooks: { name: string; clientConfig: { caBundle?: string } }[];
}
interface PodJson {
  spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
}



/** Seconds `probe` took to come true, measured from now. */
async function secondsUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  await waitFor(what, async () => ((await probe()) ? true : undefined), timeoutMs);
  return (performance.now() - started) / 1000;
}

/** The SHA-256 fingerprint of the certificate a new TLS connection is served (not verified here). */
function servedFingerprint(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.setTimeout(3000, () => socket.destroy());
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => resolve(undefined));
  });
}

/** Whether a TLS client that trusts only `ca` accepts what `port` serves for 127.0.0.1. */
function verifiedBy(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

const cluster = await startCluster({ log: (message) => t.comment(message) });
t.teardown(() => cluster.stop());
t.comment(`cluster ${cluster.serverVersion} at ${cluster.server}`);
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-e2e-certs-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await cluster.kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}
async function secret(): Promise<SecretJson | undefined> {
  const result = await cluster.kubectl(['-n', NAMESPACE, 'get', 'secret', SECRET, '-o', 'json']);
  return result.code === 0 ? (JSON.parse(result.stdout) as SecretJson) : undefined;
}
const decoded = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');
async function caBundles(): Promise<(string | undefined)[]> {
  const configuration = JSON.parse(await kubectlOk(['get', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG, '-o', 'json'])) as WebhookConfigurationJson;
  return configuration.webhooks.map((webhook) => webhook.clientConfig.caBundle);
}
async function caBundleIs(caCertBase64: string | undefined): Promise<boolean> {
  return (await caBundles()).every((bundle) => bundle === caCertBase64);
}

/** `thanos-injector serve` in auto mode, as a real process. */
class Injector {
  readonly name: string;
  readonly env: Record<string, string>;
  process: ChildProcess | undefined;
  port = 0;
  healthPort = 0;
  log = '';
  exited: Promise<number | null> = Promise.resolve(null);
  constructor(name: string, env: Record<string, string>) {
    this.name = name;
    this.env = env;
  }

  spawn(): void {
    const args = ['src/main.ts', 'serve', '--certs-secret', SECRET, '--webhook-config', WEBHOOK_CONFIG, '--dns-name', '127.0.0.1',
      '--certs-check-interval', '1', '--address', '127.0.0.1', '--port', String(this.port), '--health-port', String(this.healthPort)];
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, POD_NAMESPACE: NAMESPACE, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.process = child;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.healthPort ||= await freePort();
    this.spawn();
    await waitFor(`${this.name} to be ready`, async () => {
      if (this.process?.exitCode !== null) throw new Error(`${this.name} exited ${this.process?.exitCode}:\n${this.log}`);
      const response = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`).catch(() => undefined);
      return response?.ok ? true : undefined;
    });
  }

  async stop(): Promise<number | null> {
    if (this.process && this.process.exitCode === null) this.process.kill('SIGTERM');
    return this.exited;
  }

  async metric(name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.healthPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }

  /** The private folder it serves from, as logged at start-up. */
  get certDir(): string | undefined {
    return /from (\/\S+thanos-injector-certs-\w+)/.exec(this.log)?.[1];
  }
}

const prometheusPod = (name: string) => JSON.stringify({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: TEST_NAMESPACE },
  spec: {
    containers: [{
      name: 'prometheus',
      image: 'quay.io/prometheus/prometheus:v3.5.0',
      args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
      volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
    }],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
});
const sidecars = (pod: PodJson) => [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].filter((c) => c.name === 'thanos-sidecar').length;

/** Creates a Prometheus pod through kubectl once the apiserver calls the webhook with the current
 * caBundle (it applies configuration changes asynchronously); returns its stored form. */
async function createInjectedPod(name: string): Promise<PodJson> {
  await waitFor('the apiserver to call the webhook with the current caBundle', async () => {
    const dryRun = await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], prometheusPod(`${name}-probe`));
    return dryRun.code === 0 && dryRun.stdout.includes('thanos-sidecar') ? true : undefined;
  });
  await kubectlOk(['apply', '-f', '-'], prometheusPod(name));
  return JSON.parse(await kubectlOk(['-n', TEST_NAMESPACE, 'get', 'pod', name, '-o', 'json'])) as PodJson;
}

await kubectlOk(['create', 'namespace', NAMESPACE]);
await kubectlOk(['create', 'namespace', TEST_NAMESPACE]);
await kubectlOk(['label', 'namespace', TEST_NAMESPACE, 'thanos-injection=enabled']);

const first = new Injector('injector-1', cluster.env);
first.port = await freePort();
first.healthPort = await freePort();
// The webhook configuration as installed before the injector ever ran: no caBundle at all.
const webhookConfiguration = readFileSync(join(root, 'test/e2e/webhook-configuration.yaml'), 'utf8')
  .replace(/^ {2}name: thanos-sidecar-injector$/m, `  name: ${WEBHOOK_CONFIG}`)
  .replace(/^ *caBundle: CA_BUNDLE\n/gm, '')
  .replaceAll('WEBHOOK_URL', `https://127.0.0.1:${first.port}/mutate`)
  .replaceAll('FAILURE_POLICY', 'Fail')
  .replaceAll('INJECTOR_NAMESPACE', NAMESPACE);
await kubectlOk(['apply', '-f', '-'], webhookConfiguration);

const startedAt = performance.now();
await first.start();
const readyAt = performance.now();
t.teardown(() => first.stop());
t.teardown(() => {
  if (t.passing()) return;
  t.comment(`injector-1 log (tail):\n${first.log.split('\n').slice(-40).join('\n')}`);
});

void t.test('at start the Secret is created with ca.crt, ca.key, tls.crt and tls.key, and its pair is served', async (t) => {
  const created = await secret();
  t.ok(created, `Secret ${NAMESPACE}/${SECRET} exists`);
  t.same(Object.keys(created?.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  t.equal(created?.type, 'kubernetes.io/tls');
  const cert = new X509Certificate(decoded(created?.data['tls.crt']));
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1', 'an IP SAN for --dns-name 127.0.0.1');
  t.equal(await servedFingerprint(first.port), cert.fingerprint256, 'the Secret\'s tls.crt is served');
  t.ok(await verifiedBy(first.port, decoded(created?.data['ca.crt'])), 'and verifies against ca.crt for 127.0.0.1');
  t.match(first.log, `created Secret ${NAMESPACE}/${SECRET} with a new CA and serving certificate`);
  const dir = first.certDir;
  t.ok(dir, 'the private folder is logged');
  if (dir) t.equal((await stat(dir)).mode & 0o777, 0o700, 'private folder 0700');
  t.equal(await first.metric('thanos_injector_certificate_expiry_timestamp_seconds'), cert.validToDate.getTime() / 1000, 'expiry metric');
});

void t.test('the empty caBundle of every webhook is patched to the Secret\'s ca.crt', async (t) => {
  const caCert = (await secret())?.data['ca.crt'];
  await waitFor('caBundle to be patched', async () => ((await caBundleIs(caCert)) ? true : undefined));
  t.comment(`injector-1 ready ${((readyAt - startedAt) / 1000).toFixed(2)} s after spawn (Secret created meanwhile); caBundle patched ${((performance.now() - readyAt) / 1000).toFixed(2)} s after ready`);
  t.same(await caBundles(), [caCert, caCert]);
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 1, 'one PATCH for both webhooks');
  t.match(first.log, /set caBundle of MutatingWebhookConfiguration thanos-sidecar-injector-auto .*namespace\.thanos-injector\.io \(was empty\), pod\.thanos-injector\.io \(was empty\)/);
});

void t.test('a Prometheus pod created with kubectl is injected: the apiserver trusts our certificate through the patched caBundle', async (t) => {
  const pod = await createInjectedPod('prometheus-1');
  t.equal(sidecars(pod), 1, 'exactly one thanos-sidecar');
});

void t.test('caBundle blanked (helm upgrade) or stale (GitOps re-apply) is restored within seconds', async (t) => {
  const caCert = (await secret())?.data['ca.crt'];
  const clusterCa = readFileSync(cluster.certs.ca).toString('base64');
  await kubectlOk(['patch', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG, '--type=json', '-p', JSON.stringify([
    { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: '' },
    { op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: clusterCa },
  ])]);
  const patched = await secondsUntil('caBundle to be restored after kubectl patch', () => caBundleIs(caCert), 10_000);
  t.comment(`caBundle restored ${patched.toFixed(2)} s after kubectl patch blanked one webhook and put a stale CA in the other (--certs-check-interval 1)`);
  t.ok(patched < 5, 'within 5 seconds');
  t.match(first.log, /namespace\.thanos-injector\.io \(was empty\), pod\.thanos-injector\.io \(was a different CA\)/);

  await kubectlOk(['replace', '-f', '-'], webhookConfiguration);
  t.same(await caBundles(), [undefined, undefined], 'kubectl replace of the manifest dropped both caBundles');
  const replaced = await secondsUntil('caBundle to be restored after kubectl replace', () => caBundleIs(caCert), 10_000);
  t.comment(`caBundle restored ${replaced.toFixed(2)} s after kubectl replace of the original manifest`);
  t.ok(replaced < 5, 'within 5 seconds');
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 3, 'one PATCH per repair');

  const pod = await createInjectedPod('prometheus-2');
  t.equal(sidecars(pod), 1, 'pods are injected again');
});

// The second replica runs as a ServiceAccount with exactly the chart's RBAC (templates/rbac.yaml).
const kubeconfig = join(work, 'injector.kubeconfig');
async function serviceAccountKubeconfig(): Promise<void> {
  await kubectlOk(['-n', NAMESPACE, 'create', 'serviceaccount', 'injector']);
  const token = (await kubectlOk(['-n', NAMESPACE, 'create', 'token', 'injector', '--duration=1h'])).trim();
  await copyFile(cluster.kubeconfig, kubeconfig);
  const config = (args: string[]): Promise<ExecResult> => exec(cluster.bin.kubectl, ['--kubeconfig', kubeconfig, 'config', ...args]);
  for (const args of [['set-credentials', 'injector', `--token=${token}`], ['set-context', '--current', '--user=injector']]) {
    const result = await config(args);
    if (result.code !== 0) throw new Error(`kubectl config ${args[0]} failed: ${result.stderr}`);
  }
}
const rbac = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: injector, namespace: ${NAMESPACE} }
rules:
  - { apiGroups: [""], resources: [secrets], resourceNames: [${SECRET}], verbs: [get, update] }
  - { apiGroups: [""], resources: [secrets], verbs: [create] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: injector, namespace: ${NAMESPACE} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: injector }
subjects: [{ kind: ServiceAccount, name: injector, namespace: ${NAMESPACE} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: injector }
rules:
  - { apiGroups: [admissionregistration.k8s.io], resources: [mutatingwebhookconfigurations], resourceNames: [${WEBHOOK_CONFIG}], verbs: [get, patch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: injector }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: injector }
subjects: [{ kind: ServiceAccount, name: injector, namespace: ${NAMESPACE} }]
`;
const second = new Injector('injector-2', { KUBECONFIG: kubeconfig });
t.teardown(() => second.stop());
t.teardown(() => {
  if (t.passing()) return;
  t.comment(`injector-2 log (tail):\n${second.log.split('\n').slice(-40).join('\n')}`);
});

void t.test('without RBAC on the Secret, start-up fails with one line naming the call and the missing permission', async (t) => {
  await serviceAccountKubeconfig();
  const denied = new Injector('injector-denied', { KUBECONFIG: kubeconfig });
  denied.port = await freePort();
  denied.healthPort = await freePort();
  denied.spawn();
  t.equal(await denied.exited, 1, 'exit code 1');
  t.match(denied.log, `thanos-injector: certs auto mode: read Secret ${NAMESPACE}/${SECRET}: HTTP 403 (secrets "${SECRET}" is forbidden: User "system:serviceaccount:${NAMESPACE}:injector" cannot get resource "secrets"`);
  t.match(denied.log, `the injector's ServiceAccount likely lacks the RBAC permission "get" on secrets in namespace ${NAMESPACE}`);
  t.equal(denied.log.trim().split('\n').length, 1, 'one line');
});

void t.test('a second replica (with the chart\'s RBAC) uses the same Secret: no new CA, no write, the same certificate', async (t) => {
  await kubectlOk(['apply', '-f', '-'], rbac);
  const before = await secret();
  await second.start();
  const after = await secret();
  t.equal(after?.data['ca.crt'], before?.data['ca.crt'], 'ca.crt unchanged');
  t.equal(after?.metadata.resourceVersion, before?.metadata.resourceVersion, 'the Secret was not written at all');
  t.equal(await servedFingerprint(second.port), await servedFingerprint(first.port), 'both replicas serve the same certificate');
  t.match(second.log, `serving the certificate of Secret ${NAMESPACE}/${SECRET}`);
  t.notMatch(second.log, /"level":(40|50)/, 'no warning or error in its log');
});

void t.test('a pair replaced in the Secret (same CA) is served by both replicas within seconds, without restart', async (t) => {
  const current = await secret();
  const caCert = decoded(current?.data['ca.crt']);
  const pair = await issueServingCertificate({ cert: caCert, key: decoded(current?.data['ca.key']) }, ['127.0.0.1'], 90);
  const fingerprint = new X509Certificate(pair.cert).fingerprint256;
  const pids = [first.process?.pid, second.process?.pid];
  await kubectlOk(['-n', NAMESPACE, 'patch', 'secret', SECRET, '--type=merge', '-p', JSON.stringify({
    data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') },
  })]);
  const seconds = await secondsUntil('both replicas to serve the new pair', async () =>
    (await servedFingerprint(first.port)) === fingerprint && (await servedFingerprint(second.port)) === fingerprint, 15_000);
  t.comment(`new pair served by both replicas ${seconds.toFixed(2)} s after kubectl patch of the Secret`);
  t.ok(seconds < 5, 'within 5 seconds');
  t.same([first.process?.pid, second.process?.pid], pids, 'no restart');
  t.ok(await verifiedBy(first.port, caCert), 'verifies against the unchanged CA');
  t.equal(decoded((await secret())?.data['tls.crt']), pair.cert, 'the replicas kept the pair (same CA, covers 127.0.0.1, 90 days)');
  t.ok(await caBundleIs(current?.data['ca.crt']), 'caBundle unchanged');
  t.equal(await first.metric('thanos_injector_certificate_expiry_timestamp_seconds'), new X509Certificate(pair.cert).validToDate.getTime() / 1000, 'expiry metric follows');
  t.equal(sidecars(await createInjectedPod('prometheus-3')), 1, 'pods are injected');
});

void t.test('the Secret deleted: the replicas converge on one new CA, caBundle follows, both serve it', async (t) => {
  const old = await secret();
  await kubectlOk(['-n', NAMESPACE, 'delete', 'secret', SECRET]);
  const deletedAt = performance.now();
  const recreated = await waitFor('a new Secret', async () => {
    const current = await secret();
    return current && current.data['ca.crt'] !== old?.data['ca.crt'] ? current : undefined;
  });
  const caCert = recreated.data['ca.crt'];
  const fingerprint = new X509Certificate(decoded(recreated.data['tls.crt'])).fingerprint256;
  await waitFor('caBundle to follow the new CA', async () => ((await caBundleIs(caCert)) ? true : undefined));
  const caBundleSeconds = (performance.now() - deletedAt) / 1000;
  await waitFor('both replicas to serve the new certificate', async () =>
    (await servedFingerprint(first.port)) === fingerprint && (await servedFingerprint(second.port)) === fingerprint ? true : undefined);
  t.comment(`after kubectl delete secret: caBundle on the new CA in ${caBundleSeconds.toFixed(2)} s, both replicas serving it in ${((performance.now() - deletedAt) / 1000).toFixed(2)} s`);
  t.ok(await verifiedBy(second.port, decoded(caCert)), 'the new certificate verifies against the new CA');
  await new Promise((resolve) => setTimeout(resolve, 2500)); // a couple more checks: nobody rotates again
  t.equal((await secret())?.data['ca.crt'], caCert, 'one CA: the replicas converged');
  t.equal(sidecars(await createInjectedPod('prometheus-4')), 1, 'pods are injected with the new CA');
});

void t.test('SIGTERM: both replicas exit 0 and remove their private folder', async (t) => {
  const dirs = [first.certDir, second.certDir];
  t.same(await Promise.all([first.stop(), second.stop()]), [0, 0]);
  for (const dir of dirs) {
    t.ok(dir);
    if (dir) await t.rejects(stat(dir), { code: 'ENOENT' }, `${dir} removed`);
  }
  t.notMatch(first.log, /"level":50/, 'no error logged by injector-1');
});
