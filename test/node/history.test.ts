// Existing history into the bucket, on a real node: a Prometheus that ran with compaction on before
// it was injected (five 2h blocks made by the real promtool, three of which its own compactor merges
// into one 6h block on a PersistentVolume), then its namespace opted in and its template annotated
// thanos-injector/upload-history: "true":
// - the injected sidecar carries --shipper.upload-compacted, Prometheus' compaction is disabled;
// - every local block, the compacted one included, reaches the bucket; `check --pod` says done;
// - `thanos tools bucket verify` finds no overlap and a one-shot `thanos compact` exits 0;
// - the pod re-created with the annotation still on uploads nothing twice (the bucket unchanged);
// - the annotation removed, the StatefulSet rolls its pod to a sidecar without the flag.
import t from 'tap';
import { chown, cp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../cluster/cluster.ts';
import { thanosInjector } from '../support/e2e.ts';
import { localVolume, startInjector, startNodeStack, waitFor } from '../support/node.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-history-');
const { cluster, minio, images, work } = stack;
const NAMESPACE = 'history';
const BUCKET = 'history';
const HOUR = 3600;

await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`]);
await minio.createBucket(BUCKET);
await cluster.kubectlOk(['create', 'namespace', NAMESPACE]);
await cluster.kubectlOk(['-n', NAMESPACE, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore(BUCKET)}`]);

// Five 2h blocks, days back: three in one 6h window, which Prometheus compacts into one block once a
// later block exists beyond it (its planner leaves out the newest block, and takes a window that
// does not span its full range only when it ends before the newest block left), and two later ones.
const start = Math.floor((Date.now() / 1000 - 3 * 86400) / (6 * HOUR)) * 6 * HOUR;
const lines = ['# TYPE history_samples gauge'];
for (const [from, to] of [[start, start + 6 * HOUR], [start + 8 * HOUR, start + 10 * HOUR], [start + 12 * HOUR, start + 14 * HOUR]] as const) {
  for (let at = from; at < to; at += 60) for (const shard of ['a', 'b', 'c']) lines.push(`history_samples{shard="${shard}"} ${at % 1000} ${at}`);
}
lines.push('# EOF', '');
await writeFile(join(work, 'history.om'), lines.join('\n'));
const made = join(work, 'history-blocks');
const created = await exec(cluster.bin.promtool, ['tsdb', 'create-blocks-from', 'openmetrics', join(work, 'history.om'), made], undefined, { timeoutMs: 300_000 });
if (created.code !== 0) throw new Error(`promtool: ${created.stderr}`);
const madeBlocks = (await readdir(made)).filter((name) => /^[0-9A-Z]{26}$/.test(name));
if (madeBlocks.length !== 5) throw new Error(`expected 5 blocks from promtool, got ${madeBlocks.join(', ')}`);

// Its PersistentVolume, holding those blocks as Prometheus' own (its user owns them).
await localVolume(stack, NAMESPACE, 'data-prometheus-0');
const volume = join(work, `pv-${NAMESPACE}-data`);
for (const block of madeBlocks) await cp(join(made, block), join(volume, block), { recursive: true });
await exec('chown', ['-R', '65534:65534', volume]);
await chown(volume, 65534, 65534);

const statefulSet = (annotations: Record<string, string>) => JSON.stringify({
  apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'prometheus', namespace: NAMESPACE },
  spec: {
    serviceName: 'prometheus', replicas: 1, selector: { matchLabels: { app: 'prometheus' } },
    template: {
      metadata: { labels: { app: 'prometheus' }, annotations },
      spec: {
        securityContext: { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true },
        containers: [{
          name: 'prometheus', image: images.prometheus3,
          // Compaction on, as before Thanos: 2h blocks merged up to 6h.
          args: ['--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data', '--storage.tsdb.retention.time=15d', '--storage.tsdb.max-block-duration=6h'],
          readinessProbe: { httpGet: { path: '/-/ready', port: 9090 }, periodSeconds: 5 },
          volumeMounts: [{ name: 'config', mountPath: '/etc/config' }, { name: 'data', mountPath: '/data' }],
        }],
        volumes: [{ name: 'config', configMap: { name: 'prometheus' } }],
      },
    },
    volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
  },
});
await cluster.kubectlOk(['apply', '-f', '-'], [
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus', namespace: NAMESPACE }, data: { 'prometheus.yml': 'global:\n  external_labels:\n    cluster: history\nscrape_configs: []\n' } }),
  statefulSet({}),
].join('\n'));

interface PodJson {
  metadata: { uid: string };
  spec: { containers: { name: string; args?: string[] }[]; initContainers?: { name: string; args?: string[] }[] };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
interface Block { ulid: string; minTime: number; maxTime: number; compaction: { level: number } }
/** prometheus-0 once Ready (and not `previous`). */
async function readyPod(previous?: string): Promise<PodJson> {
  return waitFor('prometheus-0 Ready', async () => {
    const pod = await cluster.getJson<PodJson>(['-n', NAMESPACE, 'get', 'pod', 'prometheus-0']);
    return pod && pod.metadata.uid !== previous && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? pod : undefined;
  }, 240_000, 2000);
}
async function localBlocks(pod: PodJson): Promise<Block[]> {
  const answer = await (await fetch(`http://${pod.status.podIP ?? ''}:9090/api/v1/status/tsdb/blocks`, { signal: AbortSignal.timeout(5000) })).json() as { data: { blocks: Block[] } };
  return answer.data.blocks;
}
async function sidecarMetric(pod: PodJson, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://${pod.status.podIP ?? ''}:10902/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
const sidecarArgs = (pod: PodJson) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === 'thanos-sidecar')?.args ?? [];

void t.test('a Prometheus with compacted history, injected with upload-history: every local block reaches the bucket, once', async (t) => {
  const before = await readyPod();
  const compacted = await waitFor('Prometheus to compact the 6h window', async () => {
    const blocks = await localBlocks(before).catch(() => []);
    return blocks.some((b) => b.compaction.level > 1) ? blocks : undefined;
  }, 240_000, 3000);
  t.comment(`before injection: ${compacted.map((b) => `${b.ulid} level ${b.compaction.level}`).join(', ')}`);
  t.equal(compacted.filter((b) => b.compaction.level > 1).length, 1, 'one compacted block (the three 2h blocks of the 6h window)');

  await cluster.kubectlOk(['label', 'namespace', NAMESPACE, 'thanos-injection=enabled']);
  await cluster.kubectlOk(['apply', '-f', '-'], statefulSet({ 'thanos-injector/upload-history': 'true' }));
  const injected = await readyPod(before.metadata.uid);
  t.ok(sidecarArgs(injected).includes('--shipper.upload-compacted'), 'the sidecar uploads compacted blocks too');
  t.ok(injected.spec.containers[0]?.args?.includes('--storage.tsdb.min-block-duration=2h') && injected.spec.containers[0].args.includes('--storage.tsdb.max-block-duration=2h'), "Prometheus' compaction disabled for it");

  const local = await localBlocks(injected);
  const uploaded = await waitFor('every local block in the bucket', async () => {
    const inBucket = new Set((await minio.blocks(BUCKET)).map((b) => `${b.minTime}-${b.maxTime}-${b.compaction.level}`));
    return local.every((b) => inBucket.has(`${b.minTime}-${b.maxTime}-${b.compaction.level}`)) ? inBucket : undefined;
  }, 180_000, 3000);
  t.pass(`the bucket holds each of the ${local.length} local blocks (${[...uploaded].join(', ')}), the compacted one included`);
  t.ok((await minio.blocks(BUCKET)).some((b) => b.compaction.level > 1), 'a compacted block in the bucket');

  await waitFor('the sidecar to say the history is done', async () => ((await sidecarMetric(injected, 'thanos_shipper_upload_compacted_done')) === 1 ? true : undefined), 120_000, 3000);
  const check = await thanosInjector(['check', '-n', NAMESPACE, '--pod', 'prometheus-0'], cluster.env);
  const row = check.stdout.split('\n').find((line) => line.startsWith('history upload'));
  t.match(row, /ok\s+done: every block Prometheus holds, compacted ones included, is in the bucket .*remove the annotation thanos-injector\/upload-history and roll the pod/, row ?? check.stdout);

  const file = join(work, 'bucket.yml');
  await writeFile(file, minio.objstore(BUCKET));
  const verify = await exec(stack.thanosBinary, ['tools', 'bucket', 'verify', '--objstore.config-file', file], undefined, { timeoutMs: 300_000 });
  t.notMatch(verify.stdout + verify.stderr, /found overlapped blocks|level=(warn|error)/, 'bucket verify: no overlap, no issue');
  const compact = await exec(stack.thanosBinary, ['compact', '--data-dir', join(work, 'compact'), '--objstore.config-file', file, '--consistency-delay=0s', '--http-address=127.0.0.1:0'], undefined, { timeoutMs: 300_000 });
  t.equal(compact.code, 0, `a one-shot thanos compact --consistency-delay=0s exits 0 (${compact.stderr.trim().split('\n').slice(-1).join('')})`);

  // Again, with the annotation still on: the new sidecar finds every block in the bucket and uploads none.
  const objects = (await minio.objects(BUCKET)).map((o) => `${o.key} ${o.modified}`).sort();
  await cluster.kubectlOk(['-n', NAMESPACE, 'delete', 'pod', 'prometheus-0', '--wait=true'], undefined, { timeoutMs: 120_000 });
  const again = await readyPod(injected.metadata.uid);
  await waitFor('the new sidecar to finish a sync with the history', async () => ((await sidecarMetric(again, 'thanos_shipper_upload_compacted_done')) === 1 ? true : undefined), 120_000, 3000);
  t.equal(await sidecarMetric(again, 'thanos_shipper_uploads_total'), 0, 'the second sidecar uploaded nothing');
  t.same((await minio.objects(BUCKET)).map((o) => `${o.key} ${o.modified}`).sort(), objects, 'the bucket as it was: no object added or rewritten');

  // Done: the annotation removed, the StatefulSet rolls its pod, and the sidecar is back to level-1 blocks only.
  await cluster.kubectlOk(['apply', '-f', '-'], statefulSet({}));
  const after = await readyPod(again.metadata.uid);
  t.notOk(sidecarArgs(after).includes('--shipper.upload-compacted'), 'without the annotation: no --shipper.upload-compacted');
});
