// `thanos-injector check -n monitoring` over a cluster in memory: every pod of the namespace with
// a Thanos sidecar (the injector's or its own) gets rows for its containers, its own sidecar and
// its external labels, and one row compares the labels of all of them. The pods are the seed's
// Deployment and a prometheus-community chart StatefulSet, as their controllers create them and
// the injector patches them.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { V1ConfigMap, V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { diagnose, type CheckOptions } from '../../src/check/diagnose.ts';
import { formatJson } from '../../src/check/report.ts';
import { CHECK, exitCodeOf, type CheckRow } from '../../src/check/rows.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { applyPatchInPlace } from '../../src/inject/patch.ts';
import { config, installCluster, runningStatus, type MemoryCluster } from './memory-cluster.ts';

const now = new Date();
const options = (overrides: Partial<CheckOptions> = {}): CheckOptions => ({
  webhookConfig: 'thanos-sidecar-injector', webhookConfigExplicit: false, namespace: 'monitoring', now, ...overrides,
});
const rowsNamed = (rows: readonly CheckRow[], name: string) => rows.filter((row) => row.name === name);
const only = (rows: readonly CheckRow[], name: string): CheckRow => {
  const found = rowsNamed(rows, name);
  if (found.length !== 1) throw new Error(`expected one ${name} row, got ${found.length}`);
  return found[0]!;
};

/** The pod as the webhook stores it: the engine's patch applied, then running as the kubelet reports it. */
function injected(pod: V1Pod): V1Pod {
  const injection = injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.34' });
  if (injection.outcome !== 'injected') throw new Error(`not injected: ${JSON.stringify(injection)}`);
  applyPatchInPlace(pod, injection.patch);
  pod.status = runningStatus(pod);
  return pod;
}

/** Replaces one container's status (init or regular) with a crash loop that left `message` behind. */
function crashLooping(pod: V1Pod, container: string, message = '', restarts = 6): V1Pod {
  const status: V1ContainerStatus = {
    name: container, image: '', imageID: '', ready: false, restartCount: restarts, started: false,
    state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 2m40s restarting failed container=${container} pod=${pod.metadata?.name ?? ''}` } },
    lastState: { terminated: { exitCode: 1, reason: 'Error', message, startedAt: new Date(now.getTime() - 70_000), finishedAt: new Date(now.getTime() - 69_000) } },
  };
  for (const list of [pod.status?.initContainerStatuses, pod.status?.containerStatuses]) {
    const index = list?.findIndex((s) => s.name === container) ?? -1;
    if (list !== undefined && index >= 0) list[index] = status;
  }
  pod.status!.conditions = [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${container}]` }];
  return pod;
}

// The seed's Deployment (examples/prometheus-deployment.yaml), as its ReplicaSet creates pods.
const example = parseAllDocuments(readFileSync(new URL('../../examples/prometheus-deployment.yaml', import.meta.url), 'utf8')).map((doc) => doc.toJS() as { kind: string });
const seedConfigMap = example.find((doc) => doc.kind === 'ConfigMap') as V1ConfigMap;
const seedDeployment = example.find((doc) => doc.kind === 'Deployment') as V1Deployment;

function deploymentPod(name: string): V1Pod {
  const template = structuredClone(seedDeployment.spec!.template);
  return {
    metadata: {
      name, namespace: 'monitoring',
      labels: { ...template.metadata?.labels, 'pod-template-hash': '5c8f7b6d4' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-deploy-5c8f7b6d4', uid: 'rs-uid', controller: true }],
    },
    spec: template.spec,
    status: { phase: 'Pending' },
  };
}

/** The seed's hand-made sidecar (its step 1.2), which binds the same 10901 and 10902. */
const seedThanos = {
  name: 'thanos', image: 'quay.io/thanos/thanos:v0.36.1',
  args: ['sidecar', '--prometheus.url=http://localhost:9090', '--tsdb.path=/prometheus'],
  volumeMounts: [{ name: 'prometheus-data', mountPath: '/prometheus' }],
};

const BIND_MESSAGE = [
  'ts=2026-12-02T07:10:01.120Z caller=sidecar.go:139 level=info msg="starting sidecar"',
  'ts=2026-12-02T07:10:01.131Z caller=http.go:73 level=info service=http/server component=sidecar msg="listening for requests and metrics" address=0.0.0.0:10902',
  'ts=2026-12-02T07:10:01.132Z caller=http.go:92 level=info service=http/server component=sidecar msg="internal server is shutdown gracefully" err="listen tcp 0.0.0.0:10902: bind: address already in use"',
  'ts=2026-12-02T07:10:01.133Z caller=main.go:174 level=error err="listen tcp 0.0.0.0:10902: bind: address already in use\\nsidecar command failed\\nmain.main\\n\\t/app/cmd/thanos/main.go:174\\nruntime.main\\n\\t/usr/local/go/src/runtime/proc.go:272"',
].join('\n');

const NO_LABELS_MESSAGE = [
  'ts=2026-12-02T07:20:26.075Z caller=sidecar.go:215 level=info msg="successfully loaded prometheus version"',
  'ts=2026-12-02T07:20:26.077Z caller=sidecar.go:238 level=info msg="successfully loaded prometheus external labels" external_labels={}',
  'ts=2026-12-02T07:20:26.077Z caller=main.go:145 level=error err="no external labels configured on Prometheus server, uniquely identifying external labels must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels for details.\\nmain.runSidecar\\n\\t/app/cmd/thanos/sidecar.go:249\\npreparing sidecar command failed"',
].join('\n');

// A prometheus-community `prometheus` chart server as a StatefulSet (server.statefulSet.enabled).
const CHART_CONFIG = 'global:\n  evaluation_interval: 1m\n  scrape_interval: 1m\n  scrape_timeout: 10s\nrule_files:\n- /etc/config/recording_rules.yml\n- /etc/config/alerting_rules.yml\nscrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets:\n    - localhost:9090\n';
const withLabels = (labels: string) => CHART_CONFIG.replace('  scrape_timeout: 10s\n', `  scrape_timeout: 10s\n  external_labels:\n${labels}`);

function chartPod(name: string): V1Pod {
  return {
    metadata: {
      name, namespace: 'monitoring',
      labels: { 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/component': 'server', 'app.kubernetes.io/instance': 'prometheus', 'statefulset.kubernetes.io/pod-name': name },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'prometheus-server', uid: 'sts-uid', controller: true }],
    },
    spec: {
      hostname: name,
      subdomain: 'prometheus-server-headless',
      serviceAccountName: 'prometheus-server',
      securityContext: { runAsUser: 65534, runAsNonRoot: true, runAsGroup: 65534, fsGroup: 65534 },
      containers: [
        {
          name: 'prometheus-server-configmap-reload',
          image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.86.1',
          args: ['--watched-dir=/etc/config', '--listen-address=0.0.0.0:8080', '--reload-url=http://127.0.0.1:9090/-/reload'],
          ports: [{ containerPort: 8080, name: 'metrics' }],
          volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config', readOnly: true }],
        },
        {
          name: 'prometheus-server',
          image: 'quay.io/prometheus/prometheus:v3.14.0',
          args: ['--storage.tsdb.retention.time=15d', '--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data', '--web.enable-lifecycle'],
          ports: [{ containerPort: 9090 }],
          readinessProbe: { httpGet: { path: '/-/ready', port: 9090 } },
          livenessProbe: { httpGet: { path: '/-/healthy', port: 9090 } },
          volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }, { name: 'storage-volume', mountPath: '/data' }],
        },
      ],
      volumes: [
        { name: 'config-volume', configMap: { name: 'prometheus-server' } },
        { name: 'storage-volume', persistentVolumeClaim: { claimName: `storage-volume-${name}` } },
      ],
    },
    status: { phase: 'Pending' },
  };
}

/** The install plus the chart's pods (injected, running) and its ConfigMap with `prometheusYml`. */
function chartCluster(prometheusYml: string, names = ['prometheus-server-0', 'prometheus-server-1']): MemoryCluster {
  const cluster = installCluster();
  cluster.put('configmap', 'monitoring', 'prometheus-server', { metadata: { name: 'prometheus-server', namespace: 'monitoring' }, data: { 'prometheus.yml': prometheusYml } });
  for (const name of names) cluster.put('pod', 'monitoring', name, injected(chartPod(name)));
  return cluster;
}

void t.test("the seed's pod with its own `thanos` and an injected thanos-sidecar that cannot bind: fail naming both containers", async (t) => {
  const cluster = installCluster();
  cluster.put('configmap', 'monitoring', 'prometheus-cm', seedConfigMap);
  // Injected by an injector that did not yet know a pod's own sidecar, then the seed's container.
  const pod = injected(deploymentPod('prometheus-deploy-5c8f7b6d4-x2x9k'));
  pod.spec!.containers.push(structuredClone(seedThanos));
  pod.status = runningStatus(pod);
  cluster.put('pod', 'monitoring', 'prometheus-deploy-5c8f7b6d4-x2x9k', crashLooping(pod, 'thanos-sidecar', BIND_MESSAGE));

  const rows = await diagnose(cluster, options());
  const containers = only(rows, CHECK.podContainers);
  t.equal(containers.status, 'fail');
  t.match(containers.detail, /^pod prometheus-deploy-5c8f7b6d4-x2x9k: container thanos-sidecar is crash-looping \(CrashLoopBackOff, 6 restarts, last exit code 1 \(Error\) at /);
  t.match(containers.detail, 'listen tcp 0.0.0.0:10902: bind: address already in use (its termination message)');
  t.match(containers.detail, 'containers thanos (runs thanos sidecar), thanos-sidecar (runs thanos sidecar, ports 10901, 10902) share the pod\'s network');
  t.match(containers.detail, 'The injector now leaves a pod that runs its own sidecar alone: re-create the pod (kubectl -n monitoring rollout restart deployment/prometheus-deploy) and it keeps thanos only');
  t.notMatch(containers.detail, 'sidecar command failed', 'the stack trace Thanos appends is left out');
  t.notOk(cluster.logReads.some((read) => read.endsWith('/previous')), 'the termination message spared reading the previous log');

  const own = only(rows, CHECK.ownSidecar);
  t.equal(own.status, 'warn');
  t.match(own.detail, /^pod prometheus-deploy-5c8f7b6d4-x2x9k: container thanos runs its own Thanos sidecar, and the pod also has the injector's thanos-sidecar/);
  t.match(own.detail, 'annotate the pod template thanos-injector/existing-sidecar: share-user');
  t.equal(exitCodeOf(rows), 1);
});

void t.test('a chart StatefulSet without external labels, its sidecar crash-looping: fail with the chart hint', async (t) => {
  const cluster = chartCluster(CHART_CONFIG, ['prometheus-server-0']);
  const pod = (await cluster.pods('monitoring'))[0]!;
  cluster.put('pod', 'monitoring', 'prometheus-server-0', crashLooping(pod, 'thanos-sidecar', NO_LABELS_MESSAGE, 4));

  const rows = await diagnose(cluster, options());
  const containers = only(rows, CHECK.podContainers);
  t.equal(containers.status, 'fail');
  t.match(containers.detail, /^pod prometheus-server-0: container thanos-sidecar is crash-looping \(CrashLoopBackOff, 4 restarts/);
  t.match(containers.detail, 'no external labels configured on Prometheus server, uniquely identifying external labels must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels for details. (its termination message)');
  t.match(containers.detail, '--set server.global.external_labels.cluster=<name>');
  t.match(containers.detail, 'replica: ${POD_NAME} for an HA pair');
  t.notMatch(containers.detail, 'prometheus-server-configmap-reload', 'the containers that run are not named');

  const labels = only(rows, CHECK.externalLabels);
  t.equal(labels.status, 'fail');
  t.match(labels.detail, /^pod prometheus-server-0: ConfigMap monitoring\/prometheus-server key prometheus\.yml \(--config\.file=\/etc\/config\/prometheus\.yml\) has no global\.external_labels/);
  t.match(labels.detail, '--set server.global.external_labels.cluster=<name>');
  t.match(only(rows, CHECK.labelsDistinct), { status: 'skip', detail: /cannot read the external labels of any pod: prometheus-server-0 \(no external labels\)/ });
  t.equal(rowsNamed(rows, CHECK.ownSidecar).length, 0, 'an injected pod has no own-sidecar row');
  t.equal(exitCodeOf(rows), 1);
});

void t.test('an HA pair with identical labels: fail naming both pods, what happens and the fix', async (t) => {
  const rows = await diagnose(chartCluster(withLabels('    cluster: prod\n')), options());
  const distinct = only(rows, CHECK.labelsDistinct);
  t.equal(distinct.status, 'fail');
  t.match(distinct.detail, /^pods prometheus-server-0 and prometheus-server-1 have the same external labels \(cluster=prod\)/);
  t.match(distinct.detail, 'the Thanos Compactor halts ("overlaps found") and Thanos Query cannot deduplicate them (it stitches both into one series)');
  t.match(distinct.detail, 'replica: ${POD_NAME} under global.external_labels');
  t.match(distinct.detail, '--query.replica-label=replica');
  t.match(distinct.detail, "$(POD_NAME) is prometheus-operator's form and stays literal for plain Prometheus");
  t.same(rowsNamed(rows, CHECK.externalLabels).map((row) => row.status), ['ok', 'ok'], 'each pod alone has labels');
  t.same(rowsNamed(rows, CHECK.podContainers).map((row) => row.status), ['ok', 'ok']);
  t.equal(exitCodeOf(rows), 1);
});

void t.test('the HA pair with replica: ${POD_NAME} (the injector gives Prometheus POD_NAME): ok, each pod its own labels', async (t) => {
  const rows = await diagnose(chartCluster(withLabels('    cluster: prod\n    replica: ${POD_NAME}\n')), options());
  const distinct = only(rows, CHECK.labelsDistinct);
  t.equal(distinct.status, 'ok', distinct.detail);
  t.equal(distinct.detail, '2 pods, each with labels of its own: prometheus-server-0 (cluster=prod, replica=prometheus-server-0), prometheus-server-1 (cluster=prod, replica=prometheus-server-1)');
  const labels = rowsNamed(rows, CHECK.externalLabels);
  t.same(labels.map((row) => row.status), ['ok', 'ok']);
  t.match(labels[1]?.detail, /cluster=prod, replica=\$\{POD_NAME\} \(for pod prometheus-server-1: cluster=prod, replica=prometheus-server-1\)$/);
  t.equal(exitCodeOf(rows), 0, 'healthy pods, distinct labels: check passes');
});

void t.test("the HA pair with prometheus-operator's $(POD_NAME): identical for Prometheus, fail with the ${POD_NAME} hint", async (t) => {
  const rows = await diagnose(chartCluster(withLabels('    cluster: prod\n    replica: $(POD_NAME)\n')), options());
  const distinct = only(rows, CHECK.labelsDistinct);
  t.equal(distinct.status, 'fail');
  t.match(distinct.detail, 'pods prometheus-server-0 and prometheus-server-1 have the same external labels (cluster=prod, replica=$(POD_NAME))');
  t.match(distinct.detail, "label replica: $(POD_NAME) is prometheus-operator's $(VAR) form, which Prometheus itself keeps literally: write replica: ${POD_NAME}");
  const labels = rowsNamed(rows, CHECK.externalLabels);
  t.same(labels.map((row) => row.status), ['warn', 'warn'], 'each pod is warned about the literal label');
  t.match(labels[0]?.detail, 'write replica: ${POD_NAME}');
});

void t.test('a Deployment pair whose labels come from the pod name: warn that every rollout starts new streams', async (t) => {
  const cluster = installCluster();
  cluster.put('configmap', 'monitoring', 'prometheus-cm', { data: { 'prometheus.yml': 'global:\n  external_labels:\n    cluster: prometheus-k8s\n    replica: ${POD_NAME}\n' } });
  for (const name of ['prometheus-deploy-5c8f7b6d4-x2x9k', 'prometheus-deploy-5c8f7b6d4-q7w2m']) cluster.put('pod', 'monitoring', name, injected(deploymentPod(name)));
  const rows = await diagnose(cluster, options());
  const distinct = only(rows, CHECK.labelsDistinct);
  t.equal(distinct.status, 'warn', distinct.detail);
  t.match(distinct.detail, /^the external labels of Deployment prometheus-deploy come from the pod name \(prometheus-deploy-5c8f7b6d4-q7w2m: cluster=prometheus-k8s, replica=prometheus-deploy-5c8f7b6d4-q7w2m; /);
  t.match(distinct.detail, 'each new name starts a new block stream that the Compactor never merges with the old one; run Prometheus as a StatefulSet');
  t.equal(exitCodeOf(rows), 0, 'a warning only');
});

void t.test("a rollout's new pod, not ready yet, next to the old one with the same labels: compared once it is ready", async (t) => {
  const cluster = installCluster();
  cluster.put('configmap', 'monitoring', 'prometheus-cm', seedConfigMap);
  cluster.put('pod', 'monitoring', 'prometheus-deploy-5c8f7b6d4-x2x9k', injected(deploymentPod('prometheus-deploy-5c8f7b6d4-x2x9k')));
  const next = injected(deploymentPod('prometheus-deploy-6f9d8e7c5-k3j8p'));
  next.metadata!.labels!['pod-template-hash'] = '6f9d8e7c5';
  next.metadata!.ownerReferences![0]!.name = 'prometheus-deploy-6f9d8e7c5';
  next.status!.conditions = [{ type: 'Ready', status: 'False' }];
  cluster.put('pod', 'monitoring', 'prometheus-deploy-6f9d8e7c5-k3j8p', next);
  const rows = await diagnose(cluster, options());
  t.same(only(rows, CHECK.labelsDistinct), {
    name: CHECK.labelsDistinct, status: 'ok',
    detail: '1 pod with a sidecar: prometheus-deploy-5c8f7b6d4-x2x9k (cluster=prometheus-k8s); not compared: prometheus-deploy-6f9d8e7c5-k3j8p (not ready: compared once it is)',
  });

  next.status!.conditions = [{ type: 'Ready', status: 'True' }];
  cluster.put('pod', 'monitoring', 'prometheus-deploy-6f9d8e7c5-k3j8p', next);
  t.match(only(await diagnose(cluster, options()), CHECK.labelsDistinct), { status: 'fail', detail: /^pods prometheus-deploy-5c8f7b6d4-x2x9k and prometheus-deploy-6f9d8e7c5-k3j8p have the same external labels/ }, 'both ready and alike: a failure');
});

void t.test('only pods with a Thanos sidecar are listed; --pod narrows the pod rows, not the comparison', async (t) => {
  const cluster = chartCluster(withLabels('    cluster: prod\n'));
  cluster.put('pod', 'monitoring', 'grafana-7d4b9c-abcde', { metadata: { name: 'grafana-7d4b9c-abcde', namespace: 'monitoring' }, spec: { containers: [{ name: 'grafana', image: 'grafana/grafana:12.1.0' }] }, status: { phase: 'Running' } });
  const plain = chartPod('prometheus-other-0');
  plain.status = runningStatus(plain);
  cluster.put('pod', 'monitoring', 'prometheus-other-0', plain);
  const rows = await diagnose(cluster, options());
  const mentioned = rows.filter((row) => /grafana|prometheus-other-0/.test(row.detail));
  t.same(mentioned, [], 'neither the Grafana pod nor the uninjected Prometheus pod is listed');
  t.same(rowsNamed(rows, CHECK.podContainers).map((row) => row.detail.split(':')[0]), ['pod prometheus-server-0', 'pod prometheus-server-1']);

  const one = await diagnose(cluster, options({ pod: 'prometheus-server-1' }));
  t.match(only(one, CHECK.labelsDistinct), { status: 'fail', detail: /^pods prometheus-server-0 and prometheus-server-1 have the same external labels/ });
  t.match(only(one, CHECK.podContainers).detail, /^pod prometheus-server-1: /);
  t.same(one.slice(one.findIndex((row) => row.name === CHECK.namespace)).map((row) => row.name), [
    CHECK.namespace, CHECK.labelsDistinct, CHECK.podDecision, CHECK.podInjected, CHECK.podContainers, CHECK.tsdbVolume, CHECK.sidecarCurrent, CHECK.objstoreSecret, CHECK.externalLabels,
    CHECK.podRegistered, CHECK.sidecarUploads,
  ], 'namespace rows first, then the pod in full');
});

void t.test('namespace mode keeps the order: install, namespace, the comparison, then each pod; JSON holds every row', async (t) => {
  const rows = await diagnose(chartCluster(withLabels('    cluster: prod\n    replica: ${POD_NAME}\n')), options());
  t.same(rows.map((row) => row.name), [
    CHECK.webhookConfiguration, CHECK.webhooks, CHECK.matchConditions, CHECK.injectorReachable, CHECK.caBundle, CHECK.certificateExpiry, CHECK.injectorConfig, CHECK.queryConfigMap,
    CHECK.namespace, CHECK.labelsDistinct, CHECK.podContainers, CHECK.tsdbVolume, CHECK.sidecarCurrent, CHECK.externalLabels, CHECK.podContainers, CHECK.tsdbVolume, CHECK.sidecarCurrent, CHECK.externalLabels,
  ]);
  const json = JSON.parse(formatJson(rows)) as { checks: CheckRow[]; summary: Record<string, number> };
  t.same(json.checks, rows);
  t.same(json.summary, { ok: rows.length, warn: 0, fail: 0, skip: 0 });
});

void t.test("a crash without termination message: the cause from the previous instance's log, or how to read it", async (t) => {
  const cluster = chartCluster(withLabels('    cluster: prod\n    replica: ${POD_NAME}\n'), ['prometheus-server-0']);
  const pod = crashLooping((await cluster.pods('monitoring'))[0]!, 'prometheus-server');
  cluster.put('pod', 'monitoring', 'prometheus-server-0', pod);
  cluster.logs.set('monitoring/prometheus-server-0/prometheus-server/previous', [
    'time=2026-12-02T07:30:00.101Z level=INFO source=main.go:1234 msg="Starting Prometheus Server" mode=server version="(version=3.14.0)"',
    'time=2026-12-02T07:30:00.220Z level=ERROR source=main.go:678 msg="Error loading config (--config.file=/etc/config/prometheus.yml)" file=/etc/config/prometheus.yml err="parsing YAML file /etc/config/prometheus.yml: yaml: line 12: did not find expected key"',
  ].join('\n'));
  const row = only(await diagnose(cluster, options()), CHECK.podContainers);
  t.equal(row.status, 'fail');
  t.match(row.detail, 'container prometheus-server is crash-looping (CrashLoopBackOff, 6 restarts, last exit code 1 (Error)');
  t.match(row.detail, 'Error loading config (--config.file=/etc/config/prometheus.yml): parsing YAML file /etc/config/prometheus.yml: yaml: line 12: did not find expected key (the log of its previous instance)');
  t.match(row.detail, 'kubectl -n monitoring logs prometheus-server-0 -c prometheus-server --previous');
  t.ok(cluster.logReads.includes('monitoring/prometheus-server-0/prometheus-server/previous'), 'the previous instance was asked');

  cluster.logs.delete('monitoring/prometheus-server-0/prometheus-server/previous');
  const unread = only(await diagnose(cluster, options()), CHECK.podContainers);
  t.match(unread.detail, /no termination message, and its previous log could not be read \(cannot read the previous log of monitoring\/prometheus-server-0 container prometheus-server: .*\): kubectl -n monitoring logs prometheus-server-0 -c prometheus-server --previous/);
});

void t.test('no pod with a sidecar in the namespace: the comparison is skipped and says so', async (t) => {
  const rows = await diagnose(installCluster(), options());
  t.match(only(rows, CHECK.labelsDistinct), { status: 'skip', detail: 'no pod of namespace monitoring runs a Thanos sidecar (injected or its own): nothing to compare' });
  t.equal(rowsNamed(rows, CHECK.podContainers).length, 0);
});
