// The summary register prints, and API failures as one line naming the operation and the status.
import t from 'tap';
import { ApiException } from '@kubernetes/client-node';
import { describeApiError } from '../../src/kube/errors.ts';
import { desiredService, plan } from '../../src/register/plan.ts';
import { eventful, summarize } from '../../src/register/summary.ts';
import { table } from '../../src/table.ts';
import { applyResult, registerSettings } from '../support/register.ts';

const settings = registerSettings({ restartUninjected: true });

const injected = (namespace: string, name: string) => ({
  metadata: { namespace, name, uid: `${namespace}/${name}`, labels: { 'thanos-injector/injected': 'true' } },
  spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }, { name: 'thanos-sidecar' }] },
});

void t.test('columns line up', (t) => {
  t.equal(table(['A', 'LONG HEADER'], [['wide value', 'x']]), 'A           LONG HEADER\nwide value  x\n');
  t.end();
});

void t.test('the summary: namespaces, ConfigMap, registrations, then missing-sidecar pods', (t) => {
  const gone = { ...desiredService('old'), metadata: { ...desiredService('old').metadata, uid: 'u' } };
  const bare = { metadata: { namespace: 'apps', name: 'prom-bare', uid: 'b' }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] } };
  const owned = {
    metadata: { namespace: 'apps', name: 'prom-7d-x', uid: 'o', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prom-7d', uid: 'rs', controller: true }] },
    spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] },
  };
  const p = plan({
    injectedPods: [injected('monitoring', 'prometheus-0'), injected('team-a', 'p')],
    services: [gone],
    labelledNamespaces: [{ metadata: { name: 'apps', labels: { 'thanos-injection': 'enabled' } } }],
    selectablePods: [bare, owned],
    configMap: undefined,
    prometheusConfigMaps: [],
    unreadable: [],
    uploads: new Map(),
    readAt: 0,
  }, settings);
  const result = applyResult();
  result.newlyRegistered.push({ namespace: 'monitoring', name: 'prometheus-0', uid: 'monitoring/prometheus-0' });
  result.restarted.push({ namespace: 'apps', name: 'prom-7d-x', uid: 'o' });
  result.failedServices.add('team-a');
  t.equal(summarize(p, result, settings), [
    'NAMESPACE   INJECTED PODS  SERVICE        REGISTERED ENDPOINTS',
    'monitoring  1              created        1',
    'old         0              deleted        0',
    'team-a      1              create failed  1',
    '',
    'ConfigMap monitoring/thanos-query-endpoints: created (2 endpoints, dnssrv mode)',
    'Registered pods: 2 (1 newly registered)',
    '',
    'Missing sidecar: 2 labelled Prometheus pods run without thanos-sidecar',
    'NAMESPACE  POD        OWNER               ACTION',
    'apps       prom-7d-x  ReplicaSet/prom-7d  deleted so that ReplicaSet/prom-7d recreates it injected',
    'apps       prom-bare  (none)              bare pod: never deleted; recreate it to inject',
    '',
  ].join('\n'));
  t.ok(eventful(p, result));
  t.end();
});

void t.test('nothing to do: says so, and is not eventful', (t) => {
  const nothing = { injectedPods: [], services: [], labelledNamespaces: [], selectablePods: [], prometheusConfigMaps: [], unreadable: [], uploads: new Map(), readAt: 0 };
  const written = plan({ ...nothing, configMap: undefined }, settings).configMap.configMap;
  const p = plan({ ...nothing, configMap: written }, settings);
  const text = summarize(p, applyResult(), settings);
  t.match(text, /^No injected pods/);
  t.match(text, /ConfigMap monitoring\/thanos-query-endpoints: unchanged \(0 endpoints, dnssrv mode\)/);
  t.match(text, /Missing sidecar: none/);
  t.notOk(eventful(p, applyResult()));
  t.end();
});

void t.test('API errors: one line with the operation, the HTTP status and the apiserver message', (t) => {
  const forbidden = new ApiException(403, 'Unknown API Status Code!', JSON.stringify({
    kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403,
    message: 'services "thanos-sidecar" is forbidden: User "system:serviceaccount:monitoring:register" cannot create resource "services"',
  }), {});
  t.equal(
    describeApiError('cannot create Service team-a/thanos-sidecar', forbidden, 'https://10.96.0.1'),
    'cannot create Service team-a/thanos-sidecar: HTTP 403 Forbidden: services "thanos-sidecar" is forbidden: User "system:serviceaccount:monitoring:register" cannot create resource "services"',
  );
  t.equal(describeApiError('cannot list pods', new ApiException(401, 'Unauthorized', undefined, {}), 's'), 'cannot list pods: HTTP 401 Unauthorized');
  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) });
  t.equal(describeApiError('cannot list pods', refused, 'https://127.0.0.1:6443'), 'cannot list pods: no answer from the API server https://127.0.0.1:6443: ECONNREFUSED');
  const watchRefused = Object.assign(new Error('Forbidden'), { statusCode: 403 });
  t.equal(describeApiError('watch failed', watchRefused, 's'), 'watch failed: HTTP 403 Forbidden');
  t.notMatch(describeApiError('x', forbidden, 's'), /\n/, 'one line');
  t.end();
});
