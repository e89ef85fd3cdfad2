// The Kubernetes API unreachable or hung, as `serve` (a process) sees it through KUBECONFIG:
// (a) a black hole (accepts, completes TLS, never answers), a raw TCP black hole (never answers the
//     ClientHello) and a closed port: the webhook still becomes ready within its version-lookup
//     budget (src/kube/version.ts: 3 s), answers admissions in milliseconds, and stops on SIGTERM;
// (b) certs auto mode (--certs-secret) with a fake API that serves the start-up calls (GET/POST
//     Secret, GET/PATCH MutatingWebhookConfiguration, /version) and then stalls: admissions keep
//     being answered in milliseconds while the background check hangs, and SIGTERM still stops it.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../src/certs/generate.ts';
import { startBlackHole, startFakeKube, writeKubeconfig } from '../support/fake-kube.ts';
import { startServe, type StartedServe } from '../support/serve.ts';
import { admissionReview, freePort, httpGet, injectedProblem, ms, percentile, postReview, prometheusPod, readinessOff, sleep, waitFor, within } from '../support/stress.ts';

t.setTimeout(400_000);

const VERSION_BUDGET_MS = 3000; // src/kube/version.ts
/** Slack on the budget, as serve itself measures the lookup (its log line): a deadline timer fires
 * late on a busy machine. Start-up as a whole is not timed against a baseline: on a loaded machine
 * loading the modules alone varies by seconds between two runs. */
const LOOKUP_MARGIN_MS = 2000;
const DRAIN_SECONDS = 5;
const EXIT_MARGIN_MS = 2000;
const ADMISSIONS = 30;

let baselineReadyMs = 0;

/** How these tests run serve: a short drain, and time to be ready on a loaded machine. */
const SERVE = { args: ['--drain-timeout', String(DRAIN_SECONDS)], readyTimeoutMs: 60_000 };

/** `count` reviews one after the other over one keep-alive connection; latencies and problems. */
async function admissions(port: number, ca: string, count: number, label: string): Promise<{ latencies: number[]; problems: string[] }> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const problems: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const uid = `${label}-${i}`;
      const started = performance.now();
      try {
        const answer = await postReview(port, ca, admissionReview(prometheusPod(), { uid }), agent, 10_000);
        const problem = injectedProblem(answer, uid);
        if (problem) problems.push(problem);
      } catch (error) {
        problems.push(`no answer: ${(error as Error).message}`);
      }
      latencies.push(performance.now() - started);
    }
  } finally {
    agent.destroy();
  }
  return { latencies, problems };
}

const figures = (latencies: number[]) => `p50 ${ms(percentile(latencies, 50))}, p90 ${ms(percentile(latencies, 90))}, max ${ms(Math.max(...latencies))}`;

/** SIGTERM, then when readiness went off and when the process exited (undefined: not within `waitMs`). */
async function stop(s: StartedServe, waitMs: number): Promise<{ readyOffMs?: number; exitMs?: number; code?: number | null }> {
  const signalledAt = performance.now();
  s.serve.child.kill('SIGTERM');
  const [readyOffMs, exit] = await Promise.all([readinessOff(s.healthPort, signalledAt, waitMs, 50), within(s.serve.exited, waitMs)]);
  return { ...(readyOffMs !== undefined ? { readyOffMs } : {}), ...(exit ? { exitMs: exit.at - signalledAt, code: exit.code } : {}) };
}

void t.test('baseline: serve without any cluster configured', async (t) => {
  const s = await startServe(t, SERVE);
  baselineReadyMs = s.readyMs;
  const { latencies, problems } = await admissions(s.port, s.ca, ADMISSIONS, 'baseline');
  const stopped = await stop(s, 10_000);
  t.comment(`ready ${s.readyMs.toFixed(0)} ms after spawn; admissions ${figures(latencies)}; exit ${stopped.exitMs?.toFixed(0) ?? 'never'} ms after SIGTERM`);
  t.same(problems, [], 'admissions are injected');
  t.equal(stopped.code, 0, 'exits 0 on SIGTERM');
});

for (const kind of ['tls black hole', 'tcp black hole', 'closed port'] as const) {
  void t.test(`(a) KUBECONFIG points at a ${kind}: the version lookup gives up within its ${VERSION_BUDGET_MS / 1000} s budget, admissions in milliseconds, SIGTERM stops it`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-faults-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const hole = kind === 'closed port' ? undefined : await startBlackHole(kind === 'tls black hole' ? 'tls' : 'tcp');
    if (hole) t.teardown(() => hole.close());
    const apiPort = hole?.port ?? (await freePort());
    const kubeconfig = join(dir, 'kubeconfig');
    await writeKubeconfig(kubeconfig, apiPort, hole?.certs.caCert ?? (await generateCertificates(['127.0.0.1'])).caCert);
    const s = await startServe(t, { ...SERVE, home: dir, env: { KUBECONFIG: kubeconfig } });
    const { latencies, problems } = await admissions(s.port, s.ca, ADMISSIONS, kind.replace(/ /g, '-'));
    const waited = /no cluster answered \(waited (\d+) ms\); using kubernetesVersion/.exec(s.serve.output)?.[1];
    const stopped = await stop(s, (DRAIN_SECONDS + 5) * 1000);
    t.comment(`ready ${s.readyMs.toFixed(0)} ms after spawn (baseline without a cluster ${baselineReadyMs.toFixed(0)} ms), version lookup ${waited ?? '?'} ms; ${hole ? `${hole.connections()} connection(s) reached the API; ` : ''}admissions ${figures(latencies)}`);
    t.comment(`SIGTERM: readiness off after ${stopped.readyOffMs?.toFixed(0) ?? 'never'} ms, exit ${stopped.exitMs !== undefined ? `code ${String(stopped.code)} after ${stopped.exitMs.toFixed(0)} ms` : `not within ${DRAIN_SECONDS + 5} s`}`);

    t.ok(waited !== undefined, 'the log says no cluster answered, how long it waited and which version is assumed');
    t.ok(Number(waited) <= VERSION_BUDGET_MS + LOOKUP_MARGIN_MS, `the version lookup gave up within its budget: ${waited ?? '?'} ms <= ${VERSION_BUDGET_MS} + ${LOOKUP_MARGIN_MS} ms`);
    t.same(problems, [], `all ${ADMISSIONS} admissions are injected`);
    t.ok(percentile(latencies, 50) < 100, `admissions answered in milliseconds (p50 ${ms(percentile(latencies, 50))})`);
    t.ok(Math.max(...latencies) < 1000, `no admission waits for the API (max ${ms(Math.max(...latencies))})`);
    t.ok(stopped.readyOffMs !== undefined && stopped.readyOffMs < 1000, 'readiness turns off within 1 s of SIGTERM');
    t.equal(stopped.code, 0, 'the process exits 0 on SIGTERM');
    t.ok(stopped.exitMs !== undefined && stopped.exitMs < DRAIN_SECONDS * 1000 + EXIT_MARGIN_MS, `within the drain time (${DRAIN_SECONDS} s + ${EXIT_MARGIN_MS / 1000} s): ${stopped.exitMs !== undefined ? `${stopped.exitMs.toFixed(0)} ms` : 'it had not exited'}`);
  });
}

void t.test('(b) certs auto mode: the API serves the start-up, then hangs; admissions stay fast, SIGTERM still stops the webhook', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const api = await startFakeKube({ namespace: 'thanos-injector', secretName: 'thanos-injector-certs', webhookConfiguration: 'thanos-injector' });
  t.teardown(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfig, api.port, api.certs.caCert);
  const s = await startServe(t, {
    ...SERVE,
    home: dir,
    env: { KUBECONFIG: kubeconfig },
    certArgs: ['--certs-secret', 'thanos-injector-certs', '--namespace', 'thanos-injector', '--webhook-config', 'thanos-injector', '--dns-name', '127.0.0.1', '--dns-name', 'localhost', '--certs-check-interval', '1'],
  });
  // The first check patches caBundle; wait for it, then make every API call hang.
  await waitFor('the caBundle patch of the first check', () => Promise.resolve(api.calls.some((c) => c.method === 'PATCH') ? true : undefined), 10_000);
  const ca = api.caBundle();
  t.ok(ca !== undefined, 'the injector created the Secret (its CA is what clients trust)');
  t.comment(`start-up calls: ${api.calls.map((c) => `${c.method} ${c.path.replace(/^\/apis?\/[^/]+\/(v1\/)?/, '')}`).join(', ')}; ready ${s.readyMs.toFixed(0)} ms after spawn`);
  api.stall();
  const stalledAt = performance.now();

  // 12 s of admissions: the keeper's checks hang on the API (10 s per call) meanwhile.
  const latencies: number[] = [];
  const problems: string[] = [];
  let readyWhileHung = true;
  while (performance.now() - stalledAt < 12_000) {
    const round = await admissions(s.port, ca as string, 5, `hung-${latencies.length}`);
    latencies.push(...round.latencies);
    problems.push(...round.problems);
    if ((await httpGet(s.healthPort, '/readyz', 1000).then((a) => a.status, () => 0)) !== 200) readyWhileHung = false;
    await sleep(200);
  }
  const hung = api.stalled();
  t.comment(`while the API hung (${hung} call(s) left hanging): ${latencies.length} admissions, ${figures(latencies)}`);
  t.ok(hung >= 1, 'the background check did call the hung API');
  t.same(problems.slice(0, 5), [], 'every admission was injected');
  t.ok(percentile(latencies, 50) < 100, `admissions answered in milliseconds (p50 ${ms(percentile(latencies, 50))})`);
  t.ok(Math.max(...latencies) < 1000, `none waited for the API (max ${ms(Math.max(...latencies))})`);
  t.ok(readyWhileHung, 'readiness stays 200 (the webhook can serve)');
  t.match(s.serve.output, /read Secret thanos-injector\/thanos-injector-certs: .*(abort|timeout)/i, 'the hung call is cut by its timeout and logged');

  // SIGTERM just as a new check starts hanging.
  const before = api.stalled();
  await waitFor('a fresh check hanging on the API', () => Promise.resolve(api.stalled() > before ? true : undefined), 15_000, 20).catch(() => undefined);
  const stopped = await stop(s, 25_000);
  t.comment(`SIGTERM during a hung check: readiness off after ${stopped.readyOffMs?.toFixed(0) ?? 'never'} ms, exit ${stopped.exitMs !== undefined ? `code ${String(stopped.code)} after ${stopped.exitMs.toFixed(0)} ms` : 'not within 25 s'} (drain timeout ${DRAIN_SECONDS} s)`);
  t.ok(stopped.readyOffMs !== undefined && stopped.readyOffMs < 1000, `readiness turns off within 1 s of SIGTERM (${stopped.readyOffMs?.toFixed(0) ?? 'never'} ms)`);
  t.equal(stopped.code, 0, 'the process exits 0');
  t.ok(stopped.exitMs !== undefined && stopped.exitMs < DRAIN_SECONDS * 1000 + EXIT_MARGIN_MS, `within the drain time (${DRAIN_SECONDS} s + ${EXIT_MARGIN_MS / 1000} s): ${stopped.exitMs?.toFixed(0) ?? 'not exited'} ms`);
});
