// Soak: a steady 300 requests/s (autocannon overallRate, unique uids) on the inject path for
// STRESS_SECONDS (default 60) after a warm-up, against `node src/main.ts serve` as a separate
// process (its log drained). Zero errors, zero non-2xx, every answer an injected AdmissionReview,
// the rate held, latency within the webhook's timeout, and RSS (from /metrics) growing under 10 %
// from the end of the warm-up to the end.
import t from 'tap';
import autocannon from 'autocannon';
import https from 'node:https';
import { seedReview } from '../../bench/fixtures.ts';
import { startServe } from '../support/serve.ts';
import { httpGet, injectedProblem, mb, metricValue, postReview, within } from './support.ts';

t.setTimeout(600_000);

const RATE = 300;
const SECONDS = Math.max(5, Number(process.env.STRESS_SECONDS ?? 60));
const WARMUP = Math.min(10, Math.max(3, Math.round(SECONDS / 6)));
const CONNECTIONS = 10;
/** The chart's timeoutSeconds: an answer slower than this fails the pod under the apiserver. */
const WEBHOOK_TIMEOUT_MS = 5000;

interface Sample {
  at: number;
  rss: number;
  heap: number;
  lagP99: number;
  injected: number;
}

void t.test(`soak: ${RATE} requests/s for ${SECONDS} s (+${WARMUP} s warm-up) on the inject path of a serve process`, async (t) => {
  const { serve, port, healthPort, ca, readyMs } = await startServe(t);
  t.comment(`serve ready ${readyMs.toFixed(0)} ms after spawn`);

  // A verified request first (autocannon itself does not verify certificates).
  const probeAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => probeAgent.destroy());
  const probe = async (uid: string) => {
    const review = seedReview();
    (review.request as { uid: string }).uid = uid;
    return injectedProblem(await postReview(port, ca, review, probeAgent), uid);
  };
  t.equal(await probe('soak-first'), '', 'a request verified against the CA is injected');

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
  let warmSample: Sample | undefined;
  const warmTimer = setTimeout(() => {
    void sample().then(() => (warmSample = samples[samples.length - 1]));
  }, WARMUP * 1000);
  t.teardown(() => clearTimeout(warmTimer));

  const body = JSON.stringify(seedReview()).replace('"uid":"bench-uid-0001"', '"uid":"soak-[<id>]"');
  let badBodies = 0;
  let firstBad = '';
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/mutate?timeout=10s`,
    connections: CONNECTIONS,
    overallRate: RATE,
    duration: WARMUP + SECONDS,
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
  clearInterval(sampler);
  await sample();
  const end = samples[samples.length - 1] as Sample;
  const warm: Sample = warmSample ?? samples[0] ?? end;

  const completed = result['2xx'] + result.non2xx;
  const achieved = completed / result.duration;
  t.comment(`autocannon: ${completed} answered in ${result.duration.toFixed(1)} s (${achieved.toFixed(0)}/s of ${RATE}/s target), ${result['2xx']} 2xx, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${badBodies} bad bodies`);
  t.comment(`latency ms: p50 ${result.latency.p50} p90 ${result.latency.p90} p99 ${result.latency.p99} p99.9 ${result.latency.p99_9} max ${result.latency.max}`);
  t.comment(`RSS: start of run ${mb(samples[0]?.rss ?? NaN)}, warm-up end (${warm.at.toFixed(0)} s) ${mb(warm.rss)}, end (${end.at.toFixed(0)} s) ${mb(end.rss)}: ${(((end.rss - warm.rss) / warm.rss) * 100).toFixed(1)} %`);
  t.comment(`samples (s: rss/heap MB, event-loop lag p99 ms): ${samples.map((s) => `${s.at.toFixed(0)}: ${(s.rss / 2 ** 20).toFixed(0)}/${(s.heap / 2 ** 20).toFixed(0)}, ${(s.lagP99 * 1000).toFixed(1)}`).join('; ')}`);
  t.comment(`serve wrote ${serve.lines} log lines (${mb(serve.bytes)}) to its drained stdout`);

  t.equal(result.errors, 0, 'no connection errors');
  t.equal(result.timeouts, 0, 'no timeouts');
  t.equal(result.non2xx, 0, 'no non-2xx answer');
  t.equal(badBodies, 0, `every answer is an injected AdmissionReview echoing its uid${firstBad ? ` (first bad: ${firstBad})` : ''}`);
  t.same(probeProblems, [], `the ${probes} verified probes during the run were injected`);
  t.ok(achieved >= RATE * 0.9, `the rate was held: ${achieved.toFixed(0)}/s >= 90 % of ${RATE}/s`);
  t.ok(result.latency.max < WEBHOOK_TIMEOUT_MS, `no answer took the webhook's ${WEBHOOK_TIMEOUT_MS} ms timeout (max ${result.latency.max} ms)`);
  t.ok(Number.isFinite(warm.rss) && Number.isFinite(end.rss), 'RSS read from /metrics');
  t.ok(end.rss < warm.rss * 1.1, `RSS grew under 10 % after the warm-up: ${mb(warm.rss)} -> ${mb(end.rss)}`);
  t.ok(end.injected >= result['2xx'], `thanos_injector_admissions_total{outcome="injected"} (${end.injected}) counts every answered request (${result['2xx']})`);

  const signalled = performance.now();
  serve.child.kill('SIGTERM');
  const exit = await within(serve.exited, 25_000);
  t.equal(exit?.code, 0, `serve exits 0 on SIGTERM after the soak (${exit ? `${(exit.at - signalled).toFixed(0)} ms` : 'not within 25 s'})`);
});
