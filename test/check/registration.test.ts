// Registration with Thanos Query: the ConfigMap `register` writes (built here by register's own
// planner functions), and whether a pod is in it by its namespace's dnssrv address or its IP.
import t from 'tap';
import type { V1ConfigMap, V1Pod } from '@kubernetes/client-node';
import { checkPodRegistered, checkQueryConfigMap, registeredAddresses } from '../../src/check/registration.ts';
import { desiredService, dnssrvAddress, endpointsFile, targetsFile } from '../../src/register/plan.ts';

const ref = { namespace: 'thanos-injector', name: 'thanos-query-endpoints' };
const configMap = (addresses: string[]): V1ConfigMap => ({
  metadata: { name: ref.name, namespace: ref.namespace },
  data: { 'endpoints.yaml': endpointsFile(addresses), 'targets.yaml': targetsFile(addresses) },
});
const pod = (ip?: string): V1Pod => ({
  metadata: { name: 'prometheus-deploy-abc', namespace: 'monitoring', labels: { app: 'prometheus', 'thanos-injector/injected': 'true' } },
  spec: { containers: [{ name: 'prometheus' }] },
  status: ip === undefined ? { phase: 'Pending' } : { phase: 'Running', podIP: ip },
});
const dnssrv = dnssrvAddress('monitoring', 'cluster.local');

void t.test('the addresses of endpoints.yaml and targets.yaml', (t) => {
  t.same(registeredAddresses(configMap([dnssrv, '10.0.0.12:10901'])), [dnssrv, '10.0.0.12:10901']);
  t.same(registeredAddresses({ data: { 'targets.yaml': '- targets: ["10.0.0.1:10901"]\n' } }), ['10.0.0.1:10901'], 'targets.yaml alone (Query before v0.38)');
  t.same(registeredAddresses(configMap([])), []);
  t.end();
});

void t.test('the registration ConfigMap', (t) => {
  t.match(checkQueryConfigMap(ref, configMap([dnssrv])), { status: 'ok', detail: 'ConfigMap thanos-injector/thanos-query-endpoints lists 1 endpoint' });
  t.match(checkQueryConfigMap(ref, undefined), { status: 'warn', detail: /not found: Thanos Query discovers no sidecar through it; run thanos-injector register --query-namespace thanos-injector/ });
  t.match(checkQueryConfigMap(ref, { data: { other: 'x' } }), { status: 'fail', detail: /has neither endpoints\.yaml nor targets\.yaml/ });
  t.match(checkQueryConfigMap(ref, { data: { 'endpoints.yaml': 'endpoints: [' } }), { status: 'fail', detail: /is not valid YAML/ });
  t.match(checkQueryConfigMap(undefined, undefined), { status: 'skip', detail: /--query-configmap/ });
  t.end();
});

void t.test("registered through the namespace's dnssrv address, backed by the headless Service", (t) => {
  const service = desiredService('monitoring');
  t.match(checkPodRegistered(pod(), true, ref, configMap([dnssrv]), service), {
    status: 'ok', detail: `listed as ${dnssrv} in ConfigMap thanos-injector/thanos-query-endpoints; Service monitoring/thanos-sidecar selects the pod`,
  });
  t.match(checkPodRegistered(pod(), true, ref, configMap([dnssrv]), undefined), { status: 'fail', detail: /Service monitoring\/thanos-sidecar is missing, so it resolves to nothing/ });
  const unlabelled = pod();
  delete unlabelled.metadata?.labels?.['thanos-injector/injected'];
  t.match(checkPodRegistered(unlabelled, true, ref, configMap([dnssrv]), service), { status: 'fail', detail: /does not select this pod/ });
  t.match(checkPodRegistered(pod(), true, ref, configMap(['dnssrv+_grpc._tcp.thanos-sidecar.monitoring.svc']), service), { status: 'ok' }, 'without the cluster domain');
  t.match(checkPodRegistered(pod(), true, ref, configMap([dnssrvAddress('monitoring-2', 'cluster.local')]), service), { status: 'fail' }, 'another namespace');
  t.end();
});

void t.test('registered by pod IP (register --endpoints pod-ip)', (t) => {
  t.match(checkPodRegistered(pod('10.0.0.12'), true, ref, configMap(['10.0.0.12:10901']), undefined), { status: 'ok', detail: 'listed as 10.0.0.12:10901 in ConfigMap thanos-injector/thanos-query-endpoints' });
  t.match(checkPodRegistered(pod('fd00::12'), true, ref, configMap(['[fd00::12]:10901']), undefined), { status: 'ok' });
  t.match(checkPodRegistered(pod('10.0.0.1'), true, ref, configMap(['10.0.0.12:10901']), undefined), { status: 'fail' }, 'a prefix of another IP is not this pod');
  t.end();
});

void t.test('not registered, or nothing to register', (t) => {
  const missing = checkPodRegistered(pod('10.0.0.13'), true, ref, configMap(['10.0.0.12:10901']), undefined);
  t.equal(missing.status, 'fail');
  t.match(missing.detail, /^not in ConfigMap thanos-injector\/thanos-query-endpoints \(1 endpoint; neither the dnssrv address of namespace monitoring nor 10\.0\.0\.13\): Thanos Query does not see this sidecar; run thanos-injector register/);
  t.match(checkPodRegistered(pod(), true, ref, undefined, undefined), { status: 'fail', detail: /not found: Thanos Query does not see this sidecar/ });
  t.match(checkPodRegistered(pod(), false, ref, configMap([]), undefined), { status: 'skip', detail: 'the pod has no sidecar to register' });
  t.end();
});
