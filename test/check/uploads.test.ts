// The sidecar's uploads as `check --pod` and `register` judge them: the seed's hard-link failure and
// the upload-folder trap by name, uploads off, nothing yet, failures; and the backlog, the blocks
// Prometheus cut that are not uploaded, set against the last upload that finished and Prometheus'
// retention: a stall (the bucket refusing, unreachable, or silent) fails within three syncs, a
// block that waits one sync does not.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkSidecarUploads, prometheusAddress, readUploadEvidence, sidecarHttpPort, sidecarRuns, ulidTime, uploadBacklog, type LocalBlock } from '../../src/check/uploads.ts';
import { block, evidence, sidecarMetrics, ulid } from '../support/uploads.ts';

const pod: V1Pod = {
  metadata: { name: 'prometheus-0', namespace: 'monitoring' },
  spec: { containers: [{ name: 'prometheus' }], initContainers: [{ name: 'thanos-sidecar', args: ['sidecar', '--prometheus.url=http://localhost:9090'], ports: [{ name: 'http', containerPort: 10902 }] }] },
  status: { phase: 'Running' },
};
const NOW = Date.parse('2026-12-02T08:00:00Z');

const metrics = sidecarMetrics;

const HARD_LINK = 'ts=2026-12-02T06:44:14.6Z caller=sidecar.go:465 level=warn err="sync: upload 01M8TR4TV8HGABM5ES9SK7GZMP: hard link block: hard link file chunks/000001: link /prometheus/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001 /prometheus/thanos/upload/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001: operation not permitted" uploaded=0';
const UPLOAD_DIR = 'ts=2026-12-02T07:01:00Z caller=sidecar.go:465 level=warn err="sync: upload 01M8TS: create upload dir: mkdirat thanos/upload/01M8TS: permission denied" uploaded=0';

void t.test('ULIDs carry the time their block was written', (t) => {
  t.equal(ulidTime(ulid(NOW)), NOW);
  t.equal(new Date(ulidTime('01M8TR4TV8HGABM5ES9SK7GZMP')!).toISOString(), '2026-12-02T06:47:49.352Z', 'a block name as Thanos logs it');
  t.equal(ulidTime('not-a-ulid'), undefined);
  t.end();
});

void t.test('no sidecar, or not running: skipped, and the sidecar is not asked', (t) => {
  const plain: V1Pod = { spec: { containers: [{ name: 'prometheus' }] }, status: { phase: 'Running' } };
  t.notOk(sidecarRuns(plain));
  t.match(checkSidecarUploads(plain, undefined, NOW), { status: 'skip', detail: 'no thanos-sidecar container' });
  const pending = { ...pod, status: { phase: 'Pending' } };
  t.notOk(sidecarRuns(pending));
  t.match(checkSidecarUploads(pending, undefined, NOW), { status: 'skip', detail: 'the pod is Pending: no upload to look at yet' });
  t.ok(sidecarRuns(pod));
  t.end();
});

void t.test("the seed's hard-link failure fails the row, quotes the sidecar and says how to fix it", (t) => {
  const row = checkSidecarUploads(pod, evidence(metrics(0, { syncFailures: 4 }), `${HARD_LINK}\n`), NOW);
  t.equal(row.status, 'fail');
  t.match(row.detail, /cannot hard-link Prometheus' block files, so nothing is uploaded \(sync: upload 01M8TR4TV8HGABM5ES9SK7GZMP: hard link block: .*operation not permitted\)/);
  t.match(row.detail, /different users/);
  t.match(row.detail, /runAsUser, runAsGroup, fsGroup/);
  t.end();
});

void t.test('an upload folder left by another uid fails the row with the trap named', (t) => {
  const row = checkSidecarUploads(pod, evidence(metrics(0, { syncFailures: 2 }), UPLOAD_DIR), NOW);
  t.equal(row.status, 'fail');
  t.match(row.detail, /cannot create its upload folder \(sync: upload 01M8TS: create upload dir: mkdirat thanos\/upload\/01M8TS: permission denied\)/);
  t.match(row.detail, /remove <tsdb path>\/thanos/);
  t.end();
});

void t.test('states short of a failure: uploads off, metrics unreadable, nothing cut yet', (t) => {
  t.match(checkSidecarUploads(pod, evidence({ text: '' }, 'level=info msg="no supported bucket was configured, uploads will be disabled"'), NOW), { status: 'warn', detail: /uploads are disabled/ });
  t.match(checkSidecarUploads(pod, evidence({ error: '503 error trying to reach service' }), NOW), { status: 'warn', detail: /cannot read the sidecar's metrics \(503 error trying to reach service\); kubectl -n monitoring logs prometheus-0 -c thanos-sidecar/ });
  t.match(checkSidecarUploads(pod, evidence(metrics(0), '', { blocks: [] }), NOW), { status: 'warn', detail: /no block uploaded yet and no failure/ });
  t.match(checkSidecarUploads(pod, evidence({ text: 'go_goroutines 12\n' }), NOW), { status: 'warn', detail: /no thanos_shipper_uploads_total/ });
  t.end();
});

void t.test('failures that the sidecar gets past: a warning with the error; none got through and blocks wait long: stalled', (t) => {
  const log = 'ts=2026-12-02T07:00:00Z level=warn err="sync: upload 01M8: upload chunks: Access Denied" uploaded=0';
  const flaky = checkSidecarUploads(pod, evidence(metrics(5, { uploadFailures: 1, lastUpload: NOW - 20_000 }), log, { blocks: [block(NOW - 60_000)], retention: '15d' }), NOW);
  t.match(flaky, { status: 'warn', detail: /^5 block\(s\) uploaded since the sidecar started, the last upload finished at 2026-12-02T07:59:40Z, 20s ago; 1 failed sync\(s\) or upload\(s\): sync: upload 01M8: upload chunks: Access Denied; no block waits/ });
  const refused = checkSidecarUploads(pod, evidence(metrics(0, { syncFailures: 3 }), log, { blocks: [block(NOW - 600_000)], retention: '15d' }), NOW);
  t.match(refused, { status: 'fail', detail: /^uploads are stalled: 1 block\(s\) cut by Prometheus not uploaded.*: bucket metrics-eu1 refuses the sidecar's credentials \(sync: upload 01M8: upload chunks: Access Denied\)/ });
  t.end();
});

void t.test('a healthy sidecar: what it uploaded, when the last finished, and that no block waits (or one, cut since the last sync)', (t) => {
  const blocks = [block(NOW - 7200_000), block(NOW - 3600_000)];
  const healthy = evidence(metrics(2, { lastUpload: NOW - 3590_000 }), '', { blocks, retention: '15d' });
  t.same(checkSidecarUploads(pod, healthy, NOW), {
    name: 'sidecar uploads', status: 'ok',
    detail: '2 block(s) uploaded since the sidecar started, the last upload finished at 2026-12-02T07:00:10Z, 59m50s ago; no block waits',
  });
  const fresh = evidence(metrics(2, { lastUpload: NOW - 3590_000 }), '', { blocks: [...blocks, block(NOW - 15_000)], retention: '15d' });
  const row = checkSidecarUploads(pod, fresh, NOW);
  t.equal(row.status, 'ok', 'a block cut 15 s ago is no stall');
  t.match(row.detail, /1 block\(s\) cut by Prometheus not uploaded, the oldest \w{26} cut 2026-12-02T07:59:45Z, 15s ago .*: the next sync \(every 30s\) takes it/);
  t.end();
});

void t.test('a stall: blocks cut more than three syncs ago, no upload finished since, and no request failed: they hang', (t) => {
  const blocks = [block(NOW - 7200_000), block(NOW - 240_000), block(NOW - 120_000)];
  const frozen = evidence(metrics(1, { lastUpload: NOW - 7190_000 }), '', { blocks, retention: '6h', minBlockDuration: '20s' });
  const backlog = uploadBacklog(frozen, NOW)!;
  t.match(backlog, { bucket: 'metrics-eu1', stalled: true, exact: true, retention: '6h' });
  t.equal(backlog.pending.length, 2, 'the two blocks cut after the last upload');
  t.equal(backlog.deletionAt, NOW - 240_000 - 10_000 + 6 * 3600_000, 'retention deletes the oldest when the newest block is 6h past its end, at the earliest');
  const row = checkSidecarUploads(pod, frozen, NOW);
  t.equal(row.status, 'fail');
  t.match(row.detail, /^uploads are stalled: 2 block\(s\) cut by Prometheus not uploaded, the oldest \w{26} cut 2026-12-02T07:56:00Z, 4m ago \(samples up to 2026-12-02T07:55:50Z\); retention \(6h\) deletes it, uploaded or not, at the earliest at 2026-12-02T13:55:50Z \(in 5h55m\)/);
  t.match(row.detail, /the last upload finished at 2026-12-02T06:00:10Z, 1h59m ago: no request to bucket metrics-eu1 has failed either: they hang \(object storage frozen, or its traffic dropped on the way\)/);
  t.end();
});

void t.test('the stall names its cause from the log: unreachable, missing bucket, or failed requests without a log', (t) => {
  const blocks = [block(NOW - 200_000)];
  const judged = (log: string, requestFailures = 0) => checkSidecarUploads(pod, evidence(metrics(0, { syncFailures: 4, requestFailures }), log, { blocks }), NOW).detail;
  t.match(judged('ts=2026-12-02T07:59:00Z level=warn err="check exists: stat s3 object: Get \\"http://10.88.0.1:9000/metrics-eu1/01X/meta.json\\": dial tcp 10.88.0.1:9000: connect: connection refused" uploaded=0'),
    /bucket metrics-eu1 is unreachable \(check exists: .*connection refused\)/);
  // Block ULIDs hold digits: a 404, 403 or 401 inside one (or anywhere in a URL) is no status code.
  for (const ulid of ['01M96404M5N4VJ4KTCX23BY6W0', '01M96403M5N4VJ4KTCX23BY6W0', '01M96401M5N4VJ4KTCX23BY6W0']) {
    t.match(judged(`ts=2026-12-06T16:48:00Z level=warn err="check exists: stat s3 object: Head \\"http://10.88.0.1:33899/fault-outage/${ulid}/meta.json\\": dial tcp 10.88.0.1:33899: connect: connection refused" uploaded=0`),
      /bucket metrics-eu1 is unreachable \(check exists: .*connection refused\)/, `a ULID with ${ulid.slice(5, 8)} in it`);
  }
  t.match(judged('ts=2026-12-02T07:59:00Z level=warn err="upload: googleapi: Error 403: thanos@x.iam.gserviceaccount.com does not have storage.objects.create access" uploaded=0'),
    /bucket metrics-eu1 refuses the sidecar's credentials/);
  t.match(judged('ts=2026-12-02T07:59:00Z level=warn err="check exists: The specified bucket does not exist (NoSuchBucket)" uploaded=0'), /bucket metrics-eu1 does not exist/);
  t.match(judged('', 7), /requests to bucket metrics-eu1 fail \(7 failed since the sidecar started; its log says why\)/);
  const unread = evidence(metrics(0, { syncFailures: 4, requestFailures: 7 }), '', { blocks });
  unread.sidecar.logError = 'cannot read the log of ns/prometheus-0 container thanos-sidecar: timeout';
  t.match(checkSidecarUploads(pod, unread, NOW).detail, /requests to bucket metrics-eu1 fail \(7 failed since the sidecar started; its log, which says why, could not be read: cannot read the log .*: timeout\)/,
    'a log that could not be read is said so, not passed over');
  t.end();
});

void t.test('within three syncs of the last upload nothing is stalled, even with old blocks waiting (a slow upload in progress)', (t) => {
  const slow = evidence(metrics(3, { lastUpload: NOW - 40_000 }), '', { blocks: [block(NOW - 600_000)] });
  t.notOk(uploadBacklog(slow, NOW)?.stalled, 'objects still go up');
  t.end();
});

void t.test('after a restart: blocks from before it count as uploaded once a sync succeeded; without one they are unconfirmed', (t) => {
  const started = NOW - 100_000;
  const old = [block(NOW - 3600_000), block(NOW - 1800_000)];
  t.same(uploadBacklog(evidence(metrics(0, { started, syncs: 3 }), '', { blocks: old }), NOW)?.pending, [], 'a sync since the start saw them in the bucket');
  const unsynced = uploadBacklog(evidence(metrics(0, { started, syncs: 0 }), '', { blocks: old }), NOW)!;
  t.equal(unsynced.pending.length, 2, 'no sync yet: nothing is confirmed');
  t.ok(unsynced.stalled, 'and with no upload for three syncs since the start, that is a stall');
  t.end();
});

void t.test('Prometheus before 3.6 does not list its blocks: with no upload for longer than a block duration, at least one waits', (t) => {
  const old = evidence(metrics(4, { lastUpload: NOW - 300_000 }), '', { minBlockDuration: '2m', retention: '1h' });
  const backlog = uploadBacklog(old, NOW)!;
  t.match(backlog, { exact: false, stalled: true });
  t.same(backlog.pending, [{ cutAt: NOW - 180_000, maxTime: NOW - 240_000 }], 'cut two minutes after the last upload at the latest');
  t.match(checkSidecarUploads(pod, old, NOW).detail, /^uploads are stalled: at least 1 block \(Prometheus before 3\.6 does not list its blocks\) cut by Prometheus not uploaded/);
  t.same(uploadBacklog(evidence(metrics(4, { lastUpload: NOW - 100_000 }), '', { minBlockDuration: '2m' }), NOW)?.pending, [], 'within a block duration of the last upload: nothing known to wait');
  const fresh = evidence(metrics(0, { started: NOW - 150_000 }), '', { minBlockDuration: '2m' });
  t.same(uploadBacklog(fresh, NOW)?.pending, [], 'a new sidecar: the first block comes 1.5 block durations after the start');
  t.match(checkSidecarUploads(pod, fresh, NOW), { status: 'warn', detail: /no block uploaded yet and no failure/ });
  t.same(uploadBacklog(evidence(metrics(4, { lastUpload: NOW - 300_000 }), '', { error: 'cannot read Prometheus\' status (503)' }), NOW)?.pending, [], 'Prometheus unreadable: nothing is inferred');
  t.end();
});

void t.test('only blocks the sidecar uploads count: compacted ones (delayed compaction) and empty ones never are', (t) => {
  const compacted: LocalBlock = { ...block(NOW - 600_000), compaction: { level: 2 } };
  const empty = block(NOW - 500_000, 0);
  t.same(uploadBacklog(evidence(metrics(1, { lastUpload: NOW - 700_000 }), '', { blocks: [compacted, empty] }), NOW)?.pending, []);
  t.end();
});

void t.test('what is read, and where: the sidecar\'s metrics and log, Prometheus\' blocks, retention, head and flags under its route prefix', async (t) => {
  const prefixed = structuredClone(pod);
  prefixed.spec!.initContainers![0]!.args = ['sidecar', '--prometheus.url=http://localhost:9091/prom/'];
  t.same(prometheusAddress(prefixed), { port: 9091, prefix: '/prom' });
  const asked: string[] = [];
  const answers: Record<string, string> = {
    '10902/metrics': metrics(1).text,
    '9091/prom/api/v1/status/tsdb/blocks': JSON.stringify({ status: 'success', data: { blocks: [block(NOW - 60_000)] } }),
    '9091/prom/api/v1/status/runtimeinfo': JSON.stringify({ status: 'success', data: { storageRetention: '15d' } }),
    '9091/prom/api/v1/status/flags': JSON.stringify({ status: 'success', data: { 'storage.tsdb.min-block-duration': '2h' } }),
  };
  const read = await readUploadEvidence(prefixed, (port, path) => {
    asked.push(`${port}${path}`);
    const answer = answers[`${port}${path}`];
    return answer === undefined ? Promise.reject(new Error('404 Not Found')) : Promise.resolve(answer);
  }, Promise.resolve('a log line'));
  t.same(asked.sort(), Object.keys(answers).sort());
  t.same(read.prometheus, { blocks: [block(NOW - 60_000)], retention: '15d', minBlockDuration: '2h' });
  t.equal(read.sidecar.log, 'a log line');
  const old = await readUploadEvidence(prefixed, (port, path) =>
    path.endsWith('/tsdb/blocks') ? Promise.reject(new Error('404 page not found')) : Promise.resolve(answers[`${port}${path}`] ?? ''), Promise.reject(new Error('forbidden')));
  t.equal(old.prometheus?.blocks, undefined, 'Prometheus before 3.6: no block list, the rest still read');
  t.equal(old.prometheus?.retention, '15d');
  t.equal(old.sidecar.log, '', 'an unreadable log is no log');
  t.equal(old.sidecar.logError, 'forbidden', 'and why it could not be read is kept');
  const tls = structuredClone(pod);
  tls.spec!.initContainers![0]!.args = ['sidecar', '--prometheus.url=https://localhost:9090'];
  t.match((await readUploadEvidence(tls, () => Promise.resolve(metrics(1).text), Promise.resolve(''))).prometheus, { error: /calls Prometheus at https:\/\/localhost:9090, which is not read here/ });
  t.end();
});

void t.test("the sidecar's HTTP port: its port named http, else 10902", (t) => {
  t.equal(sidecarHttpPort(pod), 10902);
  const custom = structuredClone(pod);
  custom.spec!.initContainers![0]!.ports = [{ name: 'http', containerPort: 19092 }];
  t.equal(sidecarHttpPort(custom), 19092);
  t.equal(sidecarHttpPort({ spec: { containers: [{ name: 'thanos-sidecar' }] } }), 10902);
  // listenLocal.http: the pod proxy connects to the pod's IP, where nothing listens.
  const local = { spec: { containers: [{ name: 'thanos-sidecar', args: ['sidecar', '--http-address=127.0.0.1:10902'] }] } };
  t.equal(sidecarHttpPort(local), undefined, 'no port to read through the API');
  t.equal(sidecarHttpPort({ spec: { containers: [{ name: 'thanos-sidecar', args: ['sidecar', '--http-address=0.0.0.0:10902'] }] } }), 10902);
  t.end();
});
