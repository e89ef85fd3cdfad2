// review() never throws: a bug inside the injector is answered by config.failurePolicy. Ignore
// admits the pod unchanged with a warning; Fail denies it with code 500.
import t, { type Test } from 'tap';
import { review, type ReviewResult } from '../../src/admission/review.ts';
import type { AdmissionReview } from '../../src/admission/schema.ts';
import { buildConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { admissionReview, prometheusPod, type Json } from '../support/server.ts';

const POLICIES = ['Ignore', 'Fail'] as const;

function body(object: unknown, uid = 'uid-failure-policy'): AdmissionReview {
  return admissionReview(object, { uid, namespace: 'monitoring' }) as unknown as AdmissionReview;
}

/** A config whose every setting throws when read, except failurePolicy (which the catch needs). */
function explodingConfig(config: Config): Config {
  return new Proxy(config, {
    get(target, property, receiver) {
      if (property === 'failurePolicy') return Reflect.get(target, property, receiver) as unknown;
      throw new Error(`injector bug: read config.${String(property)}`);
    },
  });
}

/** A Prometheus pod whose spec.restartPolicy getter throws (read while rendering in container mode). */
function podWithThrowingGetter(...thrownValue: [unknown?]): Json {
  const thrown = thrownValue.length > 0 ? thrownValue[0] : new Error('injector bug: getter');
  const pod = prometheusPod();
  Object.defineProperty(pod.spec, 'restartPolicy', {
    enumerable: true,
    get() {
      throw thrown;
    },
  });
  return pod;
}

function reviewSafely(t: Test, input: AdmissionReview, config: Config): ReviewResult | undefined {
  try {
    return review(input, { config, kubernetesVersion: '1.33' });
  } catch (error) {
    t.fail(`review() threw instead of answering: ${String((error as Error | undefined)?.message ?? error)}`);
    return undefined;
  }
}

function checkIgnore(t: Test, result: ReviewResult | undefined): void {
  if (result === undefined) return;
  const { response } = result.answer;
  t.equal(result.answer.apiVersion, 'admission.k8s.io/v1');
  t.equal(result.answer.kind, 'AdmissionReview');
  t.equal(response.uid, 'uid-failure-policy', 'uid echoed');
  t.equal(response.allowed, true, 'allowed: the pod goes on without the sidecar');
  t.equal(response.patch, undefined, 'no patch');
  t.equal(response.patchType, undefined, 'no patchType');
  t.equal(response.status, undefined, 'no failure status');
  t.ok(response.warnings !== undefined && response.warnings.length > 0, 'a warning tells the user');
  for (const warning of response.warnings ?? []) {
    t.ok(warning.length <= 120, `warning fits 120 characters: ${warning}`);
    t.match(warning, /^thanos-injector: .*without the Thanos sidecar/);
  }
  t.equal(result.outcome, 'error');
  t.equal(result.reason, 'internal-error');
  t.match(result.message, /internal error/);
}

function checkFail(t: Test, result: ReviewResult | undefined): void {
  if (result === undefined) return;
  const { response } = result.answer;
  t.equal(response.uid, 'uid-failure-policy', 'uid echoed');
  t.equal(response.allowed, false, 'denied');
  t.equal(response.patch, undefined, 'no patch');
  t.equal(response.status?.code, 500, 'status.code 500');
  t.equal(response.status?.status, 'Failure');
  t.equal(response.status?.reason, 'InternalError');
  t.match(response.status?.message, /^thanos-injector: internal error/);
  t.equal(result.outcome, 'error');
  t.equal(result.reason, 'internal-error');
}

void t.test('control: the same pod with a sound config and pod is injected', (t) => {
  for (const failurePolicy of POLICIES) {
    const result = reviewSafely(t, body(prometheusPod()), buildConfig({ failurePolicy }));
    t.equal(result?.outcome, 'injected', `${failurePolicy}: injected`);
    t.equal(result?.answer.response.patchType, 'JSONPatch');
  }
  const container = reviewSafely(t, body(prometheusPod({ annotations: { 'thanos-injector/sidecar-mode': 'container' } })), buildConfig({}));
  t.equal(container?.outcome, 'injected', 'container mode (which reads spec.restartPolicy) injects too');
  t.end();
});

void t.test('a config that throws when read (a bug inside the injector)', async (t) => {
  await t.test('failurePolicy Ignore: allowed, no patch, a warning', (t) => {
    checkIgnore(t, reviewSafely(t, body(prometheusPod()), explodingConfig(buildConfig({ failurePolicy: 'Ignore' }))));
    t.end();
  });
  await t.test('failurePolicy Fail: denied with status.code 500', (t) => {
    const result = reviewSafely(t, body(prometheusPod()), explodingConfig(buildConfig({ failurePolicy: 'Fail' })));
    checkFail(t, result);
    t.match(result?.answer.response.status?.message, /injector bug: read config\./, 'the message says what broke');
    t.end();
  });
});

void t.test('a pod whose getter throws while the sidecar is rendered (a bug inside the injector)', async (t) => {
  await t.test('failurePolicy Ignore: allowed, no patch, a warning', (t) => {
    checkIgnore(t, reviewSafely(t, body(podWithThrowingGetter()), buildConfig({ failurePolicy: 'Ignore', sidecarMode: 'container' })));
    t.end();
  });
  await t.test('failurePolicy Fail: denied with status.code 500', (t) => {
    const result = reviewSafely(t, body(podWithThrowingGetter()), buildConfig({ failurePolicy: 'Fail', sidecarMode: 'container' }));
    checkFail(t, result);
    t.match(result?.answer.response.status?.message, /injector bug: getter/);
    t.end();
  });
});

void t.test('the default failurePolicy is Ignore', (t) => {
  t.equal(buildConfig({}).failurePolicy, 'Ignore');
  checkIgnore(t, reviewSafely(t, body(prometheusPod()), explodingConfig(buildConfig({}))));
  t.end();
});

void t.test('a bug that throws a value that is not an Error still follows the failure policy', async (t) => {
  for (const thrown of [undefined, null, 'a string']) {
    await t.test(`throw ${JSON.stringify(thrown) ?? 'undefined'}, failurePolicy Ignore: allowed with a warning`, (t) => {
      checkIgnore(t, reviewSafely(t, body(podWithThrowingGetter(thrown)), buildConfig({ failurePolicy: 'Ignore', sidecarMode: 'container' })));
      t.end();
    });
    await t.test(`throw ${JSON.stringify(thrown) ?? 'undefined'}, failurePolicy Fail: denied with code 500`, (t) => {
      checkFail(t, reviewSafely(t, body(podWithThrowingGetter(thrown)), buildConfig({ failurePolicy: 'Fail', sidecarMode: 'container' })));
      t.end();
    });
  }
});

void t.test('failure policy does not touch ordinary outcomes', (t) => {
  for (const failurePolicy of POLICIES) {
    const config = buildConfig({ failurePolicy });
    const denied = reviewSafely(t, body(prometheusPod({ annotations: { 'thanos-injector/block-duration': 'banana' } })), config);
    t.equal(denied?.outcome, 'denied', `${failurePolicy}: an invalid annotation is still denied`);
    t.equal(denied?.answer.response.status?.code, 400, `${failurePolicy}: with code 400, not 500`);
    const skipped = reviewSafely(t, admissionReview(prometheusPod(), { namespace: 'kube-system', uid: 'u' }) as unknown as AdmissionReview, config);
    t.equal(skipped?.outcome, 'skipped', `${failurePolicy}: an excluded namespace is still skipped`);
    t.equal(skipped?.answer.response.allowed, true);
  }
  t.end();
});
