// Applying a plan, against a recording fake of the API: the order of writes, that one failed write
// does not stop the others, that an existing event means "already registered", and that the
// missing-sidecar warning is refreshed rather than duplicated. (The real API: test/e2e/register.test.ts.)
import t from 'tap';
import { ApiException, type AdmissionregistrationV1Api, type CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { applyPlan, type ApplyOptions } from '../../src/register/apply.ts';
import { eventName } from '../../src/register/events.ts';
import type { Kube } from '../../src/kube/client.ts';
import { plan, type ClusterState } from '../../src/register/plan.ts';
import { registerSettings } from '../support/register.ts';

const settings = registerSettings({ restartUninjected: true });

const status = (code: number, message: string) => new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', code, message }), {});

/** Records every call as `verb namespace/name`; `fail` maps such a call to the error it throws. */
function fakeKube(fail: Record<string, ApiException<string>> = {}) {
  const calls: string[] = [];
  const answer = (call: string) => {
    calls.push(call);
    const error = fail[call];
    return error ? Promise.reject(error) : Promise.resolve({});
  };
  type Req = { namespace: string; name?: string; body?: { metadata?: { name?: string }; reason?: string } };
  const core = {
    createNamespacedService: (r: Req) => answer(`create service ${r.namespace}`),
    replaceNamespacedService: (r: Req) => answer(`update service ${r.namespace}`),
    deleteNamespacedService: (r: Req) => answer(`delete service ${r.namespace}`),
    createNamespacedConfigMap: (r: Req) => answer(`create configmap ${r.namespace}/${r.body?.metadata?.name}`),
    replaceNamespacedConfigMap: (r: Req) => answer(`update configmap ${r.namespace}/${r.name}`),
    createNamespacedEvent: (r: Req) => answer(`create event ${r.namespace}/${r.body?.metadata?.name}`),
    patchNamespacedEvent: (r: Req) => answer(`patch event ${r.namespace}/${r.name}`),
    deleteNamespacedPod: (r: Req) => answer(`delete pod ${r.namespace}/${r.name}`),
  };
  const kube: Kube = { kubeConfig: {} as KubeConfig, core: core as unknown as CoreV1Api, admission: {} as AdmissionregistrationV1Api, server: 'https://api.test' };
  return { kube, calls };
}

const options = (): ApplyOptions => ({ now: () => new Date('2025-06-01T00:00:00Z'), host: 'test', recorded: new Set() });
const injected = (namespace: string, name: string) => ({
  metadata: { namespace, name, uid: `uid-${name}`, labels: { 'thanos-injector/injected': 'true' } },
  spec: { containers: [{ name: 'prometheus' }, { name: 'thanos-sidecar' }] },
});
const state = (partial: Partial<ClusterState>): ClusterState => ({ injectedPods: [], services: [], labelledNamespaces: [], selectablePods: [], configMap: undefined, prometheusConfigMaps: [], unreadable: [], uploads: new Map(), readAt: 0, ...partial });

void t.test('Services, then the ConfigMap, then events; a failed Service does not stop the rest', async (t) => {
  const p = plan(state({ injectedPods: [injected('a', 'pa'), injected('b', 'pb')] }), settings);
  const { kube, calls } = fakeKube({ 'create service a': status(403, 'services is forbidden: exceeded quota') });
  const result = await applyPlan(kube, p, options());
  t.same(result.failures, ['cannot create Service a/thanos-sidecar: HTTP 403 Forbidden: services is forbidden: exceeded quota']);
  t.same([...result.failedServices], ['a']);
  t.same(calls.slice(0, 2).sort(), ['create service a', 'create service b'], 'both Services attempted');
  t.equal(calls.indexOf('create configmap monitoring/thanos-query-endpoints'), 2, 'the ConfigMap after the Services');
  const podRef = (name: string, namespace: string) => ({ namespace, name, uid: `uid-${name}` });
  t.same(calls.slice(3), [`create event b/${eventName(podRef('pb', 'b'), 'ThanosSidecarRegistered')}`], 'no registration through a Service that failed');
  t.same(result.newlyRegistered, [podRef('pb', 'b')]);
});

void t.test('a failed ConfigMap write registers nobody', async (t) => {
  const p = plan(state({ injectedPods: [injected('a', 'pa')] }), settings);
  const { kube, calls } = fakeKube({ 'create configmap monitoring/thanos-query-endpoints': status(404, 'namespaces "monitoring" not found') });
  const result = await applyPlan(kube, p, options());
  t.ok(result.configMapFailed);
  t.same(result.failures, ['cannot create ConfigMap monitoring/thanos-query-endpoints: HTTP 404 Not Found: namespaces "monitoring" not found']);
  t.notOk(calls.some((c) => c.startsWith('create event')));
});

void t.test('an existing registered event means already registered; the watch then remembers it', async (t) => {
  const p = plan(state({ injectedPods: [injected('a', 'pa')] }), settings);
  const name = eventName({ namespace: 'a', name: 'pa', uid: 'uid-pa' }, 'ThanosSidecarRegistered');
  const { kube, calls } = fakeKube({ [`create event a/${name}`]: status(409, 'already exists') });
  const memory = options();
  const result = await applyPlan(kube, p, memory);
  t.same(result.failures, []);
  t.same(result.newlyRegistered, []);
  t.ok(memory.recorded.has(name));
  calls.length = 0;
  await applyPlan(kube, p, memory);
  t.notOk(calls.some((c) => c.includes(name)), 'no request for a pod known to be registered');
  await applyPlan(kube, plan(state({}), settings), memory);
  t.notOk(memory.recorded.has(name), 'forgotten once the pod is gone');
});

void t.test('missing sidecar: the warning is created, or refreshed when it exists; then the restart', async (t) => {
  const owned = {
    metadata: { namespace: 'apps', name: 'prom-x', uid: 'u1', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prom', uid: 'rs', controller: true }] },
    spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] },
  };
  const p = plan(state({ labelledNamespaces: [{ metadata: { name: 'apps', labels: { 'thanos-injection': 'enabled' } } }], selectablePods: [owned] }), settings);
  const name = eventName({ namespace: 'apps', name: 'prom-x', uid: 'u1' }, 'ThanosSidecarMissing');
  const { kube, calls } = fakeKube({ [`create event apps/${name}`]: status(409, 'already exists') });
  const result = await applyPlan(kube, p, options());
  t.same(result.failures, []);
  t.same(calls.slice(-3), [`create event apps/${name}`, `patch event apps/${name}`, 'delete pod apps/prom-x']);
  t.same(result.restarted, [{ namespace: 'apps', name: 'prom-x', uid: 'u1' }]);
  const gone = fakeKube({ 'delete pod apps/prom-x': status(404, 'not found') });
  t.same((await applyPlan(gone.kube, p, options())).failures, [], 'a pod already gone is no failure');
});

void t.test('sidecar problems: a Warning event once per pod; an existing one is no failure, and the watch remembers it', async (t) => {
  const exited = {
    ...injected('a', 'pa'),
    status: {
      phase: 'Running',
      initContainerStatuses: [{
        name: 'thanos-sidecar', image: '', imageID: '', restartCount: 2, ready: false,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, message: 'err="no external labels configured on Prometheus server, uniquely identifying external labels must be configured"' } },
      }],
    },
  };
  const p = plan(state({ injectedPods: [exited] }), settings);
  t.equal(p.problems.length, 1, 'the plan has the problem');
  const name = eventName({ namespace: 'a', name: 'pa', uid: 'uid-pa' }, 'ThanosSidecarNoExternalLabels');
  const { kube, calls } = fakeKube();
  const memory = options();
  t.same((await applyPlan(kube, p, memory)).failures, []);
  t.ok(calls.includes(`create event a/${name}`), 'the warning is created');
  t.notOk(calls.includes(`patch event a/${name}`), 'and not refreshed: it is recorded once');
  calls.length = 0;
  await applyPlan(kube, p, memory);
  t.notOk(calls.some((c) => c.includes(name)), 'no request the next time');
  t.ok(memory.recorded.has(name), 'kept while the problem lasts');

  const again = fakeKube({ [`create event a/${name}`]: status(409, 'already exists') });
  t.same((await applyPlan(again.kube, p, options())).failures, [], 'recorded by an earlier run: no failure');
  const fixed = plan(state({ injectedPods: [injected('a', 'pa')] }), settings);
  await applyPlan(kube, fixed, memory);
  t.notOk(memory.recorded.has(name), 'forgotten once the problem is gone');
});
