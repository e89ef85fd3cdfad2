// Pods for the policy's differential test (not a test file): every pod and pod template of the golden
// fixtures that run with the default configuration, and generated pods around the shapes the policy
// claims, each feature drawn on both sides of the lines it draws (versions around 2.27, 2.55 and
// 3.9, retention around three blocks, TSDB volumes of every lifetime, a port the sidecar needs,
// user 0, grace periods around the hook's two seconds, overrides, flags the engine edits in place).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { podPointer } from '../../src/cli/workloads.ts';
import { resolvePointer } from '../../src/validation.ts';

export interface NamedPod {
  /** Where it comes from: a fixture file and kind, or `generated N`. */
  where: string;
  pod: V1Pod;
}

type Manifest = { kind?: string; items?: unknown[]; metadata?: { name?: string }; spec?: { volumeClaimTemplates?: { metadata?: { name?: string } }[] } };

/**
 * The pods and pod templates of the golden fixtures that use the default configuration and of the
 * chart fixtures (a real chart's rendered output), as the Pods their controllers create: named
 * fixture-N, a StatefulSet's claim templates as the claims of its first pod.
 */
export function fixturePods(): NamedPod[] {
  const fixtures = new URL('../fixtures/', import.meta.url).pathname;
  const inject = readdirSync(join(fixtures, 'inject'));
  const files = [
    ...inject.filter((f) => f.endsWith('.yaml') && !f.endsWith('.config.yaml') && !inject.includes(f.replace(/\.yaml$/, '.config.yaml'))).map((f) => join('inject', f)),
    ...readdirSync(join(fixtures, 'charts')).filter((f) => f.endsWith('.yaml')).map((f) => join('charts', f)),
  ];
  const pods: NamedPod[] = [];
  const visit = (file: string, object: Manifest | null) => {
    if (object?.kind === 'List') return object.items?.forEach((item) => visit(file, item as Manifest));
    const pointer = object?.kind === undefined ? undefined : podPointer(object.kind);
    if (pointer === undefined) return;
    const template = resolvePointer(object, pointer) as Pick<V1Pod, 'metadata' | 'spec'>;
    const metadata = { ...template.metadata };
    delete metadata.name;
    delete metadata.namespace;
    delete metadata.generateName;
    const claims = (object?.spec?.volumeClaimTemplates ?? []).map((claim): V1Volume => ({
      name: claim.metadata?.name ?? '', persistentVolumeClaim: { claimName: `${claim.metadata?.name ?? ''}-${object?.metadata?.name ?? ''}-0` },
    }));
    const spec = { ...template.spec, ...(claims.length > 0 ? { volumes: [...(template.spec?.volumes ?? []), ...claims] } : {}) } as V1Pod['spec'];
    pods.push({ where: `${file} ${object?.kind ?? ''} ${object?.metadata?.name ?? ''}`, pod: { apiVersion: 'v1', kind: 'Pod', metadata: { ...metadata, name: `fixture-${pods.length}` }, spec } });
  };
  for (const file of files) {
    for (const document of parseAllDocuments(readFileSync(join(fixtures, file), 'utf8'))) visit(file, document.toJS() as Manifest | null);
  }
  return pods;
}

const PROMETHEUS_IMAGES = [
  'quay.io/prometheus/prometheus:v3.14.0', 'quay.io/prometheus/prometheus:v3.9.0', 'quay.io/prometheus/prometheus:v3.8.1', 'prom/prometheus:v3.9.0-rc.0',
  'prom/prometheus:v2.55.0', 'prom/prometheus:v2.54.1', 'prom/prometheus:v2.27.1', 'prom/prometheus:v2.26.0', 'prom/prometheus:latest', 'prom/prometheus',
  'registry.local:5000/mirror/prometheus:3.5.0', 'registry.local:5000/prometheus@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
];
const VOLUMES: Omit<V1Volume, 'name'>[] = [
  { persistentVolumeClaim: { claimName: 'data' } },
  { persistentVolumeClaim: { claimName: 'data' } },
  { emptyDir: {} },
  { emptyDir: { medium: 'Memory' } },
  { hostPath: { path: '/var/lib/prometheus' } },
  { nfs: { server: 'nfs.local', path: '/exports/prometheus' } },
  { ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } } },
  { configMap: { name: 'rules' } },
];
const oneOf = <T>(...values: T[]) => fc.constantFrom(...values);
const maybe = <T>(arbitrary: fc.Arbitrary<T>, weight = 1) => fc.oneof({ arbitrary: fc.constant(undefined), weight }, { arbitrary, weight: 1 });

const podArb = fc.record({
  byName: fc.boolean(),
  image: fc.oneof({ arbitrary: oneOf(...PROMETHEUS_IMAGES.slice(0, 8)), weight: 4 }, { arbitrary: oneOf(...PROMETHEUS_IMAGES), weight: 1 }),
  tsdb: oneOf('/prometheus', '/prometheus/', '/data', '/data/tsdb', '/srv/p.d/tsdb', 'data'),
  mount: oneOf('same', 'same', 'parent', 'slash'),
  subPath: maybe(oneOf('prometheus', ''), 6),
  volume: fc.oneof({ arbitrary: oneOf(...VOLUMES.slice(0, 2), VOLUMES[4] as Omit<V1Volume, 'name'>, VOLUMES[5] as Omit<V1Volume, 'name'>), weight: 2 }, { arbitrary: oneOf(...VOLUMES), weight: 1 }),
  retention: maybe(oneOf('15d', '7d', '6h', '5h', '1d12h', '10h', '1y')),
  retentionFlag: oneOf('storage.tsdb.retention.time', 'storage.tsdb.retention'),
  listen: maybe(fc.oneof({ arbitrary: oneOf(':9090', ':9091', '0.0.0.0:9095', '[::]:9092'), weight: 6 }, { arbitrary: oneOf(':10902', 'localhost:70000'), weight: 1 })),
  route: maybe(oneOf('/', '/prom', '/prom/', 'prom', '/a/b/')),
  extra: fc.subarray(['--web.enable-lifecycle', '--config.file=/etc/prometheus/prometheus.yml', '--enable-feature=exemplar-storage', '--enable-feature=expand-external-labels,exemplar-storage', '--query.max-concurrency=20']),
  rare: maybe(oneOf<string[]>(['--storage.tsdb.min-block-duration=2h'], ['--storage.tsdb.min-block-duration=2h', '--storage.tsdb.max-block-duration=2h'], ['--web.config.file=/etc/web.yml'],
    ['--web.external-url=http://example.com/prom'], ['--enable-feature=agent'], ['--log.level', 'debug'], ['--no-storage.tsdb.allow-overlapping-compaction'], ['--storage.tsdb.delay-compact-file.path=/x']), 8),
  command: maybe(oneOf(['/bin/prometheus'], ['/bin/sh', '-c']), 16),
  env: oneOf<V1Container['env']>(undefined, undefined, [{ name: 'TZ', value: 'UTC' }], [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]),
  promContext: oneOf<V1Container['securityContext']>(undefined, undefined, undefined, { runAsUser: 1000 }, { runAsGroup: 2000 }, { runAsUser: 1000, runAsGroup: 2000 }, { readOnlyRootFilesystem: true }, undefined, undefined, { runAsUser: 0 }),
  podContext: oneOf<Record<string, unknown> | undefined>(undefined, undefined, {}, { runAsUser: 1000 }, undefined, { runAsUser: 0 }, { fsGroup: 2000 }, { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true }, { runAsNonRoot: false }),
  init: maybe(oneOf<V1Container>({ name: 'init-chown', image: 'busybox', command: ['chown', '-R', '65534', '/data'] }, { name: 'thanos', image: 'quay.io/thanos/thanos:v0.42.5', args: ['sidecar'], restartPolicy: 'Always' })),
  other: maybe(oneOf<V1Container>(
    { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1', args: ['--listen-address=0.0.0.0:8080'], ports: [{ containerPort: 8080, name: 'metrics' }] },
    { name: 'exporter', image: 'example.com/exporter:1', ports: [{ containerPort: 10901 }] },
    { name: 'shell', image: 'busybox', command: ['sh', '-c', 'echo thanos'] },
    { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1', args: ['--listen-address=0.0.0.0:8080'], ports: [{ containerPort: 8080, name: 'metrics' }] },
  )),
  otherFirst: fc.boolean(),
  labels: oneOf<Record<string, string> | undefined>(undefined, { app: 'prometheus' }, { app: 'prometheus' }, { app: 'prometheus', 'thanos-injection': 'disabled' }, { 'thanos-injection': 'enabled' }),
  annotations: fc.oneof({ arbitrary: oneOf<Record<string, string> | undefined>(undefined, { team: 'a' }), weight: 8 }, { arbitrary: oneOf({ 'thanos-injector/log-level': 'debug' }, { 'thanos-injector/ephemeral-tsdb': 'allow' }), weight: 1 }),
  grace: maybe(oneOf(0, 2, 3, 30, 300)),
  automount: maybe(oneOf(false), 3),
  restartPolicy: maybe(oneOf('Always', 'OnFailure'), 4),
  volumeTaken: maybe(oneOf('thanos-objstore'), 10),
});

/** `count` generated pods (named generated-N), the same ones for the same seed. */
export function generatedPods(count: number, seed: number): NamedPod[] {
  return fc.sample(podArb, { numRuns: count, seed }).map((r, i): NamedPod => {
    const mountPath = r.mount === 'parent' && r.tsdb.startsWith('/data/') ? '/data' : r.mount === 'slash' && !r.tsdb.endsWith('/') ? `${r.tsdb.startsWith('/') ? r.tsdb : '/prometheus/data'}/` : r.tsdb.startsWith('/') ? r.tsdb : '/prometheus/data';
    const args = [`--storage.tsdb.path=${r.tsdb}`, ...(r.retention ? [`--${r.retentionFlag}=${r.retention}`] : []), ...(r.listen ? [`--web.listen-address=${r.listen}`] : []),
      ...(r.route ? [`--web.route-prefix=${r.route}`] : []), ...r.extra, ...(r.rare ?? [])];
    const prometheus: V1Container = {
      name: r.byName ? 'prometheus' : 'prometheus-server',
      image: r.image,
      ...(r.command ? { command: r.command[0] === '/bin/sh' ? [...r.command, `exec /bin/prometheus ${args.join(' ')}`] : r.command } : {}),
      ...(r.command?.[0] === '/bin/sh' ? {} : { args }),
      ports: [{ containerPort: 9090 }],
      volumeMounts: [{ name: 'config', mountPath: '/etc/prometheus' }, { name: r.volumeTaken ?? 'storage', mountPath, ...(r.subPath !== undefined ? { subPath: r.subPath } : {}) }],
      ...(r.env ? { env: r.env } : {}),
      ...(r.promContext ? { securityContext: r.promContext } : {}),
    };
    const containers = r.other ? (r.otherFirst ? [r.other, prometheus] : [prometheus, r.other]) : [prometheus];
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `generated-${i}`, ...(r.labels ? { labels: r.labels } : {}), ...(r.annotations ? { annotations: r.annotations } : {}) },
      spec: {
        containers,
        ...(r.init ? { initContainers: [r.init] } : {}),
        volumes: [{ name: 'config', configMap: { name: 'prometheus' } }, { name: r.volumeTaken ?? 'storage', ...r.volume }],
        ...(r.podContext ? { securityContext: r.podContext } : {}),
        ...(r.grace !== undefined ? { terminationGracePeriodSeconds: r.grace } : {}),
        ...(r.automount !== undefined ? { automountServiceAccountToken: r.automount } : {}),
        ...(r.restartPolicy ? { restartPolicy: r.restartPolicy } : {}),
      },
    } as V1Pod;
    return { where: `generated ${i}: ${JSON.stringify(r)}`, pod };
  });
}
