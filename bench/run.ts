// `npm run bench [-- --quick]`: the injector as the image runs it (the bundle of scripts/bundle.ts, with
// the Dockerfile's ENTRYPOINT flags) against a bare-fastify baseline over real HTTPS (autocannon,
// same connections, alternated rounds, medians), open-loop latency at a fixed rate, in-process
// cost by pod size, start to ready, and memory: idle, after 15 000 admissions at 500/s on a fresh
// server and once quiet again, after many admissions at full speed, and the memory floor (the
// bare-fastify baseline bundled and run the same way, idle and after the same 15 000). Ends with one summary line:
// inject_ratio=<x> passthrough_ratio=<y> p99_ms=<z> rss_mb=<w> idle_rss_mb=<v> rate_rss_mb=<u> quiet_rss_mb=<q> floor_idle_mb=<f> floor_rate_mb=<g> ready_ms=<t> scaling=<linear|superlinear>
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionReviewSchema, type AdmissionReview } from '../src/admission/schema.ts';
import { compileCheck } from '../src/validation.ts';
import { review } from '../src/admission/review.ts';
import { writeCertificates } from '../src/certs/files.ts';
import { buildConfig } from '../src/config/load.ts';
import { startFakeKube, writeKubeconfig } from '../test/support/fake-kube.ts';
import { passThroughReview, scaledReview, seedReview } from './fixtures.ts';
import { bundle } from '../scripts/bundle.ts';
import { imageEntrypoint } from '../test/support/serve.ts';
import { QUIET_MS } from '../src/server/quiet.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 3;
const SECONDS = quick ? 1 : 5;
const CONNECTIONS = 16;
const RATE = 500;
const OPEN_LOOP_SECONDS = quick ? 2 : 10;
const MEMORY_ADMISSIONS = quick ? 2_000 : 100_000;
/** The fresh server's admissions at RATE before its RSS is read. */
const RATE_ADMISSIONS = quick ? 2_000 : 15_000;
const root = new URL('..', import.meta.url).pathname;
/** The Node flags of the Dockerfile's ENTRYPOINT (its program, /app/dist/main.js, is the bundle made below). */
const NODE_FLAGS = imageEntrypoint().nodeArgs;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function start(args: string[]): ChildProcess {
  // stdout (the injector's info log, one line per admission) is drained, as in production.
  return spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function waitReady(url: string, ca: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await post(url, ca, '{}').then(() => true, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not start`);
}

function post(url: string, ca: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  cpuMicros: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A closed-loop run; `cpuMicros` is the server's CPU per answered request, steadier than requests/s on a shared machine. */
async function load(url: string, body: string, opts: { seconds?: number; amount?: number; pid?: number }): Promise<Load> {
  const cpuBefore = opts.pid !== undefined ? cpuSeconds(opts.pid) : 0;
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.seconds ?? SECONDS }),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuMicros: opts.pid !== undefined ? ((cpuSeconds(opts.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests.total) : 0,
  };
}

/**
 * A true open loop: one request every 1/rate s on a pool of keep-alive TLS connections, whatever
 * the answers do (autocannon's overallRate sends each connection's share in bursts, which
 * measures its own queueing more than the server).
 */
async function openLoopLatency(target: string, ca: string, body: string, rate: number, seconds: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, ca });
  const latencies: number[] = [];
  let failures = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const req = httpsRequest(target, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - started);
          else failures++;
          resolve();
        });
      });
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(body);
    });
  // Warm the pool so connection set-up is not counted as admission latency.
  await Promise.all(Array.from({ length: CONNECTIONS }, one));
  latencies.length = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = rate * seconds;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(one());
  }
  await Promise.all(pending);
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 100) / 100;
  return { rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99), max: at(1), errors: failures, cpuMicros: 0 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Milliseconds from `since` until the server's /readyz answers 200 (polled every 10 ms). */
async function readyAfter(child: ChildProcess, healthPort: number, since: number): Promise<number> {
  const deadline = since + 30_000;
  while ((await fetch(`http://127.0.0.1:${healthPort}/readyz`).then((r) => r.status, () => 0)) !== 200) {
    if (child.exitCode !== null || performance.now() > deadline) throw new Error(`serve did not become ready${child.exitCode === null ? '' : ` (exit ${child.exitCode})`}`);
    await sleep(10);
  }
  return performance.now() - since;
}

/** A process's RSS from /proc (what process_resident_memory_bytes reports for the injector). */
function processRssMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

async function rssMb(healthPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('process_resident_memory_bytes '));
  return Number(line?.split(' ')[1] ?? 0) / 1024 / 1024;
}

/** The body check: the server's route validates this same schema before the handler runs. */
const checkAdmissionReview = compileCheck(AdmissionReviewSchema);

/** Median microseconds of one in-process admission: parse, check, decide/render/patch, serialise. */
function inProcess(body: string, minMs = quick ? 100 : 400): number {
  const context = { config: buildConfig({}), kubernetesVersion: '1.34' };
  const once = () => {
    const parsed = JSON.parse(body) as AdmissionReview;
    if (checkAdmissionReview(parsed).length > 0) throw new Error('bad fixture');
    return JSON.stringify(review(parsed, context).answer);
  };
  // Warm up until the optimising compiler has seen this shape (the first size measured would
  // otherwise carry the JIT's cost).
  const warmUntil = performance.now() + (quick ? 50 : 300);
  while (performance.now() < warmUntil) once();
  const samples: number[] = [];
  const until = performance.now() + minMs;
  while (performance.now() < until || samples.length < 5) {
    const batch = Math.max(1, Math.floor(20_000 / body.length));
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) once();
    samples.push(((performance.now() - t0) * 1000) / batch);
  }
  return median(samples);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The idle RSS of `serve` as the chart runs it: certs auto mode, the certificate kept in a Secret
 * of an API (test/support/fake-kube.ts, a stand-in apiserver) reached with a kubeconfig token,
 * the cluster's version read from it at start.
 */
async function autoModeIdleRss(work: string, program: string, children: ChildProcess[]): Promise<number> {
  const api = await startFakeKube({ namespace: 'bench', secretName: 'bench-certs', webhookConfiguration: 'bench' });
  try {
    const kubeconfig = join(work, 'kubeconfig');
    await writeKubeconfig(kubeconfig, api.port, api.certs.caCert);
    const [port, healthPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [...NODE_FLAGS, program, 'serve', '--address', '127.0.0.1', '--port', String(port), '--health-port', String(healthPort),
      '--certs-secret', 'bench-certs', '--namespace', 'bench', '--webhook-config', 'bench', '--service-name', 'bench'],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, KUBECONFIG: kubeconfig } });
    children.push(child);
    await readyAfter(child, healthPort, performance.now());
    await sleep(2000);
    const rss = await rssMb(healthPort);
    child.kill('SIGTERM');
    return rss;
  } finally {
    await api.close();
  }
}

// ---------------------------------------------------------------------------------------------

const work = await mkdtemp(join(tmpdir(), 'thanos-injector-bench-'));
const children: ChildProcess[] = [];
try {
  const certs = await writeCertificates(work, ['127.0.0.1']);
  const ca = await readFile(certs.caFile, 'utf8');
  const seed = JSON.stringify(seedReview());
  const pass = JSON.stringify(passThroughReview());
  const context = { config: buildConfig({}), kubernetesVersion: '1.34' };
  // The baseline answers with canned responses of exactly the size the injector sends.
  await writeFile(join(work, 'inject.json'), JSON.stringify(review(JSON.parse(seed) as AdmissionReview, context).answer));
  await writeFile(join(work, 'pass.json'), JSON.stringify(review(JSON.parse(pass) as AdmissionReview, context).answer));

  // What the image runs: the bundle (its /app/dist), with the entrypoint's Node flags.
  const program = join(work, 'app/dist/main.js');
  await bundle({ outdir: join(work, 'app/dist') });
  // The memory floor of the stack: the bare-fastify baseline bundled and run the same way.
  await bundle({ outdir: join(work, 'floor') }, 'bench/baseline-server.ts');
  const [injectorPort, healthPort, baseInjectPort, basePassPort, floorPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const spawned = performance.now();
  children.push(start([...NODE_FLAGS, program, 'serve', '--address', '127.0.0.1', '--port', String(injectorPort), '--health-port', String(healthPort),
    '--tls-cert-file', certs.certFile, '--tls-key-file', certs.keyFile]));
  const readyMs = await readyAfter(children[0]!, healthPort, spawned);
  children.push(start(['bench/baseline-server.ts', String(baseInjectPort), certs.certFile, certs.keyFile, join(work, 'inject.json')]));
  children.push(start(['bench/baseline-server.ts', String(basePassPort), certs.certFile, certs.keyFile, join(work, 'pass.json')]));
  const floor = start([...NODE_FLAGS, join(work, 'floor/baseline-server.js'), String(floorPort), certs.certFile, certs.keyFile, join(work, 'inject.json')]);
  children.push(floor);
  const url = (port: number) => `https://127.0.0.1:${port}/mutate?timeout=10s`;
  await Promise.all([injectorPort, baseInjectPort, basePassPort, floorPort].map((port) => waitReady(url(port), ca)));
  // Idle: nothing asked since waitReady's request for a quiet spell (src/server/quiet.ts), and then some.
  await sleep(QUIET_MS + 2000);
  const rssIdle = await rssMb(healthPort);
  const floorIdle = processRssMb(floor.pid!);
  const rssIdleAuto = await autoModeIdleRss(work, program, children);
  // Memory at the rate of a busy cluster, on the fresh server: RATE_ADMISSIONS at RATE/s.
  const atRate = await openLoopLatency(url(injectorPort), ca, seed, RATE, RATE_ADMISSIONS / RATE);
  const rssAtRate = await rssMb(healthPort);
  // The same server once quiet again.
  await sleep(QUIET_MS + 2000);
  const rssQuiet = await rssMb(healthPort);
  const floorAtRate = await openLoopLatency(url(floorPort), ca, seed, RATE, RATE_ADMISSIONS / RATE);
  const floorRate = processRssMb(floor.pid!);
  floor.kill('SIGTERM');

  // The candidate answers what it should before it is timed.
  const injected = JSON.parse((await post(url(injectorPort), ca, seed)).body) as { response: { patch?: string } };
  const passed = JSON.parse((await post(url(injectorPort), ca, pass)).body) as { response: { allowed: boolean; patch?: string } };
  if (!injected.response.patch || passed.response.patch || !passed.response.allowed) throw new Error('the injector did not answer as expected');

  console.log(`thanos-sidecar-injector benchmark${quick ? ' (--quick)' : ''}: Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
  console.log(`seed AdmissionReview ${seed.length} B, pass-through ${pass.length} B; ${CONNECTIONS} keep-alive connections, ${SECONDS} s runs, ${ROUNDS} rounds\n`);
  const row = (label: string, value: string, target = '') => console.log(`${label.padEnd(44)} ${value.padStart(14)}   ${target}`);
  // In-process first, on a fresh heap with the servers idle.
  console.log('in-process admission (parse, check, decide, render, patch, serialise)');
  const seedMicros = inProcess(seed);
  row('  seed pod', `${seedMicros.toFixed(1)} us`, '(target <= 30 us)');
  const series: { label: string; sizes: number[]; body: (n: number) => string }[] = [
    { label: 'containers', sizes: [1, 10, 100], body: (n) => JSON.stringify(scaledReview(n, 0)) },
    { label: 'env vars', sizes: [10, 1_000, 10_000], body: (n) => JSON.stringify(scaledReview(1, n)) },
  ];
  let linear = true;
  let env10k = 0;
  for (const { label, sizes, body } of series) {
    const points = sizes.map((n) => {
      const text = body(n);
      return { n, bytes: text.length, micros: inProcess(text) };
    });
    for (const p of points) row(`  ${p.n} ${label} (${(p.bytes / 1024).toFixed(0)} KiB)`, `${p.micros.toFixed(1)} us`, `${(p.micros / (p.bytes / 1024)).toFixed(2)} us/KiB`);
    const [, mid, large] = points as [unknown, { bytes: number; micros: number }, { bytes: number; micros: number }];
    const growth = large.micros / mid.micros / (large.bytes / mid.bytes);
    row(`  slope ${label}: time growth / size growth`, growth.toFixed(2), '(1 = linear)');
    if (growth > 1.5) linear = false;
    if (label === 'env vars') env10k = large.micros;
  }
  row('  10 000 env vars', `${(env10k / 1000).toFixed(2)} ms`, '(target <= 5 ms)');
  console.log('');

  for (const port of [injectorPort, baseInjectPort, basePassPort]) await load(url(port), seed, { seconds: quick ? 0.5 : 2 }); // warm-up
  const rounds: Record<string, number[]> = { baseline: [], inject: [], baselinePass: [], pass: [] };
  const cpu: Record<string, number[]> = { baseline: [], inject: [], baselinePass: [], pass: [] };
  const rssByRound: number[] = [];
  let errors = 0;
  const [injector, baseInject, basePass] = children.map((child) => child.pid!) as [number, number, number];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, port, pid, body] of [['baseline', baseInjectPort, baseInject, seed], ['inject', injectorPort, injector, seed], ['baselinePass', basePassPort, basePass, pass], ['pass', injectorPort, injector, pass]] as const) {
      const result = await load(url(port), body, { pid });
      rounds[name]!.push(result.rps);
      cpu[name]!.push(result.cpuMicros);
      errors += result.errors;
    }
    rssByRound.push(await rssMb(healthPort));
  }
  const injectRatio = median(rounds.inject!) / median(rounds.baseline!);
  const passRatio = median(rounds.pass!) / median(rounds.baselinePass!);

  const openLoop = await openLoopLatency(url(injectorPort), ca, seed, RATE, OPEN_LOOP_SECONDS);
  errors += openLoop.errors + atRate.errors + floorAtRate.errors;

  const rssBefore = await rssMb(healthPort);
  const memory = await load(url(injectorPort), seed, { amount: MEMORY_ADMISSIONS });
  errors += memory.errors;
  const rssAfter = await rssMb(healthPort);

  console.log('throughput (median requests/s; server CPU per request, median us)');
  const cpuOf = (name: string) => `${median(cpu[name]!).toFixed(0).padStart(4)} us`;
  row('  baseline: bare fastify, seed body', median(rounds.baseline!).toFixed(0), cpuOf('baseline'));
  row('  inject path: seed Prometheus pod', median(rounds.inject!).toFixed(0), `${cpuOf('inject')}   ratio ${injectRatio.toFixed(2)} (target >= 0.60)`);
  row('  baseline: bare fastify, pass-through body', median(rounds.baselinePass!).toFixed(0), cpuOf('baselinePass'));
  row('  pass-through path: non-Prometheus pod', median(rounds.pass!).toFixed(0), `${cpuOf('pass')}   ratio ${passRatio.toFixed(2)} (target >= 0.90)`);
  row('  CPU ratios (baseline us / injector us)', `${(median(cpu.baseline!) / median(cpu.inject!)).toFixed(2)} / ${(median(cpu.baselinePass!) / median(cpu.pass!)).toFixed(2)}`, 'inject / pass-through');
  console.log(`\nopen loop, inject path at ${RATE} requests/s for ${OPEN_LOOP_SECONDS} s`);
  row('  p50 / p99 / max latency (ms)', `${openLoop.p50} / ${openLoop.p99} / ${openLoop.max}`, '(target p99 <= 5 ms)');


  console.log(`\nstart (node ${NODE_FLAGS.join(' ')} <bundle>/main.js serve, certificate files)`);
  row('  spawn to /readyz 200', `${readyMs.toFixed(0)} ms`, '(target <= 300 ms)');
  console.log('\nmemory (injector RSS, as process_resident_memory_bytes reports it)');
  row('  idle: certificate files', `${rssIdle.toFixed(0)} MB`);
  row("  idle: certs auto mode (the chart's default)", `${rssIdleAuto.toFixed(0)} MB`, '(target <= 64 MB)');
  row(`  fresh, after ${RATE_ADMISSIONS} admissions at ${RATE}/s`, `${rssAtRate.toFixed(0)} MB`, `(target <= 80 MB; p99 ${atRate.p99} ms)`);
  row(`  the same, once quiet (${(QUIET_MS + 2000) / 1000} s later)`, `${rssQuiet.toFixed(0)} MB`);
  row('  floor, bare fastify bundled alike: idle', `${floorIdle.toFixed(0)} MB`);
  row(`  floor, after ${RATE_ADMISSIONS} at ${RATE}/s`, `${floorRate.toFixed(0)} MB`);
  console.log(`  after each throughput round ${rssByRound.map((r) => r.toFixed(0)).join(', ')} MB`);
  row(`  before / after ${MEMORY_ADMISSIONS} admissions`, `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`, '(target <= 100 MB)');
  row('  failed requests in all runs', String(errors));
  console.log('');
  console.log(`inject_ratio=${injectRatio.toFixed(2)} passthrough_ratio=${passRatio.toFixed(2)} p99_ms=${openLoop.p99} rss_mb=${rssAfter.toFixed(0)} idle_rss_mb=${rssIdleAuto.toFixed(0)} rate_rss_mb=${rssAtRate.toFixed(0)} quiet_rss_mb=${rssQuiet.toFixed(0)} floor_idle_mb=${floorIdle.toFixed(0)} floor_rate_mb=${floorRate.toFixed(0)} ready_ms=${readyMs.toFixed(0)} scaling=${linear ? 'linear' : 'superlinear'}`);
  if (errors > 0) process.exitCode = 1;
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(work, { recursive: true, force: true });
}
