// What the end-to-end test files share (not a test file: tap runs *.test.ts only): a control plane
// and a work folder for the file, `thanos-injector` run as a real process, and the pod checks.
// The kubectl/helm wrappers that must succeed are on the Cluster (../cluster/cluster.ts).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startCluster, type Cluster, type ExecResult } from '../cluster/cluster.ts';

export const root = new URL('../..', import.meta.url).pathname;

/**
 * A fresh control plane for this test file (its progress as comments) and a temporary work folder
 * whose name starts with `workPrefix`; both are removed at the end of `t`.
 */
export async function startE2e(t: Test, workPrefix: string): Promise<{ cluster: Cluster; work: string }> {
  const cluster = await startCluster({ log: (message) => t.comment(message) });
  t.teardown(() => cluster.stop());
  t.comment(`cluster ${cluster.serverVersion} at ${cluster.server}`);
  const work = await mkdtemp(join(tmpdir(), workPrefix));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  return { cluster, work };
}

/** `node src/main.ts ARGS` run to its end as a user runs it: with `env` (e.g. the cluster's KUBECONFIG) and no POD_NAMESPACE. */
export function thanosInjector(args: string[], env: Record<string, string>): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/main.ts', ...args], { cwd: root, env: { ...process.env, POD_NAMESPACE: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Whether a server-side dry run of `pod` (JSON) comes back with the sidecar: the webhook
 * configuration is in force (the apiserver applies changes to it asynchronously). For waitFor.
 */
export async function dryRunInjected(cluster: Cluster, pod: string): Promise<true | undefined> {
  const result = await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], pod);
  return result.code === 0 && result.stdout.includes('thanos-sidecar') ? true : undefined;
}

/** How many thanos-sidecar containers (regular or init) a pod has. */
export function sidecars(pod: { spec: { containers: { name: string }[]; initContainers?: { name: string }[] } }): number {
  return [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].filter((c) => c.name === 'thanos-sidecar').length;
}

/**
 * Server-side dry-run creates of pods as the admin, over one kept-alive connection pool: the pod as
 * admitted, or the refusal as `HTTP <code>: <message>`.
 */
export function podDryRunner(cluster: Cluster): (namespace: string, pod: unknown) => Promise<Record<string, unknown> | string> {
  const agent = new https.Agent({ keepAlive: true, ca: readFileSync(cluster.certs.ca), cert: readFileSync(cluster.certs.admin), key: readFileSync(cluster.certs.adminKey) });
  return (namespace, pod) => new Promise((resolve) => {
    const request = https.request(`${cluster.server}/api/v1/namespaces/${namespace}/pods?dryRun=All`, { method: 'POST', agent, headers: { 'content-type': 'application/json' }, timeout: 30_000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        resolve(response.statusCode === 201 ? parsed : `HTTP ${response.statusCode ?? 0}: ${typeof parsed.message === 'string' ? parsed.message : body}`);
      });
    });
    request.on('timeout', () => request.destroy(new Error('no answer in 30 s')));
    request.on('error', (error) => resolve(`request failed: ${error.message}`));
    request.end(JSON.stringify(pod));
  });
}
