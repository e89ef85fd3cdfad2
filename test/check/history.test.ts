// The history upload row: only for a sidecar told to upload compacted blocks; done, in progress,
// or refused because a compacted block overlaps the bucket (the shipper's own line).
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkHistoryUpload } from '../../src/check/history.ts';
import type { UploadEvidence } from '../../src/check/uploads.ts';

const pod = (args: string[]): V1Pod => ({
  metadata: { name: 'prometheus-0', namespace: 'monitoring' },
  spec: { containers: [{ name: 'prometheus' }], initContainers: [{ name: 'thanos-sidecar', args: ['sidecar', ...args], restartPolicy: 'Always' }] },
  status: { phase: 'Running' },
});
const evidence = (metrics: string, log = ''): UploadEvidence => ({
  sidecar: { metrics: { text: metrics }, log },
  prometheus: { blocks: [
    { ulid: '01J0000000000000000000000A', minTime: 0, maxTime: 1, compaction: { level: 3 } },
    { ulid: '01J0000000000000000000000B', minTime: 1, maxTime: 2, compaction: { level: 1 } },
  ] },
});

void t.test('no --shipper.upload-compacted: no row', (t) => {
  t.equal(checkHistoryUpload(pod([]), evidence('')), undefined);
  t.end();
});

void t.test('done, in progress, refused for an overlap', (t) => {
  const flagged = pod(['--shipper.upload-compacted']);
  const done = checkHistoryUpload(flagged, evidence('thanos_shipper_uploads_total 2\nthanos_shipper_upload_compacted_done 1\n'));
  t.equal(done?.status, 'ok');
  t.match(done?.detail, 'done: every block Prometheus holds, compacted ones included, is in the bucket (2 uploaded since the sidecar started; Prometheus holds 2 block(s), 1 of them compacted); remove the annotation thanos-injector/upload-history and roll the pod (thanos-injector rollout -n monitoring)');
  const going = checkHistoryUpload(flagged, evidence('thanos_shipper_uploads_total 1\nthanos_shipper_upload_compacted_done 0\n'));
  t.equal(going?.status, 'warn');
  t.match(going?.detail, /^in progress: 1 block\(s\) uploaded since the sidecar started/);
  const line = 'ts=2026-12-06T08:00:00Z level=error caller=shipper.go:400 msg="shipper sync failed" err="Found overlap or error during sync, cannot upload compacted block, details: shipping compacted block 01J is blocked; overlap spotted: [mint: 0, maxt: 1, range: 1ms, blocks: 2]"';
  const refused = checkHistoryUpload(flagged, evidence('thanos_shipper_uploads_total 0\nthanos_shipper_upload_compacted_done 0\n', line));
  t.equal(refused?.status, 'fail');
  t.match(refused?.detail, /^the sidecar refuses the history: a compacted block overlaps blocks the bucket already holds under these external labels \(.*overlap spotted.*\); it may be there already/);
  t.equal(checkHistoryUpload({ ...flagged, status: { phase: 'Pending' } }, undefined)?.status, 'skip');
  t.end();
});
