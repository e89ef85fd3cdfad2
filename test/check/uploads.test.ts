// The sidecar's upload chain as `check --pod` reports it, from its metrics and log lines: the
// seed's hard-link failure named with its fix, the upload-folder trap, uploads off, nothing yet,
// failures, and a healthy sidecar with the time of its last upload.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkSidecarUploads, sidecarHttpPort, sidecarRuns } from '../../src/check/uploads.ts';

const pod: V1Pod = {
  metadata: { name: 'prometheus-0', namespace: 'monitoring' },
  spec: { containers: [{ name: 'prometheus' }], initContainers: [{ name: 'thanos-sidecar', ports: [{ name: 'http', containerPort: 10902 }] }] },
  status: { phase: 'Running' },
};
const metrics = (uploads: number, uploadFailures = 0, syncFailures = 0) => ({
  text: `# TYPE thanos_shipper_uploads_total counter\nthanos_shipper_uploads_total ${uploads}\nthanos_shipper_upload_failures_total ${uploadFailures}\nthanos_shipper_dir_sync_failures_total ${syncFailures}\n`,
});
const HARD_LINK = 'ts=2026-12-02T06:44:14.6Z caller=sidecar.go:465 level=warn err="sync: upload 01M8TR4TV8HGABM5ES9SK7GZMP: hard link block: hard link file chunks/000001: link /prometheus/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001 /prometheus/thanos/upload/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001: operation not permitted" uploaded=0';
const UPLOAD_DIR = 'ts=2026-12-02T07:01:00Z caller=sidecar.go:465 level=warn err="sync: upload 01M8TS: create upload dir: mkdirat thanos/upload/01M8TS: permission denied" uploaded=0';

void t.test('no sidecar, or not running: skipped, and the sidecar is not asked', (t) => {
  const plain: V1Pod = { spec: { containers: [{ name: 'prometheus' }] }, status: { phase: 'Running' } };
  t.notOk(sidecarRuns(plain));
  t.match(checkSidecarUploads(plain, undefined), { status: 'skip', detail: 'no thanos-sidecar container' });
  const pending = { ...pod, status: { phase: 'Pending' } };
  t.notOk(sidecarRuns(pending));
  t.match(checkSidecarUploads(pending, undefined), { status: 'skip', detail: 'the pod is Pending: no upload to look at yet' });
  t.ok(sidecarRuns(pod));
  t.end();
});

void t.test("the seed's hard-link failure fails the row, quotes the sidecar and says how to fix it", (t) => {
  const row = checkSidecarUploads(pod, { metrics: metrics(0, 0, 4), log: `${HARD_LINK}\n` });
  t.equal(row.status, 'fail');
  t.match(row.detail, /cannot hard-link Prometheus' block files, so nothing is uploaded \(sync: upload 01M8TR4TV8HGABM5ES9SK7GZMP: hard link block: .*operation not permitted\)/);
  t.match(row.detail, /different users/);
  t.match(row.detail, /runAsUser, runAsGroup, fsGroup/);
  t.end();
});

void t.test('an upload folder left by another uid fails the row with the trap named', (t) => {
  const row = checkSidecarUploads(pod, { metrics: metrics(0, 0, 2), log: UPLOAD_DIR });
  t.equal(row.status, 'fail');
  t.match(row.detail, /cannot create its upload folder \(sync: upload 01M8TS: create upload dir: mkdirat thanos\/upload\/01M8TS: permission denied\)/);
  t.match(row.detail, /remove <tsdb path>\/thanos/);
  t.end();
});

void t.test('states short of a failure: uploads off, metrics unreadable, nothing uploaded yet', (t) => {
  t.match(checkSidecarUploads(pod, { metrics: { text: '' }, log: 'level=info msg="no supported bucket was configured, uploads will be disabled"' }), { status: 'warn', detail: /uploads are disabled/ });
  t.match(checkSidecarUploads(pod, { metrics: { error: '503 error trying to reach service' }, log: '' }), { status: 'warn', detail: /cannot read the sidecar's metrics through the API \(503 error trying to reach service\); kubectl -n monitoring logs prometheus-0 -c thanos-sidecar/ });
  t.match(checkSidecarUploads(pod, { metrics: metrics(0), log: '' }), { status: 'warn', detail: /no block uploaded yet and no failure/ });
  t.match(checkSidecarUploads(pod, { metrics: { text: 'go_goroutines 12\n' }, log: '' }), { status: 'warn', detail: /no thanos_shipper_uploads_total/ });
  t.end();
});

void t.test('failures without a known cause: fail when nothing got through, warn when some did', (t) => {
  const log = 'ts=2026-12-02T07:00:00Z level=warn err="sync: upload 01M8: upload chunks: Access Denied" uploaded=0';
  t.match(checkSidecarUploads(pod, { metrics: metrics(0, 3), log }), { status: 'fail', detail: /0 block\(s\) uploaded, 3 failed sync\(s\) or upload\(s\): sync: upload 01M8: upload chunks: Access Denied/ });
  t.match(checkSidecarUploads(pod, { metrics: metrics(5, 1), log }), { status: 'warn', detail: /^5 block\(s\) uploaded, 1 failed/ });
  t.end();
});

void t.test('a healthy sidecar: the count and the time of the last upload', (t) => {
  const log = 'ts=2026-12-02T06:43:15.1Z level=info msg="upload new block" id=A\nts=2026-12-02T06:44:45.3Z level=info msg="upload new block" id=B\n';
  t.same(checkSidecarUploads(pod, { metrics: metrics(2), log }), { name: 'sidecar uploads', status: 'ok', detail: '2 block(s) uploaded, the last at 2026-12-02T06:44:45.3Z, no failure' });
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
