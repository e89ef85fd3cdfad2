// 5. Injection by the apiserver itself, on a real node (README "Injection by the apiserver itself"):
//    the chart installed with injection.mode both, its post-install hook Job (the injector's image,
//    run by the node) applying the MutatingAdmissionPolicy it generates from the chart's
//    configuration. The webhook is configured with failurePolicy Fail at an address where nothing
//    listens, so a pod that reached it would be refused: every pod below that starts was injected
//    by the policy alone, with no call to the injector.
//    - The blog post's own Deployment (Prometheus 2.42, its TSDB on an emptyDir, which this
//      configuration accepts: ephemeralTsdb.action allow) and the prometheus-community chart's HA
//      pair (Prometheus 3, replica: ${POD_NAME}) are created, run with the sidecar, upload blocks
//      under their external labels, and the chart's Thanos Query lists all three sidecars and
//      answers the pair deduplicated, as with the webhook (test/node/longterm.test.ts).
//    - `inject -o explain` said so beforehand, for the same manifests and configuration.
//    - A shape only the webhook handles (an annotation of ours) is refused, naming the webhook:
//      the webhook is in force, and was not called for the pods above.
//    - helm upgrade to injection.mode policy: the webhook configuration goes, the policy stays, the
//      seed's Deployment restarted comes back injected, and `check` finds the install by its policy.
//    Blocks are cut every minute: compaction disabled and injection.blockDuration=1m (the policy
//    leaves pods that set their own block flags to the webhook).
import t, { type Test } from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INJECTOR_REPOSITORY } from '../cluster/images.ts';
import { chartStatefulSet } from '../support/community.ts';
import { thanosInjector } from '../support/e2e.ts';
import { freePort } from '../support/net.ts';
import { root, startNodeStack, waitFor } from '../support/node.ts';
import { queryClient } from '../support/query.ts';
import { seedHelpers } from '../support/seed.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-policy-');
const { cluster, minio, images, work } = stack;
const { seedManifests, readyPod } = seedHelpers(stack);
const RELEASE = 'tsi';
const NAMESPACE = 'thanos-injector';
const POLICY = `${RELEASE}-thanos-sidecar-injector`;

// A webhook that cannot answer: a port nothing listens on, with a CA of its own.
const serving = await cluster.issueCert('thanos-injector', { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
const nowhere = await freePort();
const installed = Date.now();
await cluster.helmOk(['install', RELEASE, join(root, 'charts/thanos-sidecar-injector'), '--namespace', NAMESPACE, '--create-namespace',
  '--set', 'injection.mode=both', '--set', `image.repository=${INJECTOR_REPOSITORY}`,
  '--set', `webhook.url=https://127.0.0.1:${nowhere}/mutate`, '--set', 'webhook.failurePolicy=Fail',
  '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${serving.ca}`, '--set', 'registration.enabled=false',
  '--set', 'replicaCount=0', '--set', 'podDisruptionBudget.enabled=false',
  '--set', `injection.image=${images.thanos}`, '--set', 'injection.compaction=disabled', '--set', 'injection.blockDuration=1m',
  '--set', 'injection.ephemeralTsdb.action=allow',
  '--set', 'query.enabled=true', '--set', `query.image=${images.thanos}`, '--set', 'query.reloadInterval=5s', '--set', 'query.resources.requests.cpu=50m']);
t.comment(`helm install (its policy hook Job included) in ${((Date.now() - installed) / 1000).toFixed(1)} s`);
const configFile = join(work, 'config.yaml');
await writeFile(configFile, await cluster.kubectlOk(['-n', NAMESPACE, 'get', 'configmap', POLICY, '-o', 'jsonpath={.data.config\\.yaml}']));
const query = queryClient(cluster, NAMESPACE);

interface PodJson {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { containers: { name: string; args?: string[] }[]; initContainers?: { name: string }[] };
}
const sidecars = (pod: PodJson) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].filter((c) => c.name === 'thanos-sidecar').length;
/** The generation the policy of this configuration has, from `thanos-injector policy`. */
const generation = await (async () => {
  const printed = await thanosInjector(['policy', '--config', configFile, '--name', POLICY, '--kube-version', '1.37.2'], cluster.env);
  const found = /thanos-injector\/generation: "?([0-9a-f]{12})/.exec(printed.stdout)?.[1];
  if (found === undefined) throw new Error(`policy printed no generation (exit ${printed.code}): ${printed.stderr}`);
  return found;
})();

async function labelledNamespace(namespace: string, bucket: string): Promise<void> {
  await minio.createBucket(bucket);
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  await cluster.kubectlOk(['-n', namespace, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore(bucket)}`]);
}

/** `inject -o explain` of `manifests` with the chart's configuration: the back end per object. */
async function explain(manifests: string): Promise<string> {
  const file = join(work, `explain-${Date.now()}.yaml`);
  // One JSON object per line (as seedManifests gives them) or YAML documents: YAML documents either way.
  await writeFile(file, manifests.trim().split('\n').join('\n---\n'));
  const explained = await thanosInjector(['inject', '-f', file, '--config', configFile, '--kube-version', '1.37.2', '-o', 'explain'], cluster.env);
  if (explained.code !== 0) throw new Error(`inject -o explain exited ${explained.code}: ${explained.stderr}`);
  return explained.stdout;
}

/** Checks a running pod: the policy's status annotation and label, one sidecar. */
function injectedByPolicy(t: Test, pod: PodJson): void {
  const status = JSON.parse(pod.metadata.annotations?.['thanos-injector/status'] ?? '{}') as { policy?: string };
  t.equal(status.policy, generation, `${pod.metadata.name}: the status annotation names the policy's generation`);
  t.equal(pod.metadata.labels?.['thanos-injector/injected'], 'true', `${pod.metadata.name}: labelled injected`);
  t.equal(sidecars(pod), 1, `${pod.metadata.name}: one thanos-sidecar`);
}

/** The seed's running pod (Ready, not terminating). */
const seedPod = () => waitFor("the seed's pod Ready", async () => {
  const list = (JSON.parse(await cluster.kubectlOk(['-n', 'seed', 'get', 'pods', '-l', 'app=prometheus', '-o', 'json'])) as { items: (PodJson & { metadata: { deletionTimestamp?: string }; status: { conditions?: { type: string; status: string }[] } })[] }).items;
  return list.find((p) => p.metadata.deletionTimestamp === undefined && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
}, 180_000, 2000);

const podJson = async (namespace: string, name: string) => JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pod', name, '-o', 'json'])) as PodJson;

const seed = seedManifests('seed', () => undefined);
const pair = chartStatefulSet('ha', '  external_labels:\n    cluster: eu1\n    replica: ${POD_NAME}\n', { image: images.prometheus3, blockFlags: [] });

void t.test('the chart\'s hook applied the policy the configuration makes, bound as the webhooks select', async (t) => {
  const policy = JSON.parse(await cluster.kubectlOk(['get', 'mutatingadmissionpolicy', POLICY, '-o', 'json'])) as { metadata: { annotations: Record<string, string> } };
  t.equal(policy.metadata.annotations['thanos-injector/generation'], generation, `MutatingAdmissionPolicy ${POLICY}, generation ${generation}`);
  const bindings = await cluster.kubectlOk(['get', 'mutatingadmissionpolicybindings', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.policyName} {end}']);
  t.same(bindings.trim().split(' ').sort(), [`${POLICY}-namespace=${POLICY}`, `${POLICY}-pod=${POLICY}`], 'its two bindings');
  t.match(await explain(seed), /Deployment\/prometheus-deploy\s+policy/, 'inject -o explain: the seed\'s Deployment goes to the policy');
  t.match(await explain(pair), /StatefulSet\/prometheus-server\s+policy/, 'inject -o explain: the community pair goes to the policy');
  const checked = await thanosInjector(['check', '--webhook-config', POLICY, '--config', configFile, '-o', 'json'], cluster.env);
  const row = (JSON.parse(checked.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks.find((r) => r.name === 'injection policy');
  t.equal(row?.status, 'ok', `check: ${row?.detail ?? 'no injection policy row'}`);
  t.match(row?.detail, `generation ${generation}`, 'the generation the configuration makes');
  // The apiserver takes a new policy and its bindings in asynchronously: until then a claimed pod
  // goes to the webhook, which is nowhere.
  await labelledNamespace('seed', 'seed');
  await labelledNamespace('ha', 'ha-pair');
  const probe = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace: 'seed' },
    spec: { containers: [{ name: 'prometheus', image: images.prometheus3, args: ['--storage.tsdb.path=/prometheus'], volumeMounts: [{ name: 'data', mountPath: '/prometheus' }] }], volumes: [{ name: 'data', emptyDir: {} }] } });
  const since = Date.now();
  await waitFor('the policy in force (a dry run comes back injected)', async () => {
    const created = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], probe);
    return created.code === 0 && sidecars(JSON.parse(created.stdout) as PodJson) === 1 ? true : undefined;
  }, 60_000, 500);
  t.pass(`in force (the dry run injected ${((Date.now() - since) / 1000).toFixed(1)} s after the namespaces were made)`);
});

void t.test('the blog post\'s Deployment and the community HA pair, injected by the policy alone: they run, upload, and Query reads them', async (t) => {
  await cluster.kubectlOk(['apply', '-f', '-'], seed);
  await cluster.kubectlOk(['apply', '-f', '-'], pair);
  const seedPod = await readyPod('seed', 'app=prometheus', 'the seed\'s Prometheus');
  injectedByPolicy(t, await podJson('seed', seedPod.metadata.name));
  for (const ordinal of [0, 1]) {
    const name = `prometheus-server-${ordinal}`;
    await readyPod('ha', `statefulset.kubernetes.io/pod-name=${name}`, name);
    const pod = await podJson('ha', name);
    injectedByPolicy(t, pod);
    t.ok(pod.spec.containers[0]?.args?.includes('--storage.tsdb.min-block-duration=1m'), `${name}: the configuration's block duration on Prometheus`);
  }

  const seedBlocks = await waitFor('a block of the seed in bucket seed', async () => {
    const blocks = await minio.blocks('seed');
    return blocks.length > 0 ? blocks : undefined;
  }, 300_000, 5000);
  t.same([...new Set(seedBlocks.map((b) => JSON.stringify(b.thanos.labels)))], [JSON.stringify({ cluster: 'prometheus-k8s' })], `the seed uploads under its external labels (${seedBlocks.length} block(s))`);
  const pairBlocks = await waitFor('blocks of both replicas in bucket ha-pair', async () => {
    const blocks = await minio.blocks('ha-pair');
    return new Set(blocks.map((b) => b.thanos.labels.replica)).size === 2 ? blocks : undefined;
  }, 300_000, 5000);
  t.same([...new Set(pairBlocks.map((b) => JSON.stringify(b.thanos.labels)))].sort(),
    [JSON.stringify({ cluster: 'eu1', replica: 'prometheus-server-0' }), JSON.stringify({ cluster: 'eu1', replica: 'prometheus-server-1' })], 'the pair: one label set per replica');

  // One run for both namespaces: the ConfigMap it writes lists what it looked at.
  const registered = await thanosInjector(['register', '--query-namespace', NAMESPACE, '--endpoints', 'pod-ip', '--webhook-config', POLICY, '--config', configFile, '-n', 'seed', '-n', 'ha'], cluster.env);
  t.equal(registered.code, 0, `register: ${registered.stdout.trim().split('\n').slice(-3).join(' | ')}${registered.stderr}`);
  t.notMatch(registered.stdout, 'outdated-sidecar', 'the policy-injected pods are current by the generation the configuration makes');
  const stores = await waitFor('Query to list the three sidecars', async () => {
    const healthy = await query.healthyStores();
    return healthy.length === 3 ? healthy : undefined;
  }, 180_000, 2000);
  t.same(stores.flatMap((s) => s.labelSets.map((set) => set.replica ?? set.cluster)).sort(), ['prometheus-k8s', 'prometheus-server-0', 'prometheus-server-1'], 'Query lists the seed and both replicas');
  const up = await waitFor('Query to answer the pair deduplicated', async () => {
    const series = await query.instant('up{job="prometheus",cluster="eu1"}', true);
    return series.length > 0 ? series : undefined;
  }, 60_000, 2000);
  t.same(up.map((s) => s.metric), [{ __name__: 'up', cluster: 'eu1', instance: 'localhost:9090', job: 'prometheus' }], 'the pair, one series once deduplicated');
  t.equal((await query.instant('up{job="prometheus",cluster="eu1"}', false)).length, 2, 'two without deduplication');
});

void t.test('a shape the policy leaves to the webhook is sent to it: here, with the webhook down and failurePolicy Fail, refused', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'annotated', namespace: 'seed', annotations: { 'thanos-injector/ephemeral-tsdb': 'allow' } },
    spec: { containers: [{ name: 'prometheus', image: images.prometheus3, args: ['--storage.tsdb.path=/prometheus'] }] } };
  const created = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
  t.not(created.code, 0, 'refused');
  t.match(created.stderr, /failed calling webhook "namespace\.thanos-sidecar-injector\.io"/, `by the webhook: ${created.stderr.trim()}`);
});

void t.test('helm upgrade to injection.mode policy: the webhook configuration goes, the policy stays; a re-created pod comes back injected, and check says how', async (t) => {
  const before = await seedPod();
  await cluster.helmOk(['upgrade', RELEASE, join(root, 'charts/thanos-sidecar-injector'), '--namespace', NAMESPACE, '--reuse-values', '--set', 'injection.mode=policy']);
  t.equal(await cluster.getJson(['get', 'mutatingwebhookconfiguration', POLICY]), undefined, 'no webhook configuration');
  const policy = await cluster.getJson<{ metadata: { annotations: Record<string, string> } }>(['get', 'mutatingadmissionpolicy', POLICY]);
  t.equal(policy?.metadata.annotations['thanos-injector/generation'], generation, 'the same policy (the mode is not part of it)');
  await cluster.kubectlOk(['-n', 'seed', 'rollout', 'restart', 'deployment', 'prometheus-deploy']);
  await cluster.kubectlOk(['-n', 'seed', 'rollout', 'status', 'deployment', 'prometheus-deploy', '--timeout=240s'], undefined, { timeoutMs: 250_000 });
  const after = await waitFor('the re-created seed pod Ready', async () => {
    const pod = await seedPod();
    return pod.metadata.name !== before.metadata.name ? pod : undefined;
  }, 120_000, 2000);
  injectedByPolicy(t, after);
  const checked = await thanosInjector(['check', '-n', 'seed', '--pod', after.metadata.name, '-o', 'json'], cluster.env);
  const rows = Object.fromEntries((JSON.parse(checked.stdout || '{"checks":[]}') as { checks: { name: string; status: string; detail: string }[] }).checks.map((r) => [r.name, r]));
  t.comment(Object.values(rows).map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n'));
  t.match(rows['webhook configuration'], { status: 'skip', detail: `injection mode policy: MutatingAdmissionPolicy ${POLICY} injects, with no webhook` }, 'check: no webhook, as the mode says');
  t.match(rows['injection policy'], { status: 'ok', detail: /the rest are created uninjected/ });
  t.match(rows['pod would be injected'], { status: 'ok', detail: /^yes, by the injection policy/ });
  for (const row of ['pod injected', 'sidecar up to date', 'objstore secret', 'prometheus external_labels']) t.equal(rows[row]?.status, 'ok', `check: ${row}: ${rows[row]?.detail ?? 'missing'}`);
  const rollout = await thanosInjector(['rollout', '-n', 'seed', '--dry-run'], cluster.env);
  t.match(rollout.stdout, /injected pods: \d+ \([1-9]\d* current, 0 outdated, 0 cannot tell/, `rollout finds the install by its policy: its pods are current (exit ${rollout.code})`);
  t.match(rollout.stdout, 'nothing to roll');
  const webhookShape = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'annotated', namespace: 'seed', annotations: { 'thanos-injector/ephemeral-tsdb': 'allow' } },
    spec: { containers: [{ name: 'prometheus', image: images.prometheus3, args: ['--storage.tsdb.path=/prometheus'] }] } };
  const created = JSON.parse(await cluster.kubectlOk(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(webhookShape))) as PodJson;
  t.equal(sidecars(created), 0, 'a shape only a webhook handles is now created as it is');
});
