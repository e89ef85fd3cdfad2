/**
 * Runs the node test files in two lanes at once, each lane in namespaces of its own
 * (test/cluster/netns.ts: its own network, so each has its own node address, bridge and ports; its
 * own kubelet cgroup root), each file still starting its own control plane, node and MinIO. Most of
 * a node test is waiting for Prometheus to cut blocks and the sidecar to sync, so two lanes on two
 * cores take about half the time of one. Each lane's TAP output is printed whole when the lane
 * ends, then one summary line of both (the line .ci/run reads). Exit code 0 when both passed.
 *
 *   node test/cluster/node-suite.ts [FILE...]     # default: test/node/*.test.ts
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
/** Minutes each file took on 2 cores (a run of the whole suite, one lane): the lanes are balanced by them. */
const MINUTES: Record<string, number> = {
  'faults.test.ts': 7,
  'seed.test.ts': 3,
  'longterm.test.ts': 2.5,
  'install.test.ts': 2.9,
  'day2.test.ts': 2.4,
  'policy.test.ts': 3.4,
  'history.test.ts': 2,
  'query.test.ts': 2.1,
  'missed.test.ts': 1.9,
  'core.test.ts': 1.7,
  'compaction.test.ts': 1.6,
  'grpc-tls.test.ts': 0.8,
  'sidecar-flags.test.ts': 0.4,
  'prometheus-tls.test.ts': 0.2,
};

interface Lane {
  files: string[];
  minutes: number;
}

/** Longest first, each to the lane with the least work so far. */
function lanes(files: string[], count: number): Lane[] {
  const result: Lane[] = Array.from({ length: count }, () => ({ files: [], minutes: 0 }));
  const minutes = (file: string) => MINUTES[path.basename(file)] ?? 2;
  for (const file of [...files].sort((a, b) => minutes(b) - minutes(a))) {
    const lane = result.reduce((least, lane) => (lane.minutes < least.minutes ? lane : least));
    lane.files.push(file);
    lane.minutes += minutes(file);
  }
  return result.filter((lane) => lane.files.length > 0);
}

/** Runs one lane; resolves with its exit code and output. */
function run(lane: Lane, index: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'netns.ts'), 'tap', '--disable-coverage', '--timeout=1800', '--jobs=1', ...lane.files], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${path.join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}` },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
    child.on('exit', (code, signal) => {
      console.error(`[node-suite] lane ${index + 1} (${lane.files.map((f) => path.basename(f)).join(', ')}) ended: ${code ?? signal}`);
      resolve({ code: code ?? 1, output });
    });
  });
}

/** The counts of tap's last summary line `# { total: N, pass: P, fail: F, ... }`. */
function counts(output: string): Map<string, number> {
  const line = output.split('\n').filter((l) => /^# \{ total: \d+/.test(l)).at(-1) ?? '';
  return new Map([...line.matchAll(/(\w+): (\d+)/g)].map((m): [string, number] => [m[1] ?? '', Number(m[2])]));
}

const files = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : fs.readdirSync(path.join(root, 'test/node')).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/node/${f}`);
const plan = lanes(files, 2);
for (const [i, lane] of plan.entries()) console.error(`[node-suite] lane ${i + 1}, about ${lane.minutes.toFixed(1)} min: ${lane.files.join(' ')}`);
const started = Date.now();
const results = await Promise.all(plan.map((lane, i) => run(lane, i)));
const total: Record<string, number> = {};
for (const [i, result] of results.entries()) {
  process.stdout.write(`# ---- lane ${i + 1} ----\n${result.output}\n`);
  for (const [key, value] of counts(result.output)) total[key] = (total[key] ?? 0) + value;
}
const failed = results.some((r) => r.code !== 0);
process.stdout.write(`# node suite: ${results.length} lanes in ${((Date.now() - started) / 60000).toFixed(1)} min\n`);
process.stdout.write(`# { ${Object.entries({ total: 0, pass: 0, fail: 0, ...total }).map(([k, v]) => `${k}: ${v}`).join(', ')} }\n`);
// Not process.exit(): stdout is a pipe here (.ci/run tees it), and exiting at once cut the lanes' output short.
process.exitCode = failed ? 1 : 0;
