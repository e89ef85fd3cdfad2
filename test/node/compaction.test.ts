// Delayed compaction with the real binaries: the injector's own output (`thanos-injector inject`,
// compaction auto on Prometheus 3.16 and Thanos 0.42) runs as processes (Prometheus and the sidecar
// on one TSDB folder, MinIO as the bucket). Prometheus cuts 10 s blocks and compacts them (10 s ->
// 30 s -> 90 s ranges), yet no block is compacted before the sidecar has uploaded it: every source
// of every compacted block was in the bucket before that block was made, and only the blocks
// Prometheus cut (level 1) are uploaded. No cluster: Prometheus and the sidecar are ordinary
// processes on loopback, inside the test node's namespaces (npm run test:node).
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureNodeTools } from '../cluster/build.ts';
import { injectOffline, Minio, processPod, startProcess, waitFor } from '../support/node.ts';

t.setTimeout(600_000);

// The binaries only (built by prepare-node before the namespaces are entered): no node, no image.
const nodeTools = await ensureNodeTools({ log: (message: string) => t.comment(message) });
// (No 'compaction', 'upload' or 'sync' in the folder's name: the log check below reads paths too.)
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-node-delayed-'));
const minio = new Minio(nodeTools.minio, join(work, 'minio'), '127.0.0.1');
t.teardown(async () => {
  await minio.stop();
  await rm(work, { recursive: true, force: true });
});
await minio.ready();
await minio.createBucket('compaction');

// The pod as a user writes it (short blocks, so the test sees compaction within a minute or two),
// with paths of this machine, and the injector's config pointing the objstore file here too.
const data = join(work, 'data');
const objstoreDir = join(work, 'objstore');
await mkdir(data);
await mkdir(objstoreDir);
await writeFile(join(objstoreDir, 'objstore.yml'), minio.objstore('compaction'));
await writeFile(join(work, 'prometheus.yml'), 'global:\n  scrape_interval: 1s\n  external_labels:\n    cluster: compaction-test\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["127.0.0.1:9090"]\n');
await writeFile(join(work, 'config.yaml'), `image: quay.io/thanos/thanos:v${nodeTools.versions.thanos}\nobjstore:\n  mountPath: ${objstoreDir}\n`);
const pod = processPod(nodeTools.versions.prometheus, data, [`--config.file=${join(work, 'prometheus.yml')}`, '--web.listen-address=127.0.0.1:9090',
  '--storage.tsdb.min-block-duration=10s', '--storage.tsdb.retention.time=1d']);
const { annotations, prometheusArgs, sidecarArgs } = await injectOffline(pod, join(work, 'config.yaml'), work);

/** A ULID's creation time (ms): its first 10 characters, Crockford base32. */
function ulidTime(ulid: string): number {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  return [...ulid.slice(0, 10)].reduce((time, char) => time * 32 + alphabet.indexOf(char), 0);
}

interface BlockMeta { ulid: string; compaction: { level: number; sources: string[] } }
function blocksOnDisk(): BlockMeta[] {
  return readdirSync(data).filter((name) => /^[0-9A-Z]{26}$/.test(name) && existsSync(join(data, name, 'meta.json')))
    .flatMap((name) => {
      try {
        return [JSON.parse(readFileSync(join(data, name, 'meta.json'), 'utf8')) as BlockMeta];
      } catch {
        return []; // being written
      }
    });
}

void t.test('compaction auto on Prometheus 3.16 and Thanos 0.42 is delayed: the flags the injector writes', (t) => {
  t.match(JSON.parse(annotations['thanos-injector/status'] ?? '{}'), { compaction: 'delayed' }, 'the status annotation records delayed');
  t.ok(prometheusArgs.includes(`--storage.tsdb.delay-compact-file.path=${data}/thanos.shipper.json`), 'Prometheus waits for the sidecar\'s upload record');
  t.ok(prometheusArgs.includes('--storage.tsdb.min-block-duration=10s') && !prometheusArgs.some((a) => a.startsWith('--storage.tsdb.max-block-duration')), 'its block durations stay its own');
  t.ok(sidecarArgs.includes('--shipper.ignore-unequal-block-size') && sidecarArgs.includes('--shipper.meta-file-name=thanos.shipper.json'), 'the sidecar accepts unequal block durations and names the record');
  t.end();
});

void t.test('the real Prometheus and sidecar: blocks are compacted, and never before their sources are uploaded', async (t) => {
  const start = (binary: string, args: string[], name: string) => ({ ...startProcess(t, binary, args, work), name });
  const prometheus = start(nodeTools.prometheus, prometheusArgs, 'prometheus');
  // The sidecar once Prometheus is ready (its TSDB folder exists then), as the pod's probes order them.
  await waitFor('Prometheus ready', async () => {
    if (prometheus.child.exitCode !== null) throw new Error(`prometheus exited (${prometheus.child.exitCode}):\n${prometheus.log().slice(-3000)}`);
    const response = await fetch('http://127.0.0.1:9090/-/ready', { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    return response?.ok ? true : undefined;
  }, 60_000, 250);
  const sidecar = start(nodeTools.thanos, sidecarArgs, 'thanos sidecar');

  // When each block was first seen in the bucket (the object's own time, in whole seconds).
  const uploaded = new Map<string, number>();
  const compacted = await waitFor('a block compacted from blocks the sidecar uploaded', async () => {
    for (const proc of [prometheus, sidecar]) {
      if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}):\n${proc.log().slice(-3000)}`);
    }
    for (const object of await minio.objects('compaction')) {
      const ulid = /^([0-9A-Z]{26})\/meta\.json$/.exec(object.key)?.[1];
      if (ulid !== undefined && !uploaded.has(ulid)) uploaded.set(ulid, object.modified);
    }
    const merged = blocksOnDisk().filter((b) => b.compaction.level >= 2);
    return merged.length > 0 ? merged : undefined;
  }, 240_000, 1000).catch((error: Error) => {
    throw new Error(`${error.message}\n--- prometheus ---\n${prometheus.log().slice(-2000)}\n--- sidecar ---\n${sidecar.log().slice(-2000)}`);
  });

  // Once more now: an upload between the last listing and the compaction seen on disk.
  for (const object of await minio.objects('compaction')) {
    const ulid = /^([0-9A-Z]{26})\/meta\.json$/.exec(object.key)?.[1];
    if (ulid !== undefined && !uploaded.has(ulid)) uploaded.set(ulid, object.modified);
  }
  for (const block of compacted) {
    const made = ulidTime(block.ulid);
    for (const source of block.compaction.sources) {
      const at = uploaded.get(source);
      // S3 times have whole seconds: an upload in the same second as the compaction counts as before.
      t.ok(at !== undefined && at <= made, `${block.ulid} (level ${block.compaction.level}, made ${new Date(made).toISOString()}): source ${source} uploaded ${at === undefined ? 'never' : new Date(at).toISOString()}`);
    }
  }
  const levelOne = new Set(blocksOnDisk().flatMap((b) => b.compaction.sources));
  t.ok([...uploaded.keys()].every((ulid) => levelOne.has(ulid)), `only blocks Prometheus cut are uploaded (${uploaded.size}), no compacted one`);
  t.match(sidecar.log(), /successfully validated prometheus flags/, 'the sidecar accepted Prometheus\' unequal block durations');
  const problems = sidecar.log().split('\n').filter((line) => /level=(warn|error)/.test(line) && /upload|shipper|sync|compact/i.test(line));
  t.same(problems, [], 'and logs no upload or sync problem');
});
