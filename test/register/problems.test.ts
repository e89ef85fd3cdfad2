// Sidecar problems registration finds: a sidecar that exited for want of external labels (its
// termination message), and ready pods that upload under one identical label set (computed from
// the ConfigMap behind each pod's --config.file); their Warning events, the summary and the metric.
import t from 'tap';
import type { V1ConfigMap, V1ContainerStatus, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { eventName, problemEvent } from '../../src/register/events.ts';
import { createRegisterMetrics } from '../../src/register/metrics.ts';
import { plan, type ClusterState } from '../../src/register/plan.ts';
import { configMapsToRead, sidecarLacksLabels, type SidecarProblem } from '../../src/register/problems.ts';
import { eventful, summarize } from '../../src/register/summary.ts';
import { applyResult, registerSettings } from '../support/register.ts';
import { block, evidence, sidecarMetrics } from '../support/uploads.ts';

const settings = registerSettings();
/** The sidecar's exit line (cmd/thanos/sidecar.go), as its termination message holds it after the log prefix. */
const EXIT = 'level=error ts=2026-01-01T00:00:00Z caller=main.go:145 err="no external labels configured on Prometheus server, uniquely identifying external labels must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels for details."';

function prometheusConfig(namespace: string, externalLabels?: Record<string, string>, name = 'prometheus-server'): V1ConfigMap {
  const global = { scrape_interval: '1m', ...(externalLabels ? { external_labels: externalLabels } : {}) };
  return { metadata: { namespace, name }, data: { 'prometheus.yml': stringify({ global, scrape_configs: [] }) } };
}

interface PodOptions {
  ready?: boolean;
  deleting?: boolean;
  sidecarStatus?: Partial<V1ContainerStatus>;
  env?: V1EnvVar[];
  /** The config volume: a ConfigMap (default prometheus-server) or a Secret. */
  configFrom?: { configMap: string } | { secret: string };
}

let uids = 0;
/** A pod of the chart's StatefulSet as the webhook leaves it: POD_NAME in the env, the native sidecar, the injected label. */
function injectedPod(namespace: string, name: string, options: PodOptions = {}): V1Pod {
  const from = options.configFrom ?? { configMap: 'prometheus-server' };
  return {
    metadata: {
      namespace,
      name,
      uid: `uid-${name}-${++uids}`,
      labels: { 'thanos-injector/injected': 'true' },
      ...(options.deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}),
    },
    spec: {
      hostname: name,
      containers: [
        { name: 'prometheus-server-configmap-reload', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1', volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }] },
        {
          name: 'prometheus-server',
          image: 'quay.io/prometheus/prometheus:v3.14.0',
          args: ['--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data'],
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }, ...(options.env ?? [])],
          volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }, { name: 'storage-volume', mountPath: '/data' }],
        },
      ],
      initContainers: [{ name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5', restartPolicy: 'Always', ports: [{ name: 'grpc', containerPort: 10901 }] }],
      volumes: [{ name: 'config-volume', ...('configMap' in from ? { configMap: { name: from.configMap } } : { secret: { secretName: from.secret } }) }],
    },
    status: {
      phase: 'Running',
      podIP: '10.0.0.1',
      conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }],
      initContainerStatuses: [{ name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5', imageID: '', restartCount: 0, ready: true, state: { running: {} }, ...options.sidecarStatus }],
    },
  };
}

const crashLooping: Partial<V1ContainerStatus> = {
  ready: false,
  restartCount: 4,
  state: { waiting: { reason: 'CrashLoopBackOff' } },
  lastState: { terminated: { exitCode: 1, reason: 'Error', message: EXIT } },
};

const state = (injectedPods: V1Pod[], prometheusConfigMaps: V1ConfigMap[] = []): ClusterState => ({
  injectedPods,
  services: [],
  labelledNamespaces: [],
  selectablePods: [],
  configMap: undefined,
  prometheusConfigMaps,
  unreadable: [],
  uploads: new Map(),
  readAt: 0,
});

const shapes = (problems: SidecarProblem[]) => problems.map((p) => ({
  problem: p.problem,
  pod: p.pod.name,
  ...(p.problem === 'shared-external-labels' ? { labels: p.labels, others: p.others.map((o) => `${o.namespace}/${o.name}`) } : p.problem === 'no-external-labels' ? { config: p.config } : p.problem === 'uploads-stalled' ? { cause: p.cause } : { differences: p.differences }),
}));

void t.test('the sidecar\'s termination message says "no external labels configured": until it is ready again', (t) => {
  t.ok(sidecarLacksLabels(injectedPod('m', 'a', { sidecarStatus: crashLooping })), 'crash-looping, the last exit\'s message');
  t.ok(sidecarLacksLabels(injectedPod('m', 'b', { sidecarStatus: { ready: false, state: { terminated: { exitCode: 1, message: EXIT } } } })), 'terminated now');
  t.notOk(sidecarLacksLabels(injectedPod('m', 'c', { sidecarStatus: { ...crashLooping, ready: true, state: { running: {} } } })), 'labels fixed: ready, the old message kept in lastState');
  t.notOk(sidecarLacksLabels(injectedPod('m', 'd', { sidecarStatus: { ...crashLooping, lastState: { terminated: { exitCode: 1, message: 'bucket: access denied' } } } })), 'another cause');
  t.notOk(sidecarLacksLabels(injectedPod('m', 'e')), 'running and ready');
  const regular = injectedPod('m', 'f');
  regular.status = { phase: 'Running', containerStatuses: [{ name: 'thanos-sidecar', image: '', imageID: '', restartCount: 3, ready: false, ...crashLooping }] };
  t.ok(sidecarLacksLabels(regular), 'a sidecar among the regular containers (before native sidecars)');
  t.end();
});

void t.test('no external labels: a problem for that pod, naming the ConfigMap behind --config.file', (t) => {
  const p = plan(state([injectedPod('monitoring', 'prometheus-server-0', { sidecarStatus: crashLooping }), injectedPod('monitoring', 'prometheus-server-1', { ready: false, sidecarStatus: crashLooping })]), settings);
  t.same(shapes(p.problems), [
    { problem: 'no-external-labels', pod: 'prometheus-server-0', config: 'ConfigMap monitoring/prometheus-server key prometheus.yml' },
    { problem: 'no-external-labels', pod: 'prometheus-server-1', config: 'ConfigMap monitoring/prometheus-server key prometheus.yml' },
  ], 'ready or not (a sidecar that exits makes the pod unready)');
  t.same(plan(state([injectedPod('monitoring', 'prometheus-server-0', { sidecarStatus: crashLooping, deleting: true })]), settings).problems, [], 'not for a pod being deleted');
  t.end();
});

void t.test('HA trap: two ready replicas with the same labels (cluster only) share one label set, each naming the other', (t) => {
  const pods = [injectedPod('monitoring', 'prometheus-server-1'), injectedPod('monitoring', 'prometheus-server-0')];
  const p = plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings);
  t.same(shapes(p.problems), [
    { problem: 'shared-external-labels', pod: 'prometheus-server-0', labels: { cluster: 'eu1' }, others: ['monitoring/prometheus-server-1'] },
    { problem: 'shared-external-labels', pod: 'prometheus-server-1', labels: { cluster: 'eu1' }, others: ['monitoring/prometheus-server-0'] },
  ]);
  t.equal(p.problems[0]?.problem === 'shared-external-labels' && p.problems[0].config, 'ConfigMap monitoring/prometheus-server key prometheus.yml');
  const unset = plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1', replica: '${UNSET}' })]), settings);
  t.equal(unset.problems.length, 2, 'a label whose variable is unset is empty, and an empty label is no label: still shared');
  const onlyEmpty = plan(state(pods, [prometheusConfig('monitoring', { replica: '${UNSET}' })]), settings);
  t.same(onlyEmpty.problems, [], 'only empty labels: none at all (the sidecar exits; its termination message tells)');
  t.end();
});

void t.test('labels that differ per pod, or a single pod, share nothing', (t) => {
  const pods = () => [injectedPod('monitoring', 'prometheus-server-0'), injectedPod('monitoring', 'prometheus-server-1')];
  t.same(plan(state(pods(), [prometheusConfig('monitoring', { cluster: 'eu1', replica: '${POD_NAME}' })]), settings).problems, [], 'replica: ${POD_NAME}');
  t.same(plan(state(pods(), [prometheusConfig('monitoring', { cluster: 'eu1', replica: '$HOSTNAME' })]), settings).problems, [], 'replica: $HOSTNAME (a StatefulSet pod\'s hostname is its name)');
  t.same(plan(state([injectedPod('monitoring', 'prometheus-server-0')], [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings).problems, [], 'one pod');
  t.same(plan(state(pods(), [prometheusConfig('monitoring', { cluster: 'eu1' }, 'another-config')]), settings).problems, [], 'its ConfigMap not read (absent): unknown, so nothing is said');
  t.end();
});

void t.test('prometheus-operator\'s $(POD_NAME) is literal for Prometheus: the replicas share "$(POD_NAME)"', (t) => {
  const p = plan(state([injectedPod('monitoring', 'p-0'), injectedPod('monitoring', 'p-1')], [prometheusConfig('monitoring', { replica: '$(POD_NAME)' })]), settings);
  t.same(shapes(p.problems).map((s) => s.pod), ['p-0', 'p-1']);
  t.match(p.problems[0], { labels: { replica: '$(POD_NAME)' } });
  t.end();
});

void t.test('only ready pods that are not being deleted count (a rollout\'s new pod is not ready while the old one runs)', (t) => {
  const config = [prometheusConfig('monitoring', { cluster: 'eu1' })];
  t.same(plan(state([injectedPod('monitoring', 'a'), injectedPod('monitoring', 'b', { ready: false })], config), settings).problems, []);
  t.same(plan(state([injectedPod('monitoring', 'a'), injectedPod('monitoring', 'b', { deleting: true })], config), settings).problems, []);
  t.end();
});

void t.test('one label set in two namespaces is shared too (one bucket, one Query); the other pod is named with its namespace', (t) => {
  const p = plan(state([injectedPod('team-a', 'prometheus-0'), injectedPod('team-b', 'prometheus-0')], [prometheusConfig('team-a', { cluster: 'eu1' }), prometheusConfig('team-b', { cluster: 'eu1' })]), settings);
  t.same(shapes(p.problems).map((s) => [s.pod, 'others' in s ? s.others : []]), [['prometheus-0', ['team-b/prometheus-0']], ['prometheus-0', ['team-a/prometheus-0']]]);
  const distinct = plan(state([injectedPod('team-a', 'prometheus-0'), injectedPod('team-b', 'prometheus-0')], [prometheusConfig('team-a', { cluster: 'a' }), prometheusConfig('team-b', { cluster: 'b' })]), settings);
  t.same(distinct.problems, [], 'different labels per namespace');
  t.end();
});

void t.test('labels whose value registration cannot know (a Secret, a node name) are left out rather than guessed equal; Secrets are never read', (t) => {
  const fromSecret: V1EnvVar = { name: 'CLUSTER', valueFrom: { secretKeyRef: { name: 'cluster', key: 'name' } } };
  const pods = [injectedPod('monitoring', 'a', { env: [fromSecret] }), injectedPod('monitoring', 'b', { env: [fromSecret] })];
  t.same(plan(state(pods, [prometheusConfig('monitoring', { cluster: '${CLUSTER}' })]), settings).problems, []);
  const node: V1EnvVar = { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
  t.same(plan(state([injectedPod('monitoring', 'a', { env: [node] }), injectedPod('monitoring', 'b', { env: [node] })], [prometheusConfig('monitoring', { node: '$NODE' })]), settings).problems, []);
  const secretPods = [injectedPod('monitoring', 'a', { configFrom: { secret: 'prometheus-server' } }), injectedPod('monitoring', 'b', { configFrom: { secret: 'prometheus-server' } })];
  t.same(configMapsToRead(secretPods), [], 'a configuration in a Secret is not read');
  t.same(configMapsToRead([...pods, injectedPod('team', 'c')]), [{ namespace: 'monitoring', name: 'prometheus-server' }, { namespace: 'team', name: 'prometheus-server' }], 'each ConfigMap once');
  t.end();
});

void t.test('the Warning events: reason, the labels, the other pods, the consequence and the fix', (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  const pods = ['prometheus-server-0', 'prometheus-server-1'].map((name) => injectedPod('monitoring', name));
  const [shared] = plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings).problems;
  const event = problemEvent(shared!, now, 'register-1');
  t.match(event, {
    metadata: { name: eventName(shared!.pod, 'ThanosSidecarSharedExternalLabels'), namespace: 'monitoring' },
    involvedObject: { kind: 'Pod', name: 'prometheus-server-0', uid: pods[0]?.metadata?.uid },
    type: 'Warning',
    reason: 'ThanosSidecarSharedExternalLabels',
  });
  t.equal(event.message,
    'Prometheus uploads under the same external labels (cluster=eu1; ConfigMap monitoring/prometheus-server key prometheus.yml) as pod prometheus-server-1: ' +
    'their sidecars upload overlapping blocks under one label set, so the Thanos Compactor halts ("overlaps found") and Thanos Query cannot deduplicate them; ' +
    "give each pod a label of its own: replica: ${POD_NAME} under global.external_labels (prometheus-community chart: --set 'server.global.external_labels.replica=${POD_NAME}') " +
    'and run Thanos Query with --query.replica-label=replica');

  const [missing] = plan(state([injectedPod('monitoring', 'prometheus-server-0', { sidecarStatus: crashLooping })]), settings).problems;
  const noLabels = problemEvent(missing!, now, 'register-1');
  t.equal(noLabels.type, 'Warning');
  t.equal(noLabels.reason, 'ThanosSidecarNoExternalLabels');
  t.equal(noLabels.message,
    'The thanos-sidecar container exits: Prometheus has no external labels ("no external labels configured on Prometheus server"), ' +
    'and the sidecar uploads nothing without labels that identify this Prometheus in the bucket; ' +
    'add global.external_labels to ConfigMap monitoring/prometheus-server key prometheus.yml, e.g. cluster: <name> ' +
    '(and replica: ${POD_NAME} when Prometheus runs as several replicas of a StatefulSet; prometheus-community chart: --set server.global.external_labels.cluster=<name>)');
  t.end();
});

void t.test('a large set of pods sharing labels: each event names five others and counts the rest', (t) => {
  const pods = Array.from({ length: 8 }, (_, i) => injectedPod('monitoring', `p-${i}`));
  const problems = plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings).problems;
  t.equal(problems.length, 8);
  t.match(problemEvent(problems[0]!, new Date(), 'h').message, / as pods p-1, p-2, p-3, p-4, p-5 and 2 more: /);
  t.end();
});

void t.test('the summary lists the problems (and is eventful); without them it says nothing of them', (t) => {
  const pods = [injectedPod('monitoring', 'prometheus-server-0'), injectedPod('monitoring', 'prometheus-server-1'), injectedPod('team', 'prom-0', { sidecarStatus: crashLooping })];
  const p = plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1' }), prometheusConfig('team')]), settings);
  const text = summarize(p, applyResult(), settings);
  t.match(text, [
    '',
    'Sidecar problems: 3 injected pods (the fix is in each pod\'s Warning event: kubectl describe pod)',
    'NAMESPACE   POD                  PROBLEM                 DETAIL',
    'monitoring  prometheus-server-0  shared-external-labels  cluster=eu1, as pod prometheus-server-1',
    'monitoring  prometheus-server-1  shared-external-labels  cluster=eu1, as pod prometheus-server-0',
    'team        prom-0               no-external-labels      the sidecar exits: no global.external_labels in ConfigMap team/prometheus-server key prometheus.yml',
    '',
  ].join('\n'));
  t.ok(eventful(p, applyResult()));
  const fine = plan(state([injectedPod('monitoring', 'prometheus-server-0')], [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings);
  t.notMatch(summarize(fine, applyResult(), settings), 'Sidecar problems');
  t.end();
});

void t.test('metric thanos_injector_sidecar_problems: pods per problem at the last reconcile, both exported from the start', async (t) => {
  const metrics = createRegisterMetrics();
  const sample = async (problem: string) => {
    const series = `thanos_injector_sidecar_problems{problem="${problem}"}`;
    const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  t.equal(await sample('no-external-labels'), 0);
  t.equal(await sample('shared-external-labels'), 0);
  const pods = [injectedPod('monitoring', 'a'), injectedPod('monitoring', 'b'), injectedPod('monitoring', 'c'), injectedPod('team', 'd', { sidecarStatus: crashLooping })];
  const at = new Date('2026-01-01T00:00:00Z');
  metrics.reconciled({ plan: plan(state(pods, [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings), result: applyResult() }, at);
  t.equal(await sample('shared-external-labels'), 3);
  t.equal(await sample('no-external-labels'), 1);
  metrics.reconciled({ plan: plan(state(pods.slice(0, 1), [prometheusConfig('monitoring', { cluster: 'eu1' })]), settings), result: applyResult() }, at);
  t.equal(await sample('shared-external-labels'), 0, 'back to 0 once fixed');
  t.equal(await sample('no-external-labels'), 0);
});

void t.test('stalled uploads: judged on what each pod\'s sidecar and Prometheus said, recorded as a Warning, listed, counted, with when retention deletes the oldest block', async (t) => {
  const now = Date.parse('2026-12-02T08:00:00Z');
  const stalled = injectedPod('monitoring', 'prometheus-server-0');
  const healthy = injectedPod('monitoring', 'prometheus-server-1');
  const unasked = injectedPod('monitoring', 'prometheus-server-2');
  const uploads = new Map([
    [stalled.metadata!.uid!, evidence(sidecarMetrics(3, { lastUpload: now - 600_000 }), '', { blocks: [block(now - 400_000), block(now - 200_000)], retention: '1h' })],
    [healthy.metadata!.uid!, evidence(sidecarMetrics(3, { lastUpload: now - 10_000 }), '', { blocks: [block(now - 400_000)], retention: '1h' })],
  ]);
  const p = plan({ ...state([stalled, healthy, unasked], [prometheusConfig('monitoring', { cluster: 'eu1', replica: '${POD_NAME}' })]), uploads, readAt: now }, settings);
  t.same(shapes(p.problems), [{ problem: 'uploads-stalled', pod: 'prometheus-server-0', cause: 'no request to bucket metrics-eu1 has failed either: they hang (object storage frozen, or its traffic dropped on the way)' }],
    'only the pod whose blocks wait with no upload finishing; a pod not asked is not judged');
  const problem = p.problems[0]!;
  const event = problemEvent(problem, new Date(now), 'register-0');
  t.match(event, { reason: 'ThanosSidecarUploadsStalled', type: 'Warning', involvedObject: { name: 'prometheus-server-0' } });
  t.match(event.message, /^Uploads to object storage are stalled: 2 block\(s\) cut by Prometheus not uploaded, the oldest \w{26} cut 2026-12-02T07:53:20Z, 6m40s ago .*retention \(1h\) deletes it, uploaded or not, at the earliest at 2026-12-02T08:53:10Z \(in 53m10s\); the last upload finished at 2026-12-02T07:50:00Z, 10m ago: no request to bucket metrics-eu1 has failed either/);
  t.match(event.message, /A block deleted before it is uploaded is lost; thanos-injector check -n monitoring --pod prometheus-server-0 quotes the sidecar's own error$/);
  t.match(summarize(p, applyResult(), settings), /monitoring\s+prometheus-server-0\s+uploads-stalled\s+2 block\(s\) cut by Prometheus not uploaded/);

  const metrics = createRegisterMetrics();
  metrics.reconciled({ plan: p, result: applyResult() }, new Date(now));
  const text = await metrics.registry.metrics();
  t.match(text, 'thanos_injector_sidecar_problems{problem="uploads-stalled"} 1');
  t.match(text, 'thanos_injector_sidecar_unuploaded_blocks{namespace="monitoring",pod="prometheus-server-0"} 2');
  t.match(text, `thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{namespace="monitoring",pod="prometheus-server-0"} ${(now - 400_000 - 10_000 + 3600_000) / 1000}`);
  metrics.reconciled({ plan: plan(state([healthy]), settings), result: applyResult() }, new Date(now));
  t.notMatch(await metrics.registry.metrics(), 'prometheus-server-0', 'a pod no longer stalled leaves the per-pod series');
});
