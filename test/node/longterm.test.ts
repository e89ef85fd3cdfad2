// What was uploaded is read back, on a real node with the real binaries, as users run Thanos:
// - an HA pair shaped like the prometheus-community chart's StatefulSet (replicas 2), one line of
//   config for its identity (`replica: ${POD_NAME}`), on Prometheus 3.16 and 2.42 (where the injector
//   turns on expand-external-labels): two label sets in each bucket; the chart's Query
//   (its default replica labels) answers one series per metric, two without deduplication, and keeps
//   answering while a replica is deleted;
// - a real Store Gateway (`thanos store`) over the bucket, listed by the chart's Query
//   (query.stores): once the Prometheus pods and their volumes are gone, a range query over the
//   uploaded window is still answered, from the store alone;
// - a real one-shot Compactor accepts the bucket (exit 0, `bucket verify` finds no overlap), and with
//   the replica label as its deduplication label merges the pair's blocks into compacted ones;
// - the traps, so the diagnoses are proven right: the same pair without a replica label (`check`
//   names both pods, the one-shot Compactor exits 1 on "overlaps found"), and a Prometheus without
//   external labels (`inject -f` warns before, the sidecar exits, `check` and `register` name it).
// Blocks are cut every 20 s (SHORT_BLOCKS), the first uploaded within about a minute.
import t, { type Test } from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { thanosInjector } from '../support/e2e.ts';
import { exec } from '../cluster/cluster.ts';
import { NODE_IP } from '../cluster/node.ts';
import { chartStatefulSet } from '../support/community.ts';
import { queryClient, type Series } from '../support/query.ts';
import { startInjector, startNodeStack, startProcess, waitFor, type BlockMeta } from '../support/node.ts';

t.setTimeout(1_500_000);

const stack = await startNodeStack(t, 'thanos-injector-node-longterm-');
const { cluster, minio, images, work } = stack;
const QUERY_NAMESPACE = 'thanos-injector';
const STORE_GRPC = `${NODE_IP}:10911`;
const UPLOAD_DEADLINE_MS = 300_000;

await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'query.enabled=true', '--set', `query.image=${images.thanos}`,
  '--set', 'query.reloadInterval=5s', '--set', 'query.resources.requests.cpu=50m', '--set-json', `query.stores=${JSON.stringify([STORE_GRPC])}`]);

/** A namespace labelled for injection whose objstore Secret names `bucket`. */
async function bucketNamespace(namespace: string, bucket: string): Promise<void> {
  await minio.createBucket(bucket);
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  await cluster.kubectlOk(['-n', namespace, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore(bucket)}`]);
}

/** A bucket configuration file for the Thanos processes of the test itself. */
async function bucketFile(bucket: string): Promise<string> {
  const file = join(work, `${bucket}.yml`);
  await writeFile(file, minio.objstore(bucket));
  return file;
}

interface PodJson {
  metadata: { name: string };
  spec: { containers: { name: string; env?: { name: string }[] }[]; initContainers?: { name: string }[] };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}

async function pods(namespace: string): Promise<PodJson[]> {
  return (JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-o', 'json'])) as { items: PodJson[] }).items;
}

const isReady = (pod: PodJson) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

async function readyPods(namespace: string, count: number): Promise<PodJson[]> {
  return waitFor(`${count} Ready pod(s) in ${namespace}`, async () => {
    const ready = (await pods(namespace)).filter(isReady);
    return ready.length === count ? ready : undefined;
  }, 240_000, 2000).catch(async (error: Error) => {
    const described = await cluster.kubectl(['-n', namespace, 'describe', 'pods']);
    throw new Error(`${error.message}\n${described.stdout.slice(-5000)}`);
  });
}

/** Blocks in `bucket` until `enough` says the set is complete. */
function blocksWhen(bucket: string, what: string, enough: (blocks: BlockMeta[]) => boolean): Promise<BlockMeta[]> {
  return waitFor(what, async () => {
    const blocks = await minio.blocks(bucket);
    return enough(blocks) ? blocks : undefined;
  }, UPLOAD_DEADLINE_MS, 5000);
}

// The Store Gateway: a process of the test on the node's address, which the chart's Query (a pod) reaches.
await minio.createBucket('longterm');
const storeData = join(work, 'store');
await mkdir(storeData);
const store = startProcess(t, stack.thanosBinary, ['store', '--data-dir', storeData, '--objstore.config-file', await bucketFile('longterm'),
  '--grpc-address', STORE_GRPC, '--http-address', '127.0.0.1:10912', '--sync-block-duration=5s', '--log.level=warn'], work);

// The workloads, all at once: their first blocks take minutes.
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await cluster.kubectlOk(['-n', 'monitoring', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('longterm')}`]);
await cluster.kubectlOk(['apply', '-f', '-'], chartStatefulSet('monitoring', '  external_labels:\n    cluster: eu1\n    replica: ${POD_NAME}\n', { image: images.prometheus3 }));
await bucketNamespace('ha-trap', 'ha-trap');
await bucketNamespace('ha-2x', 'ha-2x');
await cluster.kubectlOk(['apply', '-f', '-'], chartStatefulSet('ha-2x', '  external_labels:\n    cluster: eu2\n    replica: ${POD_NAME}\n', { image: images.prometheus2 }));
await cluster.kubectlOk(['apply', '-f', '-'], chartStatefulSet('ha-trap', '  external_labels:\n    cluster: trap\n', { image: images.prometheus3 }));

const { api: queryApi, healthyStores, instant } = queryClient(cluster, QUERY_NAMESPACE);

/** `thanos-injector register` for the pods of `namespace` (the Query of this test reads only those). */
async function register(t: Test, namespace: string): Promise<void> {
  const registered = await thanosInjector(['register', '--query-namespace', QUERY_NAMESPACE, '--endpoints', 'pod-ip', '-n', namespace], cluster.env);
  t.ok(registered.code === 0 || registered.code === 3, `register ran (exit ${registered.code}): ${registered.stdout.trim().split('\n').slice(-3).join(' | ')}${registered.stderr}`);
}

const UP = 'up{job="prometheus",cluster="eu1"}';
let uploadedWindow: { from: number; to: number } | undefined;

void t.test('an HA pair with replica: ${POD_NAME}: two label sets in the bucket, one series through Query, two without deduplication', async (t) => {
  const pair = await readyPods('monitoring', 2);
  for (const pod of pair) {
    const server = pod.spec.containers.find((c) => c.name === 'prometheus-server');
    t.ok(server?.env?.some((e) => e.name === 'POD_NAME'), `${pod.metadata.name}: the injector gave Prometheus POD_NAME`);
    t.ok(pod.spec.initContainers?.some((c) => c.name === 'thanos-sidecar'), `${pod.metadata.name}: injected`);
  }
  await register(t, 'monitoring');
  const stores = await waitFor('Query to list both sidecars and the Store Gateway', async () => {
    const healthy = await healthyStores();
    const replicas = healthy.flatMap((s) => s.labelSets.map((set) => set.replica)).filter(Boolean).sort();
    return healthy.some((s) => s.name === STORE_GRPC) && replicas.join() === 'prometheus-server-0,prometheus-server-1' ? healthy : undefined;
  }, 180_000, 2000);
  t.pass(`Query's stores: ${stores.map((s) => `${s.name} ${JSON.stringify(s.labelSets)}`).join('; ')}`);

  const blocks = await blocksWhen('longterm', 'blocks of both replicas in the bucket', (list) => new Set(list.map((b) => b.thanos.labels.replica)).size === 2);
  const labelSets = [...new Set(blocks.map((b) => JSON.stringify(b.thanos.labels)))].sort();
  t.same(labelSets, [JSON.stringify({ cluster: 'eu1', replica: 'prometheus-server-0' }), JSON.stringify({ cluster: 'eu1', replica: 'prometheus-server-1' })], 'one label set per replica, from ${POD_NAME}');

  const deduplicated = await waitFor('Query to answer up with deduplication', async () => {
    const series = await instant(UP, true);
    return series.length > 0 ? series : undefined;
  }, 60_000, 2000);
  t.same(deduplicated.map((s) => s.metric), [{ __name__: 'up', cluster: 'eu1', instance: 'localhost:9090', job: 'prometheus' }], 'one series: the replica label is dropped (query.replicaLabels)');
  const both = await instant(UP, false);
  t.same(both.map((s) => s.metric.replica).sort(), ['prometheus-server-0', 'prometheus-server-1'], 'two series without deduplication');

  await cluster.kubectlOk(['-n', 'monitoring', 'delete', 'pod', 'prometheus-server-0', '--wait=false']);
  const answers: number[] = [];
  for (let i = 0; i < 8; i++) {
    answers.push((await instant(UP, true)).length);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  t.same(answers, answers.map(() => 1), `one series every time while prometheus-server-0 is deleted and re-created: ${answers.join(' ')}`);
});

void t.test('the same pair on Prometheus 2.42: the injector turns on expand-external-labels, each replica uploads under its own name', async (t) => {
  const pair = await readyPods('ha-2x', 2);
  for (const pod of pair) {
    const build = (await (await fetch(`http://${pod.status.podIP}:9090/api/v1/status/buildinfo`, { signal: AbortSignal.timeout(5000) })).json()) as { data: { version: string } };
    t.match(build.data.version, /^2\.42\./, `${pod.metadata.name} runs Prometheus ${build.data.version} (Debian's package)`);
    const args = JSON.parse(await cluster.kubectlOk(['-n', 'ha-2x', 'get', 'pod', pod.metadata.name, '-o', 'jsonpath={.spec.containers[0].args}'])) as string[];
    t.ok(args.includes('--enable-feature=expand-external-labels'), `${pod.metadata.name}: --enable-feature=expand-external-labels added`);
  }
  const blocks = await blocksWhen('ha-2x', 'blocks of both 2.42 replicas in bucket ha-2x', (list) => new Set(list.map((b) => b.thanos.labels.replica)).size === 2);
  t.same([...new Set(blocks.map((b) => JSON.stringify(b.thanos.labels)))].sort(), [JSON.stringify({ cluster: 'eu2', replica: 'prometheus-server-0' }), JSON.stringify({ cluster: 'eu2', replica: 'prometheus-server-1' })], 'one label set per replica: ${POD_NAME} expanded by Prometheus 2.42');
});

void t.test('the Store Gateway answers for the uploaded window once the Prometheus pods and their volumes are gone', async (t) => {
  const blocks = await minio.blocks('longterm');
  uploadedWindow = { from: Math.min(...blocks.map((b) => b.minTime)), to: Math.max(...blocks.map((b) => b.maxTime)) };
  await waitFor('the Store Gateway to cover the uploaded window', async () => {
    const gateway = (await healthyStores()).find((s) => s.name === STORE_GRPC);
    return gateway !== undefined && gateway.minTime <= uploadedWindow!.from && gateway.maxTime >= uploadedWindow!.to - 1 ? gateway : undefined;
  }, 120_000, 2000).catch((error: Error) => {
    throw new Error(`${error.message}\n--- store ---\n${store.log().slice(-3000)}`);
  });

  await cluster.kubectlOk(['-n', 'monitoring', 'delete', 'statefulset', 'prometheus-server', '--wait=true'], undefined, { timeoutMs: 120_000 });
  await waitFor('the Prometheus pods (and their emptyDir volumes) to be gone', async () => ((await pods('monitoring')).length === 0 ? true : undefined), 120_000, 1000);
  await register(t, 'monitoring');
  const left = await waitFor('Query to list the Store Gateway only', async () => {
    const healthy = await healthyStores();
    return healthy.length === 1 && healthy[0]?.name === STORE_GRPC ? healthy : undefined;
  }, 120_000, 2000);
  t.same(left.map((s) => s.name), [STORE_GRPC], 'no sidecar left: only the store answers');

  const { from, to } = uploadedWindow;
  const range = await queryApi<{ status: string; data: { result: Series[] } }>(
    `/api/v1/query_range?query=${encodeURIComponent(UP)}&start=${from / 1000}&end=${to / 1000}&step=15&dedup=true`);
  t.equal(range.status, 'success');
  t.same(range.data.result.map((s) => s.metric), [{ __name__: 'up', cluster: 'eu1', instance: 'localhost:9090', job: 'prometheus' }], 'the pair, deduplicated, from the bucket');
  const samples = range.data.result[0]?.values ?? [];
  t.ok(samples.length >= ((to - from) / 15_000) * 0.8, `samples over the uploaded ${((to - from) / 60_000).toFixed(1)} min: ${samples.length}`);
  t.ok(samples.every(([, value]) => value === '1'), 'every sample up = 1');
});

void t.test('the Compactor accepts the bucket, and merges the pair with the replica label as its deduplication label', async (t) => {
  const bucket = await bucketFile('longterm');
  const plain = await exec(stack.thanosBinary, ['compact', '--data-dir', join(work, 'compact-plain'), '--objstore.config-file', bucket, '--consistency-delay=0s', '--http-address=127.0.0.1:0'], undefined, { timeoutMs: 300_000 });
  t.equal(plain.code, 0, `one-shot compact exits 0 (${plain.stderr.trim().split('\n').slice(-2).join(' | ')})`);
  const verify = await exec(stack.thanosBinary, ['tools', 'bucket', 'verify', '--objstore.config-file', bucket], undefined, { timeoutMs: 300_000 });
  t.equal(verify.code, 0, 'bucket verify runs');
  t.match(verify.stdout + verify.stderr, /verifier=overlapped_blocks/, 'its overlap verifier ran');
  // It exits 0 either way: its log is the verdict.
  t.notMatch(verify.stdout + verify.stderr, /found overlapped blocks/, 'and found no overlapped blocks');

  const before = await minio.blocks('longterm');
  const dedup = await exec(stack.thanosBinary, ['compact', '--data-dir', join(work, 'compact-dedup'), '--objstore.config-file', bucket, '--consistency-delay=0s',
    '--deduplication.replica-label=replica', '--deduplication.func=penalty', '--http-address=127.0.0.1:0'], undefined, { timeoutMs: 300_000 });
  t.equal(dedup.code, 0, `compact with --deduplication.replica-label=replica exits 0 (${dedup.stderr.trim().split('\n').slice(-2).join(' | ')})`);
  const after = await minio.blocks('longterm');
  const compacted = after.filter((b) => b.compaction.level >= 2);
  t.ok(compacted.length >= 1, `compacted blocks: ${compacted.map((b) => `${b.ulid} level ${b.compaction.level}, ${b.compaction.sources.length} sources, ${JSON.stringify(b.thanos.labels)}`).join('; ')}`);
  const sources = new Set(compacted.flatMap((b) => b.compaction.sources));
  const replicasMerged = new Set(before.filter((b) => sources.has(b.ulid)).map((b) => b.thanos.labels.replica));
  t.same([...replicasMerged].sort(), ['prometheus-server-0', 'prometheus-server-1'], 'each compacted block merges blocks of both replicas');
  t.ok(compacted.every((b) => b.thanos.labels.replica === undefined && b.thanos.labels.cluster === 'eu1'), 'and carries the pair\'s labels without the replica label');
});

void t.test('the trap: the same pair without a replica label shares one label set; check names both pods, the Compactor halts', async (t) => {
  await readyPods('ha-trap', 2);
  // Each replica cuts its blocks at the same minute boundaries: their time ranges overlap.
  const blocks = await blocksWhen('ha-trap', 'overlapping blocks of both replicas in bucket ha-trap', (list) =>
    list.some((a) => list.some((b) => a.ulid !== b.ulid && a.minTime < b.maxTime && b.minTime < a.maxTime)));
  t.same([...new Set(blocks.map((b) => JSON.stringify(b.thanos.labels)))], [JSON.stringify({ cluster: 'trap' })], 'one label set for both replicas');

  const checked = await thanosInjector(['check', '-n', 'ha-trap', '-o', 'json'], cluster.env);
  const rows = (JSON.parse(checked.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks;
  t.equal(checked.code, 1, 'check exits 1');
  const shared = rows.find((row) => row.status === 'fail' && row.detail.includes('prometheus-server-0') && row.detail.includes('prometheus-server-1'));
  t.ok(shared, `a failing row names both pods: ${shared ? `${shared.name}: ${shared.detail}` : rows.map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n')}`);
  t.match(shared?.detail, /cluster=trap/, 'and the shared labels');
  t.match(shared?.detail, /\$\{POD_NAME\}/, 'and the fix');

  const compact = await exec(stack.thanosBinary, ['compact', '--data-dir', join(work, 'compact-trap'), '--objstore.config-file', await bucketFile('ha-trap'), '--consistency-delay=0s', '--http-address=127.0.0.1:0'], undefined, { timeoutMs: 300_000 });
  t.equal(compact.code, 1, 'the one-shot Compactor exits 1');
  t.match(compact.stdout + compact.stderr, /overlaps found/, 'on "overlaps found"');
});

void t.test('no external labels: inject -f warns before, the sidecar exits, check and register name it after', async (t) => {
  await bucketNamespace('no-labels', 'no-labels');
  const manifests = chartStatefulSet('no-labels', '', { image: images.prometheus3 }).replace('"replicas":2', '"replicas":1');
  const file = join(work, 'no-labels.yaml');
  await writeFile(file, manifests);
  const offline = await thanosInjector(['inject', '-f', file], {});
  t.equal(offline.code, 0, 'inject -f succeeds');
  t.match(offline.stderr, /StatefulSet\/prometheus-server: warning: .*external_labels/, `inject -f warns: ${offline.stderr.split('\n').filter((l) => l.includes('external_labels')).join(' | ')}`);
  t.match(offline.stderr, /server\.global\.external_labels/, "naming the prometheus-community chart's value");

  await cluster.kubectlOk(['apply', '-f', '-'], manifests);
  const pod = await waitFor('the sidecar to exit on the missing labels', async () => {
    const [found] = await pods('no-labels');
    const json = found ? JSON.parse(await cluster.kubectlOk(['-n', 'no-labels', 'get', 'pod', found.metadata.name, '-o', 'json'])) as { status: { initContainerStatuses?: { name: string; lastState?: { terminated?: { message?: string } } }[] } } : undefined;
    const sidecar = json?.status.initContainerStatuses?.find((s) => s.name === 'thanos-sidecar');
    return sidecar?.lastState?.terminated?.message?.includes('no external labels configured') ? found : undefined;
  }, 240_000, 3000);
  t.pass(`${pod.metadata.name}: the sidecar exited, its termination message says why`);

  const checked = await thanosInjector(['check', '-n', 'no-labels', '-o', 'json'], cluster.env);
  const rows = (JSON.parse(checked.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks;
  t.equal(checked.code, 1, 'check exits 1');
  t.ok(rows.some((row) => row.status === 'fail' && /external.labels/i.test(row.detail) && row.detail.includes(pod.metadata.name)),
    `a failing row names the pod and the missing labels:\n${rows.map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n')}`);

  // register runs every minute from its CronJob; here up to three runs, 20 s apart. One CI run saw a
  // single run find no problem while the sidecar crash-looped: each run that misses prints the
  // sidecar's status as register read it, so a miss that recurs says why.
  const noLabelEvents = async () => (JSON.parse(await cluster.kubectlOk(['-n', 'no-labels', 'get', 'events', '--field-selector', 'reason=ThanosSidecarNoExternalLabels', '-o', 'json'])) as { items: { involvedObject: { name: string }; message: string }[] }).items;
  let events: Awaited<ReturnType<typeof noLabelEvents>> = [];
  for (let run = 1; run <= 3 && events.length === 0; run += 1) {
    await register(t, 'no-labels');
    events = await waitFor('the ThanosSidecarNoExternalLabels event', async () => {
      const listed = await noLabelEvents();
      return listed.length > 0 ? listed : undefined;
    }, 20_000, 2000).catch(() => []);
    if (events.length === 0) {
      const status = await cluster.kubectlOk(['-n', 'no-labels', 'get', 'pod', pod.metadata.name, '-o', "jsonpath={.status.initContainerStatuses[?(@.name=='thanos-sidecar')]}"]);
      t.comment(`register run ${run} recorded no event; the sidecar's status now: ${status}`);
    }
  }
  t.same(events.map((e) => e.involvedObject.name), [pod.metadata.name], `register records it on the pod: ${events[0]?.message ?? ''}`);
  t.match(events[0]?.message, /global\.external_labels/, 'with the fix');
});
