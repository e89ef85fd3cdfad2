// The comparison of a namespace's external labels, on label sets written out: a label that
// expands to nothing is no label (Thanos keys a block stream by the non-empty ones), three alike
// are named together, and pods whose labels cannot be told are listed, not guessed.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkLabelsDistinct, type PodIdentity } from '../../src/check/replicas.ts';

const readyPod = (name: string, kind = 'StatefulSet', owner = 'prometheus'): V1Pod => ({
  metadata: { name, namespace: 'monitoring', ownerReferences: [{ apiVersion: 'apps/v1', kind, name: owner, uid: 'u', controller: true }] },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
});

const labelled = (name: string, labels: Record<string, string>, written = labels, pitfalls: string[] = []): PodIdentity => ({
  pod: readyPod(name),
  labels: { kind: 'labels', written, labels, perPod: false, literal: [], expands: true },
  pitfalls,
});

void t.test('a replica label that expands to nothing leaves the pods alike: a failure that carries the pitfall', (t) => {
  const pitfall = 'label replica: ${POD_NAME} is empty for this pod, so Prometheus drops it: container prometheus has no POD_NAME';
  const row = checkLabelsDistinct('monitoring', [
    labelled('prometheus-0', { cluster: 'prod', replica: '' }, { cluster: 'prod', replica: '${POD_NAME}' }, [pitfall]),
    labelled('prometheus-1', { cluster: 'prod', replica: '' }, { cluster: 'prod', replica: '${POD_NAME}' }, [pitfall]),
  ]);
  t.equal(row.status, 'fail');
  t.match(row.detail, /^pods prometheus-0 and prometheus-1 have the same external labels \(cluster=prod\): both upload blocks/);
  t.match(row.detail, `; ${pitfall}; give each pod a label of its own`, 'the pitfall once, not per pod');
  t.equal(row.detail.split(pitfall).length, 2, 'named once');
  t.notMatch(row.detail, "prometheus-operator's form", 'the operator remark only where no pitfall explains the labels');
  t.end();
});

void t.test('three pods alike are named together; a pod with labels of its own is not', (t) => {
  const row = checkLabelsDistinct('monitoring', [
    labelled('a-0', { cluster: 'prod' }), labelled('b-0', { cluster: 'prod' }), labelled('c-0', { cluster: 'prod' }), labelled('d-0', { cluster: 'dev' }),
  ]);
  t.match(row, { status: 'fail', detail: /^pods a-0, b-0 and c-0 have the same external labels \(cluster=prod\): all upload blocks/ });
  t.notMatch(row.detail, 'd-0');
  t.end();
});

void t.test('pods whose labels cannot be told: listed as not compared, skipped when none can', (t) => {
  const unknown: PodIdentity = { pod: readyPod('prometheus-k8s-0'), labels: { kind: 'unknown', reason: 'cannot check: it is on volume config-out (emptyDir), written at run time' }, pitfalls: [] };
  t.same(checkLabelsDistinct('monitoring', [unknown]), {
    name: 'external labels distinct', status: 'skip',
    detail: 'cannot read the external labels of any pod: prometheus-k8s-0 (cannot check: it is on volume config-out (emptyDir), written at run time)',
  });
  t.match(checkLabelsDistinct('monitoring', [labelled('prometheus-0', { cluster: 'prod' }), unknown]), {
    status: 'ok', detail: /^1 pod with a sidecar: prometheus-0 \(cluster=prod\); not compared: prometheus-k8s-0 \(cannot check: /,
  });
  t.end();
});
