// The registration planner: which Services to create, update or delete, what the endpoints
// ConfigMap says in both modes, conflicts with Services that are not ours, which pods are
// registered, and which labelled Prometheus pods run without the sidecar.
import t from 'tap';
import { parse } from 'yaml';
import type { V1ConfigMap, V1Container, V1Namespace, V1OwnerReference, V1Pod, V1Service } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { ENDPOINTS_KEY, TARGETS_KEY } from '../../src/inject/names.ts';
import { desiredService, dnssrvAddress, plan, type ClusterState, type RegisterSettings } from '../../src/register/plan.ts';
import { registerSettings } from '../support/register.ts';

const settings = (overrides: Partial<RegisterSettings> = {}): RegisterSettings =>
  registerSettings({ injection: buildConfig({ injectorNamespace: 'thanos-system' }), ...overrides });

const prometheus: V1Container = { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0' };
const sidecar: V1Container = {
  name: 'thanos-sidecar',
  image: 'quay.io/thanos/thanos:v0.42.5',
  restartPolicy: 'Always',
  ports: [{ name: 'grpc', containerPort: 10901 }, { name: 'http', containerPort: 10902 }],
};

interface PodOptions {
  labels?: Record<string, string>;
  ip?: string;
  ready?: boolean;
  phase?: string;
  deleting?: boolean;
  owner?: V1OwnerReference;
  containers?: V1Container[];
  initContainers?: V1Container[];
}

let uids = 0;
function pod(namespace: string, name: string, options: PodOptions = {}): V1Pod {
  return {
    metadata: {
      namespace,
      name,
      uid: `uid-${namespace}-${name}-${++uids}`,
      labels: options.labels ?? {},
      ...(options.deleting ? { deletionTimestamp: new Date('2025-01-01T00:00:00Z') } : {}),
      ...(options.owner ? { ownerReferences: [options.owner] } : {}),
    },
    spec: { containers: options.containers ?? [prometheus], ...(options.initContainers ? { initContainers: options.initContainers } : {}) },
    status: {
      phase: options.phase ?? 'Running',
      ...(options.ip ? { podIP: options.ip } : {}),
      conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }],
    },
  };
}

/** An injected pod, as the webhook leaves it (native sidecar, injected label). */
const injected = (namespace: string, name: string, options: PodOptions = {}) =>
  pod(namespace, name, { ...options, labels: { 'thanos-injector/injected': 'true', ...options.labels }, initContainers: [sidecar] });

const ours = (namespace: string, change: (s: V1Service) => void = () => {}): V1Service => {
  const service = structuredClone(desiredService(namespace));
  service.metadata = { ...service.metadata, uid: `svc-${namespace}`, resourceVersion: '7' };
  change(service);
  return service;
};
const foreign = (namespace: string): V1Service => ({
  metadata: { name: 'thanos-sidecar', namespace, uid: `foreign-${namespace}`, labels: { app: 'mine' } },
  spec: { clusterIP: '10.96.0.10', selector: { app: 'mine' }, ports: [{ name: 'web', port: 80 }] },
});
const namespace = (name: string, label: string): V1Namespace => ({ metadata: { name, labels: { 'thanos-injection': label } } });

function state(partial: Partial<ClusterState>): ClusterState {
  return { injectedPods: [], services: [], labelledNamespaces: [], selectablePods: [], configMap: undefined, prometheusConfigMaps: [], unreadable: [], uploads: new Map(), readAt: 0, ...partial };
}

void t.test('a namespace with injected pods and no Service gets our headless Service', (t) => {
  const result = plan(state({ injectedPods: [injected('team-a', 'prometheus-0'), injected('team-a', 'prometheus-1')] }), settings());
  t.equal(result.services.length, 1);
  const action = result.services[0];
  t.equal(action?.action, 'create');
  if (action?.action !== 'create') return t.end();
  t.same(action.service, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'thanos-sidecar', namespace: 'team-a', labels: { 'app.kubernetes.io/managed-by': 'thanos-sidecar-injector' } },
    spec: {
      clusterIP: 'None',
      selector: { 'thanos-injector/injected': 'true' },
      ports: [
        { name: 'grpc', port: 10901, targetPort: 'grpc', protocol: 'TCP' },
        { name: 'http', port: 10902, targetPort: 'http', protocol: 'TCP' },
      ],
    },
  });
  t.same(result.namespaces, [{ namespace: 'team-a', injectedPods: 2, service: 'create', endpoints: 1 }]);
  t.end();
});

void t.test('our Service as the apiserver returns it (defaults filled in) is unchanged', (t) => {
  const stored = ours('team-a', (s) => {
    s.spec = { ...s.spec, clusterIPs: ['None'], type: 'ClusterIP', sessionAffinity: 'None', ipFamilies: ['IPv4'] };
  });
  const result = plan(state({ injectedPods: [injected('team-a', 'p')], services: [stored] }), settings());
  t.same(result.services, [{ action: 'unchanged', namespace: 'team-a' }]);
  t.end();
});

void t.test('our Service with another selector or ports is updated in place, keeping resourceVersion', (t) => {
  const drifted = ours('team-a', (s) => {
    s.spec = { ...s.spec, selector: { app: 'x' }, ports: [{ name: 'grpc', port: 10901, targetPort: 10901, protocol: 'TCP' }] };
  });
  const result = plan(state({ injectedPods: [injected('team-a', 'p')], services: [drifted] }), settings());
  const action = result.services[0];
  t.equal(action?.action, 'update');
  if (action?.action !== 'update') return t.end();
  t.equal(action.service.metadata?.resourceVersion, '7', 'optimistic concurrency');
  t.same(action.service.spec?.selector, { 'thanos-injector/injected': 'true' });
  t.same(action.service.spec?.ports?.map((p) => p.name), ['grpc', 'http']);
  t.end();
});

void t.test('our Service with a cluster IP is recreated (clusterIP is immutable)', (t) => {
  const result = plan(state({ injectedPods: [injected('team-a', 'p')], services: [ours('team-a', (s) => void (s.spec = { ...s.spec, clusterIP: '10.96.3.4' }))] }), settings());
  t.match(result.services, [{ action: 'recreate', namespace: 'team-a', uid: 'svc-team-a' }]);
  t.end();
});

void t.test('a Service named thanos-sidecar that is not ours is a conflict and never touched', (t) => {
  const result = plan(state({ injectedPods: [injected('team-b', 'p', { ip: '10.0.0.9' })], services: [foreign('team-b')] }), settings());
  t.equal(result.services.length, 1);
  t.match(result.services[0], { action: 'conflict', namespace: 'team-b', message: /Service team-b\/thanos-sidecar exists but is not labelled app.kubernetes.io\/managed-by=thanos-sidecar-injector/ });
  t.same(result.configMap.addresses, [], 'dnssrv: no address through a Service that is not ours');
  t.same(result.registrations, [], 'and no pod counts as registered');
  t.same(result.namespaces, [{ namespace: 'team-b', injectedPods: 1, service: 'conflict', endpoints: 0 }]);
  const podIp = plan(state({ injectedPods: [injected('team-b', 'p', { ip: '10.0.0.9' })], services: [foreign('team-b')] }), settings({ endpoints: 'pod-ip' }));
  t.same(podIp.configMap.addresses, ['10.0.0.9:10901'], 'pod-ip addresses do not go through the Service');
  t.equal(podIp.services[0]?.action, 'conflict');
  t.end();
});

void t.test('our Service in a namespace without injected pods is deleted; a foreign one is not even listed', (t) => {
  const result = plan(state({ services: [ours('gone'), foreign('other')] }), settings());
  t.same(result.services, [{ action: 'delete', namespace: 'gone', uid: 'svc-gone' }]);
  t.same(result.namespaces, [{ namespace: 'gone', injectedPods: 0, service: 'delete', endpoints: 0 }]);
  t.end();
});

void t.test('finished pods do not keep a Service; terminating ones do, but are not registered', (t) => {
  const finished = plan(state({ injectedPods: [injected('a', 'done', { phase: 'Failed' })], services: [ours('a')] }), settings());
  t.same(finished.services, [{ action: 'delete', namespace: 'a', uid: 'svc-a' }]);
  const terminating = plan(state({ injectedPods: [injected('a', 'old', { deleting: true, ip: '10.0.0.1' })], services: [ours('a')] }), settings({ endpoints: 'pod-ip' }));
  t.same(terminating.services, [{ action: 'unchanged', namespace: 'a' }]);
  t.same(terminating.registrations, []);
  t.same(terminating.configMap.addresses, []);
  t.end();
});

void t.test('dnssrv mode: one address per namespace, sorted, in both file formats', (t) => {
  const result = plan(
    state({ injectedPods: [injected('zeta', 'p'), injected('alpha', 'p1'), injected('alpha', 'p2')] }),
    settings({ clusterDomain: 'k8s.example' }),
  );
  const addresses = ['dnssrv+_grpc._tcp.thanos-sidecar.alpha.svc.k8s.example', 'dnssrv+_grpc._tcp.thanos-sidecar.zeta.svc.k8s.example'];
  t.same(result.configMap.addresses, addresses);
  t.equal(dnssrvAddress('alpha', 'k8s.example'), addresses[0]);
  const data = result.configMap.configMap.data ?? {};
  t.same(parse(data[ENDPOINTS_KEY] ?? ''), { endpoints: addresses.map((address) => ({ address, strict: false, group: false })) });
  t.same(parse(data[TARGETS_KEY] ?? ''), [{ targets: addresses }]);
  t.match(data[ENDPOINTS_KEY], /^# Written by thanos-injector register/);
  t.equal(result.registrations.length, 3, 'every injected pod is registered through its namespace');
  t.same(result.registrations.map((r) => r.address), [addresses[0], addresses[0], addresses[1]]);
  t.end();
});

void t.test('pod-ip mode: one address per ready pod with an IP, with the sidecar grpc port', (t) => {
  const custom: V1Container = { ...sidecar, ports: [{ name: 'grpc', containerPort: 20901 }] };
  const pods = [
    injected('a', 'ready', { ip: '10.0.0.12' }),
    injected('a', 'not-ready', { ip: '10.0.0.13', ready: false }),
    injected('a', 'no-ip'),
    pod('b', 'custom-port', { ip: '10.0.1.2', labels: { 'thanos-injector/injected': 'true' }, containers: [prometheus, custom] }),
    injected('b', 'ipv6', { ip: 'fd00::7' }),
  ];
  const result = plan(state({ injectedPods: pods }), settings({ endpoints: 'pod-ip' }));
  t.same(result.configMap.addresses, ['10.0.0.12:10901', '10.0.1.2:20901', '[fd00::7]:10901']);
  t.same(result.registrations.map((r) => r.pod.name), ['ready', 'custom-port', 'ipv6']);
  t.same(result.namespaces, [
    { namespace: 'a', injectedPods: 3, service: 'create', endpoints: 1 },
    { namespace: 'b', injectedPods: 2, service: 'create', endpoints: 2 },
  ]);
  t.same(parse(result.configMap.configMap.data?.[TARGETS_KEY] ?? ''), [{ targets: ['10.0.0.12:10901', '10.0.1.2:20901', '[fd00::7]:10901'] }]);
  t.end();
});

void t.test("pod-ip mode: a sidecar on 127.0.0.1 (listenLocal.grpc) is reached through the port another container names grpc", (t) => {
  const local: V1Container = { ...sidecar, ports: [] };
  const proxy: V1Container = { name: 'kube-rbac-proxy', ports: [{ name: 'metrics', containerPort: 8443 }, { name: 'grpc', containerPort: 9443 }] };
  const pods = [pod('a', 'proxied', { ip: '10.0.0.21', labels: { 'thanos-injector/injected': 'true' }, containers: [prometheus, proxy, local] })];
  t.same(plan(state({ injectedPods: pods }), settings({ endpoints: 'pod-ip' })).configMap.addresses, ['10.0.0.21:9443']);
  t.end();
});

void t.test('no injected pods: an empty but valid ConfigMap', (t) => {
  const result = plan(state({}), settings());
  t.same(result.namespaces, []);
  t.equal(result.configMap.action, 'create');
  const data = result.configMap.configMap.data ?? {};
  t.same(parse(data[ENDPOINTS_KEY] ?? ''), { endpoints: [] });
  t.same(parse(data[TARGETS_KEY] ?? ''), [{ targets: [] }]);
  t.same(result.configMap.configMap.metadata, {
    name: 'thanos-query-endpoints',
    namespace: 'monitoring',
    labels: { 'app.kubernetes.io/managed-by': 'thanos-sidecar-injector' },
  });
  t.end();
});

void t.test('the ConfigMap is written only when its content changes, keeping other keys and labels', (t) => {
  const first = plan(state({ injectedPods: [injected('a', 'p')] }), settings());
  const stored: V1ConfigMap = {
    metadata: { name: 'thanos-query-endpoints', namespace: 'monitoring', resourceVersion: '42', labels: { 'app.kubernetes.io/managed-by': 'Helm' } },
    data: { ...first.configMap.configMap.data, 'static.yaml': 'keep me' },
  };
  const again = plan(state({ injectedPods: [injected('a', 'p2')], configMap: stored }), settings());
  t.equal(again.configMap.action, 'unchanged', 'same namespaces, same content: no write');
  const changed = plan(state({ injectedPods: [injected('a', 'p'), injected('b', 'p')], configMap: stored }), settings());
  t.equal(changed.configMap.action, 'update');
  t.equal(changed.configMap.configMap.metadata?.resourceVersion, '42');
  t.equal(changed.configMap.configMap.data?.['static.yaml'], 'keep me');
  t.equal(changed.configMap.configMap.metadata?.labels?.['app.kubernetes.io/managed-by'], 'Helm', 'another manager keeps its label');
  t.equal(changed.configMap.addresses.length, 2);
  t.end();
});

const replicaSet: V1OwnerReference = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-7d4b9', uid: 'rs-1', controller: true };

void t.test('missing sidecar: labelled Prometheus pods the webhook would inject', (t) => {
  const pods = [
    pod('labelled', 'uninjected', { owner: replicaSet }),
    pod('labelled', 'opted-out', { labels: { 'thanos-injection': 'disabled' } }),
    injected('labelled', 'injected'),
    pod('labelled', 'web', { containers: [{ name: 'web', image: 'nginx:1.27' }] }),
    pod('labelled', 'finished', { phase: 'Succeeded' }),
    pod('plain', 'pod-opt-in', { labels: { 'thanos-injection': 'enabled' } }),
    pod('disabled-ns', 'pod-opt-in', { labels: { 'thanos-injection': 'enabled' } }),
    pod('kube-system', 'system', { labels: { 'thanos-injection': 'enabled' } }),
    pod('thanos-system', 'own', { labels: { 'thanos-injection': 'enabled' } }),
  ];
  const result = plan(
    state({
      labelledNamespaces: [namespace('labelled', 'enabled'), namespace('disabled-ns', 'disabled')],
      // The reader lists the labelled namespace's pods and the labelled pods: duplicates happen.
      selectablePods: [...pods, pods[0] as V1Pod],
    }),
    settings(),
  );
  t.same(
    result.missing.map((m) => `${m.pod.namespace}/${m.pod.name}`),
    ['labelled/uninjected', 'plain/pod-opt-in'],
    'only pods that would be injected: not opted out, not injected, not non-Prometheus, not finished, not excluded, not in a namespace labelled disabled',
  );
  t.match(result.missing[0], { owner: 'ReplicaSet/prometheus-7d4b9', restart: false, note: /--restart-uninjected/ });
  t.match(result.missing[1], { owner: undefined, restart: false, note: /bare pod/ });
  t.end();
});

void t.test('--restart-uninjected: controller-owned pods, one per controller per pass, never bare pods', (t) => {
  const statefulSet: V1OwnerReference = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'prom', uid: 'sts-1', controller: true };
  const notController: V1OwnerReference = { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'cm-1' };
  const pods = [
    pod('ns', 'prom-0', { owner: statefulSet }),
    pod('ns', 'prom-1', { owner: statefulSet }),
    pod('ns', 'rs-pod', { owner: replicaSet }),
    pod('ns', 'bare'),
    pod('ns', 'weak-owner', { owner: notController }),
  ];
  const result = plan(state({ labelledNamespaces: [namespace('ns', 'enabled')], selectablePods: pods }), settings({ restartUninjected: true }));
  t.same(
    result.missing.map((m) => [m.pod.name, m.restart]),
    [['bare', false], ['prom-0', true], ['prom-1', false], ['rs-pod', true], ['weak-owner', false]],
  );
  t.match(result.missing.find((m) => m.pod.name === 'prom-1'), { note: /waiting: another pod of StatefulSet\/prom/ });
  t.match(result.missing.find((m) => m.pod.name === 'rs-pod'), { note: 'deleted so that ReplicaSet/prometheus-7d4b9 recreates it injected' });
  t.end();
});

void t.test('the planner is deterministic whatever order the API lists things in', (t) => {
  const pods = [injected('b', 'p2', { ip: '10.0.0.2' }), injected('a', 'p1', { ip: '10.0.0.1' }), injected('b', 'p1', { ip: '10.0.0.3' })];
  const forward = plan(state({ injectedPods: pods, services: [ours('c'), foreign('b')] }), settings({ endpoints: 'pod-ip' }));
  const backward = plan(state({ injectedPods: [...pods].reverse(), services: [foreign('b'), ours('c')] }), settings({ endpoints: 'pod-ip' }));
  t.same(forward, backward);
  t.same(forward.namespaces.map((n) => n.namespace), ['a', 'b', 'c']);
  t.end();
});
