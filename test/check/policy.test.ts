// The injection policy row: in mode both, the policy there, bound and of the generation the
// configuration makes; each way it is not, named with what to run. In mode webhook, a row only when
// a policy of the install is bound anyway.
import t from 'tap';
import type { V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding, V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { checkPolicy, policyEvaluations } from '../../src/check/policy.ts';
import { generatePolicy } from '../../src/policy/generate.ts';

const NAME = 'tsi-thanos-sidecar-injector';
const both = buildConfig({ mode: 'both' });
const generated = generatePolicy(both, NAME);
const [policy, ...bindings] = generated.objects as [V1MutatingAdmissionPolicy, ...V1MutatingAdmissionPolicyBinding[]];
const [warningPolicy, ...warningBindings] = generated.warnings as [V1ValidatingAdmissionPolicy, ...V1ValidatingAdmissionPolicyBinding[]];

void t.test('mode both: ok when the policy is there, bound, and current', (t) => {
  const row = checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings);
  t.equal(row?.status, 'ok');
  t.match(row?.detail, new RegExp(`^MutatingAdmissionPolicy ${NAME} \\(generation [0-9a-f]{12}\\), bound by ${NAME}-namespace, ${NAME}-pod: the apiserver injects the common shapes`));
  t.end();
});

void t.test('mode both: missing, unbound, outdated, or not expressible', (t) => {
  t.match(checkPolicy(both, 'both', NAME, 'thanos-injector', undefined, bindings), { status: 'fail', detail: /is not there: the webhook injects every pod alone; the chart's hook applies it: kubectl -n thanos-injector logs job\/tsi-thanos-sidecar-injector-policy/ });
  t.match(checkPolicy(both, 'both', NAME, 'thanos-injector', policy, []), { status: 'fail', detail: /is bound by no binding: it injects nothing/ });
  const newer = buildConfig({ mode: 'both', logLevel: 'debug' });
  t.match(checkPolicy(newer, 'both', NAME, 'thanos-injector', policy, bindings), { status: 'warn', detail: /is generation [0-9a-f]{12}, the configuration makes [0-9a-f]{12}: pods it injects now differ from the webhook's/ });
  t.match(checkPolicy(buildConfig({ mode: 'both', objstore: { enabled: false } }), 'both', NAME, undefined, policy, bindings), { status: 'warn', detail: /the configuration makes no policy \(objstore\.enabled is false/ });
  t.end();
});

void t.test('mode webhook: no row, unless a policy of the install is bound anyway', (t) => {
  t.equal(checkPolicy(buildConfig({}), 'webhook', NAME, 'thanos-injector', undefined, []), undefined);
  t.equal(checkPolicy(buildConfig({}), 'webhook', NAME, 'thanos-injector', policy, []), undefined, 'an unbound policy does nothing');
  t.match(checkPolicy(buildConfig({}), 'webhook', NAME, 'thanos-injector', policy, bindings), { status: 'warn', detail: /injection mode webhook, yet MutatingAdmissionPolicy .* is bound/ });
  t.end();
});

void t.test('mode auto (a configuration that does not say): both where the cluster runs the policy; no policy there is a warning, not a failure', (t) => {
  const auto = buildConfig({});
  t.match(checkPolicy(auto, 'both', NAME, 'thanos-injector', undefined, []), { status: 'warn', detail: /injection mode auto is both on this cluster, and no MutatingAdmissionPolicy .* is there: the webhook injects every pod alone/ });
  t.match(checkPolicy(auto, 'both', NAME, 'thanos-injector', policy, bindings), { status: 'ok' }, 'and the policy there: ok');
  t.end();
});

void t.test('mode policy: the same checks, and the rest named uninjected', (t) => {
  const only = buildConfig({ mode: 'policy' });
  t.match(checkPolicy(only, 'policy', NAME, 'thanos-injector', policy, bindings), { status: 'ok', detail: /the rest are created uninjected \(mode policy has no webhook\)/ });
  t.match(checkPolicy(only, 'policy', NAME, 'thanos-injector', undefined, bindings), { status: 'fail', detail: /is not there: nothing injects \(mode policy has no webhook\)/ });
  t.end();
});

void t.test("the apiserver's count of failed evaluations: a warning that says where those pods went, and how to see the count", (t) => {
  const metrics = [
    '# TYPE apiserver_mutating_admission_policy_check_total counter',
    `apiserver_mutating_admission_policy_check_total{error_type="no_error",policy="${NAME}",policy_binding="${NAME}-namespace"} 120`,
    `apiserver_mutating_admission_policy_check_total{error_type="invalid_error",policy="${NAME}",policy_binding="${NAME}-namespace"} 2`,
    `apiserver_mutating_admission_policy_check_total{error_type="invalid_error",policy="${NAME}",policy_binding="${NAME}-pod"} 1`,
    `apiserver_mutating_admission_policy_check_total{error_type="out_of_budget",policy="other",policy_binding="other"} 9`,
    `apiserver_mutating_admission_policy_check_total{error_type="out_of_budget",policy="${NAME}",policy_binding="${NAME}-pod"} 0`,
  ].join('\n');
  const evaluations = policyEvaluations(metrics, NAME);
  t.same(evaluations, { failed: [{ errorType: 'invalid_error', count: 3 }] }, "this policy's failures, summed over its bindings; no_error, zeros and other policies left out");
  const row = checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { evaluations });
  t.equal(row?.status, 'warn');
  t.match(row?.detail, /this apiserver counted 3 failed evaluation\(s\) of it since it started \(invalid_error: 3\): those pods were left to the webhook \(failurePolicy Ignore\); kubectl get --raw \/metrics/);
  t.match(checkPolicy(buildConfig({ mode: 'policy' }), 'policy', NAME, 'thanos-injector', policy, bindings, { evaluations })?.detail, /those pods were created uninjected/);
  t.equal(checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { evaluations: policyEvaluations(metrics, 'other-policy') })?.status, 'ok', 'none failed: ok');
  const unread = checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { evaluations: { error: 'cannot read /metrics of https://k: HTTP 403: forbidden' } });
  t.equal(unread?.status, 'ok', 'metrics it may not read: the row stands on what was read');
  t.match(unread?.detail, /\(its evaluation errors were not read: cannot read \/metrics of https:\/\/k: HTTP 403: forbidden\)$/, 'and says what was not');
  t.end();
});

void t.test("the warnings' ValidatingAdmissionPolicy: there and bound with Warn, else a warning that says what users miss", (t) => {
  const current = { policy: warningPolicy, bindings: warningBindings };
  t.equal(checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { warnings: current })?.status, 'ok');
  t.match(checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { warnings: { policy: undefined, bindings: [] } }),
    { status: 'warn', detail: /; but ValidatingAdmissionPolicy tsi-thanos-sidecar-injector, which gives its warnings, is not there: pods it injects with their TSDB on an emptyDir .* are created without the webhook's warning/ });
  const denyOnly = warningBindings.map((binding) => ({ ...binding, spec: { ...binding.spec, validationActions: ['Audit'] } }));
  t.match(checkPolicy(both, 'both', NAME, 'thanos-injector', policy, bindings, { warnings: { policy: warningPolicy, bindings: denyOnly } }),
    { status: 'warn', detail: /is bound by no Warn binding/ });
  const allow = buildConfig({ mode: 'both', ephemeralTsdb: { action: 'allow' } });
  const [allowPolicy, ...allowBindings] = generatePolicy(allow, NAME).objects as [V1MutatingAdmissionPolicy, ...V1MutatingAdmissionPolicyBinding[]];
  t.equal(checkPolicy(allow, 'both', NAME, 'thanos-injector', allowPolicy, allowBindings, { warnings: { policy: undefined, bindings: [] } })?.status, 'ok',
    'with ephemeralTsdb allow everywhere there is no warning to give');
  t.end();
});
