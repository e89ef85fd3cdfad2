// Following Prometheus' --config.file to the ConfigMap (or Secret) key behind it, through volume
// mounts, subPath, items and projected volumes, and checking global.external_labels there.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { V1ConfigMap, V1Deployment, V1Pod, V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { checkExternalLabels } from '../../src/check/prometheus-config.ts';
import { prometheusConfigSource } from '../../src/inject/prometheus-config.ts';

const example = parseAllDocuments(readFileSync(new URL('../../examples/prometheus-deployment.yaml', import.meta.url), 'utf8')).map((doc) => doc.toJS() as { kind: string });
const deployment = example.find((doc) => doc.kind === 'Deployment') as V1Deployment;
const exampleConfigMap = example.find((doc) => doc.kind === 'ConfigMap') as V1ConfigMap;

function examplePod(): V1Pod {
  return { metadata: { name: 'prometheus-deploy-abc', namespace: 'monitoring' }, spec: structuredClone(deployment.spec?.template.spec) };
}

const WITHOUT_LABELS = 'global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["localhost:9090"]\n';
const objects = (...list: [string, V1ConfigMap | V1Secret | undefined][]) => new Map(list);

void t.test("the example: --config.file on the prometheus-config volume, ConfigMap prometheus-cm key prometheus.yml", (t) => {
  const source = prometheusConfigSource(examplePod());
  t.same(source, {
    kind: 'objects', path: '/etc/prometheus/prometheus.yml', container: 'prometheus', volume: 'prometheus-config',
    candidates: [{ kind: 'ConfigMap', name: 'prometheus-cm', key: 'prometheus.yml' }],
  });
  const row = checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', exampleConfigMap]));
  t.equal(row.status, 'ok', row.detail);
  t.equal(row.detail, 'ConfigMap monitoring/prometheus-cm key prometheus.yml (--config.file=/etc/prometheus/prometheus.yml): cluster=prometheus-k8s');
  t.end();
});

void t.test('no external_labels: the sidecar exits without them', (t) => {
  const source = prometheusConfigSource(examplePod());
  const changed: V1ConfigMap = { ...exampleConfigMap, data: { 'prometheus.yml': WITHOUT_LABELS } };
  const row = checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', changed]));
  t.equal(row.status, 'fail');
  t.match(row.detail, /^ConfigMap monitoring\/prometheus-cm key prometheus\.yml \(--config\.file=\/etc\/prometheus\/prometheus\.yml\) has no global\.external_labels: the sidecar exits without unique external labels; add/);
  const empty: V1ConfigMap = { ...exampleConfigMap, data: { 'prometheus.yml': 'global:\n  external_labels: {}\n' } };
  t.equal(checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', empty])).status, 'fail', 'an empty map is not enough');
  const broken: V1ConfigMap = { ...exampleConfigMap, data: { 'prometheus.yml': 'global: [' } };
  t.match(checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', broken])), { status: 'fail', detail: /is not valid YAML/ });
  t.end();
});

void t.test('the ConfigMap or its key is missing', (t) => {
  const source = prometheusConfigSource(examplePod());
  t.match(checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', undefined])), {
    status: 'fail', detail: /ConfigMap prometheus-cm not found in monitoring \(the pod cannot start\)/,
  });
  t.match(checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', { data: { 'other.yml': '' } }])), {
    status: 'fail', detail: /ConfigMap prometheus-cm has no key prometheus\.yml/,
  });
  t.end();
});

void t.test('subPath, items, Secrets (gzip, as prometheus-operator writes them) and projected volumes', (t) => {
  const subPath = examplePod();
  if (subPath.spec) {
    subPath.spec.containers[0]!.volumeMounts = [{ name: 'prometheus-config', mountPath: '/etc/prometheus/prometheus.yml', subPath: 'prom.yaml' }];
  }
  t.match(prometheusConfigSource(subPath), { candidates: [{ kind: 'ConfigMap', name: 'prometheus-cm', key: 'prom.yaml' }] });

  const items = examplePod();
  items.spec!.volumes![0]!.configMap!.items = [{ key: 'config', path: 'prometheus.yml' }];
  t.match(prometheusConfigSource(items), { candidates: [{ key: 'config' }] });
  items.spec!.volumes![0]!.configMap!.items = [{ key: 'config', path: 'other.yml' }];
  t.match(prometheusConfigSource(items), { kind: 'unknown', reason: /projects no prometheus\.yml from ConfigMap prometheus-cm/ });

  const operator: V1Pod = {
    metadata: { name: 'prometheus-k8s-0', namespace: 'monitoring' },
    spec: {
      containers: [{
        name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0',
        args: ['--config.file=/etc/prometheus/config_out/prometheus.env.yaml'],
        volumeMounts: [{ name: 'config-out', mountPath: '/etc/prometheus/config_out' }, { name: 'config', mountPath: '/etc/prometheus/config' }],
      }],
      volumes: [{ name: 'config-out', emptyDir: {} }, { name: 'config', secret: { secretName: 'prometheus-k8s' } }],
    },
  };
  t.match(prometheusConfigSource(operator), { kind: 'unknown', reason: /on volume config-out \(emptyDir\), written at run time/ });
  operator.spec!.containers[0]!.args = ['--config.file=/etc/prometheus/config/prometheus.yaml.gz'];
  const source = prometheusConfigSource(operator);
  t.match(source, { candidates: [{ kind: 'Secret', name: 'prometheus-k8s', key: 'prometheus.yaml.gz' }] });
  const secret: V1Secret = { data: { 'prometheus.yaml.gz': gzipSync('global:\n  external_labels:\n    prometheus: monitoring/k8s\n    prometheus_replica: prometheus-k8s-0\n').toString('base64') } };
  t.match(checkExternalLabels('monitoring', source, objects(['Secret/prometheus-k8s', secret])), {
    status: 'ok', detail: /prometheus=monitoring\/k8s, prometheus_replica=prometheus-k8s-0$/,
  });

  const projected = examplePod();
  projected.spec!.volumes![0] = {
    name: 'prometheus-config',
    projected: { sources: [{ secret: { name: 'extra', items: [{ key: 'a', path: 'a.yml' }] } }, { configMap: { name: 'prometheus-cm' } }] },
  };
  const projectedSource = prometheusConfigSource(projected);
  t.match(projectedSource, { candidates: [{ kind: 'ConfigMap', name: 'prometheus-cm', key: 'prometheus.yml' }] });
  t.equal(checkExternalLabels('monitoring', projectedSource, objects(['ConfigMap/prometheus-cm', exampleConfigMap])).status, 'ok');
  t.end();
});

void t.test('a config file that cannot be followed is skipped, never guessed', (t) => {
  const image = examplePod();
  image.spec!.containers[0]!.volumeMounts = [{ name: 'prometheus-data', mountPath: '/prometheus' }];
  const source = prometheusConfigSource(image);
  t.match(source, { kind: 'unknown', reason: /--config\.file=\/etc\/prometheus\/prometheus\.yml is on no volume of container prometheus: it comes with the image/ });
  t.match(checkExternalLabels('monitoring', source, objects()), { status: 'skip', detail: /make sure it sets global\.external_labels/ });
  const noPrometheus: V1Pod = { metadata: { name: 'web' }, spec: { containers: [{ name: 'web', image: 'nginx' }] } };
  t.match(prometheusConfigSource(noPrometheus), { kind: 'unknown', reason: 'the pod has no Prometheus container' });
  const relative = examplePod();
  relative.spec!.containers[0]!.args = ['--config.file=prometheus.yml'];
  relative.spec!.containers[0]!.workingDir = '/etc/prometheus';
  t.match(prometheusConfigSource(relative), { path: '/etc/prometheus/prometheus.yml' }, 'relative to workingDir');
  t.end();
});

void t.test("with the pod: the labels its Prometheus uses, and the pitfalls between the file and them", (t) => {
  const pod = examplePod();
  const source = prometheusConfigSource(pod);
  const withLabels = (labels: string): V1ConfigMap => ({ ...exampleConfigMap, data: { 'prometheus.yml': `global:\n  external_labels:\n${labels}` } });
  const check = (labels: string, target = pod) => checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', withLabels(labels)]), target);

  t.same(check('    cluster: prometheus-k8s\n'), checkExternalLabels('monitoring', source, objects(['ConfigMap/prometheus-cm', withLabels('    cluster: prometheus-k8s\n')])), 'nothing to expand: as without the pod');

  // The example's Prometheus is 2.54.1: without the feature flag, ${VAR} stays as written.
  const unexpanded = check('    cluster: prometheus-k8s\n    replica: ${POD_NAME}\n');
  t.equal(unexpanded.status, 'warn');
  t.match(unexpanded.detail, 'label replica: ${POD_NAME} stays literally ${POD_NAME}: this Prometheus 2.x expands variables only with --enable-feature=expand-external-labels (2.27+)');

  const expanding = examplePod();
  expanding.spec!.containers[0]!.args!.push('--enable-feature=expand-external-labels');
  const missing = check('    cluster: prometheus-k8s\n    replica: ${POD_NAME}\n', expanding);
  t.equal(missing.status, 'warn');
  t.match(missing.detail, 'label replica: ${POD_NAME} is empty for this pod, so Prometheus drops it: container prometheus has no POD_NAME');

  expanding.spec!.containers[0]!.env = [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }];
  t.same(check('    cluster: prometheus-k8s\n    replica: ${POD_NAME}\n', expanding), {
    name: 'prometheus external_labels', status: 'ok',
    detail: 'ConfigMap monitoring/prometheus-cm key prometheus.yml (--config.file=/etc/prometheus/prometheus.yml): cluster=prometheus-k8s, replica=${POD_NAME} (for pod prometheus-deploy-abc: cluster=prometheus-k8s, replica=prometheus-deploy-abc)',
  });
  t.match(check('    replica: $(POD_NAME)\n', expanding), {
    status: 'warn', detail: "replica=$(POD_NAME); label replica: $(POD_NAME) is prometheus-operator's $(VAR) form, which Prometheus itself keeps literally: write replica: ${POD_NAME}",
  });
  t.end();
});
