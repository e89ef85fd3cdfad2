// The `tsdb volume` row: where a pod's Prometheus keeps its TSDB and what goes with the pod.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkTsdbVolume } from '../../src/check/tsdb.ts';

const pod = (volume: object | undefined, args = ['--storage.tsdb.path=/data', '--storage.tsdb.min-block-duration=30m']): V1Pod => ({
  metadata: { name: 'prometheus-0', namespace: 'monitoring' },
  spec: {
    nodeName: 'node-a',
    containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args, volumeMounts: volume === undefined ? [] : [{ name: 'storage', mountPath: '/data' }] }],
    volumes: volume === undefined ? [] : [{ name: 'storage', ...volume }],
  },
});

void t.test('a claim outlives the pod: ok, naming the claim', (t) => {
  t.same(checkTsdbVolume(pod({ persistentVolumeClaim: { claimName: 'storage-prometheus-0' } })), {
    name: 'tsdb volume', status: 'ok',
    detail: '/data is on persistentVolumeClaim volume storage (claim storage-prometheus-0): it outlives the pod, and the next pod on it uploads what this one did not',
  });
  t.end();
});

void t.test('an emptyDir goes with the pod: a warning with what is lost (sized by the pod\'s own block flag) and the fix', (t) => {
  const row = checkTsdbVolume(pod({ emptyDir: {} }));
  t.equal(row.status, 'warn');
  t.match(row.detail, /^Prometheus' TSDB is on emptyDir volume storage, which is deleted with the pod: .*\(up to 45m with 30m blocks\) and every block the sidecar has not uploaded yet; keep the TSDB on a PersistentVolumeClaim/);
  t.end();
});

void t.test('hostPath outlives the pod on its node; no volume at all, or no Prometheus', (t) => {
  t.match(checkTsdbVolume(pod({ hostPath: { path: '/srv/prometheus' } })), { status: 'ok', detail: /on hostPath volume storage: it outlives the pod on node node-a only/ });
  t.match(checkTsdbVolume(pod(undefined)), { status: 'warn', detail: /no volume holds Prometheus' TSDB path \/data: it is in the container's own file system/ });
  t.match(checkTsdbVolume({ spec: { containers: [{ name: 'nginx', image: 'nginx' }] } }), { status: 'skip' });
  t.end();
});
