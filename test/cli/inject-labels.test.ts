// `thanos-injector inject -f`: warnings about the external labels an injected (or self-sidecarred)
// Prometheus would upload under, read from the ConfigMap or Secret behind --config.file when it
// is in the same input and namespace. The manifests are shaped like the prometheus-community
// `prometheus` chart's output (ConfigMap prometheus-server, key prometheus.yml; the server and its
// config reloader). Warnings go to stderr; stdout is the injected YAML either way.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Volume } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;

const namespace = 'monitoring';
const labels = { 'app.kubernetes.io/component': 'server', 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'prometheus' };

/** The chart's prometheus.yml, with these global.external_labels (none when undefined). */
function prometheusYml(externalLabels?: Record<string, string>): string {
  return stringify({
    global: { evaluation_interval: '1m', ...(externalLabels ? { external_labels: externalLabels } : {}), scrape_interval: '1m', scrape_timeout: '10s' },
    scrape_configs: [{ job_name: 'prometheus', static_configs: [{ targets: ['localhost:9090'] }] }],
  });
}

function configMap(externalLabels?: Record<string, string>, options: { namespace?: string; name?: string } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: options.name ?? 'prometheus-server', namespace: options.namespace ?? namespace, labels },
    data: { 'allow-snippet-annotations': 'false', 'alerting_rules.yml': '{}\n', 'prometheus.yml': prometheusYml(externalLabels) },
  };
}

interface ServerOptions {
  env?: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[];
  podLabels?: Record<string, string>;
  /** A Thanos sidecar of the pod's own. */
  ownSidecar?: boolean;
}

/** The chart's pod template: config reloader, then the server reading /etc/config/prometheus.yml from volume config-volume. */
function podTemplate(options: ServerOptions = {}) {
  const volumes: V1Volume[] = [{ name: 'config-volume', configMap: { name: 'prometheus-server' } }, ...(options.ownSidecar ? [{ name: 'storage-volume', emptyDir: {} }] : [])];
  return {
    metadata: { labels: { ...labels, ...options.podLabels } },
    spec: {
      serviceAccountName: 'prometheus-server',
      containers: [
        {
          name: 'prometheus-server-configmap-reload',
          image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1',
          args: ['--watched-dir=/etc/config', '--listen-address=0.0.0.0:8080', '--reload-url=http://127.0.0.1:9090/-/reload'],
          volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config', readOnly: true }],
        },
        {
          name: 'prometheus-server',
          image: 'quay.io/prometheus/prometheus:v3.14.0',
          args: ['--storage.tsdb.retention.time=15d', '--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data', '--web.enable-lifecycle'],
          ports: [{ containerPort: 9090 }],
          ...(options.env ? { env: options.env } : {}),
          volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }, { name: 'storage-volume', mountPath: '/data', subPath: '' }],
        },
        ...(options.ownSidecar
          ? [{ name: 'thanos', image: 'quay.io/thanos/thanos:v0.42.5', args: ['sidecar', '--tsdb.path=/data', '--prometheus.url=http://localhost:9090'], volumeMounts: [{ name: 'storage-volume', mountPath: '/data' }] }]
          : []),
      ],
      securityContext: { fsGroup: 65534, runAsGroup: 65534, runAsNonRoot: true, runAsUser: 65534 },
      volumes,
    },
  };
}

function statefulSet(replicas: number, options: ServerOptions = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'prometheus-server', namespace, labels },
    spec: {
      serviceName: 'prometheus-server-headless',
      selector: { matchLabels: labels },
      replicas,
      template: podTemplate(options),
      volumeClaimTemplates: [{ metadata: { name: 'storage-volume' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } } }],
    },
  };
}

/** The chart's default: a Deployment (its storage-volume a PVC). */
function deployment(replicas: number | undefined, options: ServerOptions = {}) {
  const template = podTemplate(options);
  template.spec.volumes.push({ name: 'storage-volume', persistentVolumeClaim: { claimName: 'prometheus-server' } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'prometheus-server', namespace, labels },
    spec: { ...(replicas === undefined ? {} : { replicas }), selector: { matchLabels: labels }, strategy: { type: 'Recreate' }, template },
  };
}

function daemonSet(options: ServerOptions = {}) {
  const template = podTemplate(options);
  template.spec.volumes.push({ name: 'storage-volume', hostPath: { path: '/var/lib/prometheus', type: 'DirectoryOrCreate' } });
  return { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'prometheus-server', namespace, labels }, spec: { selector: { matchLabels: labels }, template } };
}

const nodeName = { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };

/** `node src/main.ts inject -f FILE` on these manifests (one YAML stream): exit code and output. */
async function inject(t: Test, manifests: unknown[], args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-labels-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'prometheus.yaml');
  await writeFile(file, manifests.map((m) => stringify(m)).join('---\n'));
  return promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), 'inject', '-f', file, ...args], { cwd: root }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** The warning lines of stderr. */
const warnings = (stderr: string) => stderr.split('\n').filter((line) => line.includes(': warning: '));

/** stdout is the injected manifests, without a word of the warnings. */
function injectedOutput(t: Test, stdout: string, kinds: string[]): void {
  const objects = parseAllDocuments(stdout).map((d) => d.toJS() as { kind: string; spec?: { template?: { spec?: { initContainers?: { name: string }[] } } } });
  t.same(objects.map((o) => o.kind), kinds, 'stdout: the manifests, in order');
  const workload = objects.find((o) => o.kind !== 'ConfigMap' && o.kind !== 'Secret');
  t.ok(workload?.spec?.template?.spec?.initContainers?.some((c) => c.name === 'thanos-sidecar'), 'the workload is injected');
  t.notMatch(stdout, 'warning', 'no warning on stdout');
}

const CHART_CLUSTER = '--set server.global.external_labels.cluster=<name>';
const SHARED = 'their sidecars upload overlapping blocks under one label set, so the Thanos Compactor halts ("overlaps found") and Thanos Query cannot deduplicate them';
const REPLICA_FIX = "give each pod a label of its own: replica: ${POD_NAME} under global.external_labels (prometheus-community chart: --set 'server.global.external_labels.replica=${POD_NAME}') and run Thanos Query with --query.replica-label=replica";
const STATEFULSET_FIX = 'run Prometheus as a StatefulSet, whose pod names survive a rollout (prometheus-community chart: --set server.statefulSet.enabled=true)';

void t.test('no global.external_labels (the chart\'s default): the sidecar would exit; names the ConfigMap, the key and the chart value', async (t) => {
  const result = await inject(t, [configMap(), deployment(1)]);
  t.equal(result.code, 0);
  injectedOutput(t, result.stdout, ['ConfigMap', 'Deployment']);
  t.same(warnings(result.stderr), [
    'Deployment/prometheus-server: warning: ConfigMap prometheus-server key prometheus.yml (--config.file=/etc/config/prometheus.yml) sets no global.external_labels: ' +
      'the Thanos sidecar exits at start without them ("no external labels configured on Prometheus server") and uploads nothing; ' +
      `add labels that identify this Prometheus, e.g. global.external_labels: {cluster: <name>} (prometheus-community chart: ${CHART_CLUSTER})`,
  ]);
  t.match(result.stderr, /^Deployment\/prometheus-server: injected\n/, 'after the injection note');
});

void t.test('no labels on replicas: the example gives each pod its own label too', async (t) => {
  const result = await inject(t, [configMap(), statefulSet(2)]);
  t.same(warnings(result.stderr), [
    'StatefulSet/prometheus-server: warning: ConfigMap prometheus-server key prometheus.yml (--config.file=/etc/config/prometheus.yml) sets no global.external_labels: ' +
      'the Thanos sidecar exits at start without them ("no external labels configured on Prometheus server") and uploads nothing; ' +
      'add labels that identify this Prometheus, e.g. global.external_labels: {cluster: <name>, replica: ${POD_NAME}} ' +
      `(prometheus-community chart: ${CHART_CLUSTER} --set 'server.global.external_labels.replica=\${POD_NAME}')`,
  ], 'one warning: no separate one about sharing');
  const deploymentResult = await inject(t, [configMap(), deployment(3)]);
  t.match(warnings(deploymentResult.stderr)[0], `; and ${STATEFULSET_FIX}`, 'a Deployment is told to become a StatefulSet too');
});

void t.test('HA with shared labels (cluster only, 2 replicas): overlapping blocks, the Compactor halts, Query cannot deduplicate; the fix', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1' }), statefulSet(2)]);
  t.equal(result.code, 0);
  injectedOutput(t, result.stdout, ['ConfigMap', 'StatefulSet']);
  t.same(warnings(result.stderr), [
    `StatefulSet/prometheus-server: warning: its 2 replicas share one set of external labels (cluster=eu1; ConfigMap prometheus-server key prometheus.yml): ${SHARED}; ${REPLICA_FIX}`,
  ]);
});

void t.test('HA with replica: ${POD_NAME}: each pod has its own labels, nothing to say', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1', replica: '${POD_NAME}' }), statefulSet(2)]);
  t.equal(result.code, 0);
  injectedOutput(t, result.stdout, ['ConfigMap', 'StatefulSet']);
  t.equal(result.stderr, 'StatefulSet/prometheus-server: injected\n');
});

void t.test('one replica with cluster labels only: nothing to say', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1' }), statefulSet(1)]);
  t.equal(result.stderr, 'StatefulSet/prometheus-server: injected\n');
});

void t.test('the ConfigMap is not in the input, or in another namespace: nothing is said', async (t) => {
  const absent = await inject(t, [statefulSet(2)]);
  t.equal(absent.code, 0);
  t.equal(absent.stderr, 'StatefulSet/prometheus-server: injected\n');
  const elsewhere = await inject(t, [configMap(undefined, { namespace: 'other' }), statefulSet(2)]);
  t.equal(elsewhere.stderr, 'StatefulSet/prometheus-server: injected\n');
  const otherName = await inject(t, [configMap(undefined, { name: 'prometheus-other' }), statefulSet(2)]);
  t.equal(otherName.stderr, 'StatefulSet/prometheus-server: injected\n');
  const byFlag = await inject(t, [configMap(undefined, { namespace: 'other' }), statefulSet(2)], ['-n', 'team']);
  t.match(byFlag.stderr, 'warning: ConfigMap prometheus-server key prometheus.yml', '--namespace puts both in one namespace');
});

void t.test('a pod that gets no sidecar (opted out) is none of this command\'s business', async (t) => {
  const result = await inject(t, [configMap(), statefulSet(2, { podLabels: { 'thanos-injection': 'disabled' } })]);
  t.same(warnings(result.stderr), []);
  t.match(result.stderr, 'StatefulSet/prometheus-server: skipped (pod-opted-out)');
});

void t.test('a Thanos sidecar of the pod\'s own uploads under the same labels: warned about too', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1' }), statefulSet(2, { ownSidecar: true })]);
  t.match(result.stderr, 'StatefulSet/prometheus-server: skipped (existing-sidecar)');
  const labelWarnings = warnings(result.stderr).filter((line) => line.includes('external labels'));
  t.match(labelWarnings, [/^StatefulSet\/prometheus-server: warning: its 2 replicas share one set of external labels \(cluster=eu1;/]);
  t.equal(labelWarnings.length, 1);
});

void t.test('prometheus-operator\'s $(POD_NAME) form is literal for Prometheus: write ${POD_NAME}', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1', prometheus_replica: '$(POD_NAME)' }), statefulSet(2)]);
  t.same(warnings(result.stderr), [
    "StatefulSet/prometheus-server: warning: external label prometheus_replica: $(POD_NAME) in ConfigMap prometheus-server key prometheus.yml uses prometheus-operator's $(VAR) form, " +
      "which Prometheus keeps as literal text (only the operator's config reloader expands it), so every pod uploads under that same text; write prometheus_replica: ${POD_NAME}",
    `StatefulSet/prometheus-server: warning: its 2 replicas share one set of external labels (cluster=eu1, prometheus_replica=$(POD_NAME); ConfigMap prometheus-server key prometheus.yml): ${SHARED}; ${REPLICA_FIX}`,
  ]);
});

void t.test('a Deployment whose labels take the pod name: a new block stream on every rollout; use a StatefulSet', async (t) => {
  const result = await inject(t, [configMap({ cluster: 'eu1', replica: '${POD_NAME}' }), deployment(2)]);
  t.same(warnings(result.stderr), [
    'Deployment/prometheus-server: warning: its external labels (cluster=eu1, replica=<pod name>; ConfigMap prometheus-server key prometheus.yml) take the pod name, ' +
      'which a Deployment changes on every rollout: each new pod starts a new block stream in the bucket that the Thanos Compactor never merges with the old ones; ' +
      STATEFULSET_FIX,
  ]);
  const shared = await inject(t, [configMap({ cluster: 'eu1' }), deployment(2)]);
  t.same(warnings(shared.stderr), [
    `Deployment/prometheus-server: warning: its 2 replicas share one set of external labels (cluster=eu1; ConfigMap prometheus-server key prometheus.yml): ${SHARED}; ${STATEFULSET_FIX}, and ${REPLICA_FIX}`,
  ], 'shared labels in a Deployment: the fix includes the StatefulSet');
  const single = await inject(t, [configMap({ cluster: 'eu1' }), deployment(undefined)]);
  t.same(warnings(single.stderr), [], 'replicas unset is one replica');
});

void t.test('a DaemonSet counts as several pods; the node name tells them apart', async (t) => {
  const shared = await inject(t, [configMap({ cluster: 'eu1' }), daemonSet()]);
  t.same(warnings(shared.stderr), [
    `DaemonSet/prometheus-server: warning: its pods (one per node) share one set of external labels (cluster=eu1; ConfigMap prometheus-server key prometheus.yml): ${SHARED}; ` +
      'give each pod the label of its node: env NODE_NAME (valueFrom.fieldRef.fieldPath: spec.nodeName) on the Prometheus container and node: ${NODE_NAME} under global.external_labels',
  ]);
  const byNode = await inject(t, [configMap({ cluster: 'eu1', node: '${NODE_NAME}' }), daemonSet({ env: [nodeName] })]);
  t.same(warnings(byNode.stderr), [], 'a label of the node name: nothing to say');
  const byPod = await inject(t, [configMap({ cluster: 'eu1', replica: '${POD_NAME}' }), daemonSet()]);
  t.match(warnings(byPod.stderr), [/DaemonSet\/prometheus-server: warning: its external labels \(cluster=eu1, replica=<pod name>;.*which a DaemonSet changes on every rollout.*instead, give each pod the label of its node/]);
});

void t.test('the configuration in a Secret (data or stringData), and objects inside a List', async (t) => {
  const withSecret = (secret: Record<string, unknown>) => {
    const set = statefulSet(2);
    set.spec.template.spec.volumes = [{ name: 'config-volume', secret: { secretName: 'prometheus-config' } }];
    return [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'prometheus-config', namespace }, ...secret }, set];
  };
  const text = prometheusYml({ cluster: 'eu1' });
  for (const [form, secret] of [['stringData', { stringData: { 'prometheus.yml': text } }], ['data', { data: { 'prometheus.yml': Buffer.from(text).toString('base64') } }]] as const) {
    const result = await inject(t, withSecret(secret));
    t.match(warnings(result.stderr), [/^StatefulSet\/prometheus-server: warning: its 2 replicas share one set of external labels \(cluster=eu1; Secret prometheus-config key prometheus.yml\)/], form);
  }
  const list = await inject(t, [{ apiVersion: 'v1', kind: 'List', items: [configMap(), statefulSet(1)] }]);
  t.match(warnings(list.stderr), [/^StatefulSet\/prometheus-server: warning: ConfigMap prometheus-server key prometheus.yml .* sets no global.external_labels/]);
});
