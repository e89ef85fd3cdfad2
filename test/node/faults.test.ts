// Nothing uploaded is lost, and what can be lost is named before it is: faults on the real node,
// with real Prometheus 3.16, the real Thanos sidecar and a real MinIO bucket per scenario, each
// reached through a fault proxy on the way to MinIO (test/support/fault-proxy.ts). The scenarios
// run side by side (t.jobs), each in its namespace:
// - outage: object storage refuses every connection (stopped) for more than six block periods while
//   blocks are cut: `check --pod` fails naming the bucket and the cause, `register` records a
//   ThanosSidecarUploadsStalled event; back up, every block goes up without a restart;
// - sidecar killed: SIGKILL in the middle of an upload (its chunks in the bucket, not its meta.json):
//   Thanos' own listing (the reader every Store Gateway and Compactor uses) does not see the partial
//   block; the kubelet restarts the sidecar and the block goes up whole;
// - prometheus killed: SIGKILL, the WAL replayed: every block cut is in the bucket, none overlaps;
// - shutdown: a pod deleted while its sidecar uploads over a thin link: its preStop hook waits, and
//   the block is in the bucket whole before the pod is gone;
// - statefulset: a pod deleted while a block waits (object storage hanging): its replacement, on the
//   same PersistentVolume, uploads it;
// - retention: a 5m retention and object storage hanging: the failing row, the Event, register's
//   metric and the chart's alert ThanosSidecarUnuploadedBlocksAtRisk (a real Prometheus evaluating
//   the chart's rules) all come before Prometheus deletes the oldest block not uploaded (its log);
// - emptyDir: the seed's TSDB on an emptyDir is warned about before creation (kubectl shows the
//   webhook's warning, inject -f prints it), refused where ephemeralTsdb says deny, and named by check.
// After each fault every block Prometheus cut is in the bucket but for one cut in the last sync
// period (compacted blocks count by their compaction.sources), `thanos tools bucket verify` logs no
// issue, and a one-shot `thanos compact --consistency-delay=0s` exits 0.
// Blocks are cut every 20 s (SHORT_BLOCKS); the sidecar syncs every 30 s.
import { ulidTime as blockTime } from '../../src/check/uploads.ts';
import t, { type Test } from 'tap';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { exec } from '../cluster/cluster.ts';
import { thanosInjector } from '../support/e2e.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { freePort } from '../support/net.ts';
import { containerLog, localVolume, root, SHORT_BLOCKS, startInjector, startNodeStack, startProcess, waitFor } from '../support/node.ts';
import { seedSizeBlock } from '../support/seed-block.ts';
import { seedHelpers, type Row } from '../support/seed.ts';

t.setTimeout(1_500_000);

/** When a block was written (its name, a ULID, begins with the time). */
const ulidTime = (ulid: string) => blockTime(ulid) ?? 0;

const stack = await startNodeStack(t, 'thanos-injector-node-faults-');
const { cluster, minio, images, node, work } = stack;
const { check, seedManifests } = seedHelpers(stack);
const RELEASE = 'tsi';
await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'injection.ephemeralTsdb.namespaces.fault-deny=deny']);

/** A block in Prometheus' TSDB, as /api/v1/status/tsdb/blocks lists it. */
interface LocalBlock {
  ulid: string;
  minTime: number;
  maxTime: number;
  stats?: { numSamples?: number };
  compaction: { level: number; sources?: string[] };
}
interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string; annotations?: Record<string, string> };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; containerID?: string; restartCount: number; ready: boolean }[];
    initContainerStatuses?: { name: string; containerID?: string; restartCount: number; ready: boolean }[];
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isReady = (pod: PodJson) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** A namespace labelled for injection whose objstore Secret reaches bucket `namespace` through a fault proxy of its own. */
async function faultNamespace(t: Test, namespace: string): Promise<FaultProxy> {
  const proxy = new FaultProxy(minio.endpoint);
  await proxy.start();
  t.teardown(() => proxy.stop());
  await minio.createBucket(namespace);
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  await cluster.kubectlOk(['-n', namespace, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore(namespace).replace(minio.endpoint, proxy.endpoint)}`]);
  return proxy;
}

interface PrometheusOptions {
  retention?: string;
  /** A StatefulSet on a local PersistentVolume (else a Deployment on an emptyDir). */
  statefulSet?: boolean;
}

/** Prometheus 3.16 scraping itself every 5 s, external labels of its own, 20 s blocks. */
async function deployPrometheus(namespace: string, options: PrometheusOptions = {}): Promise<void> {
  const labels = { app: 'prometheus' };
  const config = { global: { scrape_interval: '5s', external_labels: { cluster: 'faults', scenario: namespace } }, scrape_configs: [{ job_name: 'prometheus', static_configs: [{ targets: ['localhost:9090'] }] }] };
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus-config', namespace }, data: { 'prometheus.yml': stringify(config) } };
  const pod = {
    metadata: { labels },
    spec: {
      terminationGracePeriodSeconds: 15,
      containers: [{
        name: 'prometheus', image: images.prometheus3, imagePullPolicy: 'IfNotPresent',
        args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus', `--storage.tsdb.retention.time=${options.retention ?? '1d'}`, ...SHORT_BLOCKS],
        readinessProbe: { httpGet: { path: '/-/ready', port: 9090 }, periodSeconds: 2 },
        resources: { requests: { cpu: '50m', memory: '64Mi' } },
        volumeMounts: [{ name: 'config', mountPath: '/etc/prometheus' }, { name: 'data', mountPath: '/prometheus' }],
      }],
      volumes: [{ name: 'config', configMap: { name: 'prometheus-config' } }, ...(options.statefulSet ? [] : [{ name: 'data', emptyDir: {} }])],
    },
  };
  const workload = options.statefulSet
    ? {
      apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'prometheus', namespace },
      spec: {
        serviceName: 'prometheus', replicas: 1, selector: { matchLabels: labels }, template: pod,
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      },
    }
    : { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'prometheus', namespace }, spec: { replicas: 1, strategy: { type: 'Recreate' }, selector: { matchLabels: labels }, template: pod } };
  if (options.statefulSet) await localVolume(stack, namespace, 'data-prometheus-0');
  await cluster.kubectlOk(['apply', '-f', '-'], `${JSON.stringify(configMap)}\n${JSON.stringify(workload)}`);
}

/** The namespace's Prometheus pod that runs (not being deleted), once Ready. */
async function readyPod(namespace: string, not?: string): Promise<PodJson> {
  return waitFor(`the Prometheus pod of ${namespace} Ready`, async () => {
    const list = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', 'app=prometheus', '-o', 'json'])) as { items: PodJson[] };
    return list.items.find((pod) => isReady(pod) && pod.metadata.deletionTimestamp === undefined && pod.metadata.uid !== not);
  }, 240_000, 1000);
}

async function podJson(namespace: string, name: string): Promise<PodJson> {
  return JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pod', name, '-o', 'json'])) as PodJson;
}

/** What Prometheus in the pod lists as its blocks (it answers on the pod's IP). */
async function localBlocks(pod: PodJson): Promise<LocalBlock[]> {
  const response = await fetch(`http://${pod.status.podIP}:9090/api/v1/status/tsdb/blocks`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`blocks of ${pod.metadata.name}: HTTP ${response.status}`);
  return ((await response.json()) as { data: { blocks: LocalBlock[] } }).data.blocks;
}

/** Every block Prometheus cut that it still has or compacted: level-1 blocks, and the sources of compacted ones. */
function cutBlocks(blocks: LocalBlock[]): Set<string> {
  return new Set(blocks.flatMap((b) => (b.compaction.level === 1 ? ((b.stats?.numSamples ?? 0) > 0 ? [b.ulid] : []) : (b.compaction.sources ?? []))));
}

async function bucketBlocks(bucket: string): Promise<Set<string>> {
  return new Set((await minio.blocks(bucket)).map((b) => b.ulid));
}

/** Waits until every block cut more than a sync period and a margin ago is in the bucket; returns both sets. */
async function allUploaded(namespace: string, pod: PodJson, deadlineMs = 180_000): Promise<{ cut: string[]; missing: string[] }> {
  let last = { cut: [] as string[], missing: [] as string[] };
  try {
    return await waitFor(`every block of ${namespace} in its bucket`, async () => {
      const cut = [...cutBlocks(await localBlocks(pod))].filter((ulid) => ulidTime(ulid) < Date.now() - 45_000);
      const inBucket = await bucketBlocks(namespace);
      last = { cut, missing: cut.filter((ulid) => !inBucket.has(ulid)) };
      return last.missing.length === 0 && cut.length > 0 ? last : undefined;
    }, deadlineMs, 5000);
  } catch {
    return last;
  }
}

/** `thanos tools bucket verify` logs no issue, and a one-shot Compactor exits 0. */
async function bucketSound(t: Test, bucket: string): Promise<void> {
  const file = join(work, `${bucket}.yml`);
  await writeFile(file, minio.objstore(bucket));
  const verify = await exec(stack.thanosBinary, ['tools', 'bucket', 'verify', '--objstore.config-file', file], undefined, { timeoutMs: 300_000 });
  const said = verify.stdout + verify.stderr;
  t.equal(verify.code, 0, 'bucket verify runs');
  t.match(said, /verifier=overlapped_blocks/, 'its verifiers ran');
  t.notMatch(said, /found overlapped blocks|level=(warn|error)/, `and logged no issue${/level=(warn|error)/.test(said) ? `: ${said.split('\n').filter((l) => /level=(warn|error)/.test(l)).join(' | ')}` : ''}`);
  const compact = await exec(stack.thanosBinary, ['compact', '--data-dir', join(work, `compact-${bucket}`), '--objstore.config-file', file, '--consistency-delay=0s', '--http-address=127.0.0.1:0'], undefined, { timeoutMs: 300_000 });
  t.equal(compact.code, 0, `a one-shot thanos compact --consistency-delay=0s exits 0 (${compact.stderr.trim().split('\n').slice(-1).join('')})`);
}

/** Waits for the first block of the pod in its bucket (uploads work before the fault). */
async function firstUpload(namespace: string): Promise<void> {
  await waitFor(`the first block of ${namespace} uploaded`, async () => ((await bucketBlocks(namespace)).size > 0 ? true : undefined), 240_000, 3000);
}

/** A scenario's start: its namespace, bucket and fault proxy, its Prometheus Ready and its first block uploaded. */
async function scenario(t: Test, namespace: string, options: PrometheusOptions = {}): Promise<{ proxy: FaultProxy; pod: PodJson }> {
  const proxy = await faultNamespace(t, namespace);
  await deployPrometheus(namespace, options);
  const pod = await readyPod(namespace);
  await firstUpload(namespace);
  return { proxy, pod };
}

/** A block whose upload has begun: some of its objects in the bucket, no meta.json yet (Thanos uploads it last). */
async function uploadBegun(namespace: string): Promise<{ ulid: string; files: string[] } | undefined> {
  const byBlock = new Map<string, string[]>();
  for (const key of (await minio.keys(namespace)).filter((k) => /^[0-9A-Z]{26}\//.test(k))) byBlock.set(key.slice(0, 26), [...(byBlock.get(key.slice(0, 26)) ?? []), key.slice(27)]);
  const found = [...byBlock].find(([, files]) => !files.includes('meta.json'));
  return found === undefined ? undefined : { ulid: found[0], files: found[1] };
}

/** The containerd task of a container of the pod, killed with SIGKILL (as the OOM killer or a node's crash would). */
async function kill(pod: PodJson, container: string): Promise<void> {
  const status = [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])].find((s) => s.name === container);
  const id = status?.containerID?.replace(/^containerd:\/\//, '');
  if (id === undefined) throw new Error(`no container ${container} running in ${pod.metadata.name}`);
  const killed = await node.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
  if (killed.code !== 0) throw new Error(`ctr tasks kill ${id}: ${killed.stderr}`);
}

const restarts = (pod: PodJson, container: string) =>
  [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])].find((s) => s.name === container)?.restartCount ?? -1;

async function events(namespace: string, reason: string): Promise<{ involvedObject: { name: string }; message: string; firstTimestamp?: string; eventTime?: string; metadata: { creationTimestamp: string } }[]> {
  return (JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'events', '--field-selector', `reason=${reason}`, '-o', 'json'])) as { items: [] }).items;
}

/** `check -n NS --pod P` until its sidecar uploads row fails; the row and when. */
async function failingRow(namespace: string, pod: string, deadlineMs: number): Promise<{ row: Row; at: number }> {
  return waitFor(`check --pod ${pod} to fail its sidecar uploads row`, async () => {
    const row = (await check(namespace, pod)).rows['sidecar uploads'];
    return row?.status === 'fail' ? { row, at: Date.now() } : undefined;
  }, deadlineMs, 10_000);
}

t.jobs = 7;

void t.test('outage: object storage refuses connections for six block periods; check and register name it, then every block goes up without a restart', async (t) => {
  const namespace = 'fault-outage';
  const { proxy, pod } = await scenario(t, namespace);
  await proxy.set('refuse');
  const down = Date.now();
  const { row } = await failingRow(namespace, pod.metadata.name, 300_000);
  t.pass(`check --pod fails ${((Date.now() - down) / 1000).toFixed(0)} s into the outage: ${row.detail}`);
  t.match(row.detail, /^uploads are stalled: \d+ block\(s\) cut by Prometheus not uploaded/, 'the backlog, counted');
  const named = t.match(row.detail, /bucket fault-outage is unreachable \(.*connection refused\)/, 'the bucket and the cause, named');
  if (!named) t.comment(`the sidecar's log as check could read it:\n${(await containerLog(cluster, namespace, pod.metadata.name, 'thanos-sidecar')).split('\n').slice(-40).join('\n')}`);
  const registered = await thanosInjector(['register', '--query-namespace', 'thanos-injector', '-n', namespace], cluster.env);
  t.match(registered.stdout, /fault-outage\s+\S+\s+uploads-stalled/, `register lists it (exit ${registered.code})`);
  const recorded = await events(namespace, 'ThanosSidecarUploadsStalled');
  t.same(recorded.map((e) => e.involvedObject.name), [pod.metadata.name], `and records the Event on the pod: ${recorded[0]?.message ?? ''}`);
  t.match(recorded[0]?.message, /Uploads to object storage are stalled: .*requests to bucket fault-outage fail \(\d+ failed since the sidecar started; its log says why\)/, 'from the counters (register reads no logs): check quotes the error');
  await sleep(Math.max(0, down + 150_000 - Date.now()));
  const waiting = (await localBlocks(pod)).filter((b) => ulidTime(b.ulid) > down);
  t.ok(waiting.length >= 6, `blocks were cut during the outage (${waiting.length} of them)`);
  await proxy.set('pass');
  const up = await allUploaded(namespace, pod);
  t.same(up.missing, [], `back up: every block cut is in the bucket (${up.cut.length} blocks, the ${waiting.length} of the outage among them)`);
  t.equal(restarts(await podJson(namespace, pod.metadata.name), 'thanos-sidecar'), 0, 'without a restart of the sidecar');
  await bucketSound(t, namespace);
});

void t.test('sidecar killed in the middle of an upload: no partial block is readable, and the block goes up afterwards', async (t) => {
  const namespace = 'fault-kill';
  const { proxy, pod } = await scenario(t, namespace);
  // A thin link, so an upload takes seconds: once a block's first objects are in, nothing more moves.
  await proxy.set({ slow: 4096 });
  const partial = await waitFor('a block with some objects in the bucket and no meta.json yet', async () => {
    const begun = await uploadBegun(namespace);
    if (begun !== undefined) await proxy.set('hang');
    return begun;
  }, 300_000, 200);
  const inFlight = await cluster.kubectlOk(['-n', namespace, 'exec', pod.metadata.name, '-c', 'prometheus', '--', 'ls', '/prometheus/thanos/upload']);
  t.equal(inFlight.trim(), partial.ulid, `the sidecar is uploading ${partial.ulid}: ${partial.files.join(', ')} in the bucket, meta.json not`);
  await kill(await podJson(namespace, pod.metadata.name), 'thanos-sidecar');
  const file = join(work, `${namespace}.yml`);
  await writeFile(file, minio.objstore(namespace));
  const listed = await exec(stack.thanosBinary, ['tools', 'bucket', 'ls', '--objstore.config-file', file, '-o', 'json'], undefined, { timeoutMs: 120_000 });
  t.equal(listed.code, 0, 'thanos tools bucket ls runs');
  t.notMatch(listed.stdout, partial.ulid, 'Thanos\' own block listing (what Store Gateways and Compactors read) does not see the partial block');
  t.ok((await minio.keys(namespace)).some((key) => key.startsWith(`${partial.ulid}/`) && key !== `${partial.ulid}/meta.json`) && !(await minio.keys(namespace)).includes(`${partial.ulid}/meta.json`), 'though its objects are there');
  await proxy.set('pass');
  const restarted = await waitFor('the kubelet to restart the sidecar', async () => {
    const now = await podJson(namespace, pod.metadata.name);
    return restarts(now, 'thanos-sidecar') >= 1 ? now : undefined;
  }, 120_000, 2000);
  t.ok(restarts(restarted, 'thanos-sidecar') >= 1, 'the sidecar was restarted by the kubelet');
  await waitFor(`${partial.ulid}/meta.json in the bucket`, async () => ((await minio.keys(namespace)).includes(`${partial.ulid}/meta.json`) ? true : undefined), 180_000, 3000);
  t.pass('the block goes up whole after the restart');
  const up = await allUploaded(namespace, restarted);
  t.same(up.missing, [], `every block cut is in the bucket (${up.cut.length})`);
  await bucketSound(t, namespace);
});

void t.test("pod deleted in the middle of an upload: the sidecar's preStop hook lets the upload finish before the pod goes", async (t) => {
  const namespace = 'fault-shutdown';
  const { proxy, pod } = await scenario(t, namespace);
  const hook = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pod', pod.metadata.name, '-o', 'jsonpath={.spec.initContainers[0].lifecycle.preStop.exec.command}'])) as string[];
  t.match(hook[2], /thanos\/upload.*-lt 13 \]/, 'the injected sidecar waits up to 13 s of the pod\'s 15 s grace period');
  await proxy.set({ slow: 16_384 });
  const { ulid } = await waitFor('a block whose upload has begun (an object in, no meta.json yet)', () => uploadBegun(namespace), 300_000, 200);
  const deleting = Date.now();
  await cluster.kubectlOk(['-n', namespace, 'delete', 'pod', pod.metadata.name, '--wait=true', '--timeout=60s'], undefined, { timeoutMs: 90_000 });
  const seconds = (Date.now() - deleting) / 1000;
  t.ok((await minio.keys(namespace)).includes(`${ulid}/meta.json`), `${ulid} went up whole before the pod was gone (${seconds.toFixed(1)} s from the delete to the pod's end)`);
  await proxy.set('pass');
  await bucketSound(t, namespace);
});

void t.test('prometheus killed: the WAL replayed, nothing missing in the bucket, no overlap', async (t) => {
  const namespace = 'fault-prometheus';
  const { pod } = await scenario(t, namespace);
  await sleep(30_000);
  await kill(await podJson(namespace, pod.metadata.name), 'prometheus');
  const replayed = await waitFor('Prometheus restarted and Ready again', async () => {
    const now = await podJson(namespace, pod.metadata.name);
    return restarts(now, 'prometheus') >= 1 && isReady(now) ? now : undefined;
  }, 180_000, 2000);
  const log = await cluster.kubectlOk(['-n', namespace, 'logs', pod.metadata.name, '-c', 'prometheus']);
  t.match(log, /WAL replay completed/, 'Prometheus replayed its write-ahead log');
  await sleep(80_000);
  const up = await allUploaded(namespace, replayed);
  t.same(up.missing, [], `every block cut, before and after the kill, is in the bucket (${up.cut.length})`);
  const blocks = (await minio.blocks(namespace)).sort((a, b) => a.minTime - b.minTime);
  const overlaps = blocks.slice(1).filter((b, i) => b.minTime < blocks[i]!.maxTime);
  t.same(overlaps.map((b) => b.ulid), [], `no block overlaps another (${blocks.length} blocks)`);
  await bucketSound(t, namespace);
});

void t.test('statefulset: a pod deleted while a block waits; its replacement, on the same volume, uploads it', async (t) => {
  const namespace = 'fault-statefulset';
  const { proxy, pod } = await scenario(t, namespace, { statefulSet: true });
  await proxy.set('hang');
  const hung = Date.now();
  const waiting = await waitFor('a block cut while object storage hangs', async () => {
    const cut = [...cutBlocks(await localBlocks(pod))].filter((ulid) => ulidTime(ulid) > hung + 2000);
    return cut.length > 0 ? cut : undefined;
  }, 120_000, 3000);
  const before = await bucketBlocks(namespace);
  t.same(waiting.filter((ulid) => before.has(ulid)), [], `not uploaded: ${waiting.join(', ')}`);
  await cluster.kubectlOk(['-n', namespace, 'delete', 'pod', pod.metadata.name, '--wait=false']);
  const replacement = await readyPod(namespace, pod.metadata.uid);
  t.equal(replacement.metadata.name, pod.metadata.name, 'the StatefulSet brings the pod back, on the same claim');
  await proxy.set('pass');
  await waitFor('the blocks that waited in the bucket', async () => {
    const inBucket = await bucketBlocks(namespace);
    return waiting.every((ulid) => inBucket.has(ulid)) ? true : undefined;
  }, 180_000, 3000);
  t.pass(`the replacement uploaded what the deleted pod had not: ${waiting.join(', ')}`);
  const up = await allUploaded(namespace, replacement);
  t.same(up.missing, [], `every block cut is in the bucket (${up.cut.length})`);
  await bucketSound(t, namespace);
});

void t.test('retention against a backlog: the failing row, the Event, the metric and the alert all come before Prometheus deletes a block not uploaded', async (t) => {
  const namespace = 'fault-retention';
  const { proxy, pod } = await scenario(t, namespace, { retention: '5m' });

  // register --watch for this namespace, its metrics scraped by a real Prometheus that evaluates the chart's rules.
  const metricsPort = await freePort();
  const register = startProcess(t, process.execPath, ['src/main.ts', 'register', '--watch', '--resync', '10', '--metrics-port', String(metricsPort), '--metrics-address', '127.0.0.1',
    '--query-namespace', 'thanos-injector', '-n', namespace], root, { ...cluster.env, POD_NAMESPACE: '' });
  t.teardown(() => void register.child.kill('SIGTERM'));
  const rendered = await cluster.helmOk(['template', RELEASE, join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos-injector',
    '--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.serviceMonitor.enabled=false', '--set', 'registration.mode=watch']);
  const rule = parseAllDocuments(rendered).map((d) => d.toJS() as { kind?: string; spec?: unknown } | null).find((d) => d?.kind === 'PrometheusRule');
  const alerting = join(work, 'alerting');
  mkdirSync(alerting);
  await writeFile(join(alerting, 'rules.yml'), stringify(rule?.spec));
  const alertPort = await freePort();
  await writeFile(join(alerting, 'prometheus.yml'), stringify({
    global: { scrape_interval: '5s', evaluation_interval: '5s' },
    rule_files: [join(alerting, 'rules.yml')],
    scrape_configs: [{ job_name: `${RELEASE}-thanos-sidecar-injector-register`, static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] }],
  }));
  startProcess(t, stack.prometheusBinary, [`--config.file=${join(alerting, 'prometheus.yml')}`, `--storage.tsdb.path=${join(alerting, 'data')}`, `--web.listen-address=127.0.0.1:${alertPort}`], alerting);
  const firing = async () => {
    const response = await fetch(`http://127.0.0.1:${alertPort}/api/v1/alerts`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    const body = response?.ok ? ((await response.json()) as { data: { alerts: { labels: Record<string, string>; state: string; annotations: Record<string, string> }[] } }) : undefined;
    return body?.data.alerts.find((a) => a.labels.alertname === 'ThanosSidecarUnuploadedBlocksAtRisk' && a.labels.pod === pod.metadata.name && a.state === 'firing');
  };

  await proxy.set('hang');
  const hung = Date.now();
  // What each part said, and when; Prometheus' deletion of the oldest block cut since the hang is the deadline.
  const seen: { row?: { row: Row; at: number }; event?: number; metric?: number; alert?: { at: number; summary: string } } = {};
  const metricLine = async () => {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(3000) }).then((r) => r.text(), () => '');
    return text.split('\n').find((line) => line.startsWith('thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{') && line.includes(pod.metadata.name));
  };
  const deletion = await waitFor('Prometheus to delete a block cut since object storage hangs', async () => {
    if (seen.row === undefined) {
      const row = (await check(namespace, pod.metadata.name)).rows['sidecar uploads'];
      if (row?.status === 'fail') seen.row = { row, at: Date.now() };
    }
    if (seen.event === undefined && (await events(namespace, 'ThanosSidecarUploadsStalled')).length > 0) seen.event = Date.now();
    if (seen.metric === undefined && (await metricLine()) !== undefined) seen.metric = Date.now();
    if (seen.alert === undefined) {
      const alert = await firing();
      if (alert !== undefined) seen.alert = { at: Date.now(), summary: alert.annotations.summary ?? '' };
    }
    const log = (await cluster.kubectl(['-n', namespace, 'logs', pod.metadata.name, '-c', 'prometheus'])).stdout;
    const deleted = [...log.matchAll(/time=(\S+) .*msg="Deleting obsolete block".*block=([0-9A-Z]{26})/g)].find((m) => ulidTime(m[2]!) > hung);
    return deleted === undefined ? undefined : { at: Date.parse(deleted[1]!), ulid: deleted[2]! };
  }, 600_000, 5000);
  const after = (at: number | undefined) => (at === undefined ? 'never' : `${((at - hung) / 1000).toFixed(0)} s`);
  t.comment(`object storage hung at 0 s; check failed at ${after(seen.row?.at)}, Event at ${after(seen.event)}, metric at ${after(seen.metric)}, alert firing at ${after(seen.alert?.at)}; Prometheus deleted ${deletion.ulid} at ${after(deletion.at)}`);
  t.ok(seen.row !== undefined && seen.row.at < deletion.at, `check --pod failed before the deletion: ${seen.row?.row.detail ?? ''}`);
  t.match(seen.row?.row.detail, /retention \(5m\) deletes it, uploaded or not, at the earliest at/, 'naming when retention deletes the oldest block');
  t.ok(seen.event !== undefined && seen.event < deletion.at, 'the ThanosSidecarUploadsStalled Event was recorded before it');
  t.ok(seen.metric !== undefined && seen.metric < deletion.at, "register's deletion-time metric was exported before it");
  t.ok(seen.alert !== undefined && seen.alert.at < deletion.at, `the chart's alert ThanosSidecarUnuploadedBlocksAtRisk fired before it: ${seen.alert?.summary ?? ''}`);
  t.notOk((await bucketBlocks(namespace)).has(deletion.ulid), `and the block was really lost: ${deletion.ulid} never reached the bucket`);
  await proxy.set('pass');
  const up = await allUploaded(namespace, pod);
  t.same(up.missing, [], `back up: every block Prometheus still has is in the bucket (${up.cut.length})`);
  await bucketSound(t, namespace);
});

void t.test("emptyDir: the seed's TSDB is warned about before creation, refused where ephemeralTsdb says deny, and named by check", async (t) => {
  const warned = 'fault-emptydir';
  const denied = 'fault-deny';
  const manifests = seedManifests(warned, () => undefined);
  const seed = manifests.split('\n').map((line) => JSON.parse(line) as { kind: string; metadata: { name: string }; spec: { template: { metadata: object; spec: object } } });
  for (const namespace of [warned, denied]) {
    await cluster.kubectlOk(['create', 'namespace', namespace]);
    await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  }
  await minio.createBucket(warned);
  await cluster.kubectlOk(['-n', warned, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore(warned)}`]);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(seed.find((d) => d.kind === 'ConfigMap')));
  // The seed's pod as a bare Pod, so the webhook's answer reaches kubectl (a Deployment's pods are created by its controller).
  const template = seed.find((d) => d.kind === 'Deployment')!.spec.template;
  const seedPod = (namespace: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, name: 'prometheus', namespace }, spec: template.spec });
  const created = await cluster.kubectl(['create', '-f', '-'], seedPod(warned));
  t.equal(created.code, 0, 'created in a namespace under the default policy (warn)');
  const warning = created.stderr.split('\n').filter((line) => line.startsWith('Warning: ')).map((line) => line.slice('Warning: '.length).replace(/^ {2}/, ' ')).join('');
  t.match(warning, /thanos-injector: Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod: every rollout, eviction or node drain loses .* every block the sidecar has not uploaded yet; keep the TSDB on a PersistentVolumeClaim/,
    `kubectl shows the webhook's warning, whole: ${warning}`);
  const status = JSON.parse((await podJson(warned, 'prometheus')).metadata.annotations?.['thanos-injector/status'] ?? '{}') as { tsdb?: unknown };
  t.same(status.tsdb, { volume: 'prometheus-data', kind: 'emptyDir', lifetime: 'pod' }, 'the status annotation records where the TSDB is and that it goes with the pod');

  const refused = await cluster.kubectl(['create', '-f', '-'], seedPod(denied));
  t.not(refused.code, 0, 'refused where ephemeralTsdb says deny');
  t.match(refused.stderr, /thanos-injector: Prometheus' TSDB is on emptyDir volume prometheus-data.*refused here \(ephemeralTsdb\.namespaces\.fault-deny in the injector configuration: deny\): keep the TSDB on a PersistentVolumeClaim/, 'with the reason and the fix');

  const file = join(work, 'seed.yaml');
  await writeFile(file, seed.map((d) => JSON.stringify(d)).join('\n---\n'));
  const offline = await thanosInjector(['inject', '-f', file], {});
  t.match(offline.stderr, /Deployment\/prometheus-deploy: warning: Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod/, 'inject -f says it before anything is applied');

  const running = await waitFor('the warned pod Ready', async () => {
    const pod = await podJson(warned, 'prometheus');
    return isReady(pod) ? pod : undefined;
  }, 180_000, 2000);
  const checked = await check(warned, 'prometheus');
  t.match(checked.rows['tsdb volume'], { status: 'warn', detail: /^Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod/ }, 'check names it on the running pod');

  // What an upload in flight at shutdown takes: a 2 h block of this Prometheus (its own series every
  // 5 s, as the seed scrapes), put into its TSDB folder, uploaded by its sidecar.
  const exposition = await (await fetch(`http://${running.status.podIP}:9090/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const block = await seedSizeBlock(cluster.bin.promtool, exposition, work, Math.floor((Date.now() / 1000 - 3 * 86400) / 7200) * 7200);
  // Copied beside the TSDB, then renamed into it at once: the shipper must not see half a block.
  await cluster.kubectlOk(['-n', warned, 'cp', '-c', 'prometheus', block.dir, `prometheus:/prometheus/staging-${block.ulid}`]);
  await cluster.kubectlOk(['-n', warned, 'exec', 'prometheus', '-c', 'prometheus', '--', 'mv', `/prometheus/staging-${block.ulid}`, `/prometheus/${block.ulid}`]);
  const uploaded = await waitFor(`${block.ulid} uploaded`, async () => {
    const objects = (await minio.objects(warned)).filter((o) => o.key.startsWith(`${block.ulid}/`));
    return objects.some((o) => o.key.endsWith('/meta.json')) ? objects : undefined;
  }, 120_000, 1000);
  const bytes = uploaded.reduce((sum, o) => sum + o.size, 0);
  const sidecar = await (await fetch(`http://${running.status.podIP}:10902/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const seconds = Number(/^thanos_objstore_bucket_operation_duration_seconds_sum\{[^}]*operation="upload"[^}]*\} (\S+)$/m.exec(sidecar)?.[1]);
  t.ok(seconds > 0 && seconds < 28, `a 2h block of the seed's size (${block.series} series, ${block.samples} samples, ${(bytes / 1e6).toFixed(1)} MB) uploaded in ${seconds.toFixed(2)} s to MinIO here: ` +
    `within the ${28} s the preStop hook waits under the default 30 s grace period (${(bytes / 1e6 / 28).toFixed(2)} MB/s would do)`);
});
