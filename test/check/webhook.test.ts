// The webhook configuration: finding ours (by name, else by its webhook names), both webhooks
// present and what they call, where the install lives, and which webhook selects which pod —
// on configurations shaped like the chart's (templates/mutatingwebhookconfiguration.yaml).
import t from 'tap';
import type { V1MutatingWebhook, V1MutatingWebhookConfiguration, V1Namespace } from '@kubernetes/client-node';
import {
  checkWebhooks,
  chooseConfiguration,
  installLocation,
  namespaceExcludedByWebhooks,
  selectingWebhooks,
  selectorMatches,
  targetOf,
} from '../../src/check/webhook.ts';

const EXCLUDED = ['kube-system', 'kube-public', 'kube-node-lease', 'thanos-injector'];

function webhook(scope: 'namespace' | 'pod', clientConfig: V1MutatingWebhook['clientConfig'], failurePolicy = 'Ignore'): V1MutatingWebhook {
  return {
    name: `${scope}.thanos-sidecar-injector.io`,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy,
    timeoutSeconds: 5,
    reinvocationPolicy: 'IfNeeded',
    matchPolicy: 'Equivalent',
    clientConfig,
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    namespaceSelector: {
      matchExpressions: [
        scope === 'namespace'
          ? { key: 'thanos-injection', operator: 'In', values: ['enabled'] }
          : { key: 'thanos-injection', operator: 'DoesNotExist' },
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: EXCLUDED },
      ],
    },
    objectSelector: scope === 'namespace'
      ? { matchExpressions: [{ key: 'thanos-injection', operator: 'NotIn', values: ['disabled'] }] }
      : { matchLabels: { 'thanos-injection': 'enabled' } },
  };
}

const CA_BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n').toString('base64');
const serviceConfig = { service: { name: 'tsi-thanos-sidecar-injector', namespace: 'thanos-injector', path: '/mutate', port: 443 }, caBundle: CA_BUNDLE };

function configuration(name: string, webhooks: V1MutatingWebhook[], annotations: Record<string, string> = {}): V1MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/instance': 'tsi' }, annotations },
    webhooks,
  };
}

const chart = configuration('tsi-thanos-sidecar-injector', [webhook('namespace', serviceConfig), webhook('pod', serviceConfig)], {
  'meta.helm.sh/release-name': 'tsi',
  'meta.helm.sh/release-namespace': 'thanos-injector',
});
const unrelated = configuration('istio-sidecar-injector', [{ ...webhook('namespace', serviceConfig), name: 'namespace.sidecar-injector.istio.io' }]);
const ns = (name: string, labels: Record<string, string> = {}): V1Namespace => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });

void t.test('the configuration is found by name, else by its webhook names', (t) => {
  t.match(chooseConfiguration('tsi-thanos-sidecar-injector', true, chart, [chart, unrelated]), {
    configuration: chart, row: { status: 'ok', detail: 'MutatingWebhookConfiguration tsi-thanos-sidecar-injector' },
  });
  const byWebhooks = chooseConfiguration('thanos-sidecar-injector', false, undefined, [unrelated, chart]);
  t.equal(byWebhooks.configuration, chart, 'the default name is not found: the release-prefixed one is');
  t.match(byWebhooks.row, { status: 'ok', detail: /tsi-thanos-sidecar-injector \(found by its webhook names\)/ });
  const explicit = chooseConfiguration('wrong', true, undefined, [chart]);
  t.match(explicit.row, { status: 'warn', detail: /no configuration named wrong; checking tsi-thanos-sidecar-injector instead .*--webhook-config tsi-thanos-sidecar-injector/ });
  const none = chooseConfiguration('thanos-sidecar-injector', false, undefined, [unrelated]);
  t.equal(none.configuration, undefined);
  t.match(none.row, { status: 'fail', detail: /no MutatingWebhookConfiguration has \*\.thanos-sidecar-injector\.io webhooks: nothing injects; install the chart \(helm install/ });
  const notOurs = chooseConfiguration('istio-sidecar-injector', true, unrelated, [unrelated]);
  t.match(notOurs.row, { status: 'fail', detail: /istio-sidecar-injector has no \*\.thanos-sidecar-injector\.io webhook/ });
  const second = configuration('b-thanos-sidecar-injector', chart.webhooks ?? []);
  const two = chooseConfiguration('thanos-sidecar-injector', false, undefined, [second, chart]);
  t.match(two.row, { status: 'warn', detail: /2 configurations .*\(b-thanos-sidecar-injector, tsi-thanos-sidecar-injector\); checking b-thanos-sidecar-injector/ });
  t.end();
});

void t.test("both webhooks, their failure policy, timeout and target", (t) => {
  const { row, target } = checkWebhooks(chart);
  t.equal(row.status, 'ok', row.detail);
  t.equal(row.detail, 'namespace: failurePolicy Ignore, timeout 5s; pod: failurePolicy Ignore, timeout 5s; calls Service thanos-injector/tsi-thanos-sidecar-injector:443/mutate');
  t.same(target, {
    kind: 'service', namespace: 'thanos-injector', name: 'tsi-thanos-sidecar-injector', port: 443, path: '/mutate', caBundle: CA_BUNDLE,
    dnsName: 'tsi-thanos-sidecar-injector.thanos-injector.svc',
  });

  const failClosed = configuration('x', [webhook('namespace', serviceConfig, 'Fail'), webhook('pod', serviceConfig, 'Fail')]);
  t.match(checkWebhooks(failClosed).row, { status: 'ok', detail: /Fail: pod creation is refused while the injector is down/ });

  const onlyNamespace = configuration('x', [webhook('namespace', serviceConfig)]);
  t.match(checkWebhooks(onlyNamespace).row, {
    status: 'fail', detail: /pod\.thanos-sidecar-injector\.io is missing \(pods labelled thanos-injection=enabled in unlabelled namespaces are not injected\)/,
  });
  const noRules = configuration('x', [{ ...webhook('namespace', serviceConfig), rules: [] }, webhook('pod', serviceConfig)]);
  t.match(checkWebhooks(noRules).row, { status: 'fail', detail: /namespace\.thanos-sidecar-injector\.io does not select pod CREATE/ });
  const split = configuration('x', [webhook('namespace', serviceConfig), webhook('pod', { ...serviceConfig, caBundle: '' })]);
  t.match(checkWebhooks(split).row, { status: 'fail', detail: /different injectors or carry different caBundles/ });
  t.end();
});

void t.test('a url target: host and port for the handshake, the host as the name to cover', (t) => {
  t.same(targetOf(webhook('pod', { url: 'https://127.0.0.1:9443/mutate', caBundle: CA_BUNDLE })), {
    kind: 'url', url: 'https://127.0.0.1:9443/mutate', host: '127.0.0.1', port: 9443, caBundle: CA_BUNDLE, dnsName: '127.0.0.1',
  });
  t.match(targetOf(webhook('pod', { url: 'https://injector.example.com/mutate' })), { host: 'injector.example.com', port: 443, caBundle: '' });
  t.match(targetOf(webhook('pod', { url: 'https://[::1]:8443/mutate' })), { host: '::1', port: 8443 });
  t.equal(targetOf(webhook('pod', {})), undefined);
  t.end();
});

void t.test("the install's location: the Service's, else Helm's release namespace for a url webhook", (t) => {
  t.same(installLocation(chart, checkWebhooks(chart).target), { namespace: 'thanos-injector', name: 'tsi-thanos-sidecar-injector' });
  const urlConfig = { url: 'https://127.0.0.1:9443/mutate', caBundle: CA_BUNDLE };
  const byUrl = configuration('tsi-thanos-sidecar-injector', [webhook('namespace', urlConfig), webhook('pod', urlConfig)], { 'meta.helm.sh/release-namespace': 'thanos-injector' });
  t.same(installLocation(byUrl, checkWebhooks(byUrl).target), { namespace: 'thanos-injector', name: 'tsi-thanos-sidecar-injector' });
  const handMade = configuration('mine', [webhook('namespace', urlConfig)]);
  t.equal(installLocation(handMade, checkWebhooks(handMade).target), undefined);
  t.end();
});

void t.test('label selectors as the apiserver evaluates them', (t) => {
  t.ok(selectorMatches(undefined, {}), 'no selector selects everything');
  t.ok(selectorMatches({}, { a: 'b' }), 'an empty selector too');
  t.ok(selectorMatches({ matchLabels: { a: 'b' } }, { a: 'b', c: 'd' }));
  t.notOk(selectorMatches({ matchLabels: { a: 'b' } }, { a: 'c' }));
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}), 'NotIn holds for a missing label');
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, {}), 'In needs the label');
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }));
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '' }));
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, { a: '2' }), 'unknown operators match nothing');
  t.end();
});

void t.test('which webhook selects a pod, as the chart wires them', (t) => {
  t.same(selectingWebhooks(chart, ns('monitoring', { 'thanos-injection': 'enabled' }), {}), ['namespace.thanos-sidecar-injector.io']);
  t.same(selectingWebhooks(chart, ns('monitoring', { 'thanos-injection': 'enabled' }), { 'thanos-injection': 'disabled' }), [], 'a pod opted out');
  t.same(selectingWebhooks(chart, ns('team-a'), { 'thanos-injection': 'enabled' }), ['pod.thanos-sidecar-injector.io'], 'pod opt-in');
  t.same(selectingWebhooks(chart, ns('team-a'), {}), [], 'neither labelled');
  t.same(selectingWebhooks(chart, ns('team-b', { 'thanos-injection': 'disabled' }), { 'thanos-injection': 'enabled' }), [], 'a namespace opted out wins');
  t.same(selectingWebhooks(chart, ns('kube-system', { 'thanos-injection': 'enabled' }), {}), [], 'excluded by name');
  t.same(selectingWebhooks(chart, { metadata: { name: 'monitoring', labels: { 'thanos-injection': 'enabled' } } }, {}), ['namespace.thanos-sidecar-injector.io'],
    'kubernetes.io/metadata.name is implied');
  t.ok(namespaceExcludedByWebhooks(chart, ns('thanos-injector')));
  t.notOk(namespaceExcludedByWebhooks(chart, ns('monitoring')));
  t.end();
});
