// End to end against a real control plane: etcd + kube-apiserver + kube-controller-manager built
// from the Kubernetes Go modules (test/cluster), the injector running on loopback as a real
// process, and every scenario driven through kubectl as a user would.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Cluster } from '../cluster/cluster.ts';
import { prometheusPod } from '../support/admission.ts';
import { freePort, waitFor } from '../support/net.ts';
import { dryRunInjected, root, sidecars, startE2e, thanosInjector } from '../support/e2e.ts';
import { policyUnsupported } from '../../src/policy/generate.ts';

const INJECTOR_NAMESPACE = 'thanos-injector';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: { name: string; args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    initContainers?: { name: string; restartPolicy?: string; volumeMounts?: { name: string; mountPath: string; subPath?: string }[] }[];
    volumes?: { name: string; secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string } }[];
    securityContext?: Record<string, unknown>;
  };
}


/** The injector as a real process: `thanos-injector serve` on 127.0.0.1 with the given certificate. */
class Injector {
  process: ChildProcess | undefined;
  port = 0;
  healthPort = 0;
  log = '';
  readonly cluster: Cluster;
  readonly certFile: string;
  readonly keyFile: string;
  readonly configFile: string;
  constructor(cluster: Cluster, certFile: string, keyFile: string, configFile: string) {
    this.cluster = cluster;
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.configFile = configFile;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.healthPort ||= await freePort();
    const args = ['src/main.ts', 'serve', '--address', '127.0.0.1', '--port', String(this.port), '--health-port', String(this.healthPort),
      '--tls-cert-file', this.certFile, '--tls-key-file', this.keyFile, '--config', this.configFile];
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...this.cluster.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    this.process = child;
    await waitFor('the injector to be ready', async () => {
      const response = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`).catch(() => undefined);
      return response?.ok ? true : undefined;
    }, 30_000);
  }

  async stop(): Promise<number | null> {
    const child = this.process;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    return exited;
  }

  async metric(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.healthPort}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith(name)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  }
}

const { cluster, work } = await startE2e(t, 'thanos-injector-e2e-');

async function getPod(namespace: string, name: string): Promise<PodJson> {
  return JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pod', name, '-o', 'json'])) as PodJson;
}
async function podsBySelector(namespace: string, selector: string): Promise<PodJson[]> {
  const list = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: PodJson[] };
  return list.items;
}

const serving = await cluster.issueCert('thanos-injector', { ips: ['127.0.0.1'], dnsNames: ['localhost'] });

// The chart is installed as a user would, with the webhook pointing at the injector on loopback
// (there is no kubelet to run it as a pod) and the cluster CA as caBundle.
const RELEASE = 'tsi';
const FULLNAME = `${RELEASE}-thanos-sidecar-injector`;
const chart = join(root, 'charts/thanos-sidecar-injector');
const injectorPort = await freePort();
await cluster.helmOk(['install', RELEASE, chart, '--namespace', INJECTOR_NAMESPACE, '--create-namespace',
  '--set', `webhook.url=https://127.0.0.1:${injectorPort}/mutate`, '--set', 'webhook.failurePolicy=Fail',
  '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${serving.ca}`, '--set', 'registration.enabled=false',
  // Mode auto is both on this cluster, and the policy's hook Job needs a kubelet: the webhook alone here.
  '--set', 'injection.mode=webhook']);
async function setFailurePolicy(failurePolicy: 'Fail' | 'Ignore'): Promise<void> {
  await cluster.helmOk(['upgrade', RELEASE, chart, '--namespace', INJECTOR_NAMESPACE, '--reuse-values', '--set', `webhook.failurePolicy=${failurePolicy}`]);
}

// The injector runs with the configuration the chart rendered into its ConfigMap.
const configFile = join(work, 'config.yaml');
await writeFile(configFile, await cluster.kubectlOk(['-n', INJECTOR_NAMESPACE, 'get', 'configmap', FULLNAME, '-o', 'jsonpath={.data.config\\.yaml}']));
const injector = new Injector(cluster, serving.cert, serving.key, configFile);
injector.port = injectorPort;
await injector.start();
t.teardown(() => injector.stop());
t.teardown(() => {
  if (t.passing()) return;
  t.comment(`injector log (tail):\n${injector.log.split('\n').slice(-40).join('\n')}`);
});

/** A Prometheus pod (../support/admission.ts) as kubectl input. */
const podJson = (name: string, namespace: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}) =>
  JSON.stringify(prometheusPod({ name, namespace, labels, annotations }));

await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await cluster.kubectlOk(['create', 'namespace', 'team-a']);
// The apiserver picks up a new webhook configuration asynchronously: wait until it is in force.
await waitFor('the webhook configuration to be in force', () => dryRunInjected(cluster, podJson('probe', 'monitoring')), 30_000);

void t.test('the seed Deployment in a labelled namespace: its pod is stored injected', async (t) => {
  await cluster.kubectlOk(['apply', '-f', join(root, 'examples/prometheus-deployment.yaml')]);
  const [pod] = await waitFor('the Deployment pod', async () => {
    const pods = await podsBySelector('monitoring', 'app=prometheus');
    return pods.length > 0 ? pods : undefined;
  });
  t.ok(pod, 'the controller-manager created a pod');
  if (!pod) return;
  t.equal(sidecars(pod), 1, 'exactly one thanos-sidecar');
  const sidecar = pod.spec.initContainers?.find((c) => c.name === 'thanos-sidecar');
  t.equal(sidecar?.restartPolicy, 'Always', `a native sidecar on ${cluster.serverVersion}`);
  t.ok(pod.spec.volumes?.some((v) => v.secret?.secretName === 'thanos-objstore'), 'the objstore Secret volume');
  const args = pod.spec.containers.find((c) => c.name === 'prometheus')?.args ?? [];
  t.ok(args.includes('--storage.tsdb.min-block-duration=2h') && args.includes('--storage.tsdb.max-block-duration=2h'), 'equal block flags');
  t.match(pod.spec.securityContext, { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true }, 'pod securityContext');
  t.equal(pod.metadata.labels?.['thanos-injector/injected'], 'true', 'injected label');
  const status = JSON.parse(pod.metadata.annotations?.['thanos-injector/status'] ?? '{}') as { container?: string };
  t.equal(status.container, 'thanos-sidecar', 'status annotation');
  const described = await cluster.kubectlOk(['-n', 'monitoring', 'describe', 'pod', pod.metadata.name]);
  t.match(described, /thanos-sidecar:/, 'kubectl describe shows the sidecar');
  t.match(described, /thanos-injector\/status:/, 'kubectl describe shows the status annotation');
});

void t.test('pod opt-in, opt-out, other pods and kube-system', async (t) => {
  await cluster.kubectlOk(['apply', '-f', '-'], podJson('opted-in', 'team-a', { 'thanos-injection': 'enabled' }));
  t.equal(sidecars(await getPod('team-a', 'opted-in')), 1, 'a labelled pod in an unlabelled namespace is injected');
  await cluster.kubectlOk(['apply', '-f', '-'], podJson('not-labelled', 'team-a'));
  t.equal(sidecars(await getPod('team-a', 'not-labelled')), 0, 'an unlabelled pod in an unlabelled namespace is not');
  await cluster.kubectlOk(['apply', '-f', '-'], podJson('opted-out', 'monitoring', { 'thanos-injection': 'disabled' }));
  t.equal(sidecars(await getPod('monitoring', 'opted-out')), 0, 'a pod labelled disabled in a labelled namespace is not injected');
  await cluster.kubectlOk(['-n', 'monitoring', 'run', 'web', '--image=nginx:1.27', '--restart=Never']);
  const web = await getPod('monitoring', 'web');
  t.equal(web.spec.containers.length, 1, 'a non-Prometheus pod keeps its one container');
  t.notOk(web.spec.initContainers, 'and gets no init container');
  t.notOk(web.metadata.annotations?.['thanos-injector/status'], 'and no status annotation');
  await cluster.kubectlOk(['apply', '-f', '-'], podJson('system-prometheus', 'kube-system', { 'thanos-injection': 'enabled' }));
  t.equal(sidecars(await getPod('kube-system', 'system-prometheus')), 0, 'a Prometheus pod in kube-system is not touched');
});

void t.test('matchConditions: an nginx pod in a labelled namespace never reaches the injector, a Prometheus pod does', async (t) => {
  const reviewed = () => injector.metric('thanos_injector_admissions_total');
  const [reviewsBefore, excludedBefore] = [await reviewed(), await matchConditionExclusions()];
  await cluster.kubectlOk(['-n', 'monitoring', 'run', 'nginx-filtered', '--image=nginx:1.27', '--restart=Never']);
  t.equal(await reviewed(), reviewsBefore, 'the injector reviewed nothing');
  t.ok(await matchConditionExclusions() > excludedBefore, 'apiserver_admission_match_condition_exclusions_total counted it');
  await cluster.kubectlOk(['apply', '-f', '-'], podJson('prometheus-filtered', 'monitoring'));
  t.equal(sidecars(await getPod('monitoring', 'prometheus-filtered')), 1, 'the Prometheus pod is injected');
  t.equal(await reviewed(), reviewsBefore + 1, 'after exactly one review');
  const live = JSON.parse(await cluster.kubectlOk(['get', 'mutatingwebhookconfiguration', FULLNAME, '-o', 'json'])) as { webhooks: { name: string; matchConditions?: { name: string }[] }[] };
  t.same(live.webhooks.map((w) => [w.name, (w.matchConditions ?? []).map((c) => c.name)]), ['namespace', 'pod'].map((scope) => [`${scope}.thanos-sidecar-injector.io`, ['not-a-mirror-pod', 'not-injected-yet', 'prometheus-or-own-thanos-sidecar']]),
    `both webhooks carry the generated conditions on ${cluster.serverVersion}`);
});

void t.test('a StatefulSet with volumeClaimTemplates: its pods mount the claim', async (t) => {
  await cluster.kubectlOk(['apply', '-f', join(root, 'test/fixtures/inject/statefulset-claim.yaml')]);
  const pod = await waitFor('the StatefulSet pod', () => getPod('monitoring', 'prometheus-0').catch(() => undefined));
  t.equal(sidecars(pod), 1, 'injected');
  const mount = pod.spec.initContainers?.find((c) => c.name === 'thanos-sidecar')?.volumeMounts?.find((m) => m.mountPath === '/prometheus');
  t.match(mount, { name: 'tsdb', subPath: 'prom' }, 'the sidecar mounts the claim at the same path and subPath');
  t.ok(pod.spec.volumes?.some((v) => v.name === 'tsdb' && v.persistentVolumeClaim?.claimName === 'tsdb-prometheus-0'), 'the claim volume');
});

void t.test('every golden output is an object the real apiserver accepts (server-side dry run, validation and all)', async (t) => {
  // The golden outputs carry every knob (env valueFrom, CSI and ConfigMap volumes, TLS Secrets,
  // localhost listeners, native sidecars): created in a namespace the webhook does not watch, so
  // what is validated is exactly the file.
  await cluster.kubectlOk(['create', 'namespace', 'golden']);
  const fixtures = join(root, 'test/fixtures/inject');
  const files = (await readdir(fixtures)).filter((f) => f.endsWith('.injected')).sort();
  t.ok(files.length >= 25, `${files.length} golden outputs`);
  const accounts = new Set<string>();
  for (const file of files) {
    const objects = parseAllDocuments(await readFile(join(fixtures, file), 'utf8')).map((d) => d.toJS() as { metadata?: { namespace?: string }; items?: { metadata?: { namespace?: string } }[] } | null)
      .filter((o) => o !== null);
    for (const object of [...objects, ...objects.flatMap((o) => o.items ?? [])]) if (object.metadata) object.metadata.namespace = 'golden';
    // The ServiceAccounts the pods name must exist (the apiserver's ServiceAccount admission).
    for (const [, account] of JSON.stringify(objects).matchAll(/"serviceAccountName":"([^"]+)"/g)) {
      if (account !== undefined && !accounts.has(account)) {
        accounts.add(account);
        await cluster.kubectlOk(['-n', 'golden', 'create', 'serviceaccount', account]);
      }
    }
    const result = await cluster.kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
    t.equal(result.code, 0, `${file}: ${result.stdout.trim().replaceAll('\n', ', ')}${result.stderr}`);
  }
});

void t.test('server-side dry run shows the injected pod and stores nothing', async (t) => {
  const result = await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], podJson('dry', 'monitoring'));
  t.equal(result.code, 0, result.stderr);
  t.equal(sidecars(JSON.parse(result.stdout) as PodJson), 1, 'the dry-run answer has the sidecar');
  const stored = await cluster.kubectl(['-n', 'monitoring', 'get', 'pod', 'dry']);
  t.not(stored.code, 0, 'nothing was stored');
  t.match(stored.stderr, /NotFound|not found/);
});

void t.test('an invalid override annotation fails kubectl apply with our message', async (t) => {
  const result = await cluster.kubectl(['apply', '-f', '-'], podJson('bad', 'monitoring', {}, { 'thanos-injector/block-duration': 'banana' }));
  t.not(result.code, 0, 'kubectl apply fails');
  t.match(result.stderr, 'annotation thanos-injector/block-duration: "banana" is not valid; expected a Prometheus duration', 'with our message');
});

void t.test('reinvocation after another webhook changes the pod: still exactly one sidecar, and the matchConditions spare the injector the second call', async (t) => {
  // A tiny second webhook, ordered after ours (names sort), that adds an annotation once.
  const annotatorCert = await cluster.issueCert('annotator', { ips: ['127.0.0.1'] });
  const annotator: HttpsServer = createHttpsServer({ cert: await readFile(annotatorCert.cert), key: await readFile(annotatorCert.key) }, (request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const review = JSON.parse(body) as { request: { uid: string; object: PodJson } };
      const annotations = review.request.object.metadata.annotations ?? {};
      const patch = annotations['e2e.example.com/annotated'] ? [] : [{ op: 'add', path: '/metadata/annotations/e2e.example.com~1annotated', value: 'yes' }];
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: {
        uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}),
      } }));
    });
  });
  await new Promise<void>((resolve) => annotator.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => annotator.close(resolve)));
  await cluster.kubectlOk(['create', 'namespace', 'reinvoke']);
  await cluster.kubectlOk(['label', 'namespace', 'reinvoke', 'thanos-injection=enabled']);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'zz-e2e-annotator' },
    webhooks: [{
      name: 'annotator.e2e.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded', timeoutSeconds: 5,
      clientConfig: { url: `https://127.0.0.1:${(annotator.address() as AddressInfo).port}/`, caBundle: Buffer.from(await readFile(annotatorCert.ca)).toString('base64') },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'reinvoke' } },
    }],
  }));
  const reviewsBefore = await injector.metric('thanos_injector_admissions_total{outcome="skipped",reason="already-injected"}');
  const excludedBefore = await matchConditionExclusions();
  const pod = await waitFor('a pod through both webhooks', async () => {
    const result = await cluster.kubectl(['apply', '-f', '-'], podJson('twice', 'reinvoke'));
    if (result.code !== 0) return undefined;
    const stored = await getPod('reinvoke', 'twice');
    if (stored.metadata.annotations?.['e2e.example.com/annotated']) return stored;
    await cluster.kubectl(['-n', 'reinvoke', 'delete', 'pod', 'twice', '--wait=false']);
    return undefined;
  }, 30_000);
  t.equal(pod.metadata.annotations?.['e2e.example.com/annotated'], 'yes', 'the other webhook ran');
  t.equal(sidecars(pod), 1, 'exactly one sidecar');
  // The reinvocation re-evaluates the matchConditions on the injected pod: not-injected-yet is
  // false, so the apiserver answers for the injector without calling it.
  const reviewsAfter = await injector.metric('thanos_injector_admissions_total{outcome="skipped",reason="already-injected"}');
  t.equal(reviewsAfter, reviewsBefore, 'the injector saw no already-injected review');
  const excludedAfter = await matchConditionExclusions();
  t.ok(excludedAfter > excludedBefore, `the apiserver excluded the reinvocation by our matchConditions (${excludedAfter - excludedBefore} exclusions)`);
  await cluster.kubectlOk(['delete', 'mutatingwebhookconfiguration', 'zz-e2e-annotator']);
});

void t.test('injector down: Fail refuses Prometheus pods and still creates the others, Ignore stores the pod without the sidecar', async (t) => {
  t.equal(await injector.stop(), 0, 'the injector exits 0 on SIGTERM');
  const refused = await cluster.kubectl(['apply', '-f', '-'], podJson('while-down', 'monitoring'));
  t.not(refused.code, 0, 'with failurePolicy Fail the Prometheus pod is refused');
  t.match(refused.stderr, 'failed calling webhook', "with the apiserver's error");
  // The matchConditions keep every other pod of the namespace out of the injector's outage.
  const nginx = await cluster.kubectl(['-n', 'monitoring', 'run', 'nginx-while-down', '--image=nginx:1.27', '--restart=Never']);
  t.equal(nginx.code, 0, `with failurePolicy Fail an nginx pod is still created: ${nginx.stderr}`);
  await setFailurePolicy('Ignore');
  const stored = await waitFor('failurePolicy Ignore to be in force', async () => {
    const result = await cluster.kubectl(['apply', '-f', '-'], podJson('while-down', 'monitoring'));
    return result.code === 0 ? true : undefined;
  }, 30_000);
  t.ok(stored, 'with failurePolicy Ignore the pod is stored');
  t.equal(sidecars(await getPod('monitoring', 'while-down')), 0, 'without the sidecar');
  await injector.start();
  await setFailurePolicy('Fail');
});

/** apiserver_admission_match_condition_exclusions_total for our webhooks (both names). */
async function matchConditionExclusions(): Promise<number> {
  const metrics = await cluster.kubectlOk(['get', '--raw', '/metrics']);
  return metrics.split('\n')
    .filter((line) => line.startsWith('apiserver_admission_match_condition_exclusions_total{') && /name="(namespace|pod)\.thanos-sidecar-injector\.io"/.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** The apiserver's histogram of its calls to our webhooks (both names), summed by bucket bound. */
async function webhookLatencyBuckets(): Promise<Map<string, number>> {
  const metrics = await cluster.kubectlOk(['get', '--raw', '/metrics']);
  const buckets = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_admission_webhook_admission_duration_seconds_bucket{')) continue;
    if (!/name="(namespace|pod)\.thanos-sidecar-injector\.io"/.test(line)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1] ?? '';
    buckets.set(le, (buckets.get(le) ?? 0) + Number(line.split(' ').pop()));
  }
  return buckets;
}

void t.test("the apiserver's own latency metric for our webhooks", async (t) => {
  const describe = (buckets: Map<string, number>, before = new Map<string, number>()) => {
    const calls = (le: string) => (buckets.get(le) ?? 0) - (before.get(le) ?? 0);
    const share = (le: string) => (calls('+Inf') === 0 ? 0 : (100 * calls(le)) / calls('+Inf'));
    return { count: calls('+Inf'), text: `count=${calls('+Inf')} under_5ms=${share('0.005').toFixed(1)}% under_25ms=${share('0.025').toFixed(1)}%` };
  };
  const run = await webhookLatencyBuckets();
  t.comment(`apiserver_admission_webhook_admission_duration_seconds for our webhooks, the run so far: ${describe(run).text}`);
  t.ok(describe(run).count > 0, 'the apiserver recorded calls to our webhooks');
  // A steadier share: 50 more admissions of one warm injector (server-side dry runs of one List).
  const batch = { apiVersion: 'v1', kind: 'List', items: Array.from({ length: 50 }, (_, i) => JSON.parse(podJson(`latency-${i}`, 'monitoring')) as unknown) };
  const applied = await cluster.kubectlOk(['apply', '--dry-run=server', '-o', 'name', '-f', '-'], JSON.stringify(batch));
  t.equal(applied.trim().split('\n').length, 50, 'the 50 dry-run pods were admitted');
  const warm = describe(await webhookLatencyBuckets(), run);
  t.comment(`apiserver_admission_webhook_admission_duration_seconds for our webhooks, 50 warm admissions: ${warm.text}`);
  t.ok(warm.count >= 50, 'each of the 50 admissions was recorded');
});

// The policy only where this apiserver runs it (1.36.6 and later): on the oldest supported release
// the chart's default renders none, mode both and policy are refused, and `policy --apply` says why
// before it writes anything.
void t.test('the injection policy where this apiserver can run it, and only there', async (t) => {
  const runs = policyUnsupported(cluster.serverVersion) === undefined;
  const helmDryRun = (...sets: string[]) => cluster.helm(['install', 'probe', chart, '--namespace', 'policy-probe', '--dry-run=server', ...sets.flatMap((s) => ['--set', s])]);
  const defaults = await helmDryRun();
  t.equal(defaults.code, 0, defaults.stderr);
  t.equal(/kind: MutatingAdmissionPolicyBinding/.test(defaults.stdout), runs, `${cluster.serverVersion}: the chart's default (injection.mode auto) ${runs ? 'binds' : 'renders no'} policy`);
  const both = await helmDryRun('injection.mode=both');
  const applied = await thanosInjector(['policy', '--apply', '--name', 'version-probe'], cluster.env);
  if (runs) {
    t.equal(both.code, 0, both.stderr);
    t.equal(applied.code, 0, applied.stderr);
    t.match(applied.stdout, 'MutatingAdmissionPolicy version-probe: created');
    await cluster.kubectlOk(['delete', 'mutatingadmissionpolicy', 'version-probe']);
    return;
  }
  t.match(both.stderr, `injection.mode both needs Kubernetes 1.36.6 or later (MutatingAdmissionPolicy v1; earlier apiservers crash on the policy's list values), and this cluster is ${cluster.serverVersion}`, 'mode both: refused with the reason');
  t.match((await helmDryRun('injection.mode=policy')).stderr, 'injection.mode policy needs Kubernetes 1.36.6 or later', 'mode policy: refused with the reason');
  t.equal(applied.code, 1);
  t.equal(applied.stderr, `thanos-injector: Kubernetes ${cluster.serverVersion} cannot run the policy: admissionregistration.k8s.io/v1 MutatingAdmissionPolicy is served from 1.36, and apiservers before v1.36.6 crash on the list values it adds; the webhook injects there\n`, 'policy --apply: why, before writing anything');
});
