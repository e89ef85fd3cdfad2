// Should this pod be injected? Each skip reason, the deny for a prometheus-container annotation
// naming no container, the order of the checks, and that skipped pods are never denied for their
// override annotations.
import t from 'tap';
import type { V1Container } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { decide } from '../../src/inject/decide.ts';
import { injectPod } from '../../src/inject/inject.ts';
import type { PodLike } from '../../src/inject/pod.ts';

const config = buildConfig({ injectorNamespace: 'thanos-system' });
const context = (namespace: string) => ({ config, namespace, kubernetesVersion: '1.33' });

interface PodOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: V1Container[];
  initContainers?: V1Container[];
}

function pod(options: PodOptions = {}): PodLike {
  return {
    metadata: {
      name: 'prometheus-0',
      ...(options.labels ? { labels: options.labels } : {}),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    },
    spec: {
      containers: options.containers ?? [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0' }],
      ...(options.initContainers ? { initContainers: options.initContainers } : {}),
    },
  };
}

const sidecar: V1Container = { name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5', args: ['sidecar'] };

void t.test('a plain Prometheus pod is injected', (t) => {
  t.same(decide(pod(), 'monitoring', config), { verdict: 'inject', prometheusIndex: 0 });
  t.equal(injectPod(pod(), context('monitoring')).outcome, 'injected');
  t.end();
});

void t.test('excluded namespaces', (t) => {
  for (const namespace of ['kube-system', 'kube-public', 'kube-node-lease']) {
    t.same(
      decide(pod(), namespace, config),
      { verdict: 'skip', reason: 'namespace-excluded', message: `namespace ${namespace} is excluded from injection` },
      namespace,
    );
    const result = injectPod(pod(), context(namespace));
    t.same(result, { outcome: 'skipped', reason: 'namespace-excluded', message: `namespace ${namespace} is excluded from injection`, warnings: [] });
  }
  const custom = buildConfig({ excludedNamespaces: ['legacy'] });
  t.equal(decide(pod(), 'legacy', custom).verdict, 'skip', 'a configured namespace');
  t.equal(decide(pod(), 'kube-system', custom).verdict, 'inject', 'the list replaces the defaults');
  t.equal(decide(pod(), 'kube-system-2', config).verdict, 'inject', 'exact names only');
  t.end();
});

void t.test("the injector's own namespace", (t) => {
  t.same(decide(pod(), 'thanos-system', config), {
    verdict: 'skip',
    reason: 'injector-namespace',
    message: "namespace thanos-system is the injector's own namespace",
  });
  t.match(injectPod(pod(), context('thanos-system')), { outcome: 'skipped', reason: 'injector-namespace' });
  const unset = buildConfig({});
  unset.injectorNamespace = '';
  t.equal(decide(pod(), '', unset).verdict, 'inject', 'an empty injector namespace matches nothing');
  t.end();
});

void t.test('mirror pods', (t) => {
  const mirror = pod({ annotations: { 'kubernetes.io/config.mirror': 'abc123' } });
  t.same(decide(mirror, 'monitoring', config), { verdict: 'skip', reason: 'mirror-pod', message: 'mirror pods (static pods) cannot be changed' });
  t.match(injectPod(mirror, context('monitoring')), { outcome: 'skipped', reason: 'mirror-pod' });
  const empty = pod({ annotations: { 'kubernetes.io/config.mirror': '' } });
  t.equal(decide(empty, 'monitoring', config).verdict, 'skip', 'an empty value still marks a mirror pod');
  t.equal(decide(pod({ labels: { 'kubernetes.io/config.mirror': 'x' } }), 'monitoring', config).verdict, 'inject', 'a label of that name is not the annotation');
  t.end();
});

void t.test('pods labelled thanos-injection=disabled', (t) => {
  const out = pod({ labels: { 'thanos-injection': 'disabled' } });
  t.same(decide(out, 'monitoring', config), { verdict: 'skip', reason: 'pod-opted-out', message: 'the pod is labelled thanos-injection=disabled' });
  t.match(injectPod(out, context('monitoring')), { outcome: 'skipped', reason: 'pod-opted-out' });
  t.equal(decide(pod({ labels: { 'thanos-injection': 'enabled' } }), 'monitoring', config).verdict, 'inject', 'enabled');
  t.equal(decide(pod({ labels: { 'thanos-injection': 'false' } }), 'monitoring', config).verdict, 'inject', 'only "disabled" opts out');
  t.equal(decide(pod({ annotations: { 'thanos-injection': 'disabled' } }), 'monitoring', config).verdict, 'inject', 'an annotation is not the label');
  t.end();
});

void t.test('already injected', (t) => {
  const inContainers = pod({ containers: [{ name: 'prometheus', image: 'prom/prometheus' }, sidecar] });
  t.same(decide(inContainers, 'monitoring', config), {
    verdict: 'skip',
    reason: 'already-injected',
    message: 'the pod already has a thanos-sidecar container',
  });
  t.match(injectPod(inContainers, context('monitoring')), { outcome: 'skipped', reason: 'already-injected' });

  const inInit = pod({ initContainers: [{ ...sidecar, restartPolicy: 'Always' }] });
  t.same(decide(inInit, 'monitoring', config), {
    verdict: 'skip',
    reason: 'already-injected',
    message: 'the pod already has a thanos-sidecar container',
  });
  t.match(injectPod(inInit, context('monitoring')), { outcome: 'skipped', reason: 'already-injected' });

  const otherInit = pod({ initContainers: [{ name: 'init-chown', image: 'busybox' }] });
  t.equal(decide(otherInit, 'monitoring', config).verdict, 'inject', 'other init containers do not count');
  t.end();
});

void t.test('a Thanos sidecar the pod brings itself is recognised by what it runs, whatever its name', (t) => {
  const prometheus: V1Container = { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v2.54.1', args: ['--storage.tsdb.path=/prometheus'] };
  const runs: [string, V1Container][] = [
    ["the seed's: a Thanos image, args start with sidecar", { name: 'thanos', image: 'registry.cn-beijing.aliyuncs.com/wilsonchai/thanos:0.36.1', args: ['sidecar', '--tsdb.path=/prometheus'] }],
    ['global flags before the subcommand', { name: 'shipper', image: 'thanosio/thanos:v0.36.1', args: ['--log.level=debug', 'sidecar'] }],
    ['command names the binary', { name: 'upload', image: 'busybox-with-thanos', command: ['/bin/thanos', 'sidecar'] }],
    ['a shell script', { name: 'x', image: 'alpine', command: ['sh', '-c', 'exec thanos sidecar --tsdb.path=/prometheus'] }],
    ['a digest', { name: 'thanos', image: 'quay.io/thanos/thanos@sha256:abc', args: ['sidecar'] }],
    ['a native sidecar of its own', { name: 'thanos', image: 'quay.io/thanos/thanos:v0.42.5', args: ['sidecar'], restartPolicy: 'Always' }],
  ];
  for (const [name, container] of runs) {
    const input = container.restartPolicy ? pod({ containers: [prometheus], initContainers: [container] }) : pod({ containers: [prometheus, container] });
    t.match(decide(input, 'monitoring', config), { verdict: 'skip', reason: 'existing-sidecar', container: container.name }, name);
    const result = injectPod(input, context('monitoring'));
    t.match(result, { outcome: 'skipped', reason: 'existing-sidecar' }, `${name}: skipped`);
    t.equal((result as { patch?: unknown }).patch, undefined, `${name}: nothing is changed`);
    t.same((result as { warnings: string[] }).warnings, [`container ${container.name} already runs a Thanos sidecar: pod admitted as written, no second sidecar added`]);
  }
  const notSidecars: [string, V1Container][] = [
    ['Thanos Query', { name: 'thanos', image: 'quay.io/thanos/thanos:v0.42.5', args: ['query', '--endpoint=x'] }],
    ['the Thanos image with its own command, not thanos', { name: 'thanos', image: 'quay.io/thanos/thanos:v0.42.5', command: ['sleep'], args: ['sidecar'] }],
    ['a sidecar word in a value', { name: 'proxy', image: 'nginx', args: ['--upstream=sidecar'] }],
    ['a path ending in thanos', { name: 'app', image: 'nginx', args: ['--root=/srv/thanos', 'sidecar'] }],
    ['a thanos-like image', { name: 'app', image: 'example/thanos-exporter:1', args: ['sidecar'] }],
  ];
  for (const [name, container] of notSidecars) {
    t.equal(decide(pod({ containers: [prometheus, container] }), 'monitoring', config).verdict, 'inject', `${name}: not a sidecar`);
  }
  t.end();
});

void t.test('share-user: a pod with its own sidecar gets the pod-level user so that sidecar can upload, nothing else', (t) => {
  const own = (annotations?: Record<string, string>, securityContext?: object) => {
    const input = pod({
      ...(annotations ? { annotations } : {}),
      containers: [{ name: 'prometheus', image: 'prom/prometheus:v2.54.1' }, { name: 'thanos', image: 'thanosio/thanos:v0.36.1', args: ['sidecar'] }],
    });
    if (securityContext) input.spec!.securityContext = securityContext;
    return input;
  };
  const annotated = injectPod(own({ 'thanos-injector/existing-sidecar': 'share-user' }), context('monitoring'));
  t.match(annotated, { outcome: 'skipped', reason: 'existing-sidecar', warnings: [] });
  const patch = (annotated as { patch: { path: string; value: unknown }[] }).patch;
  t.same(patch.map((op) => op.path), ['/spec/securityContext', '/metadata/annotations/thanos-injector~1status']);
  t.same(patch[0]?.value, { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true });
  t.match(JSON.parse(patch[1]?.value as string), { existingSidecar: 'thanos', securityContext: ['runAsUser', 'runAsGroup', 'fsGroup', 'runAsNonRoot'] });

  const kept = injectPod(own({ 'thanos-injector/existing-sidecar': 'share-user', 'thanos-injector/run-as-user': '555' }, { runAsGroup: 2000 }), context('monitoring'));
  t.same((kept as { patch: { path: string; value: unknown }[] }).patch.slice(0, 3).map((op) => [op.path, op.value]),
    [['/spec/securityContext/runAsUser', 555], ['/spec/securityContext/fsGroup', 65534], ['/spec/securityContext/runAsNonRoot', true]], "the pod's own fields stay, run-as-user picks the user");

  const everywhere = { ...context('monitoring'), config: buildConfig({ existingSidecar: { shareUser: true } }) };
  t.ok((injectPod(own(), everywhere) as { patch?: unknown }).patch, 'config shareUser: every such pod');
  t.equal((injectPod(own({ 'thanos-injector/existing-sidecar': 'leave' }), everywhere) as { patch?: unknown }).patch, undefined, 'the annotation leave wins over the config');
  const inNamespaces = buildConfig({ existingSidecar: { namespaces: ['monitoring'] } });
  t.ok((injectPod(own(), { ...context('monitoring'), config: inNamespaces }) as { patch?: unknown }).patch, 'config namespaces: in monitoring');
  t.equal((injectPod(own(), { ...context('team-a'), config: inNamespaces }) as { patch?: unknown }).patch, undefined, 'not elsewhere');

  const differ = own({ 'thanos-injector/existing-sidecar': 'share-user' });
  differ.spec!.containers[1]!.securityContext = { runAsUser: 1001 };
  t.match(injectPod(differ, context('monitoring')), { warnings: [/containers thanos and prometheus still run as users 1001 and 65534/] }, 'a user set on a container is never overwritten: a warning');

  t.match(injectPod(own({ 'thanos-injector/existing-sidecar': 'yes' }), context('monitoring')), {
    outcome: 'denied', reason: 'invalid-annotation',
    message: "annotation thanos-injector/existing-sidecar: \"yes\" is not valid; expected share-user (set the pod-level user so that the pod's own sidecar can upload) or leave",
  });
  t.match(injectPod(own({ 'thanos-injector/log-level': 'verbose' }), context('monitoring')), { outcome: 'skipped' }, 'annotations this path does not read are not looked at');
  t.end();
});

void t.test('no Prometheus', (t) => {
  const none = pod({
    containers: [
      { name: 'app', image: 'nginx:1.27' },
      { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2' },
      { name: 'exporter', image: 'prom/node-exporter' },
    ],
  });
  t.same(decide(none, 'monitoring', config), {
    verdict: 'skip',
    reason: 'no-prometheus',
    message: 'no container is named prometheus or runs a Prometheus image',
  });
  t.match(injectPod(none, context('monitoring')), { outcome: 'skipped', reason: 'no-prometheus' });
  t.same(decide({ metadata: { name: 'x' } }, 'monitoring', config), { verdict: 'skip', reason: 'no-prometheus', message: 'the pod has no spec' });
  t.same(decide(pod({ containers: [{ name: 'p', image: 'nginx' }], initContainers: [{ name: 'prometheus', image: 'prom/prometheus' }] }), 'monitoring', config).verdict, 'skip', 'a Prometheus init container does not count');
  t.end();
});

void t.test('Prometheus in agent mode is skipped: it writes no blocks, and the block-duration flags would stop it', (t) => {
  const agents: [string, V1Container][] = [
    ['3.x --agent', { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--config.file=/etc/prometheus/prometheus.yml', '--agent'] }],
    ['3.x --agent=true', { name: 'prometheus', image: 'prom/prometheus:v3.5.0', args: ['--agent=true'] }],
    ['2.x --enable-feature=agent', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature=agent', '--storage.agent.path=/prometheus'] }],
    ['2.x agent in a list', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature=exemplar-storage, agent'] }],
    ['2.x --enable-feature repeated', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature=exemplar-storage', '--enable-feature=agent'] }],
    ['2.x --enable-feature agent (separate value)', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature', 'agent'] }],
    ['in the command', { name: 'prometheus', image: 'prom/prometheus:v3.5.0', command: ['/bin/prometheus', '--agent'] }],
    ['in a shell script', { name: 'prometheus', image: 'prom/prometheus:v3.5.0', command: ['sh', '-c', 'exec /bin/prometheus --agent --config.file=/etc/p.yml'] }],
    ['found by image', { name: 'server', image: 'prom/prometheus:v3.5.0', args: ['--agent'] }],
  ];
  for (const [name, container] of agents) {
    t.same(
      decide(pod({ containers: [container] }), 'monitoring', config),
      {
        verdict: 'skip',
        reason: 'agent-mode',
        message: `container ${container.name} runs Prometheus in agent mode (--agent or --enable-feature=agent): it keeps only a write-ahead log and cuts no blocks for a sidecar to upload`,
      },
      name,
    );
  }
  t.match(injectPod(pod({ containers: [agents[0]![1]] }), context('monitoring')), { outcome: 'skipped', reason: 'agent-mode' }, 'never patched');
  const servers: [string, V1Container][] = [
    ['--agent=false', { name: 'prometheus', image: 'prom/prometheus:v3.5.0', args: ['--agent=false'] }],
    ['other features', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature=exemplar-storage,memory-snapshot-on-shutdown'] }],
    ['a feature that only starts with agent', { name: 'prometheus', image: 'prom/prometheus:v2.54.1', args: ['--enable-feature=agentless'] }],
    ['--agent on another container', { name: 'prometheus', image: 'prom/prometheus:v3.5.0', args: ['--web.enable-lifecycle'] }],
  ];
  for (const [name, container] of servers) {
    const containers = name.includes('another') ? [container, { name: 'grafana-agent', image: 'grafana/agent', args: ['--agent'] }] : [container];
    t.same(decide(pod({ containers }), 'monitoring', config), { verdict: 'inject', prometheusIndex: 0 }, `a server: ${name}`);
  }
  t.end();
});

void t.test('Prometheus by name, by image, by annotation', (t) => {
  const byImage = pod({ containers: [{ name: 'app', image: 'nginx' }, { name: 'server', image: 'prom/prometheus:v3.5.0' }] });
  t.same(decide(byImage, 'monitoring', config), { verdict: 'inject', prometheusIndex: 1 });
  const byName = pod({ containers: [{ name: 'server', image: 'prom/prometheus' }, { name: 'prometheus', image: 'example.com/custom:1' }] });
  t.same(decide(byName, 'monitoring', config), { verdict: 'inject', prometheusIndex: 1 }, 'the name wins over the image');
  const byAnnotation = pod({
    annotations: { 'thanos-injector/prometheus-container': 'custom' },
    containers: [{ name: 'prometheus', image: 'prom/prometheus' }, { name: 'custom', image: 'example.com/prom:1' }],
  });
  t.same(decide(byAnnotation, 'monitoring', config), { verdict: 'inject', prometheusIndex: 1 }, 'the annotation wins over the name');
  const padded = pod({ annotations: { 'thanos-injector/prometheus-container': ' custom ' }, containers: [{ name: 'custom', image: 'x' }] });
  t.same(decide(padded, 'monitoring', config), { verdict: 'inject', prometheusIndex: 0 }, 'the annotation value is trimmed');
  t.end();
});

void t.test('a prometheus-container annotation naming a missing container is denied', (t) => {
  const missing = pod({
    annotations: { 'thanos-injector/prometheus-container': 'missing' },
    containers: [{ name: 'prometheus', image: 'prom/prometheus' }, { name: 'reloader', image: 'reloader' }],
    initContainers: [{ name: 'missing', image: 'busybox' }],
  });
  const message = 'annotation thanos-injector/prometheus-container: "missing" is not a container of this pod; expected one of prometheus, reloader';
  t.same(decide(missing, 'monitoring', config), { verdict: 'deny', reason: 'invalid-annotation', message }, 'init containers are not candidates');
  t.same(injectPod(missing, context('monitoring')), { outcome: 'denied', reason: 'invalid-annotation', message });

  const noPrometheus = pod({ annotations: { 'thanos-injector/prometheus-container': 'server' }, containers: [{ name: 'app', image: 'nginx' }] });
  t.match(decide(noPrometheus, 'monitoring', config), { verdict: 'deny', reason: 'invalid-annotation' }, 'denied even when no container is a Prometheus');
  t.end();
});

void t.test('order of the checks', (t) => {
  const everything = pod({
    labels: { 'thanos-injection': 'disabled' },
    annotations: { 'kubernetes.io/config.mirror': 'x', 'thanos-injector/prometheus-container': 'missing' },
    containers: [{ name: 'app', image: 'nginx' }, sidecar],
  });
  t.match(decide(everything, 'kube-system', config), { reason: 'namespace-excluded' });
  t.match(decide(everything, 'thanos-system', config), { reason: 'injector-namespace' });
  t.match(decide(everything, 'monitoring', config), { reason: 'mirror-pod' });
  const noMirror = { ...everything, metadata: { ...everything.metadata, annotations: { 'thanos-injector/prometheus-container': 'missing' } } };
  t.match(decide(noMirror, 'monitoring', config), { reason: 'pod-opted-out' });
  const noLabel = { ...noMirror, metadata: { ...noMirror.metadata, labels: {} } };
  t.match(decide(noLabel, 'monitoring', config), { reason: 'already-injected' }, 'already injected before the annotation is looked at');
  t.end();
});

void t.test('a skipped pod with invalid override annotations is skipped, not denied', (t) => {
  const bad = {
    'thanos-injector/log-level': 'verbose',
    'thanos-injector/image': 'not an image!',
    'thanos-injector/memory-request': '64Gi',
    'thanos-injector/run-as-user': '0',
  };
  const cases: [string, PodLike, string, string][] = [
    ['excluded namespace', pod({ annotations: bad }), 'kube-system', 'namespace-excluded'],
    ['injector namespace', pod({ annotations: bad }), 'thanos-system', 'injector-namespace'],
    ['mirror pod', pod({ annotations: { ...bad, 'kubernetes.io/config.mirror': 'x' } }), 'monitoring', 'mirror-pod'],
    ['opted out', pod({ annotations: bad, labels: { 'thanos-injection': 'disabled' } }), 'monitoring', 'pod-opted-out'],
    ['already injected', pod({ annotations: bad, initContainers: [sidecar] }), 'monitoring', 'already-injected'],
    ['no Prometheus', pod({ annotations: bad, containers: [{ name: 'app', image: 'nginx' }] }), 'monitoring', 'no-prometheus'],
    [
      'opted out with a missing prometheus-container',
      pod({ annotations: { ...bad, 'thanos-injector/prometheus-container': 'missing' }, labels: { 'thanos-injection': 'disabled' } }),
      'monitoring',
      'pod-opted-out',
    ],
    [
      'already injected with a missing prometheus-container',
      pod({ annotations: { 'thanos-injector/prometheus-container': 'missing' }, containers: [{ name: 'prometheus', image: 'prom/prometheus' }, sidecar] }),
      'monitoring',
      'already-injected',
    ],
  ];
  for (const [name, input, namespace, reason] of cases) {
    const result = injectPod(input, context(namespace));
    t.equal(result.outcome, 'skipped', `${name}: skipped`);
    t.equal(result.reason, reason, `${name}: ${reason}`);
  }
  t.match(injectPod(pod({ annotations: bad }), context('monitoring')), { outcome: 'denied', reason: 'invalid-annotation' }, 'the same annotations deny a pod that would be injected');
  t.end();
});
