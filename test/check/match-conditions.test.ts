// check's row on the live webhooks' matchConditions: this injector's own are ok; none is a warning
// (every pod waits for the injector); a stale or hand-edited set is evaluated on the pod shapes the
// engine acts on, and the row fails naming the shapes it drops.
import t from 'tap';
import type { V1MatchCondition, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { checkMatchConditions, PROBE_PODS } from '../../src/check/match-conditions.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { matchConditions } from '../../src/inject/match-conditions.ts';

const configuration = (conditions: (V1MatchCondition[] | undefined)[]): V1MutatingWebhookConfiguration => ({
  metadata: { name: 'thanos-sidecar-injector' },
  webhooks: ['namespace', 'pod'].map((scope, i) => ({
    name: `${scope}.thanos-sidecar-injector.io`, admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: {},
    ...(conditions[i] === undefined ? {} : { matchConditions: conditions[i] }),
  })),
});

void t.test('every probe pod is one the engine acts on (injects, denies or warns about)', (t) => {
  const config = buildConfig({});
  for (const { what, pod } of PROBE_PODS) {
    const result = injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.33' });
    t.ok(result.outcome !== 'skipped' || result.warnings.length > 0, `${what}: ${result.outcome}`);
  }
  t.end();
});

void t.test("this injector's conditions: ok", (t) => {
  const row = checkMatchConditions(configuration([matchConditions(), matchConditions()]));
  t.equal(row.status, 'ok', row.detail);
  t.match(row.detail, 'not-a-mirror-pod, not-injected-yet, prometheus-or-own-thanos-sidecar');
  t.end();
});

void t.test('none: a warning that every pod waits for the injector, with the switch', (t) => {
  const row = checkMatchConditions(configuration([undefined, matchConditions()]));
  t.equal(row.status, 'warn');
  t.match(row.detail, /^namespace\.thanos-sidecar-injector\.io: no matchConditions/);
  t.match(row.detail, '--set webhook.matchConditions=true');
  t.end();
});

void t.test('a hand-edited condition that drops Prometheus pods: fail, naming the shapes dropped', (t) => {
  const byNameOnly: V1MatchCondition[] = [{ name: 'prometheus-only', expression: "object.spec.containers.exists(c, c.name == 'prometheus')" }];
  const row = checkMatchConditions(configuration([byNameOnly, matchConditions()]));
  t.equal(row.status, 'fail');
  t.match(row.detail, /^namespace\.thanos-sidecar-injector\.io \(prometheus-only \(not this injector's\)\) never calls the injector for a Prometheus image under another name/);
  t.match(row.detail, 'thanos-injector/prometheus-container');
  t.notMatch(row.detail, 'a container named prometheus;', 'the shape it still sends is not named');
  const broken: V1MatchCondition[] = [{ name: 'typo', expression: 'object.metadata.annotations.foo == "x"' }];
  t.equal(checkMatchConditions(configuration([matchConditions(), broken])).status, 'fail', 'an expression that errors on pods drops them all (under Ignore)');
  t.end();
});

void t.test('different but harmless conditions (an older injector\'s, a stricter order): a warning to re-apply', (t) => {
  const renamed = matchConditions().map((c) => ({ ...c, name: `old-${c.name}` }));
  const row = checkMatchConditions(configuration([renamed, renamed]));
  t.equal(row.status, 'warn', row.detail);
  t.match(row.detail, 'still send it every Prometheus pod shape it knows');
  t.end();
});
