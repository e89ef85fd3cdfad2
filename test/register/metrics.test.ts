// The metrics of `register --watch`: what the last reconcile found, and whether registration works.
import t from 'tap';
import { createRegisterMetrics } from '../../src/register/metrics.ts';
import { plan, type ClusterState } from '../../src/register/plan.ts';
import { applyResult, registerSettings } from '../support/register.ts';

const settings = registerSettings({ endpoints: 'pod-ip' });

const ready = (ip: string) => ({ phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] });
const injected = (namespace: string, name: string, ip: string) => ({
  metadata: { namespace, name, uid: `${namespace}/${name}`, labels: { 'thanos-injector/injected': 'true' } },
  spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }], initContainers: [{ name: 'thanos-sidecar', restartPolicy: 'Always' }] },
  status: ready(ip),
});
const uninjected = (name: string) => ({
  metadata: { namespace: 'apps', name, uid: `apps/${name}` },
  spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] },
  status: ready('10.0.9.9'),
});
const state = (injectedPods: ClusterState['injectedPods'], selectablePods: ClusterState['selectablePods']): ClusterState => ({
  injectedPods,
  services: [],
  labelledNamespaces: [{ metadata: { name: 'apps', labels: { 'thanos-injection': 'enabled' } } }],
  selectablePods,
  configMap: undefined,
  prometheusConfigMaps: [],
  unreadable: [],
  uploads: new Map(),
  readAt: 0,
});

/** The value of one sample in the exposition text (undefined when absent). */
async function sample(metrics: ReturnType<typeof createRegisterMetrics>, series: string): Promise<number | undefined> {
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

void t.test('gauges follow the last reconcile: uninjected Prometheus pods, registered pods, endpoints', async (t) => {
  const metrics = createRegisterMetrics();
  t.equal(await sample(metrics, 'thanos_injector_register_reconciles_total{result="failure"}'), 0, 'both results exported from the start');
  t.equal(await sample(metrics, 'thanos_injector_register_reconciles_total{result="success"}'), 0);

  const first = plan(state([injected('monitoring', 'a', '10.0.0.1'), injected('team', 'b', '10.0.0.2')], [uninjected('p1'), uninjected('p2')]), settings);
  metrics.reconciled({ plan: first, result: applyResult() }, new Date('2026-11-25T12:00:00Z'));
  t.equal(await sample(metrics, 'thanos_injector_uninjected_prometheus_pods'), 2);
  t.equal(await sample(metrics, 'thanos_injector_registered_pods'), 2);
  t.equal(await sample(metrics, 'thanos_injector_registered_endpoints'), 2);
  t.equal(await sample(metrics, 'thanos_injector_register_last_success_timestamp_seconds'), Date.parse('2026-11-25T12:00:00Z') / 1000);
  t.equal(await sample(metrics, 'thanos_injector_register_reconciles_total{result="success"}'), 1);

  const second = plan(state([injected('monitoring', 'a', '10.0.0.1')], []), settings);
  metrics.reconciled({ plan: second, result: applyResult() }, new Date('2026-11-25T12:01:00Z'));
  t.equal(await sample(metrics, 'thanos_injector_uninjected_prometheus_pods'), 0, 'back to 0 once they are gone');
  t.equal(await sample(metrics, 'thanos_injector_registered_pods'), 1);
  t.equal(await sample(metrics, 'thanos_injector_registered_endpoints'), 1);
});

void t.test('a reconcile with failed API calls, or one that could not read the cluster, counts as failure and keeps the last success time', async (t) => {
  const metrics = createRegisterMetrics();
  const current = plan(state([injected('monitoring', 'a', '10.0.0.1')], [uninjected('p1')]), settings);
  metrics.reconciled({ plan: current, result: applyResult() }, new Date('2026-11-25T12:00:00Z'));
  metrics.reconciled({ plan: current, result: applyResult(['create Service team/thanos-sidecar: HTTP 403']) }, new Date('2026-11-25T12:05:00Z'));
  metrics.failed();
  t.equal(await sample(metrics, 'thanos_injector_register_reconciles_total{result="failure"}'), 2);
  t.equal(await sample(metrics, 'thanos_injector_register_reconciles_total{result="success"}'), 1);
  t.equal(await sample(metrics, 'thanos_injector_register_last_success_timestamp_seconds'), Date.parse('2026-11-25T12:00:00Z') / 1000, 'unchanged by failures');
  t.equal(await sample(metrics, 'thanos_injector_uninjected_prometheus_pods'), 1, 'what the cluster read found still counts');
  t.match(await metrics.registry.metrics(), /process_resident_memory_bytes \d+/, 'process metrics too');
});
