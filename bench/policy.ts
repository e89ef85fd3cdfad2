// `npm run bench:policy`: what injecting one Prometheus pod costs the apiserver, with the policy
// (`thanos-injector policy`, evaluated in the apiserver) against the webhook (the injector on
// loopback, called over HTTPS), on the real control plane of the tests (v1.37.2). The same pod (the
// prometheus-community chart's server, which the policy claims) is created with server-side dry-run
// ROUNDS times, one at a time, with only one back end bound. Printed: the apiserver's own admission
// latency metric for that back end (per pod, and the p99 of a step from its histogram: the difference
// over the run), the policy's CEL evaluation alone, and what the client waited (median, p99).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { startCluster, type Cluster } from '../test/cluster/cluster.ts';
import { freePort, waitFor } from '../test/support/net.ts';
import { podDryRunner, root } from '../test/support/e2e.ts';
import { fixturePods } from '../test/support/policy-pods.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 50 : 400;
const WARM_UP = 20;
const NAMESPACE = 'bench';

type Series = Map<string, number>;

/** The samples of `name` (its _sum, _count and _bucket lines too) whose labels include every `labels` pair, by full line key. */
async function scrape(cluster: Cluster, name: string, labels: Record<string, string>): Promise<Series> {
  const text = await cluster.kubectlOk(['get', '--raw', '/metrics']);
  const series: Series = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const key = line.slice(0, line.lastIndexOf(' '));
    if (Object.entries(labels).every(([label, value]) => key.includes(`${label}="${value}"`))) series.set(key, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return series;
}

/** Mean and p99 (the upper bound of the bucket it falls in) of a histogram's growth between two scrapes, in ms. */
function histogram(before: Series, after: Series): { count: number; sumMs: number; meanMs: number; p99Ms: number } {
  const grown = (suffix: string) => [...after].filter(([key]) => key.includes(suffix)).map(([key, value]) => [key, value - (before.get(key) ?? 0)] as const);
  const count = grown('_count').reduce((sum, [, value]) => sum + value, 0);
  const sum = grown('_sum').reduce((total, [, value]) => total + value, 0);
  const buckets = new Map<number, number>();
  for (const [key, value] of grown('_bucket')) {
    const le = /le="([^"]+)"/.exec(key)?.[1] ?? '+Inf';
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + value);
  }
  const p99 = [...buckets].sort(([a], [b]) => a - b).find(([, cumulative]) => cumulative >= 0.99 * count)?.[0] ?? Infinity;
  return { count, sumMs: sum * 1000, meanMs: count === 0 ? NaN : (sum / count) * 1000, p99Ms: p99 * 1000 };
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))] ?? NaN;

/** Creates the pod `rounds` times, one at a time; the client's waits in ms. */
async function createPods(dryRun: ReturnType<typeof podDryRunner>, pod: unknown, rounds: number, injectedBy: string): Promise<number[]> {
  const waits: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const result = await dryRun(NAMESPACE, pod);
    waits.push(performance.now() - started);
    const status = typeof result === 'string' ? result : JSON.stringify(result);
    if (!status.includes(injectedBy)) throw new Error(`not injected by the expected back end (${injectedBy}): ${status.slice(0, 300)}`);
  }
  return waits;
}

const fixed = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '-');

const cluster = await startCluster({ log: (message) => process.stderr.write(`${message}\n`) });
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-bench-policy-'));
let injector: ReturnType<typeof spawn> | undefined;
try {
  await cluster.kubectlOk(['create', 'namespace', NAMESPACE]);
  await cluster.kubectlOk(['label', 'namespace', NAMESPACE, 'thanos-injection=enabled']);
  const configFile = join(work, 'config.yaml');
  await writeFile(configFile, 'injectorNamespace: thanos-injector\n');
  const pod = fixturePods().find((p) => p.where.startsWith('charts/prometheus-29.27.0.yaml Deployment prometheus-server'))!.pod;
  await cluster.kubectlOk(['-n', NAMESPACE, 'create', 'serviceaccount', pod.spec?.serviceAccountName ?? 'default']);
  const dryRun = podDryRunner(cluster);

  // The policy alone.
  const generated = await spawnOutput([join(root, 'src/main.ts'), 'policy', '--config', configFile, '--kube-version', cluster.serverVersion]);
  const policyObjects = { apiVersion: 'v1', kind: 'List', items: parseAllDocuments(generated).map((document) => document.toJS() as object) };
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(policyObjects));
  await waitFor('the policy in force', async () => (JSON.stringify(await dryRun(NAMESPACE, pod)).includes('\\"policy\\"') ? true : undefined), 30_000, 200);
  await createPods(dryRun, pod, WARM_UP, '\\"policy\\"');
  const policyLabels = { name: 'MutatingAdmissionPolicy', operation: 'CREATE', type: 'admit' };
  const [policyBefore, celBefore] = [await scrape(cluster, 'apiserver_admission_controller_admission_duration_seconds', policyLabels), await scrape(cluster, 'apiserver_mutating_admission_policy_check_duration_seconds', {})];
  const policyWaits = await createPods(dryRun, pod, ROUNDS, '\\"policy\\"');
  const policyStep = histogram(policyBefore, await scrape(cluster, 'apiserver_admission_controller_admission_duration_seconds', policyLabels));
  const cel = histogram(celBefore, await scrape(cluster, 'apiserver_mutating_admission_policy_check_duration_seconds', {}));
  await cluster.kubectlOk(['delete', '-f', '-'], JSON.stringify(policyObjects));

  // The webhook alone: the chart's configuration, the injector on loopback with its own certificate.
  const port = await freePort();
  const healthPort = await freePort();
  injector = spawn(process.execPath, [join(root, 'src/main.ts'), 'serve', '--address', '127.0.0.1', '--port', String(port), '--health-port', String(healthPort),
    '--cert-dir', join(work, 'certs'), '--config', configFile, '--log-level', 'warn'], { cwd: work, env: { ...process.env, ...cluster.env }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor('the injector ready', async () => ((await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.ok ? true : undefined), 30_000, 200);
  const webhookConfiguration = await cluster.helmOk(['template', 'tsi', join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos-injector', '--kube-version', cluster.serverVersion,
    '--show-only', 'templates/mutatingwebhookconfiguration.yaml', '--set', `webhook.url=https://127.0.0.1:${port}/mutate`, '--set', 'certs.mode=external',
    '--set-file', `certs.caBundle=${join(work, 'certs', 'ca.crt')}`]);
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(parse(webhookConfiguration)));
  await waitFor('the webhook in force', async () => (JSON.stringify(await dryRun(NAMESPACE, pod)).includes('\\"rendered\\"') ? true : undefined), 30_000, 200);
  await createPods(dryRun, pod, WARM_UP, '\\"rendered\\"');
  const webhookLabels = { name: 'namespace.thanos-sidecar-injector.io', operation: 'CREATE', type: 'admit' };
  const webhookBefore = await scrape(cluster, 'apiserver_admission_webhook_admission_duration_seconds', webhookLabels);
  const webhookWaits = await createPods(dryRun, pod, ROUNDS, '\\"rendered\\"');
  const webhookStep = histogram(webhookBefore, await scrape(cluster, 'apiserver_admission_webhook_admission_duration_seconds', webhookLabels));

  // The policy's admission step runs twice per pod (the chain's second pass, which the first change asks for; the
  // policy's matchConditions skip it there): per pod is the sum over the run divided by the pods.
  const perPod = (step: { sumMs: number }) => step.sumMs / ROUNDS;
  const rows = [
    ['policy', String(ROUNDS), String(policyStep.count), fixed(perPod(policyStep)), fixed(policyStep.p99Ms), fixed(cel.meanMs), fixed(percentile(policyWaits, 0.5)), fixed(percentile(policyWaits, 0.99))],
    ['webhook', String(ROUNDS), String(webhookStep.count), fixed(perPod(webhookStep)), fixed(webhookStep.p99Ms), '-', fixed(percentile(webhookWaits, 0.5)), fixed(percentile(webhookWaits, 0.99))],
  ];
  const header = ['back end', 'pods', 'admission steps', 'admission ms per pod', 'step p99 ms (bucket)', 'CEL mean ms', 'client p50 ms', 'client p99 ms'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(`policy_admission_ms_per_pod=${fixed(perPod(policyStep))} webhook_admission_ms_per_pod=${fixed(perPod(webhookStep))} policy_client_p50_ms=${fixed(percentile(policyWaits, 0.5))} webhook_client_p50_ms=${fixed(percentile(webhookWaits, 0.5))}\n`);
} finally {
  injector?.kill('SIGTERM');
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}

/** A command's stdout (node ARGS), failing with its stderr. */
async function spawnOutput(args: string[]): Promise<string> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`node ${args.join(' ')}: exit ${code ?? 'signal'}: ${stderr}`);
  return stdout;
}
