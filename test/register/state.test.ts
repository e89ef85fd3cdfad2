// What registration reads for the external-labels check: the ConfigMap behind each injected pod's
// --config.file, with a get by name (the chart grants get on configmaps, nothing more). A
// ConfigMap that is gone says nothing; one that cannot be read is a failed API call (exit 1, the
// failure metric), but registration still happens.
import t from 'tap';
import { ApiException, type AdmissionregistrationV1Api, type CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Kube } from '../../src/kube/client.ts';
import { reconcile } from '../../src/register/reconcile.ts';
import { registerSettings } from '../support/register.ts';

const status = (code: number, message: string) => new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', code, message }), {});

/** An injected pod of the prometheus-community chart's StatefulSet, ready, its config from ConfigMap `configMap`. */
function injectedPod(namespace: string, name: string, configMap: string): V1Pod {
  return {
    metadata: { namespace, name, uid: `uid-${namespace}-${name}`, labels: { 'thanos-injector/injected': 'true' } },
    spec: {
      containers: [{
        name: 'prometheus-server',
        image: 'quay.io/prometheus/prometheus:v3.14.0',
        args: ['--config.file=/etc/config/prometheus.yml'],
        volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }],
      }],
      initContainers: [{ name: 'thanos-sidecar', restartPolicy: 'Always', ports: [{ name: 'grpc', containerPort: 10901 }] }],
      volumes: [{ name: 'config-volume', configMap: { name: configMap } }],
    },
    status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const config = (namespace: string, name: string, labels: string) => ({ metadata: { namespace, name }, data: { 'prometheus.yml': `global:\n  external_labels: ${labels}\n` } });

/** Lists answer from `pods`; ConfigMap reads from `configMaps` (or `fail`); writes succeed. Records each ConfigMap read and write. */
function fakeKube(pods: V1Pod[], configMaps: Record<string, unknown>, fail: Record<string, ApiException<string>> = {}) {
  const calls: string[] = [];
  const list = (items: unknown[]) => Promise.resolve({ items, metadata: {} });
  type Req = { namespace: string; name?: string; labelSelector?: string; body?: { metadata?: { name?: string } } };
  const core = {
    listPodForAllNamespaces: (r: Req) => list(r.labelSelector === 'thanos-injector/injected=true' ? pods : []),
    listServiceForAllNamespaces: () => list([]),
    listNamespace: () => list([]),
    readNamespacedConfigMap: (r: Req) => {
      const key = `${r.namespace}/${r.name}`;
      calls.push(`get configmap ${key}`);
      if (fail[key]) return Promise.reject(fail[key]);
      return configMaps[key] ? Promise.resolve(configMaps[key]) : Promise.reject(status(404, `configmaps "${r.name}" not found`));
    },
    createNamespacedService: (r: Req) => (calls.push(`create service ${r.namespace}`), Promise.resolve({})),
    createNamespacedConfigMap: (r: Req) => (calls.push(`create configmap ${r.namespace}/${r.body?.metadata?.name}`), Promise.resolve({})),
    createNamespacedEvent: (r: Req) => (calls.push(`create event ${r.namespace}/${r.body?.metadata?.name}`), Promise.resolve({})),
  };
  const kube: Kube = { kubeConfig: {} as KubeConfig, core: core as unknown as CoreV1Api, admission: {} as AdmissionregistrationV1Api, server: 'https://api.test' };
  return { kube, calls };
}

const options = () => ({ now: () => new Date('2026-01-01T00:00:00Z'), host: 'test', recorded: new Set<string>() });

void t.test('the ConfigMaps behind --config.file are read once each, and shared labels found', async (t) => {
  const pods = [injectedPod('monitoring', 'prometheus-server-0', 'prometheus-server'), injectedPod('monitoring', 'prometheus-server-1', 'prometheus-server')];
  const { kube, calls } = fakeKube(pods, { 'monitoring/prometheus-server': config('monitoring', 'prometheus-server', '{cluster: eu1}') });
  const { plan, result } = await reconcile(kube, undefined, registerSettings(), options());
  t.same(calls.filter((c) => c.startsWith('get configmap')).sort(), ['get configmap monitoring/prometheus-server', 'get configmap monitoring/thanos-query-endpoints'],
    'one get for both pods (and the endpoints ConfigMap, as before)');
  t.same(plan.problems.map((p) => [p.problem, p.pod.name]), [['shared-external-labels', 'prometheus-server-0'], ['shared-external-labels', 'prometheus-server-1']]);
  t.same(result.failures, []);
  t.equal(calls.filter((c) => c.startsWith('create event')).length, 4, 'two registered events and two warnings');
});

void t.test('a ConfigMap that is gone says nothing; one that cannot be read is a failure line, and registration goes on', async (t) => {
  const pods = [injectedPod('monitoring', 'a', 'gone'), injectedPod('team', 'b', 'secret-ish')];
  const forbidden = status(403, 'configmaps "secret-ish" is forbidden: User "system:serviceaccount:tsi:register" cannot get resource "configmaps" in API group "" in the namespace "team"');
  const { kube, calls } = fakeKube(pods, {}, { 'team/secret-ish': forbidden });
  const { plan, result } = await reconcile(kube, undefined, registerSettings(), options());
  t.same(plan.problems, []);
  t.same(result.failures, [
    'cannot read ConfigMap team/secret-ish: HTTP 403 Forbidden: configmaps "secret-ish" is forbidden: User "system:serviceaccount:tsi:register" cannot get resource "configmaps" in API group "" in the namespace "team"',
  ]);
  t.ok(calls.includes('create configmap monitoring/thanos-query-endpoints'), 'the endpoints ConfigMap is still written');
  t.equal(plan.registrations.length, 2, 'both pods still registered');
});
