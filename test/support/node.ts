// What the node test files share (not a test file): the whole runtime stack inside the namespaces
// of test/cluster/netns.ts (control plane, node, images), MinIO as the bucket server, and the
// injector running as a process the apiserver calls (webhook.url on loopback, as in test/e2e).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { dryRunInjected, thanosInjector } from './e2e.ts';
import { exec, startCluster, type Cluster, type ExecResult } from '../cluster/cluster.ts';
import { NODE_IP, NODE_NAME, startNode, type TestNode } from '../cluster/node.ts';
import { prepareNode } from '../cluster/prepare-node.ts';
import type { NodeImages } from '../cluster/images.ts';
import { startServe, type StartedServe } from './serve.ts';
import { freePort, waitFor } from './net.ts';

export const root = new URL('../..', import.meta.url).pathname;
/**
 * Prometheus flags for the tests' pods: equal 20 s blocks, so the first block is cut, and uploaded at
 * the sidecar's next 30 s sync, within about a minute of the start (the injector keeps equal block
 * flags it finds, and Prometheus 3.x's own shortest block with delayed compaction).
 */
export const SHORT_BLOCKS = ['--storage.tsdb.min-block-duration=20s', '--storage.tsdb.max-block-duration=20s'];
export const MINIO_USER = 'thanos-injector-test';
export const MINIO_PASSWORD = 'not-a-secret-test-only';
const MINIO_PORT = 9000;

/** What a block's meta.json says, as far as the tests read it. */
export interface BlockMeta {
  ulid: string;
  minTime: number;
  maxTime: number;
  compaction: { level: number; sources: string[] };
  thanos: { labels: Record<string, string>; downsample: { resolution: number } };
}

export interface NodeStack {
  cluster: Cluster;
  node: TestNode;
  images: NodeImages;
  minio: Minio;
  work: string;
  thanosBinary: string;
  /** The Prometheus 3.x server binary (for a Prometheus of the test itself). */
  prometheusBinary: string;
}

export class Minio {
  readonly endpoint: string;
  private log = '';
  private readonly child;

  /** `host`: the node's address (pods reach it), or loopback for processes of the test itself. */
  constructor(binary: string, dataDir: string, host = NODE_IP) {
    this.endpoint = `${host}:${MINIO_PORT}`;
    this.child = spawn(binary, ['server', dataDir, '--address', this.endpoint, '--console-address', '127.0.0.1:0', '--quiet'], {
      env: { ...process.env, MINIO_ROOT_USER: MINIO_USER, MINIO_ROOT_PASSWORD: MINIO_PASSWORD, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-20_000));
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
  }

  async ready(): Promise<void> {
    await waitFor(`MinIO on ${this.endpoint} (log: ${this.log.slice(-500)})`, async () => {
      const response = await fetch(`http://${this.endpoint}/minio/health/live`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      return response?.ok ? true : undefined;
    }, 60_000, 250);
  }

  /** An S3 call signed with SigV4 by curl. */
  private s3(method: string, pathAndQuery: string): Promise<ExecResult> {
    return exec('curl', ['-sS', '--fail-with-body', '-X', method, '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${MINIO_USER}:${MINIO_PASSWORD}`, `http://${this.endpoint}${pathAndQuery}`]);
  }

  async createBucket(bucket: string): Promise<void> {
    const result = await this.s3('PUT', `/${bucket}`);
    if (result.code !== 0) throw new Error(`creating bucket ${bucket} failed: ${result.stdout}${result.stderr}`);
  }

  /** Every object key in the bucket. */
  async keys(bucket: string): Promise<string[]> {
    return (await this.objects(bucket)).map((o) => o.key);
  }

  /** Every object in the bucket, with the time it was written (ms since the epoch) and its size. */
  async objects(bucket: string): Promise<{ key: string; modified: number; size: number }[]> {
    const result = await this.s3('GET', `/${bucket}?list-type=2&max-keys=1000`);
    if (result.code !== 0) throw new Error(`listing bucket ${bucket} failed: ${result.stdout}${result.stderr}`);
    return [...result.stdout.matchAll(/<Contents>(.*?)<\/Contents>/gs)].map((m) => {
      const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(m[1] ?? '')?.[1] ?? '';
      return { key: field('Key'), modified: Date.parse(field('LastModified')), size: Number(field('Size')) };
    });
  }

  /** The blocks in the bucket: each one's meta.json (Thanos' labels, time range, compaction level). */
  async blocks(bucket: string): Promise<BlockMeta[]> {
    const metas = (await this.keys(bucket)).filter((key) => /^[0-9A-Z]{26}\/meta\.json$/.test(key));
    const read = await Promise.all(metas.map((key) => this.s3('GET', `/${bucket}/${key}`)));
    return read.filter((result) => result.code === 0).map((result) => JSON.parse(result.stdout) as BlockMeta);
  }

  /** The objstore YAML of a bucket, as a pod on the node reaches MinIO. */
  objstore(bucket: string): string {
    return `type: S3\nconfig:\n  bucket: ${bucket}\n  endpoint: ${this.endpoint}\n  access_key: ${MINIO_USER}\n  secret_key: ${MINIO_PASSWORD}\n  insecure: true\n`;
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    return exited;
  }
}

export interface NodeStackOptions {
  /**
   * Import the injector's image into containerd (default true). The install scenario sets false:
   * there containerd pulls it from an OCI registry, as in users' clusters.
   */
  importInjector?: boolean;
}

/**
 * The control plane, a Ready node with the images imported, and MinIO, for one test file; all
 * stopped at the end of `t` (pods through the kubelet first). Refuses to run outside netns.ts.
 */
export async function startNodeStack(t: Test, workPrefix: string, options: NodeStackOptions = {}): Promise<NodeStack> {
  const log = (message: string) => t.comment(message);
  const { tools, nodeTools, images } = await prepareNode();
  const work = await mkdtemp(join(tmpdir(), workPrefix));
  const cluster = await startCluster({ tools, node: { ip: NODE_IP }, log });
  const parts: { node?: TestNode; minio?: Minio } = {};
  t.teardown(async () => {
    await parts.minio?.stop();
    await parts.node?.stop();
    await cluster.stop();
    await rm(work, { recursive: true, force: true });
  });
  const bringUp = Date.now();
  const imported = Object.entries(images.tars).filter(([ref]) => options.importInjector !== false || ref !== images.injector).map(([, tar]) => tar);
  const node = (parts.node = await startNode(cluster, { bin: nodeTools, images: imported, pauseImage: images.pause, log }));
  const minio = (parts.minio = new Minio(nodeTools.minio, join(work, 'minio')));
  await minio.ready();
  t.comment(`node ${node.name} Ready and MinIO up in ${((Date.now() - bringUp) / 1000).toFixed(1)} s`);
  return { cluster, node, images, minio, work, thanosBinary: nodeTools.thanos, prometheusBinary: nodeTools.prometheus };
}

/**
 * A local PersistentVolume on the node (a folder as open as an emptyDir), bound ahead to claim
 * `claim` of `namespace` (a pod's claim, or a StatefulSet's `<template>-<pod>`).
 */
export async function localVolume(stack: NodeStack, namespace: string, claim: string, name = `${namespace}-data`): Promise<void> {
  const dir = join(stack.work, `pv-${name}`);
  await mkdir(dir);
  await chmod(dir, 0o777);
  const pv = {
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name },
    spec: {
      capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', local: { path: dir },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [NODE_NAME] }] }] } },
    },
  };
  const pvc = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claim, namespace }, spec: { storageClassName: '', volumeName: pv.metadata.name, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } };
  await stack.cluster.kubectlOk(['apply', '-f', '-'], `${JSON.stringify(pv)}\n${JSON.stringify(pvc)}`);
}

/**
 * The chart installed as in test/e2e (webhook.url on loopback, the cluster CA as caBundle, no
 * registration) and the injector serving it as a process with the chart's configuration.
 */
export interface Injector {
  /** The running process (replaced by start()). */
  served: StartedServe;
  /** Stops the process (SIGTERM) and waits for it: the apiserver then finds no webhook to call. */
  stop(): Promise<void>;
  /** Starts it again on the same port, with the same certificate and configuration. */
  start(): Promise<void>;
  /** `helm upgrade --reuse-values` with `setValues`, then the process restarted with the chart's new configuration. */
  upgrade(setValues: string[]): Promise<void>;
}

export async function startInjector(t: Test, stack: NodeStack, setValues: string[] = []): Promise<Injector> {
  const { cluster, work } = stack;
  const serving = await cluster.issueCert('thanos-injector', { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
  const port = await freePort();
  const release = 'tsi';
  await cluster.helmOk(['install', release, join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos-injector', '--create-namespace',
    '--set', `webhook.url=https://127.0.0.1:${port}/mutate`, '--set', 'webhook.failurePolicy=Fail',
    '--set', 'certs.mode=external', '--set-file', `certs.caBundle=${serving.ca}`, '--set', 'registration.enabled=false',
    // The injector runs as this process; the chart's own replicas would only wait for an image.
    '--set', 'replicaCount=0', '--set', 'podDisruptionBudget.enabled=false',
    // The webhook alone: these tests set Prometheus' block flags, which leave their pods to it anyway.
    '--set', 'injection.mode=webhook', ...setValues]);
  const configFile = join(work, 'config.yaml');
  const readConfig = async () => writeFile(configFile, await cluster.kubectlOk(['-n', 'thanos-injector', 'get', 'configmap', `${release}-thanos-sidecar-injector`, '-o', 'jsonpath={.data.config\\.yaml}']));
  await readConfig();
  const serve = () => startServe(t, {
    home: work,
    port,
    certArgs: ['--tls-cert-file', serving.cert, '--tls-key-file', serving.key],
    args: ['--config', configFile],
    env: cluster.env,
  });
  const injector: Injector = {
    served: await serve(),
    stop: async () => {
      injector.served.serve.child.kill('SIGTERM');
      await injector.served.serve.exited;
    },
    start: async () => {
      injector.served = await serve();
    },
    upgrade: async (values) => {
      await cluster.helmOk(['upgrade', release, join(root, 'charts/thanos-sidecar-injector'), '--namespace', 'thanos-injector', '--reuse-values', ...values]);
      await readConfig();
      await injector.stop();
      await injector.start();
    },
  };
  await webhookInForce(cluster);
  return injector;
}

/**
 * Waits until the apiserver calls the webhook (it applies a new configuration asynchronously): a
 * server-side dry run of a Prometheus pod in a labelled namespace of its own comes back injected.
 */
async function webhookInForce(cluster: Cluster): Promise<void> {
  const namespace = 'tsi-webhook-probe';
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace }, spec: { containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.16.0' }] } });
  await waitFor('the webhook configuration in force', () => dryRunInjected(cluster, pod), 60_000, 500);
  await cluster.kubectlOk(['delete', 'namespace', namespace, '--wait=false']);
}

/**
 * The container's last 400 log lines. Throws when kubectl cannot read them, so that an assertion on
 * a log never passes on a log it did not see (waitFor takes a throw as "not yet").
 */
export async function containerLog(cluster: Cluster, namespace: string, pod: string, container: string): Promise<string> {
  const result = await cluster.kubectl(['-n', namespace, 'logs', pod, '-c', container, '--tail=400']);
  if (result.code !== 0) throw new Error(`kubectl -n ${namespace} logs ${pod} -c ${container} failed: ${result.stderr.trim()}`);
  return result.stdout;
}

/** The injector's counter of admissions with this outcome and reason (0 when absent), from its /metrics. */
export async function admissions(injector: Injector, outcome: string, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${injector.served.healthPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const series = `thanos_injector_admissions_total{outcome="${outcome}",reason="${reason}"} `;
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

export { waitFor };

/** What `thanos-injector inject` made of one pod: its annotations and the two containers' args. */
export interface InjectedPod {
  annotations: Record<string, string>;
  prometheusArgs: string[];
  sidecarArgs: string[];
}

/** A Prometheus pod whose container runs here as a process: `args`, its TSDB at `data` (a volume, as in a cluster). */
export function processPod(prometheusVersion: string, data: string, args: string[], annotations: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'prometheus', namespace: 'monitoring', annotations },
    spec: {
      containers: [{
        name: 'prometheus',
        image: `quay.io/prometheus/prometheus:v${prometheusVersion}`,
        args: [...args, `--storage.tsdb.path=${data}`],
        volumeMounts: [{ name: 'data', mountPath: data }],
      }],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

/** Runs openssl, which must succeed (the tests' certificates). */
export async function openssl(args: string[]): Promise<void> {
  const result = await exec('openssl', args);
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

/** Injects `pod` offline with the config file `config` (the CLI users run), as the tests then run it as processes. */
export async function injectOffline(pod: object, config: string, work: string): Promise<InjectedPod> {
  const podFile = join(work, 'pod.yaml');
  await writeFile(podFile, JSON.stringify(pod));
  const injected = await thanosInjector(['inject', '-f', podFile, '--config', config], {});
  if (injected.code !== 0) throw new Error(`thanos-injector inject failed (exit ${injected.code}): ${injected.stderr}`);
  interface Container { name: string; args: string[] }
  const out = parseAllDocuments(injected.stdout)[0]?.toJS() as { metadata: { annotations: Record<string, string> }; spec: { containers: Container[]; initContainers?: Container[] } };
  const containers = [...(out.spec.initContainers ?? []), ...out.spec.containers];
  return {
    annotations: out.metadata.annotations,
    prometheusArgs: containers.find((c) => c.name === 'prometheus')?.args ?? [],
    sidecarArgs: containers.find((c) => c.name === 'thanos-sidecar')?.args ?? [],
  };
}

/** A process of the test (Prometheus, a sidecar), its output kept; killed at the end of `t`. */
export function startProcess(t: Test, binary: string, args: string[], cwd: string, env: Record<string, string> = {}): { child: ChildProcess; log: () => string } {
  let log = '';
  const child = spawn(binary, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log: () => log };
}
