// The matchConditions the chart puts on both webhooks (its files/match-conditions.yaml is generated
// from src/inject/match-conditions.ts and checked here), evaluated with a CEL evaluator (standard CEL,
// RE2 `matches`, as the apiserver's) against the engine's own decision: over every golden fixture
// and over generated pods, a pod the engine would inject, deny or warn about always passes, no
// evaluation ever errors (under failurePolicy Ignore an error would skip the webhook silently), and
// mirror pods and pods that already have the sidecar are dropped.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isCelError, run } from '@bufbuild/cel';
import type { V1Container } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod, type Injection } from '../../src/inject/inject.ts';
import { matchConditions } from '../../src/inject/match-conditions.ts';
import { callsWebhook } from '../../src/check/match-conditions.ts';
import type { PodLike } from '../../src/inject/pod.ts';
import { podPointer } from '../../src/cli/workloads.ts';
import { resolvePointer } from '../../src/validation.ts';

const config = buildConfig({});
const conditions = matchConditions();

/** The live conditions' verdict, with the evaluator `check` uses. */
function evaluate(pod: PodLike): { passes: boolean; errors: string[] } {
  const { called, errors } = callsWebhook(conditions, pod);
  return { passes: called, errors };
}

/** What the engine does with the pod that the apiserver must let it see. */
function engineActs(result: Injection): boolean {
  if (result.outcome !== 'skipped') return true;
  return result.warnings.length > 0 || result.patch !== undefined;
}

function checkPod(t: Test, where: string, pod: PodLike, namespace = 'monitoring'): void {
  const { passes, errors } = evaluate(pod);
  t.same(errors, [], `${where}: no evaluation error`);
  const result = injectPod(pod, { config, namespace, kubernetesVersion: '1.33' });
  if (engineActs(result)) t.ok(passes, `${where}: the engine ${result.outcome === 'skipped' ? `warns (${result.reason})` : result.outcome}, so the webhook is called`);
}

const chartFile = new URL('../../charts/thanos-sidecar-injector/files/match-conditions.yaml', import.meta.url).pathname;
const HEADER = '# Generated from src/inject/match-conditions.ts: UPDATE_MATCH_CONDITIONS=1 npx tap test/inject/match-conditions.test.ts\n';

void t.test("the chart's matchConditions are the engine's, generated (UPDATE_MATCH_CONDITIONS=1 rewrites them)", (t) => {
  const expected = HEADER + stringify(conditions, { lineWidth: 0 });
  if (process.env.UPDATE_MATCH_CONDITIONS === '1') writeFileSync(chartFile, expected);
  t.equal(readFileSync(chartFile, 'utf8'), expected, 'charts/thanos-sidecar-injector/files/match-conditions.yaml is current');
  t.end();
});

void t.test('the conditions compile and say what they are', (t) => {
  t.same(conditions.map((c) => c.name), ['not-a-mirror-pod', 'not-injected-yet', 'prometheus-or-own-thanos-sidecar']);
  for (const condition of conditions) t.notOk(isCelError(run(condition.expression, { object: new Map([['metadata', new Map()], ['spec', new Map([['containers', []]])]]), oldObject: null })), `${condition.name} evaluates`);
  t.end();
});

void t.test('every golden fixture: what the engine injects, denies or warns about is sent to it', (t) => {
  const dir = new URL('../fixtures/inject/', import.meta.url).pathname;
  let pods = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.config.yaml'))) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const visit = (object: { kind?: string; items?: unknown[] } | null) => {
        if (object?.kind === 'List') return object.items?.forEach((item) => visit(item as { kind?: string }));
        const pointer = object?.kind === undefined ? undefined : podPointer(object.kind);
        if (pointer === undefined) return;
        pods++;
        checkPod(t, `${file} ${object?.kind}`, resolvePointer(object, pointer) as PodLike);
      };
      visit(document.toJS() as { kind?: string } | null);
    }
  }
  t.ok(pods >= 40, `${pods} pods and pod templates checked`);
  t.end();
});

void t.test('dropped: nginx, batch jobs, mirror pods and pods that already have the sidecar', (t) => {
  const cases: [string, PodLike][] = [
    ['nginx', { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } }],
    ['a batch job', { spec: { containers: [{ name: 'job', image: 'busybox', command: ['sh', '-c', 'echo done'] }], restartPolicy: 'Never' } }],
    ['an exporter named like prometheus', { spec: { containers: [{ name: 'exporter', image: 'quay.io/prometheus/node-exporter:v1.9.0' }] } }],
    ['a mirror pod running Prometheus', { metadata: { annotations: { 'kubernetes.io/config.mirror': 'abc' } }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] } }],
    ['already injected (container)', { spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }, { name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5' }] } }],
    ['already injected (native)', { spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }], initContainers: [{ name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5', restartPolicy: 'Always' }] } }],
  ];
  for (const [name, pod] of cases) {
    const { passes, errors } = evaluate(pod);
    t.same(errors, [], `${name}: no error`);
    t.notOk(passes, `${name}: the webhook is not called`);
    t.notOk(engineActs(injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.33' })), `${name}: and the engine would have left it alone`);
  }
  const passing: [string, PodLike][] = [
    ['named prometheus', { spec: { containers: [{ name: 'prometheus', image: 'registry.example/custom:1' }] } }],
    ['a Prometheus image by digest', { spec: { containers: [{ name: 'server', image: 'registry:5000/mirror/prometheus@sha256:abc' }] } }],
    ['the escape hatch', { metadata: { annotations: { 'thanos-injector/prometheus-container': 'tsdb' } }, spec: { containers: [{ name: 'tsdb', image: 'example/tsdb' }] } }],
    ['its own sidecar, no Prometheus found', { spec: { containers: [{ name: 'app', image: 'example/app' }, { name: 'x', image: 'alpine', command: ['thanos', 'sidecar'] }] } }],
  ];
  for (const [name, pod] of passing) t.ok(evaluate(pod).passes, `${name}: the webhook is called`);
  t.end();
});

const NAMES = ['prometheus', 'server', 'thanos', 'thanos-sidecar', 'app', 'prometheus-server'];
const IMAGES = [undefined, 'nginx', 'quay.io/prometheus/prometheus:v3.16.0', 'prom/prometheus@sha256:0a', 'quay.io/thanos/thanos:v0.42.5', 'thanosio/thanos', 'example/prometheus-exporter:1', 'registry:5000/prometheus', 'alpine'];
const ARGV = [undefined, [], ['sidecar'], ['--storage.tsdb.path=/prometheus'], ['--agent'], ['thanos', 'sidecar'], ['sh', '-c', 'exec thanos sidecar'], ['query'], ['--log.level=debug', 'sidecar']];
const containerArb: fc.Arbitrary<V1Container> = fc.record({
  name: fc.constantFrom(...NAMES),
  image: fc.constantFrom(...IMAGES),
  command: fc.constantFrom(...ARGV),
  args: fc.constantFrom(...ARGV),
  restartPolicy: fc.constantFrom(undefined, 'Always'),
}).map((c) => Object.fromEntries(Object.entries(c).filter(([, value]) => value !== undefined)) as unknown as V1Container);
const annotationsArb = fc.option(fc.dictionary(
  fc.constantFrom('thanos-injector/prometheus-container', 'kubernetes.io/config.mirror', 'thanos-injector/existing-sidecar', 'thanos-injector/log-level', 'other'),
  fc.constantFrom('prometheus', 'server', 'share-user', 'verbose', 'x'),
), { nil: undefined });
const podArb: fc.Arbitrary<PodLike> = fc.record({
  annotations: annotationsArb,
  labels: fc.option(fc.constantFrom<Record<string, string>>({ 'thanos-injection': 'disabled' }, { app: 'x' }), { nil: undefined }),
  containers: fc.uniqueArray(containerArb, { minLength: 1, maxLength: 3, selector: (c) => c.name }),
  initContainers: fc.option(fc.uniqueArray(containerArb, { maxLength: 2, selector: (c) => c.name }), { nil: undefined }),
}).map(({ annotations, labels, containers, initContainers }) => ({
  metadata: { ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}) },
  spec: {
    containers: containers.map(({ restartPolicy: _, ...c }) => c),
    ...(initContainers ? { initContainers: initContainers.filter((c) => !containers.some((other) => other.name === c.name)) } : {}),
  },
}));

void t.test('generated pods: the conditions never error and never drop a pod the engine acts on', (t) => {
  const problems: string[] = [];
  fc.assert(fc.property(podArb, (pod) => {
    const { passes, errors } = evaluate(pod);
    if (errors.length > 0) problems.push(`error ${errors.join('; ')} on ${JSON.stringify(pod)}`);
    const result = injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.33' });
    if (engineActs(result) && !passes) problems.push(`dropped a pod the engine ${result.outcome === 'skipped' ? `warns about (${result.reason})` : result.outcome}: ${JSON.stringify(pod)}`);
    return problems.length === 0;
  }), { numRuns: 2000, seed: 20261205 });
  t.same(problems, [], 'no generated pod dropped wrongly or erroring');
  t.end();
});
