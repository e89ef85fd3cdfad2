// The core scenario on a real node, run on every Kubernetes release the tests build (npm run
// test:node, and test:node:oldest on the oldest): the seed blog post's Deployment as written, in a
// namespace labelled thanos-injection=enabled, with real Prometheus, the real Thanos sidecar and a
// real MinIO bucket.
// 2. Injected with the native sidecar: both containers Ready, its blocks land in the bucket
//    (thanos_shipper_uploads_total >= 1), with no "operation not permitted" anywhere.
// 2c. The same Deployment with sidecarMode classic (annotation sidecar-mode: container): the sidecar
//    is a regular container, and it uploads too.
// 6. In the same labelled namespace, a pod that is not Prometheus and a Prometheus pod opted out run
//    exactly as written.
// 7. `thanos-injector check --pod` on the injected pod: every row ok, and the uploads it saw.
// Blocks are cut every 20 s (SHORT_BLOCKS), the first uploaded within about a minute.
import t from 'tap';
import { containerLog, SHORT_BLOCKS, startInjector, startNodeStack, waitFor } from '../support/node.ts';
import { seedHelpers, UPLOAD_DEADLINE_MS } from '../support/seed.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-core-');
const { cluster, minio, images } = stack;
const { seedManifests, podOf, readyPod, check } = seedHelpers(stack);

// Scenario 2's set-up: the injector, a labelled namespace with the objstore Secret, the seed's Deployment as written.
await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`]);
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await minio.createBucket('seed-injected');
await cluster.kubectlOk(['-n', 'monitoring', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('seed-injected')}`]);
await cluster.kubectlOk(['apply', '-f', '-'], seedManifests('monitoring', (pod) => {
  pod.spec.containers[0]?.args?.push(...SHORT_BLOCKS);
}));

// Scenario 2c's set-up: the classic sidecar, a regular container.
await cluster.kubectlOk(['create', 'namespace', 'seed-classic']);
await cluster.kubectlOk(['label', 'namespace', 'seed-classic', 'thanos-injection=enabled']);
await minio.createBucket('seed-classic');
await cluster.kubectlOk(['-n', 'seed-classic', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('seed-classic')}`]);
await cluster.kubectlOk(['apply', '-f', '-'], seedManifests('seed-classic', (pod) => {
  pod.metadata.annotations = { 'thanos-injector/sidecar-mode': 'container' };
  pod.spec.containers[0]?.args?.push(...SHORT_BLOCKS);
}));

// Scenario 6's set-up: in the labelled namespace, a pod that is not Prometheus and a Prometheus pod opted out.
const untouched = [
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'not-prometheus', namespace: 'monitoring', labels: { app: 'not-prometheus' } },
    spec: { containers: [{ name: 'app', image: images.pause, imagePullPolicy: 'IfNotPresent' }] },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'prometheus-opted-out', namespace: 'monitoring', labels: { app: 'prometheus-opted-out', 'thanos-injection': 'disabled' } },
    spec: { containers: [{ name: 'prometheus', image: images.prometheus3, imagePullPolicy: 'IfNotPresent', args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'] }] },
  },
];
for (const pod of untouched) await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(pod));

void t.test(`2. the seed's Deployment injected on ${cluster.serverVersion}: both containers Ready, blocks uploaded to MinIO`, async (t) => {
  const pod = await readyPod('monitoring', 'app=prometheus', 'the injected pod');
  t.ok([...pod.spec.containers, ...(pod.spec.initContainers ?? [])].some((c) => c.name === 'thanos-sidecar'), 'the pod has the injected sidecar');
  t.match(pod.spec.securityContext, { runAsUser: 65534, fsGroup: 65534 }, 'one user for both containers');
  const statuses = [...(pod.status.containerStatuses ?? []), ...(pod.status.initContainerStatuses ?? [])];
  t.ok(statuses.every((s) => s.ready), `every container Ready: ${statuses.map((s) => `${s.name}=${s.ready}`).join(', ')}`);
  const blocks = await waitFor('a block in the bucket', async () => {
    const keys = await minio.keys('seed-injected');
    const metas = keys.filter((k) => /^[0-9A-Z]{26}\/meta\.json$/.test(k));
    return metas.length > 0 ? metas : undefined;
  }, UPLOAD_DEADLINE_MS, 5000);
  t.ok(blocks.length >= 1, `blocks in bucket seed-injected: ${blocks.join(', ')}`);
  const metrics = await cluster.kubectlOk(['get', '--raw', `/api/v1/namespaces/monitoring/pods/${pod.metadata.name}:10902/proxy/metrics`]);
  const uploads = Number(/^thanos_shipper_uploads_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1] ?? NaN);
  t.ok(uploads >= 1, `the sidecar counts its uploads: thanos_shipper_uploads_total ${uploads}`);
  const logs = (await containerLog(cluster, 'monitoring', pod.metadata.name, 'thanos-sidecar')) + (await containerLog(cluster, 'monitoring', pod.metadata.name, 'prometheus'));
  t.notMatch(logs, /operation not permitted/, 'no "operation not permitted" in either log');
  t.ok(statuses.every((s) => s.restartCount === 0), 'no restarts');
});

void t.test(`2c. the classic sidecar (sidecar-mode: container) on ${cluster.serverVersion}: a regular container, Ready, blocks uploaded`, async (t) => {
  const pod = await readyPod('seed-classic', 'app=prometheus', 'the pod with a classic sidecar');
  t.same(pod.spec.containers.map((c) => c.name), ['prometheus', 'thanos-sidecar'], 'the sidecar is a regular container, after Prometheus');
  t.equal(pod.spec.initContainers, undefined, 'no init container');
  const statuses = pod.status.containerStatuses ?? [];
  t.ok(statuses.every((s) => s.ready), `every container Ready: ${statuses.map((s) => `${s.name}=${s.ready}`).join(', ')}`);
  const blocks = await waitFor('a block in bucket seed-classic', async () => {
    const metas = (await minio.keys('seed-classic')).filter((k) => /^[0-9A-Z]{26}\/meta\.json$/.test(k));
    return metas.length > 0 ? metas : undefined;
  }, UPLOAD_DEADLINE_MS, 5000);
  t.pass(`uploaded: ${blocks.join(', ')}`);
});

void t.test('6. a pod that is not Prometheus and a Prometheus pod opted out run in the labelled namespace exactly as written', async (t) => {
  for (const written of untouched) {
    const pod = await readyPod('monitoring', `app=${written.metadata.labels.app}`, written.metadata.name);
    t.same(pod.spec.containers.map((c) => ({ name: c.name, image: c.image, args: c.args })), written.spec.containers.map((c) => ({ name: c.name, image: c.image, args: 'args' in c ? c.args : undefined })), `${written.metadata.name}: its containers as written`);
    t.equal(pod.spec.initContainers, undefined, `${written.metadata.name}: no init container or sidecar added`);
    t.equal(pod.metadata.annotations?.['thanos-injector/status'], undefined, `${written.metadata.name}: no status annotation`);
    t.equal(pod.spec.securityContext?.runAsUser, undefined, `${written.metadata.name}: no securityContext set`);
  }
});

void t.test('7. check --pod on the injected pod: every row ok, and the uploads it saw', async (t) => {
  const injected = (await podOf('monitoring', 'app=prometheus'))!;
  const working = await check('monitoring', injected.metadata.name);
  t.comment(Object.values(working.rows).map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n'));
  const uploaded = (await minio.keys('seed-injected')).filter((k) => k.endsWith('/meta.json')).length;
  t.match(working.rows['sidecar uploads'], {
    status: 'ok',
    detail: /^[1-9][0-9]* block\(s\) uploaded since the sidecar started, the last upload finished at \S+, \S+ ago; (no block waits|at least 1 block .* the next sync \(every 30s\) takes it)$/,
  }, `uploads seen (${uploaded} block(s) in the bucket now)`);
  t.match(working.rows['tsdb volume'], { status: 'warn', detail: /^Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod/ }, "the seed's emptyDir, named");
  for (const row of ['pod would be injected', 'pod injected', 'objstore secret', 'prometheus external_labels', 'namespace injection', 'injector reachable', 'caBundle']) {
    t.equal(working.rows[row]?.status, 'ok', `${row}: ${working.rows[row]?.detail ?? 'missing'}`);
  }
});
