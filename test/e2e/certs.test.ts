// certs.mode=auto end to end, against a real control plane (test/cluster): the chart is installed
// with the real helm binary, and its injector Deployment runs as two local processes with the
// container args the chart rendered, as the chart's own ServiceAccount (so its RBAC is what is
// exercised). They keep the CA and serving certificate in a Secret and the webhook
// configuration's caBundle equal to that CA. The apiserver verifying our certificate against the
// caBundle we patched is the proof that matters; every change is made with kubectl or helm, as a
// user, Helm or a GitOps tool would, and the time to recover is measured.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseAllDocuments } from 'yaml';
import { issueServingCertificate } from '../../src/certs/generate.ts';
import { exec, type ExecResult } from '../cluster/cluster.ts';
import { prometheusPod } from '../support/admission.ts';
import { freePort, waitFor } from '../support/net.ts';
import { dryRunInjected, root, sidecars, startE2e } from '../support/e2e.ts';

const chart = join(root, 'charts/thanos-sidecar-injector');
const RELEASE = 'tsi';
const NAMESPACE = 'thanos-injector';
const TEST_NAMESPACE = 'monitoring';

interface SecretJson {
  type?: string;
  metadata: { resourceVersion: string };
  data: Record<string, string>;
}
interface WebhookConfigurationJson {
  metadata: { generation: number };
  webhooks: { name: string; clientConfig: { caBundle?: string } }[];
}
interface PodJson {
  spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
}
interface ManifestObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template?: { spec?: { serviceAccountName?: string; containers?: { name: string; args?: string[] }[] } } };
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

const { cluster, work } = await startE2e(t, 'thanos-injector-e2e-certs-');

// The chart as a user installs it (certs.mode auto is the default), with the webhook pointing at the
// first replica on loopback: there is no kubelet to run the Deployment's pods. failurePolicy Fail,
// so that a caBundle the apiserver cannot verify us with fails the pod creation loudly instead of
// storing the pod without the sidecar.
const webhookPort = await freePort();
// Mode webhook: mode auto is both on this cluster, and the policy's hook Job needs a kubelet.
const values = ['--namespace', NAMESPACE, '--set', `webhook.url=https://127.0.0.1:${webhookPort}/mutate`, '--set', 'webhook.failurePolicy=Fail', '--set', 'injection.mode=webhook'];
await cluster.helmOk(['install', RELEASE, chart, '--create-namespace', ...values]);

// What the chart rendered: the injector Deployment's container args, its ConfigMap, its
// ServiceAccount, and the names of its webhook configuration and certificate Secret.
const manifest = parseAllDocuments(await cluster.helmOk(['get', 'manifest', RELEASE, '--namespace', NAMESPACE]))
  .map((document) => document.toJS() as ManifestObject | null)
  .filter((object): object is ManifestObject => object !== null);
const podSpec = manifest.find((o) => o.kind === 'Deployment' && o.spec?.template?.spec?.containers?.some((c) => c.name === 'injector'))?.spec?.template?.spec;
const renderedArgs = podSpec?.containers?.find((c) => c.name === 'injector')?.args ?? [];
const SERVICE_ACCOUNT = podSpec?.serviceAccountName ?? '';
const WEBHOOK_CONFIG = manifest.find((o) => o.kind === 'MutatingWebhookConfiguration')?.metadata.name ?? '';
const SECRET = renderedArgs.find((arg) => arg.startsWith('--certs-secret='))?.slice('--certs-secret='.length) ?? '';
const FULLNAME = `${RELEASE}-thanos-sidecar-injector`;
const renderedConfig = manifest.find((o) => o.kind === 'ConfigMap' && o.metadata.name === FULLNAME)?.data?.['config.yaml'];
if (!SERVICE_ACCOUNT || !renderedConfig || WEBHOOK_CONFIG !== FULLNAME || SECRET !== `${FULLNAME}-tls`) {
  throw new Error(`unexpected chart rendering: ServiceAccount "${SERVICE_ACCOUNT}", MutatingWebhookConfiguration "${WEBHOOK_CONFIG}", Secret "${SECRET}", config.yaml ${renderedConfig ? 'found' : 'missing'}`);
}
t.comment(`injector args rendered by the chart: ${renderedArgs.join(' ')}`);
const configFile = join(work, 'config.yaml');
await writeFile(configFile, renderedConfig);
// The names a serving certificate must cover: the Service's, from --service-name, and the
// webhook.url host, from the --dns-name the chart adds for it.
const SERVING_NAMES = [FULLNAME, `${FULLNAME}.${NAMESPACE}`, `${FULLNAME}.${NAMESPACE}.svc`, `${FULLNAME}.${NAMESPACE}.svc.cluster.local`, '127.0.0.1'];

/** The rendered container args with only what running on loopback needs changed. */
function localArgs(port: number, healthPort: number): string[] {
  const substitutions: Record<string, string> = { '--port': String(port), '--health-port': String(healthPort), '--config': configFile };
  const substituted = new Set<string>();
  const args = renderedArgs.map((arg) => {
    const flag = arg.split('=', 1)[0] ?? '';
    if (substitutions[flag] === undefined) return arg;
    substituted.add(flag);
    return `${flag}=${substitutions[flag]}`;
  });
  const missing = Object.keys(substitutions).filter((flag) => !substituted.has(flag));
  if (missing.length > 0) throw new Error(`the chart's injector args have no ${missing.join(', ')}: ${renderedArgs.join(' ')}`);
  // --certs-check-interval=1 instead of the default 30 s, only so that this test is fast: a repair
  // is then due within a second of a drift.
  return [...args, '--address=127.0.0.1', '--certs-check-interval=1'];
}

/** A kubeconfig for the cluster whose user is a token of `serviceAccount` in the release namespace. */
async function serviceAccountKubeconfig(serviceAccount: string): Promise<string> {
  const file = join(work, `${serviceAccount}.kubeconfig`);
  const token = (await cluster.kubectlOk(['-n', NAMESPACE, 'create', 'token', serviceAccount, '--duration=1h'])).trim();
  await copyFile(cluster.kubeconfig, file);
  const config = (args: string[]): Promise<ExecResult> => exec(cluster.bin.kubectl, ['--kubeconfig', file, 'config', ...args]);
  for (const args of [['set-credentials', serviceAccount, `--token=${token}`], ['set-context', '--current', `--user=${serviceAccount}`]]) {
    const result = await config(args);
    if (result.code !== 0) throw new Error(`kubectl config ${args[0]} failed: ${result.stderr}`);
  }
  return file;
}

async function secret(): Promise<SecretJson | undefined> {
  const result = await cluster.kubectl(['-n', NAMESPACE, 'get', 'secret', SECRET, '-o', 'json']);
  return result.code === 0 ? (JSON.parse(result.stdout) as SecretJson) : undefined;
}
const decoded = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');
async function webhookConfiguration(): Promise<WebhookConfigurationJson> {
  return JSON.parse(await cluster.kubectlOk(['get', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG, '-o', 'json'])) as WebhookConfigurationJson;
}
async function caBundles(): Promise<(string | undefined)[]> {
  return (await webhookConfiguration()).webhooks.map((webhook) => webhook.clientConfig.caBundle);
}
async function caBundleIs(caCertBase64: string | undefined): Promise<boolean> {
  return (await caBundles()).every((bundle) => bundle === caCertBase64);
}

/** `kubectl get --watch` of the webhook configuration: the caBundles of every version stored, each
 * with the time its event arrived ('' for an empty or missing caBundle). */
function watchCaBundles(): { versions: { at: number; bundles: string[] }[]; ready: Promise<unknown>; stop: () => void } {
  const versions: { at: number; bundles: string[] }[] = [];
  const template = '{{range .webhooks}}{{with .clientConfig.caBundle}}{{.}}{{else}}-{{end}} {{end}}{{"\\n"}}';
  const child = spawn(cluster.bin.kubectl, ['--kubeconfig', cluster.kubeconfig, 'get', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG,
    '--watch', '-o', `go-template=${template}`], { env: { ...process.env, NO_PROXY: '127.0.0.1,localhost' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) versions.push({ at: performance.now(), bundles: line.trim().split(' ').map((b) => (b === '-' ? '' : b)) });
  });
  return {
    versions,
    // The first event is the version stored when the watch starts.
    ready: waitFor('kubectl --watch to print the current version', () => Promise.resolve(versions.length > 0 ? true : undefined), 10_000),
    stop: () => child.kill('SIGTERM'),
  };
}

/** `thanos-injector serve` with the chart's container args, as a real process. */
class Injector {
  readonly name: string;
  readonly kubeconfig: string;
  process: ChildProcess | undefined;
  port = 0;
  healthPort = 0;
  log = '';
  exited: Promise<number | null> = Promise.resolve(null);
  constructor(name: string, kubeconfig: string) {
    this.name = name;
    this.kubeconfig = kubeconfig;
  }

  spawn(): void {
    const child = spawn(process.execPath, ['src/main.ts', ...localArgs(this.port, this.healthPort)], {
      cwd: root,
      // As the Deployment's pod would have it: POD_NAMESPACE from the downward API, and API access
      // as the pod's ServiceAccount.
      env: { ...process.env, POD_NAMESPACE: NAMESPACE, KUBECONFIG: this.kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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

/** A Prometheus pod (../support/admission.ts) as kubectl input. */
const podJson = (name: string) => JSON.stringify(prometheusPod({ name, namespace: TEST_NAMESPACE }));

/** Creates a Prometheus pod through kubectl once the apiserver calls the webhook with the current
 * caBundle (it applies configuration changes asynchronously); returns its stored form. */
async function createInjectedPod(name: string): Promise<PodJson> {
  await waitFor('the apiserver to call the webhook with the current caBundle', () => dryRunInjected(cluster, podJson(`${name}-probe`)));
  await cluster.kubectlOk(['apply', '-f', '-'], podJson(name));
  return JSON.parse(await cluster.kubectlOk(['-n', TEST_NAMESPACE, 'get', 'pod', name, '-o', 'json'])) as PodJson;
}

await cluster.kubectlOk(['create', 'namespace', TEST_NAMESPACE]);
await cluster.kubectlOk(['label', 'namespace', TEST_NAMESPACE, 'thanos-injection=enabled']);

// Both replicas are the chart's ServiceAccount: templates/rbac.yaml is all they may do.
const kubeconfig = await serviceAccountKubeconfig(SERVICE_ACCOUNT);
const first = new Injector('injector-1', kubeconfig);
first.port = webhookPort;

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
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1', 'an IP SAN for the webhook.url host (the chart\'s --dns-name=127.0.0.1)');
  for (const name of SERVING_NAMES.slice(0, -1)) t.equal(cert.checkHost(name, { subject: 'never' }), name, `a DNS SAN ${name} (--service-name)`);
  t.equal(await servedFingerprint(first.port), cert.fingerprint256, 'the Secret\'s tls.crt is served');
  t.ok(await verifiedBy(first.port, decoded(created?.data['ca.crt'])), 'and verifies against ca.crt for 127.0.0.1');
  t.match(first.log, `created Secret ${NAMESPACE}/${SECRET} with a new CA and serving certificate`);
  const dir = first.certDir;
  t.ok(dir, 'the private folder is logged');
  if (dir) t.equal((await stat(dir)).mode & 0o777, 0o700, 'private folder 0700');
  t.equal(await first.metric('thanos_injector_certificate_expiry_timestamp_seconds'), cert.validToDate.getTime() / 1000, 'expiry metric');
});

void t.test('the empty caBundle of every webhook the chart installed is patched to the Secret\'s ca.crt', async (t) => {
  const caCert = (await secret())?.data['ca.crt'];
  await waitFor('caBundle to be patched', async () => ((await caBundleIs(caCert)) ? true : undefined));
  t.comment(`injector-1 ready ${((readyAt - startedAt) / 1000).toFixed(2)} s after spawn (Secret created meanwhile); caBundle patched ${((performance.now() - readyAt) / 1000).toFixed(2)} s after ready`);
  t.same(await caBundles(), [caCert, caCert]);
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 1, 'one PATCH for both webhooks');
  t.match(first.log, new RegExp(`set caBundle of MutatingWebhookConfiguration ${WEBHOOK_CONFIG} .*namespace\\.thanos-sidecar-injector\\.io \\(was empty\\), pod\\.thanos-sidecar-injector\\.io \\(was empty\\)`));
});

void t.test('a Prometheus pod created with kubectl is injected: the apiserver trusts our certificate through the patched caBundle', async (t) => {
  const pod = await createInjectedPod('prometheus-1');
  t.equal(sidecars(pod), 1, 'exactly one thanos-sidecar');
});

void t.test('caBundle blanked or stale (kubectl patch) is restored within seconds', async (t) => {
  const caCert = (await secret())?.data['ca.crt'];
  const clusterCa = readFileSync(cluster.certs.ca).toString('base64');
  await cluster.kubectlOk(['patch', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG, '--type=json', '-p', JSON.stringify([
    { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: '' },
    { op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: clusterCa },
  ])]);
  const patched = await secondsUntil('caBundle to be restored after kubectl patch', () => caBundleIs(caCert), 10_000);
  t.comment(`caBundle restored ${patched.toFixed(2)} s after kubectl patch blanked one webhook and put a stale CA in the other (--certs-check-interval 1)`);
  t.ok(patched < 5, 'within 5 seconds');
  t.match(first.log, /namespace\.thanos-sidecar-injector\.io \(was empty\), pod\.thanos-sidecar-injector\.io \(was a different CA\)/);
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 2, 'one PATCH for the repair');
});

void t.test('a plain helm upgrade with the same values leaves caBundle alone: helm 3\'s three-way merge keeps fields it never set', async (t) => {
  const caCert = (await secret())?.data['ca.crt'];
  const generation = (await webhookConfiguration()).metadata.generation;
  await cluster.helmOk(['upgrade', RELEASE, chart, ...values]);
  t.same(await caBundles(), [caCert, caCert], 'caBundle still equals ca.crt right after helm upgrade');
  // A blanked and already repaired caBundle would have raised the generation twice.
  t.equal((await webhookConfiguration()).metadata.generation, generation, 'helm did not change the webhooks at all (generation unchanged)');
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 2, 'nothing to repair');
});

void t.test('helm upgrade --force replaces the webhook configuration, blanking caBundle; it is restored within seconds', async (t) => {
  const caCert = (await secret())?.data['ca.crt'] ?? '';
  const watch = watchCaBundles();
  t.teardown(watch.stop);
  await watch.ready;
  await cluster.helmOk(['upgrade', RELEASE, chart, ...values, '--force']);
  const blanked = await waitFor('the replaced webhook configuration with no caBundle', () =>
    Promise.resolve(watch.versions.find((version) => version.bundles.every((bundle) => bundle === ''))), 10_000);
  t.same(blanked.bundles, ['', ''], 'helm upgrade --force stored both webhooks without caBundle');
  const restored = await waitFor('caBundle to be restored after helm upgrade --force', () =>
    Promise.resolve(watch.versions.find((version) => version.at > blanked.at && version.bundles.every((bundle) => bundle === caCert))), 10_000);
  const seconds = (restored.at - blanked.at) / 1000;
  t.comment(`caBundle restored ${seconds.toFixed(2)} s after helm upgrade --force stored the webhook configuration without it (--certs-check-interval 1)`);
  t.ok(seconds < 5, 'within 5 seconds');
  t.equal(await first.metric('thanos_injector_cabundle_patches_total', '{result="success"}'), 3, 'one PATCH for the repair');
  const repairs = first.log.match(/namespace\.thanos-sidecar-injector\.io \(was empty\), pod\.thanos-sidecar-injector\.io \(was empty\)/g) ?? [];
  t.equal(repairs.length, 2, 'logged as both webhooks empty, as at install');

  const pod = await createInjectedPod('prometheus-2');
  t.equal(sidecars(pod), 1, 'pods are injected again');
});

const second = new Injector('injector-2', kubeconfig);
t.teardown(() => second.stop());
t.teardown(() => {
  if (t.passing()) return;
  t.comment(`injector-2 log (tail):\n${second.log.split('\n').slice(-40).join('\n')}`);
});

void t.test('without RBAC on the Secret, start-up fails with one line naming the call and the missing permission', async (t) => {
  // A ServiceAccount with no binding at all, in place of the chart's.
  await cluster.kubectlOk(['-n', NAMESPACE, 'create', 'serviceaccount', 'nobody']);
  const denied = new Injector('injector-denied', await serviceAccountKubeconfig('nobody'));
  denied.port = await freePort();
  denied.healthPort = await freePort();
  denied.spawn();
  t.equal(await denied.exited, 1, 'exit code 1');
  t.match(denied.log, `thanos-injector: certs auto mode: read Secret ${NAMESPACE}/${SECRET}: HTTP 403 Forbidden: secrets "${SECRET}" is forbidden: User "system:serviceaccount:${NAMESPACE}:nobody" cannot get resource "secrets"`);
  t.match(denied.log, `the injector's ServiceAccount likely lacks the RBAC permission "get" on secrets in namespace ${NAMESPACE}`);
  t.equal(denied.log.trim().split('\n').length, 1, 'one line');
});

void t.test('a second replica (the chart\'s ServiceAccount too) uses the same Secret: no new CA, no write, the same certificate', async (t) => {
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
  const pair = await issueServingCertificate({ cert: caCert, key: decoded(current?.data['ca.key']) }, SERVING_NAMES, 90);
  const fingerprint = new X509Certificate(pair.cert).fingerprint256;
  const pids = [first.process?.pid, second.process?.pid];
  await cluster.kubectlOk(['-n', NAMESPACE, 'patch', 'secret', SECRET, '--type=merge', '-p', JSON.stringify({
    data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') },
  })]);
  const seconds = await secondsUntil('both replicas to serve the new pair', async () =>
    (await servedFingerprint(first.port)) === fingerprint && (await servedFingerprint(second.port)) === fingerprint, 15_000);
  t.comment(`new pair served by both replicas ${seconds.toFixed(2)} s after kubectl patch of the Secret`);
  t.ok(seconds < 5, 'within 5 seconds');
  t.same([first.process?.pid, second.process?.pid], pids, 'no restart');
  t.ok(await verifiedBy(first.port, caCert), 'verifies against the unchanged CA');
  t.equal(decoded((await secret())?.data['tls.crt']), pair.cert, 'the replicas kept the pair (same CA, covers the Service names and 127.0.0.1, 90 days)');
  t.ok(await caBundleIs(current?.data['ca.crt']), 'caBundle unchanged');
  t.equal(await first.metric('thanos_injector_certificate_expiry_timestamp_seconds'), new X509Certificate(pair.cert).validToDate.getTime() / 1000, 'expiry metric follows');
  t.equal(sidecars(await createInjectedPod('prometheus-3')), 1, 'pods are injected');
});

void t.test('the Secret deleted: the replicas converge on one new CA, caBundle follows, both serve it', async (t) => {
  const old = await secret();
  await cluster.kubectlOk(['-n', NAMESPACE, 'delete', 'secret', SECRET]);
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
