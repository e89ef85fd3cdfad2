// The policy against the webhook on the real apiserver: every golden fixture of the default
// configuration and 1200 generated pods are created with server-side dry-run three times: with
// nothing bound, with only the policy bound (`thanos-injector policy`), and with only the webhook
// (the chart's MutatingWebhookConfiguration, the injector running on loopback). A pod the policy
// claims (it carries the injected label) must come back exactly as the webhook returns it; a pod it
// leaves must come back exactly as with nothing bound. Compared: the whole pod, after the fields
// each request makes anew (uid, creationTimestamp, the service account token volume's random name)
// and one part of the status annotation: the webhook records `rendered` (SHA-256 fingerprints of
// what it added, which CEL cannot compute), the policy `policy` (its generation) instead.
import t, { type Test } from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { startServe } from '../support/serve.ts';
import { waitFor } from '../support/net.ts';
import { podDryRunner, root, startE2e, thanosInjector } from '../support/e2e.ts';
import { fixturePods, generatedPods, type NamedPod } from '../support/policy-pods.ts';
import { loadConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { policyClaim } from '../../src/policy/claim.ts';

const GENERATED = 1200;
const SEED = 20261206;
const NAMESPACES = ['policy-warn', 'policy-allow'];

const { cluster, work } = await startE2e(t, 'thanos-injector-policy-');
const configFile = join(work, 'config.yaml');
await writeFile(configFile, 'injectorNamespace: thanos-injector\nephemeralTsdb:\n  namespaces:\n    policy-allow: allow\n');
const config = await loadConfig(configFile);
for (const namespace of NAMESPACES) {
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
}

type Pod = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;
const dryRun = podDryRunner(cluster) as (namespace: string, pod: unknown) => Promise<Pod | string>;

const pods: (NamedPod & { namespace: string })[] = [...fixturePods(), ...generatedPods(GENERATED, SEED)]
  .map((named, i) => ({ ...named, namespace: NAMESPACES[i % NAMESPACES.length] as string }));
// The service accounts the pods run as (the apiserver refuses a pod whose account does not exist).
for (const account of new Set(pods.map(({ pod }) => pod.spec?.serviceAccountName).filter((name): name is string => name !== undefined && name !== 'default'))) {
  for (const namespace of NAMESPACES) await cluster.kubectlOk(['-n', namespace, 'create', 'serviceaccount', account]);
}

/** Every pod dry-run, four at a time. */
async function admitAll(): Promise<(Pod | string)[]> {
  const results = new Array<Pod | string>(pods.length);
  let next = 0;
  const worker = async () => {
    while (next < pods.length) {
      const i = next++;
      results[i] = await dryRun(pods[i]!.namespace, pods[i]!.pod);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return results;
}

/** The pod without what every request makes anew, and the status annotation without its back end's fingerprint. */
function comparable(result: Pod | string): string {
  if (typeof result === 'string') return result;
  const pod = structuredClone(result);
  const metadata = pod.metadata as Record<string, unknown>;
  for (const field of ['uid', 'creationTimestamp', 'managedFields']) delete metadata[field];
  const status = pod.metadata.annotations?.['thanos-injector/status'];
  if (status !== undefined) {
    const fields = JSON.parse(status) as Record<string, unknown>;
    delete fields.rendered;
    delete fields.policy;
    pod.metadata.annotations!['thanos-injector/status'] = JSON.stringify(fields);
  }
  return JSON.stringify(pod).replace(/kube-api-access-[a-z0-9]+/g, 'kube-api-access-*');
}

/** The policy's failed evaluations, as the apiserver counts them (error types other than no_error). */
async function policyErrorCounts(): Promise<string[]> {
  return (await cluster.kubectlOk(['get', '--raw', '/metrics'])).split('\n')
    .filter((line) => line.startsWith('apiserver_mutating_admission_policy_check_total') && !line.includes('error_type="no_error"') && !line.endsWith(' 0'));
}

/** A Prometheus pod with `containers` containers and `flags` flags on Prometheus. */
function largePod(containers: number, flags: number): unknown {
  const args = ['--storage.tsdb.path=/prometheus', ...Array.from({ length: flags - 1 }, (_, i) => `--query.lookback-delta-${i}=5m`)];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `large-${containers}-${flags}` },
    spec: {
      containers: [
        { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.14.0', args, volumeMounts: [{ name: 'data', mountPath: '/prometheus' }] },
        ...Array.from({ length: containers - 1 }, (_, i) => ({ name: `helper-${i}`, image: 'busybox', command: ['sleep', 'infinity'], ports: [{ containerPort: 20000 + i }] })),
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
    },
  };
}

/** Injected at this admission: labelled injected now, and not before (a pod may come in injected already). */
const claimedBy = (result: Pod | string, input?: { metadata?: { labels?: Record<string, string> } }) =>
  typeof result !== 'string' && result.metadata.labels?.['thanos-injector/injected'] === 'true' && input?.metadata?.labels?.['thanos-injector/injected'] !== 'true';
const probe = { where: 'probe', namespace: 'policy-warn', pod: pods.find((p) => p.where.startsWith('inject/seed-deployment'))!.pod };

void t.test('the policy claims only what it injects exactly as the webhook, and leaves the rest untouched', async (t) => {
  const none = await admitAll();

  // Only the policy.
  const generated = await thanosInjector(['policy', '--config', configFile, '--kube-version', cluster.serverVersion], cluster.env);
  t.equal(generated.code, 0, generated.stderr);
  const policyObjects = parseAllDocuments(generated.stdout).map((document) => document.toJS() as object);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policyObjects }));
  const allowed = { ...probe, namespace: 'policy-allow' };
  await waitFor('the policy to be in force', async () => (claimedBy(await dryRun(allowed.namespace, allowed.pod)) ? true : undefined), 30_000, 200);
  const byPolicy = await admitAll();
  const seedInAllowNamespace = claimedBy(await dryRun('policy-allow', probe.pod));
  const seedInWarnNamespace = claimedBy(await dryRun('policy-warn', probe.pod));
  // The warning, as kubectl shows it: given by the ValidatingAdmissionPolicy from what the policy recorded.
  const warned = await cluster.kubectl(['-n', 'policy-warn', 'create', '--dry-run=server', '-o', 'name', '-f', '-'], JSON.stringify(probe.pod));
  const policyErrors = await policyErrorCounts();
  // The CEL cost of a large pod: 50 containers, 500 Prometheus flags (within the apiserver's limits:
  // claimed, as the webhook injects it, below); and of one past them (an error the apiserver counts,
  // and under failurePolicy Ignore the pod is admitted as it came, for the webhook).
  const large = largePod(50, 500);
  const largeByPolicy = await dryRun('policy-allow', large);
  const tooLarge = largePod(50, 20_000);
  const tooLargeByPolicy = await dryRun('policy-allow', tooLarge);
  const errorsAfter = await policyErrorCounts();
  await cluster.kubectlOk(['delete', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policyObjects }));

  // Only the webhook: the chart's configuration, calling the injector on loopback.
  const injector = await startServe(t, { args: ['--config', configFile], env: cluster.env });
  const rendered = await cluster.helmOk(['template', 'tsi', join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos-injector', '--kube-version', cluster.serverVersion,
    '--show-only', 'templates/mutatingwebhookconfiguration.yaml', '--set', `webhook.url=https://127.0.0.1:${injector.port}/mutate`, '--set', 'webhook.failurePolicy=Fail',
    '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${join(injector.certDir, 'ca.crt')}`]);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(parse(rendered)));
  await waitFor('the policy to be gone and the webhook in force', async () => {
    const result = await dryRun(allowed.namespace, allowed.pod);
    return typeof result !== 'string' && result.metadata.annotations?.['thanos-injector/status']?.includes('"rendered"') ? true : undefined;
  }, 30_000, 200);
  const byWebhook = await admitAll();
  const largeByWebhook = await dryRun('policy-allow', large);
  await cluster.kubectlOk(['delete', '-f', '-'], JSON.stringify(parse(rendered)));

  t.ok(claimedBy(largeByPolicy), 'a pod of 50 containers and 500 Prometheus flags is claimed');
  t.equal(comparable(largeByPolicy), comparable(largeByWebhook), 'and injected as the webhook injects it');
  t.notOk(claimedBy(tooLargeByPolicy), 'a pod of 20000 flags is past the cost limit: not injected by the policy');
  t.equal(typeof tooLargeByPolicy, 'object', 'but admitted (failurePolicy Ignore), for the webhook to inject');
  t.match(errorsAfter.join('\n'), /error_type="(out_of_budget|invalid_error)"/, `the apiserver counts the failed evaluation: ${errorsAfter.join('; ')}`);

  t.same(policyErrors, [], 'no evaluation of the policy failed (failurePolicy Ignore would hide it)');
  let claimed = 0;
  let injectedByWebhook = 0;
  const mismatches: string[] = [];
  for (const [i, named] of pods.entries()) {
    const policy = byPolicy[i] as Pod | string;
    const webhook = byWebhook[i] as Pod | string;
    if (claimedBy(webhook, named.pod)) injectedByWebhook++;
    const expected = claimedBy(policy, named.pod) ? webhook : (none[i] as Pod | string);
    if (claimedBy(policy, named.pod)) claimed++;
    if (comparable(policy) !== comparable(expected)) {
      mismatches.push(`${named.where} in ${named.namespace} (${claimedBy(policy, named.pod) ? 'claimed by the policy: against the webhook' : 'left by the policy: against nothing bound'}):\n` +
        `pod: ${JSON.stringify(named.pod)}\npolicy:  ${comparable(policy)}\nexpected: ${comparable(expected)}`);
    }
  }
  const unmarked = pods.filter((p, i) => claimedBy(byPolicy[i] as Pod | string, p.pod) && !/"policy":"[0-9a-f]{12}"/.test((byPolicy[i] as Pod).metadata.annotations?.['thanos-injector/status'] ?? '')).map((p) => p.where);
  t.same(unmarked, [], "every pod the policy claims records the policy's generation in its status annotation");
  // What `inject --explain` says (src/policy/claim.ts) is what the apiserver did.
  const misexplained = pods.filter((p, i) => (policyClaim(p.pod, p.namespace, config, cluster.serverVersion).backEnd === 'policy') !== claimedBy(byPolicy[i] as Pod | string, p.pod))
    .map((p) => `${p.where} in ${p.namespace}: explained as ${JSON.stringify(policyClaim(p.pod, p.namespace, config, cluster.serverVersion))}`);
  t.same(misexplained.slice(0, 5), [], `the claim as thanos-injector tells it matches the apiserver's for every pod (${misexplained.length} do not)`);
  t.same(mismatches.slice(0, 3), [], `${pods.length - mismatches.length}/${pods.length} pods as expected (${mismatches.length} differ; the first three shown)`);
  t.comment(`${pods.length} pods: the webhook injected ${injectedByWebhook}, the policy claimed ${claimed} of them, equal to the webhook's`);
  // The shapes users run: what the engine injects with no warning and no per-pod annotation.
  const plain = pods.filter(({ pod, namespace }) => {
    const result = injectPod(pod, { config, namespace, kubernetesVersion: cluster.serverVersion });
    return result.outcome === 'injected' && result.warnings.length === 0 && !Object.keys(pod.metadata?.annotations ?? {}).some((key) => key.startsWith('thanos-injector/'));
  });
  const plainClaimed = plain.filter((p) => claimedBy(byPolicy[pods.indexOf(p)] as Pod | string, p.pod)).length;
  // The generator draws features just past the policy's lines on purpose (a container that mentions
  // thanos, a volume of the injector's name, an invalid port), so generated pods fall short of what users run.
  t.ok(plainClaimed >= 0.7 * plain.length, `the policy claims ${plainClaimed} of the ${plain.length} pods the webhook injects with no warning and no annotation`);
  const claimedWhere = new Set(pods.filter((p, i) => claimedBy(byPolicy[i] as Pod | string, p.pod)).map((p) => p.where));
  for (const shape of ['charts/prometheus-29.27.0.yaml Deployment prometheus-server', 'inject/persistent-volume-claim.yaml']) {
    t.ok([...claimedWhere].some((where) => where.startsWith(shape)), `claimed: ${shape}`);
  }
  t.ok(seedInAllowNamespace, "claimed: the seed's Deployment where its emptyDir TSDB is allowed (ephemeralTsdb allow)");
  t.ok(seedInWarnNamespace, "claimed: the seed's Deployment under ephemeralTsdb warn too, its warning recorded as the webhook records it");
  t.match(warned.stderr, /^Warning: Validation failed for ValidatingAdmissionPolicy 'thanos-sidecar-injector' with binding 'thanos-sidecar-injector-namespace': Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod: .*or annotate the pod thanos-injector\/ephemeral-tsdb: allow to accept the loss$/m,
    'and given on creation, as the webhook gives it');
});

/** A kubeconfig that acts as service account `name` of `namespace` (a token of it), as the chart's hook pods do. */
async function kubeconfigOf(namespace: string, name: string): Promise<Record<string, string>> {
  const token = (await cluster.kubectlOk(['-n', namespace, 'create', 'token', name])).trim();
  const file = join(work, `${namespace}-${name}.kubeconfig`);
  await writeFile(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'sa',
    clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority': cluster.certs.ca } }],
    users: [{ name: name, user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'e2e', user: name } }],
  }));
  return { KUBECONFIG: file };
}

/** The pod with a per-pod setting (an annotation of ours): a shape only the webhook injects. */
const annotated = (pod: unknown) => {
  const copy = structuredClone(pod) as { metadata: { annotations?: Record<string, string> } };
  copy.metadata.annotations = { ...copy.metadata.annotations, 'thanos-injector/log-level': 'debug' };
  return copy;
};

/** A dry run's status annotation, 'not injected', or the refusal. */
const status = (result: Pod | string) => (typeof result === 'string' ? result : result.metadata.annotations?.['thanos-injector/status'] ?? 'not injected');

/**
 * The chart installed in namespace thanos-injector without its hooks' Jobs (no kubelet here to run
 * them): the hooks' accounts and rights applied as rendered, and the policy hook's command run as
 * its account, twice (an upgrade with the same configuration changes nothing).
 */
async function installChart(t: Test, release: string, values: string[]): Promise<{ release: string; fullname: string; chartConfig: string; notes: string }> {
  const fullname = `${release}-thanos-sidecar-injector`;
  const chart = join(root, 'charts/thanos-sidecar-injector');
  const notes = await cluster.helmOk(['install', release, chart, '--namespace', 'thanos-injector', '--create-namespace', '--no-hooks', ...values]);
  const hooks = parseAllDocuments(await cluster.helmOk(['template', release, chart, '--namespace', 'thanos-injector', '--kube-version', cluster.serverVersion, ...values]))
    .map((document) => document.toJS() as { kind: string; metadata: { annotations?: Record<string, string> } } | null)
    .filter((object) => object !== null && object.kind !== 'Job' && object.metadata.annotations?.['helm.sh/hook'] !== undefined);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: hooks }));
  const chartConfig = join(work, `${release}-config.yaml`);
  await writeFile(chartConfig, await cluster.kubectlOk(['-n', 'thanos-injector', 'get', 'configmap', fullname, '-o', 'jsonpath={.data.config\\.yaml}']));
  const apply = async () => thanosInjector(['policy', '--apply', '--policy-only', `--name=${fullname}`, `--config=${chartConfig}`], await kubeconfigOf('thanos-injector', `${fullname}-policy`));
  const applied = await apply();
  t.equal(applied.code, 0, applied.stderr);
  t.equal(applied.stdout, `MutatingAdmissionPolicy ${fullname}: created\nValidatingAdmissionPolicy ${fullname}: created\n`, "applied with the hook's own rights");
  t.equal((await apply()).stdout, `MutatingAdmissionPolicy ${fullname}: unchanged\nValidatingAdmissionPolicy ${fullname}: unchanged\n`, 'an upgrade with the same configuration changes nothing');
  return { release, fullname, chartConfig, notes };
}

void t.test("the chart's mode both: the hook's command applies the policy with the hook's own rights; claimed pods cost no webhook call and are injected while the injector is down; uninstall removes it", async (t) => {
  const namespace = 'chart-both';
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  const injector = await startServe(t, { args: ['--config', configFile], env: cluster.env });
  const { fullname, chartConfig, release, notes } = await installChart(t, 'tsi', ['--set', 'injection.mode=both', '--set', `webhook.url=https://127.0.0.1:${injector.port}/mutate`, '--set', 'webhook.failurePolicy=Fail',
    '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${join(injector.certDir, 'ca.crt')}`, '--set', 'registration.enabled=false']);
  t.match(notes, `Injection mode both: the apiserver injects the common Prometheus shapes itself\n(MutatingAdmissionPolicy ${fullname}), the webhook the rest.`, "helm's notes say who injects");
  const checked = await thanosInjector(['check', '--webhook-config', fullname, '--config', chartConfig], cluster.env);
  t.match(checked.stdout, new RegExp(`injection policy +ok +MutatingAdmissionPolicy ${fullname} \\(generation [0-9a-f]{12}\\), bound by ${fullname}-namespace, ${fullname}-pod`), 'check finds it there, bound and current');

  const claimedShape = pods.find((p) => p.where.startsWith('inject/persistent-volume-claim'))!.pod;
  const webhookShape = annotated(probe.pod); // a per-pod setting: the webhook's
  await waitFor('the policy in force', async () => (status(await dryRun(namespace, claimedShape)).includes('"policy"') ? true : undefined), 30_000, 200);
  const calls = async () => Number(/^thanos_injector_admissions_total\{[^}]*outcome="injected"[^}]*\} ([0-9.]+)$/m.exec(await (await fetch(`http://127.0.0.1:${injector.healthPort}/metrics`)).text())?.[1] ?? 0);
  const before = await calls();
  t.match(status(await dryRun(namespace, claimedShape)), '"policy":', 'a pod the policy claims is injected by the apiserver');
  t.equal(await calls(), before, 'and costs no webhook call (its matchConditions skip an injected pod)');
  t.match(status(await dryRun(namespace, webhookShape)), '"rendered":', 'a shape the policy leaves is injected by the webhook');
  t.equal(await calls(), before + 1);

  await injector.serve.kill();
  t.match(status(await dryRun(namespace, claimedShape)), '"policy":', 'the injector down: the policy still injects what it claims');
  t.match(status(await dryRun(namespace, webhookShape)), /^HTTP 500: .*failed calling webhook/, 'and the rest follows the webhook\'s failurePolicy (Fail: refused)');

  await cluster.kubectlOk(['-n', 'thanos-injector', 'create', 'serviceaccount', `${fullname}-uninstall`]).catch(() => undefined);
  const removed = await thanosInjector(['uninstall', `--webhook-config=${fullname}`, `--policy=${fullname}`], await kubeconfigOf('thanos-injector', `${fullname}-uninstall`));
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, `MutatingAdmissionPolicy ${fullname}: deleted; the apiserver injects no pod itself from now on, and what it owns (in mode policy, register's Services and ConfigMap) goes with it\n`);
  await waitFor('the policy out of force', async () => (status(await dryRun(namespace, claimedShape)) === 'not injected' ? true : undefined), 30_000, 200);
  t.pass('after uninstall, pods are created as they are');
  await cluster.helmOk(['uninstall', release, '--namespace', 'thanos-injector', '--no-hooks']);
  t.same((JSON.parse(await cluster.kubectlOk(['get', 'mutatingadmissionpolicybindings', '-o', 'json'])) as { items: unknown[] }).items, [], 'helm uninstall removes the bindings it rendered');
});

void t.test("the chart's mode policy: the apiserver alone injects, with no injector at all; check and register know the install by its policy; uninstall leaves nothing", async (t) => {
  const namespace = 'chart-policy';
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  // Registration on (its CronJob and Job have no kubelet to run them here: their command is run below, as their account).
  const { fullname, chartConfig, release, notes } = await installChart(t, 'tsp', ['--set', 'injection.mode=policy']);
  t.match(notes, `Injection mode policy: the apiserver alone injects (MutatingAdmissionPolicy ${fullname});\nno webhook runs`, "helm's notes say who injects");
  const installed = (await cluster.kubectlOk(['get', 'deployments,services,mutatingwebhookconfigurations,secrets', '-A', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name'])).trim();
  t.equal(installed, '', 'no injector Deployment, Service, webhook configuration or certificate Secret');

  const claimedShape = pods.find((p) => p.where.startsWith('inject/persistent-volume-claim'))!.pod;
  await waitFor('the policy in force', async () => (status(await dryRun(namespace, claimedShape)).includes('"policy"') ? true : undefined), 30_000, 200);
  t.pass('a pod the policy claims is injected, with no injector running anywhere');
  t.match(status(await dryRun(namespace, probe.pod)), '"policy":', "the seed's shape, its emptyDir TSDB warned about, is injected");
  t.equal(status(await dryRun(namespace, annotated(probe.pod))), 'not injected', 'a shape the policy leaves (a per-pod setting, the webhook\'s) is created as it is');

  // A stored pod (no kubelet runs it) for check and register.
  const stored = structuredClone(claimedShape) as { metadata: { name?: string; generateName?: string } };
  delete stored.metadata.generateName;
  stored.metadata.name = 'prometheus-0';
  await cluster.kubectlOk(['-n', namespace, 'create', '-f', '-'], JSON.stringify(stored));
  const checked = await thanosInjector(['check', '--webhook-config', fullname, '-n', namespace, '--pod', 'prometheus-0', '-o', 'json'], cluster.env);
  const rows = Object.fromEntries((JSON.parse(checked.stdout || '{"checks":[]}') as { checks: { name: string; status: string; detail: string }[] }).checks.map((r) => [r.name, r]));
  t.match(rows['webhook configuration'], { status: 'skip', detail: `injection mode policy: MutatingAdmissionPolicy ${fullname} injects, with no webhook` }, 'check: no webhook configuration, as the mode says');
  t.match(rows['injector reachable'], { status: 'skip', detail: /no webhook to serve/ });
  t.match(rows['injector configuration'], { status: 'ok', detail: `ConfigMap thanos-injector/${fullname} config.yaml` }, 'the install found by its policy bindings');
  t.match(rows['injection policy'], { status: 'ok', detail: /bound by .*: the apiserver injects the common shapes .*the rest are created uninjected/ });
  t.match(rows['pod would be injected'], { status: 'ok', detail: /^yes, by the injection policy/ });
  t.match(rows['pod injected'], { status: 'ok' });
  const checkSeed = await thanosInjector(['inject', '-f', join(root, 'test/fixtures/inject/seed-deployment.yaml'), '--config', chartConfig, '--kube-version', cluster.serverVersion, '-o', 'explain'], cluster.env);
  t.match(checkSeed.stdout, /Deployment\/prometheus-deploy\s+policy\s/, "inject -o explain: the seed's Deployment goes to the policy");

  // A pod past the CEL cost limit: the apiserver counts the failed evaluation, and check reads the count from its /metrics.
  t.match(status(await dryRun(namespace, largePod(50, 20_000))), 'not injected', 'a pod past the cost limit is created uninjected (failurePolicy Ignore)');
  const afterError = await thanosInjector(['check', '--webhook-config', fullname, '-o', 'json'], cluster.env);
  const policyRow = (JSON.parse(afterError.stdout || '{"checks":[]}') as { checks: { name: string; status: string; detail: string }[] }).checks.find((r) => r.name === 'injection policy');
  t.match(policyRow, { status: 'warn', detail: /this apiserver counted 1 failed evaluation\(s\) of it since it started \((invalid_error|out_of_budget): 1\): those pods were created uninjected/ },
    "check: the apiserver's count of failed evaluations, from its /metrics");

  const registerAccount = await kubeconfigOf('thanos-injector', `${fullname}-register`);
  const registered = await thanosInjector(['register', `--policy=${fullname}`, '--query-namespace=thanos-injector', `--config=${chartConfig}`], registerAccount);
  t.ok([0, 3].includes(registered.code), `register with its account (exit ${registered.code}): ${registered.stderr}`);
  const uid = (await cluster.getJson<{ metadata: { uid: string } }>(['get', 'mutatingadmissionpolicy', fullname]))?.metadata.uid;
  for (const object of [['-n', namespace, 'service', 'thanos-sidecar'], ['-n', 'thanos-injector', 'configmap', 'thanos-query-endpoints']]) {
    const found = await cluster.getJson<{ metadata: { ownerReferences?: { kind: string; uid: string }[] } }>(['get', ...object]);
    t.same(found?.metadata.ownerReferences?.map((o) => [o.kind, o.uid]), [['MutatingAdmissionPolicy', uid]], `${object.slice(2).join(' ')}: owned by the policy`);
  }

  const removed = await thanosInjector(['uninstall', `--webhook-config=${fullname}`, `--policy=${fullname}`], await kubeconfigOf('thanos-injector', `${fullname}-uninstall`));
  t.equal(removed.code, 0, removed.stderr);
  await waitFor('the garbage collector to delete what the policy owned', async () =>
    ((await cluster.kubectlOk(['get', 'services,configmaps', '-A', '-l', 'app.kubernetes.io/managed-by=thanos-sidecar-injector', '-o', 'name'])).trim() === '' ? true : undefined), 60_000, 1000);
  t.pass("register's Service and ConfigMap went with the policy");
  const after = await thanosInjector(['register', `--policy=${fullname}`, '--query-namespace=thanos-injector', `--config=${chartConfig}`], registerAccount);
  t.equal(after.code, 1, 'a register run once the policy is gone writes nothing');
  t.match(after.stderr, `MutatingAdmissionPolicy ${fullname} (--policy) not found: the install is gone or being removed`);
  await cluster.helmOk(['uninstall', release, '--namespace', 'thanos-injector', '--no-hooks']);
});
