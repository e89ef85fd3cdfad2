// The seed blog post's Prometheus on the test node, for the node test files that run it: its
// manifests on the images built here, waiting for its pods, and `thanos-injector check` as JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { thanosInjector } from './e2e.ts';
import { root, waitFor, type NodeStack } from './node.ts';

/** The first block is cut ~1.5 block durations after the start, the sidecar syncs every 30 s. */
export const UPLOAD_DEADLINE_MS = 300_000;

export interface PodJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { containers: { name: string; image?: string; args?: string[] }[]; initContainers?: { name: string }[]; securityContext?: Record<string, unknown> };
  status: { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; ready: boolean; restartCount: number }[]; initContainerStatuses?: { name: string; ready: boolean; restartCount: number }[] };
}

export interface ContainerSpec {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  args?: string[];
  resources?: unknown;
  volumeMounts?: { name: string; mountPath: string }[];
}
export interface PodTemplate {
  metadata: { annotations?: Record<string, string> };
  spec: { containers: ContainerSpec[]; volumes: unknown[] };
}
interface Manifest {
  kind: string;
  metadata: { namespace?: string };
  spec?: { template: PodTemplate };
}

export interface Row {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
}

export const ready = (pod: PodJson | undefined) => pod?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** Helpers bound to one node stack. */
export function seedHelpers(stack: NodeStack) {
  const { cluster, images } = stack;

  /** The seed's ConfigMap and Deployment (test/fixtures/inject/seed-deployment.yaml), in `namespace`, on the images built here. */
  function seedManifests(namespace: string, changePod: (pod: PodTemplate) => void): string {
    const docs = parseAllDocuments(readFileSync(join(root, 'test/fixtures/inject/seed-deployment.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    for (const doc of docs) {
      doc.metadata.namespace = namespace;
      if (doc.kind !== 'Deployment' || !doc.spec) continue;
      const pod = doc.spec.template;
      const prometheus = pod.spec.containers[0] as ContainerSpec;
      prometheus.image = images.prometheus2;
      prometheus.imagePullPolicy = 'IfNotPresent';
      // The node has 2 cores for everything: keep the seed's limits, ask for less.
      prometheus.resources = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } };
      changePod(pod);
    }
    return docs.map((d) => JSON.stringify(d)).join('\n');
  }

  async function podOf(namespace: string, selector: string): Promise<PodJson | undefined> {
    const list = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: PodJson[] };
    return list.items[0];
  }

  async function readyPod(namespace: string, selector: string, what: string): Promise<PodJson> {
    return waitFor(`${what} Ready`, async () => {
      const pod = await podOf(namespace, selector);
      return ready(pod) ? pod : undefined;
    }, 180_000, 1000).catch(async (error: Error) => {
      const described = await cluster.kubectl(['-n', namespace, 'describe', 'pods', '-l', selector]);
      throw new Error(`${error.message}\n${described.stdout.slice(-4000)}\n--- kubelet ---\n${stack.node.logTail('kubelet', 30)}`);
    });
  }

  async function check(namespace: string, pod: string): Promise<{ code: number; rows: Record<string, Row> }> {
    const result = await thanosInjector(['check', '-n', namespace, '--pod', pod, '-o', 'json'], cluster.env);
    if (result.stdout === '') throw new Error(`check printed nothing (exit ${result.code}): ${result.stderr}`);
    const { checks } = JSON.parse(result.stdout) as { checks: Row[] };
    return { code: result.code, rows: Object.fromEntries(checks.map((row) => [row.name, row])) };
  }

  return { seedManifests, podOf, readyPod, check };
}
