// Soak and leak check: a steady 300 requests/s (autocannon overallRate, unique uids) on the inject
// path of a serve process run as the image runs it (the Dockerfile's Node flags, dist/main.js),
// for STRESS_SECONDS (default 60) after a warm-up. Zero errors, zero non-2xx, every answer an
// injected AdmissionReview, the rate held, latency within the webhook's timeout.
//
// Leaks are judged the way leak tests do it: the JavaScript heap still in use after a full
// garbage collection (through the inspector), after the warm-up and after the soak, both with no
// load; what stays per admission must be under RETAINED_PER_ADMISSION. RSS is a figure, not the
// leak measure (it steps up once as V8 and the allocator grow their pools, then stays flat), with
// one ceiling: the chart's memory limit, which would OOM-kill the pod. A second test plants a leak
// (every parsed review kept) and shows that the check fails on it.
import t, { type Test } from 'tap';
import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { parse } from 'yaml';
import { seedReview } from '../../bench/fixtures.ts';
import { Inspector, inspectorUrl } from '../support/inspector.ts';
import { imageEntrypoint, startServe, type StartedServe } from '../support/serve.ts';
import { httpGet, injectedProblem, mb, metricValue, postReview, waitFor, within } from '../support/stress.ts';

t.setTimeout(600_000);

const RATE = 300;
const SECONDS = Math.max(5, Number(process.env.STRESS_SECONDS ?? 60));
const WARMUP = Math.min(10, Math.max(3, Math.round(SECONDS / 6)));
const CONNECTIONS = 10;
/** The chart's timeoutSeconds: an answer slower than this fails the pod under the apiserver. */
const WEBHOOK_TIMEOUT_MS = 5000;
/**
 * Heap kept per admission beyond which the soak counts as leaking. The seed review the webhook
 * parses is about 2.5 KB and its parsed object several times that: a leak of anything per review
 * is far above this; the webhook's own steady state (compiled code, bounded metric series) is not
 * per admission.
 */
const RETAINED_PER_ADMISSION = 64;
/** Retained growth below this is noise whatever the count (code caches, inline caches, pino buffers). */
const RETAINED_FLOOR = 2 * 2 ** 20;

const root = new URL('../..', import.meta.url).pathname;

/** The chart's container memory limit in bytes (values.yaml resources.limits.memory, Mi or Gi). */
function chartMemoryLimit(): number {
  const values = parse(readFileSync(join(root, 'charts/thanos-sidecar-injector/values.yaml'), 'utf8')) as { resources: { limits: { memory: string } } };
  const match = /^(\d+)(Mi|Gi)$/.exec(values.resources.limits.memory);
  if (!match) throw new Error(`values.yaml resources.limits.memory is not <n>Mi or <n>Gi: ${values.resources.limits.memory}`);
  return Number(match[1]) * 2 ** (match[2] === 'Gi' ? 30 : 20);
}

interface Sample {
  at: number;
  rss: number;
  heap: number;
  lagP99: number;
  injected: number;
}

interface Load {
  result: autocannon.Result;
  badBodies: number;
  firstBad: string;
}

/** `seconds` of RATE requests/s of the seed review (unique uids) on CONNECTIONS keep-alive TLS connections. */
async function load(port: number, ca: string, seconds: number): Promise<Load> {
  const body = JSON.stringify(seedReview()).replace('"uid":"bench-uid-0001"', '"uid":"soak-[<id>]"');
  let badBodies = 0;
  let firstBad = '';
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/mutate?timeout=10s`,
    connections: CONNECTIONS,
    overallRate: RATE,
    duration: seconds,
    timeout: 10,
    idReplacement: true,
    tlsOptions: { ca },
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
        body,
        onResponse: (status: number, text: string) => {
          if (status === 200 && text.includes('"allowed":true') && text.includes('"patchType":"JSONPatch"') && /"uid":"soak-[^"]+"/.test(text)) return;
          badBodies++;
          if (firstBad === '') firstBad = `HTTP ${status}: ${text.slice(0, 200)}`;
        },
      },
    ],
  });
  return { result, badBodies, firstBad };
}

/** serve as the image runs it, with its inspector on loopback (and, for the self-check, a planted leak). */
async function startImageServe(t: Test, plantLeak: boolean): Promise<StartedServe & { inspector: Inspector }> {
  const image = imageEntrypoint();
  const extra = ['--inspect=127.0.0.1:0', ...(plantLeak ? ['--import', join(root, 'test/support/planted-leak.ts')] : [])];
  const started = await startServe(t, { entrypoint: { nodeArgs: [...image.nodeArgs, ...extra], script: image.script } });
  const url = await waitFor('the inspector URL in the serve output', () => Promise.resolve(inspectorUrl(started.serve.output)), 5000);
  const inspector = await Inspector.connect(url);
  t.teardown(() => inspector.close());
  return { ...started, inspector };
}

/** The leak verdict: '' when the heap kept after a collection grew by less than the limits allow. */
function leakProblem(before: number, after: number, admissions: number): string {
  const allowed = Math.max(RETAINED_FLOOR, admissions * RETAINED_PER_ADMISSION);
  const grown = after - before;
  return grown < allowed ? '' : `retained heap grew ${mb(grown)} over ${admissions} admissions (${(grown / admissions).toFixed(0)} bytes each; allowed ${mb(allowed)})`;
}

const retainedFigures = (before: number, after: number, admissions: number) =>
  `retained heap after a full collection: ${mb(before)} after the warm-up, ${mb(after)} after ${admissions} more admissions (${(((after - before) / Math.max(1, admissions)) | 0)} bytes each)`;

void t.test(`soak: ${RATE} requests/s for ${SECONDS} s (+${WARMUP} s warm-up) on the inject path of serve run as the image runs it`, async (t) => {
  const { serve, port, healthPort, ca, readyMs, inspector } = await startImageServe(t, false);
  t.comment(`serve (${imageEntrypoint().nodeArgs.join(' ')}) ready ${readyMs.toFixed(0)} ms after spawn`);

  // A verified request first (autocannon itself does not verify certificates).
  const probeAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => probeAgent.destroy());
  const probe = async (uid: string) => {
    const review = seedReview();
    (review.request as { uid: string }).uid = uid;
    return injectedProblem(await postReview(port, ca, review, probeAgent), uid);
  };
  t.equal(await probe('soak-first'), '', 'a request verified against the CA is injected');

  const warmup = await load(port, ca, WARMUP);
  const retainedBefore = await inspector.retainedHeap();
  const injectedBefore = metricValue((await httpGet(healthPort, '/metrics', 3000)).text, 'thanos_injector_admissions_total', { outcome: 'injected' }) ?? NaN;

  const samples: Sample[] = [];
  const started = performance.now();
  const sample = async () => {
    const metrics = (await httpGet(healthPort, '/metrics', 3000)).text;
    samples.push({
      at: (performance.now() - started) / 1000,
      rss: metricValue(metrics, 'process_resident_memory_bytes') ?? NaN,
      heap: metricValue(metrics, 'nodejs_heap_size_used_bytes') ?? NaN,
      lagP99: metricValue(metrics, 'nodejs_eventloop_lag_p99_seconds') ?? NaN,
      injected: metricValue(metrics, 'thanos_injector_admissions_total', { outcome: 'injected' }) ?? NaN,
    });
  };
  await sample();
  let probes = 0;
  const probeProblems: string[] = [];
  const sampler = setInterval(() => {
    void sample().catch((error: Error) => probeProblems.push(`metrics: ${error.message}`));
    probes++;
    void probe(`soak-probe-${probes}`).then(
      (problem) => problem && probeProblems.push(problem),
      (error: Error) => probeProblems.push(`probe: ${error.message}`),
    );
  }, 5000);
  t.teardown(() => clearInterval(sampler));
  const soak = await load(port, ca, SECONDS);
  clearInterval(sampler);
  await sample();
  const end = samples[samples.length - 1] as Sample;
  const retainedAfter = await inspector.retainedHeap();
  const admissions = end.injected - injectedBefore;

  const { result } = soak;
  const completed = result['2xx'] + result.non2xx;
  const achieved = completed / result.duration;
  t.comment(`autocannon: warm-up ${warmup.result['2xx']} 2xx; soak ${completed} answered in ${result.duration.toFixed(1)} s (${achieved.toFixed(0)}/s of ${RATE}/s target), ${result['2xx']} 2xx, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${soak.badBodies} bad bodies`);
  t.comment(`latency ms: p50 ${result.latency.p50} p90 ${result.latency.p90} p99 ${result.latency.p99} p99.9 ${result.latency.p99_9} max ${result.latency.max}`);
  t.comment(retainedFigures(retainedBefore, retainedAfter, admissions));
  t.comment(`RSS: ${mb(samples[0]?.rss ?? NaN)} at the start of the soak, ${mb(Math.max(...samples.map((s) => s.rss)))} at most, ${mb(end.rss)} at the end`);
  t.comment(`samples (s: rss/heap MB, event-loop lag p99 ms): ${samples.map((s) => `${s.at.toFixed(0)}: ${(s.rss / 2 ** 20).toFixed(0)}/${(s.heap / 2 ** 20).toFixed(0)}, ${(s.lagP99 * 1000).toFixed(1)}`).join('; ')}`);
  t.comment(`serve wrote ${serve.lines} log lines (${mb(serve.bytes)}) to its drained stdout`);

  for (const [phase, run] of [['warm-up', warmup], ['soak', soak]] as const) {
    t.equal(run.result.errors, 0, `${phase}: no connection errors`);
    t.equal(run.result.timeouts, 0, `${phase}: no timeouts`);
    t.equal(run.result.non2xx, 0, `${phase}: no non-2xx answer`);
    t.equal(run.badBodies, 0, `${phase}: every answer is an injected AdmissionReview echoing its uid${run.firstBad ? ` (first bad: ${run.firstBad})` : ''}`);
  }
  t.same(probeProblems, [], `the ${probes} verified probes during the run were injected`);
  t.ok(achieved >= RATE * 0.9, `the rate was held: ${achieved.toFixed(0)}/s >= 90 % of ${RATE}/s`);
  t.ok(result.latency.max < WEBHOOK_TIMEOUT_MS, `no answer took the webhook's ${WEBHOOK_TIMEOUT_MS} ms timeout (max ${result.latency.max} ms)`);
  t.ok(admissions >= result['2xx'], `thanos_injector_admissions_total{outcome="injected"} grew by every answered request (${admissions} >= ${result['2xx']})`);
  t.equal(leakProblem(retainedBefore, retainedAfter, admissions), '', 'no leak: the heap kept after a collection did not grow with the admissions');
  const limit = chartMemoryLimit();
  const peak = Math.max(...samples.map((s) => s.rss));
  t.ok(Number.isFinite(peak) && peak < limit, `RSS stayed under the chart's memory limit (${mb(limit)}): at most ${mb(peak)}`);

  inspector.close(); // an open inspector session would keep the process alive after the drain
  const signalled = performance.now();
  serve.child.kill('SIGTERM');
  const exit = await within(serve.exited, 25_000);
  t.equal(exit?.code, 0, `serve exits 0 on SIGTERM after the soak (${exit ? `${(exit.at - signalled).toFixed(0)} ms` : 'not within 25 s'})`);
});

void t.test('the leak check fails on a planted leak (every parsed review kept)', async (t) => {
  const { port, healthPort, ca, inspector } = await startImageServe(t, true);
  const injected = async () => metricValue((await httpGet(healthPort, '/metrics', 3000)).text, 'thanos_injector_admissions_total', { outcome: 'injected' }) ?? NaN;
  await load(port, ca, 3);
  const before = await inspector.retainedHeap();
  const injectedBefore = await injected();
  const run = await load(port, ca, 10);
  const after = await inspector.retainedHeap();
  const admissions = (await injected()) - injectedBefore;
  t.comment(retainedFigures(before, after, admissions));
  t.equal(run.result.non2xx + run.result.errors, 0, 'the leaking server still answers every review');
  t.ok(admissions >= RATE * 10 * 0.9, `the load reached it (${admissions} admissions)`);
  t.match(leakProblem(before, after, admissions), /^retained heap grew/, 'the leak check names the growth');
});
