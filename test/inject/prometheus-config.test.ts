// The external labels a pod's Prometheus makes of its configuration file: as written, expanded as
// Prometheus expands them (3.x always, 2.x with expand-external-labels; `$(VAR)` stays literal),
// and whether they differ per pod (an HA pair needs that).
import t from 'tap';
import type { V1Container } from '@kubernetes/client-node';
import { externalLabels, POD_NAME_PLACEHOLDER } from '../../src/inject/prometheus-config.ts';
import type { PodLike } from '../../src/inject/pod.ts';

const podName = { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } };
function pod(container: Partial<V1Container>, hostname?: string): PodLike {
  return {
    metadata: { namespace: 'monitoring' },
    spec: { ...(hostname ? { hostname } : {}), containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.16.0', ...container }] },
  };
}
const config = (labels: string) => `global:\n  scrape_interval: 15s\n  external_labels:\n${labels}\n`;

void t.test('no external labels, none at all, an empty map, a broken file', (t) => {
  t.same(externalLabels(pod({}), 'global:\n  scrape_interval: 1m\n'), { kind: 'none' });
  t.same(externalLabels(pod({}), ''), { kind: 'none' }, 'an empty file');
  t.same(externalLabels(pod({}), 'global:\n  external_labels: {}\n'), { kind: 'none' });
  t.match(externalLabels(pod({}), 'global: [\n'), { kind: 'invalid', error: /^not valid YAML/ });
  t.match(externalLabels(pod({}), 'global:\n  external_labels: [a]\n'), { kind: 'invalid', error: /not a map/ });
  t.end();
});

void t.test('a replica label from POD_NAME differs per pod on 3.x and on 2.x with the feature, not without it', (t) => {
  const file = config('    cluster: eu1\n    replica: ${POD_NAME}');
  t.match(externalLabels(pod({ env: [podName] }), file, 'prometheus-0'), { kind: 'labels', labels: { cluster: 'eu1', replica: 'prometheus-0' }, perPod: true, expands: true });
  t.match(externalLabels(pod({ env: [podName] }), file), { labels: { replica: POD_NAME_PLACEHOLDER }, perPod: true }, 'a template: its pods are not named yet');
  const old = { image: 'quay.io/prometheus/prometheus:v2.42.0', env: [podName] };
  t.match(externalLabels(pod(old), file, 'prometheus-0'), { labels: { replica: '${POD_NAME}' }, perPod: false, expands: false }, '2.x without the feature keeps it literally');
  t.match(externalLabels(pod({ ...old, args: ['--enable-feature=exemplar-storage,expand-external-labels'] }), file, 'prometheus-0'), { labels: { replica: 'prometheus-0' }, perPod: true });
  t.match(externalLabels(pod({}), file, 'prometheus-0'), { labels: { replica: '' }, perPod: false }, 'an unset variable is empty, as Prometheus makes it');
  t.end();
});

void t.test('other forms: $VAR, HOSTNAME, $$, literal values, a hostname of its own, $(VAR)', (t) => {
  t.match(externalLabels(pod({}), config('    replica: $HOSTNAME'), 'prometheus-1'), { labels: { replica: 'prometheus-1' }, perPod: true }, 'the runtime sets HOSTNAME to the pod name');
  t.match(externalLabels(pod({}, 'fixed'), config('    replica: $HOSTNAME'), 'prometheus-1'), { labels: { replica: 'fixed' }, perPod: false }, 'spec.hostname is the same for every pod');
  t.match(externalLabels(pod({ env: [{ name: 'REGION', value: 'eu' }] }), config('    region: ${REGION}\n    price: $$5'), 'p'), { labels: { region: 'eu', price: '$5' }, perPod: false });
  const operator = externalLabels(pod({ env: [podName] }), config('    prometheus_replica: $(POD_NAME)'), 'prometheus-0');
  t.match(operator, { labels: { prometheus_replica: '$(POD_NAME)' }, perPod: false, literal: ['prometheus_replica'] }, "prometheus-operator's form is literal for Prometheus");
  t.match(externalLabels(pod({}), config('    n: 1\n    b: true'), 'p'), { labels: { n: '1', b: 'true' } }, 'scalars as strings');
  t.end();
});
