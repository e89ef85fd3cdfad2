// Property tests of injectPod over generated Pod shapes: it never throws, its patch applies with the
// apiserver's semantics and never makes a valid pod invalid, a second pass changes nothing, nothing
// the user had is lost or changed beyond the documented edits, the sidecar sees the TSDB volume at
// the same path, and pods without a Prometheus are skipped.
//
// The generator keeps a small model of what it built (where the TSDB is, which block flags were set)
// so the checks do not re-use the code under test to compute what is expected.
import t from 'tap';
import fc from 'fast-check';
import { posix } from 'node:path';
import { deepStrictEqual } from 'node:assert/strict';
import type { V1Container, V1EnvVar, V1PodSecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { injectPod, type Injection } from '../../src/inject/inject.ts';
import { applyPatchStrict } from '../harness/jsonpatch.ts';
import { applyPodDefaults } from '../harness/pod-defaults.ts';
import { validatePod } from '../harness/pod-validation.ts';

const RUNS = 400;
const SEED = 20251125;

const CONFIGS: { name: string; config: Config }[] = [
  { name: 'objstore on', config: buildConfig({ injectorNamespace: 'thanos-system' }) },
  { name: 'objstore off', config: buildConfig({ objstore: { enabled: false }, injectorNamespace: 'thanos-system' }) },
];
const VERSIONS = ['1.28', '1.33'];
const NAMESPACE = 'monitoring';
const SIDECAR = 'thanos-sidecar';
const MIN = 'storage.tsdb.min-block-duration';
const MAX = 'storage.tsdb.max-block-duration';
/** The official image's CMD (what runs when a container sets neither command nor args). */
const IMAGE_CMD = ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'];
/** What the 2.x images' CMD adds (an independent model of the official images). */
const IMAGE_CMD_2X = ['--web.console.libraries=/usr/share/prometheus/console_libraries', '--web.console.templates=/usr/share/prometheus/consoles'];
const imageCmd = (image: string | undefined) => (/:v?2\.[0-9]+/.test(image?.split('@')[0] ?? '') ? [...IMAGE_CMD, ...IMAGE_CMD_2X] : IMAGE_CMD);
const BOOLEAN_FLAGS = new Set(['web.enable-lifecycle']);

// ---------------------------------------------------------------------------------------------
// Model and generators

/** The type of a subtest's `t`. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: V1Container[];
    initContainers?: V1Container[];
    volumes?: V1Volume[];
    securityContext?: V1PodSecurityContext;
    hostNetwork?: boolean;
    restartPolicy?: string;
  };
}

interface Case {
  pod: Pod;
  /** Index of the Prometheus container in spec.containers, when there is one. */
  prometheus?: number;
  /** Where Prometheus keeps its TSDB, computed from what was generated. */
  tsdbPath?: string;
  /** The URL the sidecar must call: Prometheus' port and route prefix, computed from what was generated. */
  prometheusUrl?: string;
  /** Block flag values as generated (undefined: not set). */
  minBlock?: string;
  maxBlock?: string;
  shell: boolean;
  /** The container sets neither command nor args. */
  imageDefaults: boolean;
  configIndex: number;
  version: string;
  /** Give injectPod the object as the apiserver would (after v1 defaults). */
  defaulted: boolean;
}

const dnsLabel = fc
  .stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/)
  .filter((name) => name.length <= 63 && name !== 'prometheus' && name !== SIDECAR);

const PROMETHEUS_IMAGES = [
  'prom/prometheus',
  'prom/prometheus:v2.53.0',
  'quay.io/prometheus/prometheus:v3.5.0',
  'docker.io/prom/prometheus:latest',
  'registry:5000/prometheus@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
];
const OTHER_IMAGES = [
  'nginx:1.27',
  'busybox',
  'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2',
  'prom/node-exporter:v1.8.2',
  'ghcr.io/example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
];
const DURATIONS = ['2h', '120m', '30m', '1h', '6h', '1h30m'];
const TSDB_PATHS = ['/prometheus', '/prometheus/', '/data', '/var/lib/prometheus', '/srv/prom/tsdb', 'data', './tsdb/', 'tsdb', '/prometheus/data'];
const MOUNT_PATHS = ['/prometheus', '/prometheus/', '/data', '/var/lib/prometheus', '/var/lib', '/srv/prom', '/srv', '/etc/prometheus', '/prometheus/data', '/tmp', '/'];
const WORKING_DIRS = ['/prometheus', '/srv/prom', '/opt/p/'];
const VOLUME_NAMES = ['data', 'config', 'storage', 'rules', 'thanos-tsdb', 'thanos-objstore', 'tmp'];

const envArb: fc.Arbitrary<V1EnvVar[]> = fc.array(
  fc.oneof(
    fc.record({ name: fc.constantFrom('FOO', 'GOMAXPROCS', 'TZ'), value: fc.constantFrom('bar', '2', 'UTC', '') }),
    fc.record({ name: fc.constantFrom('POD_NAME', 'NODE'), valueFrom: fc.constant({ fieldRef: { fieldPath: 'metadata.name' } }) }),
  ),
  { maxLength: 3 },
);

// The sidecar's own ports (10901, 10902) appear now and then: such pods must be refused, not broken.
const portArb = fc.oneof({ arbitrary: fc.constantFrom(8080, 9090, 9100), weight: 12 }, { arbitrary: fc.constantFrom(10901, 10902), weight: 1 });
const portsArb = fc.uniqueArray(portArb, { maxLength: 2 }).map((ports) =>
  ports.map((containerPort) => ({ containerPort })),
);

const blockArb = fc.oneof(
  fc.constant<[string | undefined, string | undefined]>([undefined, undefined]),
  fc.constantFrom(...DURATIONS).map((d): [string, string] => [d, d]),
  fc.constant<[string, string]>(['2h', '120m']),
  fc.tuple(fc.constantFrom(...DURATIONS), fc.constantFrom(...DURATIONS)),
  fc.constantFrom(...DURATIONS).map((d): [string, undefined] => [d, undefined]),
  fc.constantFrom(...DURATIONS).map((d): [undefined, string] => [undefined, d]),
);

interface FlagItem {
  name: string;
  value?: string;
}

/** Prometheus flags (without the block flags, added from blockArb). */
const otherFlagsArb: fc.Arbitrary<FlagItem[]> = fc
  .record(
    {
      tsdb: fc.constantFrom(...TSDB_PATHS),
      listen: fc.constantFrom(':9091', '0.0.0.0:9090', '[::]:9095', '127.0.0.1:9096'),
      prefix: fc.constantFrom('/prom', '/', 'prom/'),
      external: fc.constantFrom('https://prometheus.example.com/', 'http://example.com:9090/sub/', '/prometheus/'),
      config: fc.constantFrom('/etc/prometheus/prometheus.yml', '/config/prom.yaml'),
      retention: fc.constantFrom('15d', '7d', '4h'),
      feature: fc.constantFrom('exemplar-storage', 'memory-snapshot-on-shutdown'),
    },
    { requiredKeys: [] },
  )
  .map((r) => {
    const names: Record<string, string> = {
      tsdb: 'storage.tsdb.path',
      listen: 'web.listen-address',
      prefix: 'web.route-prefix',
      external: 'web.external-url',
      config: 'config.file',
      retention: 'storage.tsdb.retention.time',
      lifecycle: 'web.enable-lifecycle',
      feature: 'enable-feature',
    };
    return Object.entries(r).map(([key, value]: [string, string | undefined]): FlagItem => ({ name: names[key] as string, value }));
  });

/** Flags as argv tokens, each `--name=value` or `--name value`. */
function tokensOf(items: FlagItem[], forms: boolean[]): string[] {
  return items.flatMap((item, i) => {
    if (item.value === undefined) return [`--${item.name}`];
    return forms[i] ? [`--${item.name}=${item.value}`] : [`--${item.name}`, item.value];
  });
}

const prometheusArb = fc
  .record({
    byName: fc.boolean(),
    name: dnsLabel,
    image: fc.constantFrom(...PROMETHEUS_IMAGES, 'example.com/custom-prometheus-build:1'),
    promImage: fc.constantFrom(...PROMETHEUS_IMAGES),
    flags: otherFlagsArb,
    block: blockArb,
    order: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
    forms: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    placement: fc.constantFrom('args', 'args', 'args+entrypoint', 'command', 'split', 'none', 'shell'),
    split: fc.nat(),
    workingDir: fc.option(fc.constantFrom(...WORKING_DIRS), { nil: undefined }),
    env: envArb,
    ports: portsArb,
    runAsUser: fc.option(fc.constantFrom(0, 1000, 65534), { nil: undefined }),
    otherArgs: fc.subarray(['--query.max-concurrency=20', '--log.level=debug']),
  })
  .map((r) => {
    const items: FlagItem[] = [...r.flags, ...r.otherArgs.map((a) => ({ name: a.slice(2).split('=')[0] as string, value: a.split('=')[1] }))];
    const [minBlock, maxBlock] = r.block;
    if (minBlock !== undefined) items.push({ name: MIN, value: minBlock });
    if (maxBlock !== undefined) items.push({ name: MAX, value: maxBlock });
    const shuffled = items
      .map((item, i) => ({ item, key: r.order[i % r.order.length] ?? 0 }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.item);
    const tokens = tokensOf(shuffled, r.forms);
    const container: V1Container = {
      name: r.byName ? 'prometheus' : r.name,
      image: r.byName ? r.image : r.promImage,
    };
    let placement = r.placement;
    if (placement === 'none' && tokens.length > 0 && r.split % 3 !== 0) placement = 'args';
    switch (placement) {
      case 'args':
        container.args = tokens;
        break;
      case 'args+entrypoint':
        container.command = ['/bin/prometheus'];
        container.args = tokens;
        break;
      case 'command':
        container.command = ['/bin/prometheus', ...tokens];
        break;
      case 'split': {
        const at = tokens.length === 0 ? 0 : r.split % (tokens.length + 1);
        container.command = ['/bin/prometheus', ...tokens.slice(0, at)];
        container.args = tokens.slice(at);
        break;
      }
      case 'shell':
        container.command = ['/bin/sh', '-c'];
        container.args = [`exec /bin/prometheus ${tokens.join(' ')}`];
        break;
      case 'none':
        break;
    }
    if (r.workingDir !== undefined) container.workingDir = r.workingDir;
    if (r.env.length > 0) container.env = r.env;
    if (r.ports.length > 0) container.ports = r.ports;
    if (r.runAsUser !== undefined) container.securityContext = { runAsUser: r.runAsUser };
    const imageDefaults = placement === 'none';
    // With neither command nor args the generated flags are not used at all: the image CMD runs.
    if (imageDefaults) return { container, tsdbPath: '/prometheus', url: 'http://localhost:9090', minBlock: undefined, maxBlock: undefined, shell: false, imageDefaults };
    const tsdbFlag = items.find((item) => item.name === 'storage.tsdb.path')?.value;
    const workingDir = r.workingDir ?? '/prometheus';
    const tsdbPath = imageDefaults ? '/prometheus' : posix.resolve(workingDir, tsdbFlag ?? 'data');
    const value = (name: string) => items.find((item) => item.name === name)?.value;
    const port = /:([0-9]+)$/.exec(value('web.listen-address') ?? ':9090')?.[1] ?? '9090';
    // Prometheus: the route prefix defaults to the path of --web.external-url (Go's url.Parse
    // takes a bare path too); then a leading / is added and trailing ones removed.
    const external = value('web.external-url');
    const prefixRaw = value('web.route-prefix') ?? (external === undefined ? '' : /^[a-z]+:\/\/[^/]*(.*)$/.exec(external)?.[1] ?? external);
    const prefix = prefixRaw.replace(/\/+$/, '') === '' ? '' : `/${prefixRaw.replace(/^\/+/, '').replace(/\/+$/, '')}`;
    const url = `http://localhost:${port}${prefix}`;
    return { container, tsdbPath, url, minBlock, maxBlock, shell: placement === 'shell', imageDefaults };
  });

const otherContainerArb = fc
  .record({
    image: fc.constantFrom(...OTHER_IMAGES),
    args: fc.option(fc.subarray(['--storage.tsdb.min-block-duration=5m', '--web.listen-address=:8080', 'serve', '--v=2']), { nil: undefined }),
    command: fc.option(fc.constantFrom<string[]>(['/app'], ['sh', '-c', 'sleep infinity']), { nil: undefined }),
    env: envArb,
    ports: portsArb,
    mount: fc.option(fc.record({ path: fc.constantFrom('/prometheus', '/data', '/config', '/tmp') }), { nil: undefined }),
  })
  .map((r) => {
    const c: Omit<V1Container, 'name'> = { image: r.image };
    if (r.command !== undefined) c.command = r.command;
    if (r.args !== undefined) c.args = r.args;
    if (r.env.length > 0) c.env = r.env;
    if (r.ports.length > 0) c.ports = r.ports;
    return { container: c, mountPath: r.mount?.path };
  });

const volumeArb = (name: string) =>
  fc.constantFrom<V1Volume>(
    { name, emptyDir: {} },
    { name, persistentVolumeClaim: { claimName: `${name}-claim` } },
    { name, configMap: { name: `${name}-cm` } },
  );

const OVERRIDES: Record<string, string[]> = {
  image: ['quay.io/thanos/thanos:v0.40.0', 'thanosio/thanos:v0.39.2'],
  'log-level': ['debug', 'warn', 'error'],
  'sidecar-mode': ['auto', 'native', 'container'],
  'block-duration': ['2h', '1h', '30m', '120m'],
  'run-as-user': ['1000', '65534'],
  'cpu-request': ['100m', '0.25'],
  'memory-request': ['128Mi', '256Mi'],
  'memory-limit': ['1Gi', '768Mi'],
  'objstore-secret': ['bucket', 'bucket/s3.yaml'],
};
const overridesArb = fc
  .record(
    Object.fromEntries(Object.entries(OVERRIDES).map(([key, values]) => [key, fc.constantFrom(...values)])),
    { requiredKeys: [] },
  )
  .map((values) => Object.fromEntries(Object.entries(values).map(([key, value]) => [`thanos-injector/${key}`, value])));

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    withPrometheus: fc.integer({ min: 0, max: 5 }).map((n) => n > 0),
    prometheus: prometheusArb,
    others: fc.array(otherContainerArb, { maxLength: 4 }),
    inits: fc.array(otherContainerArb, { maxLength: 2 }),
    names: fc.uniqueArray(dnsLabel, { minLength: 8, maxLength: 8 }),
    position: fc.nat(),
    volumes: fc.uniqueArray(fc.constantFrom(...VOLUME_NAMES), { maxLength: 4 }).chain((names) => fc.tuple(...names.map(volumeArb))),
    volumesPresent: fc.boolean(),
    mounts: fc.uniqueArray(
      fc.record({
        path: fc.constantFrom(...MOUNT_PATHS),
        volume: fc.nat(),
        subPath: fc.option(fc.constantFrom('sub', 'a/b'), { nil: undefined }),
        readOnly: fc.option(fc.boolean(), { nil: undefined }),
      }),
      // Unique directories (`/data` and `/data/` are the same mount point).
      { maxLength: 3, selector: (m) => posix.normalize(m.path).replace(/(.)\/+$/, '$1') },
    ),
    securityContext: fc.option(
      fc.record(
        {
          runAsUser: fc.constantFrom(0, 1000, 65534),
          runAsGroup: fc.constantFrom(0, 1000, 65534),
          fsGroup: fc.constantFrom(1000, 2000, 65534),
          runAsNonRoot: fc.boolean(),
          supplementalGroups: fc.constant<number[]>([4000]),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
    labels: fc.option(
      fc.dictionary(
        fc.constantFrom('app', 'app.kubernetes.io/name', 'example.com/team', 'tier', 'thanos-injection'),
        fc.constantFrom('prometheus', 'monitoring', 'enabled', 'a.b_c-d'),
        { maxKeys: 4 },
      ),
      { nil: undefined },
    ),
    annotations: fc.option(
      fc.dictionary(
        fc.constantFrom('prometheus.io/scrape', 'example.com/owner', 'kubectl.kubernetes.io/default-container', 'note', 'a.b.c/d_e'),
        fc.constantFrom('true', 'team-a', 'prometheus', '', '{"json": [1, 2]}', 'with / slash ~ tilde'),
        { maxKeys: 4 },
      ),
      { nil: undefined },
    ),
    overrides: overridesArb,
    namePrometheus: fc.boolean(),
    hostNetwork: fc.option(fc.boolean(), { nil: undefined }),
    restartPolicy: fc.option(fc.constantFrom('Always', 'OnFailure', 'Never'), { nil: undefined }),
    configIndex: fc.integer({ min: 0, max: CONFIGS.length - 1 }),
    version: fc.constantFrom(...VERSIONS),
    defaulted: fc.boolean(),
  })
  .map((r) => {
    const volumes: V1Volume[] = r.volumes;
    const names = [...r.names];
    const take = () => names.shift() as string;
    const mountsOf = (wanted: typeof r.mounts): V1VolumeMount[] =>
      wanted.flatMap((m) => {
        const volume = volumes.length > 0 ? volumes[m.volume % volumes.length] : undefined;
        if (volume === undefined) return [];
        return [{ name: volume.name, mountPath: m.path, ...(m.subPath ? { subPath: m.subPath } : {}), ...(m.readOnly !== undefined ? { readOnly: m.readOnly } : {}) }];
      });
    const others: V1Container[] = r.others.map((o) => ({
      name: take(),
      ...o.container,
      ...(o.mountPath !== undefined && volumes[0] ? { volumeMounts: [{ name: volumes[0].name, mountPath: o.mountPath }] } : {}),
    }));
    const inits: V1Container[] = r.inits.map((o) => ({ name: take(), ...o.container }));
    const containers = [...others];
    let prometheusIndex: number | undefined;
    if (r.withPrometheus || containers.length === 0) {
      const prometheus = { ...r.prometheus.container };
      if (prometheus.name !== 'prometheus') prometheus.name = take();
      const mounts = mountsOf(r.mounts);
      if (mounts.length > 0) prometheus.volumeMounts = mounts;
      if (!r.withPrometheus) {
        // A pod needs a container: a plain one, no Prometheus.
        containers.push({ name: take(), image: 'nginx:1.27' });
      } else {
        prometheusIndex = r.position % (containers.length + 1);
        containers.splice(prometheusIndex, 0, prometheus);
      }
    }
    const annotations: Record<string, string> = { ...(r.annotations ?? {}) };
    if (prometheusIndex !== undefined) {
      Object.assign(annotations, r.overrides);
      if (r.namePrometheus) annotations['thanos-injector/prometheus-container'] = containers[prometheusIndex]?.name ?? '';
    }
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'prom-0',
        ...(r.labels !== undefined ? { labels: { ...r.labels, ...(r.labels['thanos-injection'] ? { 'thanos-injection': 'enabled' } : {}) } } : {}),
        ...(r.annotations !== undefined || Object.keys(annotations).length > 0 ? { annotations } : {}),
      },
      spec: {
        containers,
        ...(inits.length > 0 ? { initContainers: inits } : {}),
        ...(r.volumesPresent || volumes.length > 0 ? { volumes } : {}),
        ...(r.securityContext !== undefined ? { securityContext: r.securityContext } : {}),
        ...(r.hostNetwork !== undefined ? { hostNetwork: r.hostNetwork } : {}),
        ...(r.restartPolicy !== undefined ? { restartPolicy: r.restartPolicy } : {}),
      },
    };
    const result: Case = {
      pod,
      shell: r.prometheus.shell,
      imageDefaults: r.prometheus.imageDefaults,
      configIndex: r.configIndex,
      version: r.version,
      defaulted: r.defaulted,
    };
    if (prometheusIndex !== undefined) {
      result.prometheus = prometheusIndex;
      result.tsdbPath = r.prometheus.tsdbPath;
      result.prometheusUrl = r.prometheus.url;
      result.minBlock = r.prometheus.minBlock;
      result.maxBlock = r.prometheus.maxBlock;
    }
    return result;
  });

// ---------------------------------------------------------------------------------------------
// Helpers (independent of the code under test)

/** Milliseconds of a Prometheus duration (units in order, each once), else undefined. */
function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/.exec(text);
  if (!match || text === '') return undefined;
  const units = [365 * 86400e3, 7 * 86400e3, 86400e3, 3600e3, 60e3, 1e3, 1];
  return units.reduce((total, unit, i) => total + Number(match[i + 1] ?? 0) * unit, 0);
}

/** Every value of every `--flag` in argv, the way Prometheus' flag parser reads them. */
function flagValues(argv: string[]): Map<string, string[]> {
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith('--')) continue;
    const body = token.slice(2);
    const equals = body.indexOf('=');
    let name = body;
    let value: string;
    if (equals >= 0) {
      name = body.slice(0, equals);
      value = body.slice(equals + 1);
    } else if (BOOLEAN_FLAGS.has(body)) {
      value = 'true';
    } else {
      value = argv[i + 1] ?? '';
      i++;
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return flags;
}

/** The argv Prometheus runs with (image CMD when the container sets neither command nor args; the words of a `sh -c` script). */
function prometheusArgv(container: V1Container): string[] {
  if (container.command === undefined && container.args === undefined) return imageCmd(container.image);
  if (container.command?.[0] === '/bin/sh') return (container.args?.[0] ?? '').split(/\s+/).slice(2);
  return [...(container.command ?? []).slice(1), ...(container.args ?? [])];
}

/** A shallow copy of `object` without `keys`. */
function omit(object: object, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

function covers(mountPath: string, path: string): boolean {
  const mount = posix.normalize(mountPath).replace(/(.)\/+$/, '$1');
  return mount === '/' ? path.startsWith('/') : path === mount || path.startsWith(`${mount}/`);
}

function contextOf(c: Case) {
  return { config: (CONFIGS[c.configIndex] as (typeof CONFIGS)[number]).config, namespace: NAMESPACE, kubernetesVersion: c.version };
}

function inputOf(c: Case): Pod {
  return c.defaulted ? applyPodDefaults(c.pod) : structuredClone(c.pod);
}

function fail(message: string, detail?: unknown): never {
  throw new Error(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
}

function patched(input: Pod, result: Injection): Pod {
  if (result.outcome !== 'injected') fail('expected an injection', result);
  return applyPatchStrict(input, result.patch) as Pod;
}

const sidecarOf = (pod: Pod): V1Container | undefined =>
  [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c) => c.name === SIDECAR);

/** Whether the case is expected to be denied: Prometheus run by a shell with block flags that need editing. */
function expectsDenial(c: Case, input: Pod): boolean {
  // A port the sidecar needs is taken: refused with a message rather than a sidecar that cannot bind.
  const ports = [...input.spec.containers, ...(input.spec.initContainers ?? [])].flatMap((x) => x.ports ?? []);
  if (ports.some((p) => p.containerPort === 10901 || p.containerPort === 10902)) return true;
  if (!c.shell || !(CONFIGS[c.configIndex] as (typeof CONFIGS)[number]).config.objstore.enabled) return false;
  const wanted = durationMs(input.metadata.annotations?.['thanos-injector/block-duration'] ?? '2h');
  const min = durationMs(c.minBlock);
  const max = durationMs(c.maxBlock);
  const explicit = input.metadata.annotations?.['thanos-injector/block-duration'] !== undefined;
  if (min !== undefined && min === max && (!explicit || min === wanted)) return false;
  return !(min === wanted && max === wanted);
}

/** Runs a property; a counterexample becomes one failed assertion with fast-check's report. */
function check(t: Test, name: string, predicate: (c: Case) => void): void {
  try {
    fc.assert(fc.property(caseArb, predicate), { numRuns: RUNS, seed: SEED, includeErrorInReport: true });
    t.pass(`${name} (${RUNS} runs)`);
  } catch (error) {
    t.fail(`${name}: ${(error as Error).message.slice(0, 6000)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Properties

void t.test('(a) injectPod never throws, and Prometheus pods are injected (or denied for a shell script or a taken port)', (t) => {
  check(t, 'never throws; Prometheus pods injected, or denied for a shell script or a taken port', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (c.prometheus === undefined) return;
    const expected = expectsDenial(c, input) ? 'denied' : 'injected';
    if (result.outcome !== expected) fail(`expected ${expected}`, result);
  });
  t.end();
});

void t.test('(b) the patch applies with apiserver semantics and never makes a valid pod invalid', (t) => {
  check(t, 'applies and stays valid', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected') return;
    const output = patched(input, result);
    if (validatePod(applyPodDefaults(input)).length > 0) return;
    const errors = validatePod(applyPodDefaults(output));
    if (errors.length > 0) fail('the injected pod is invalid', { errors, pod: c.pod, version: c.version, config: CONFIGS[c.configIndex]?.name });
  });
  t.end();
});

void t.test('(c) a second injectPod on the patched pod skips it as already injected', (t) => {
  check(t, 'idempotent', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected') return;
    const output = applyPodDefaults(patched(input, result));
    const again = injectPod(output, contextOf(c));
    if (again.outcome !== 'skipped' || again.reason !== 'already-injected') fail('second pass', again);
  });
  t.end();
});

void t.test('(d) nothing the user had is removed or changed beyond the documented edits', (t) => {
  check(t, 'preserves the user content', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected') return;
    const output = patched(input, result);
    const prometheusName = input.spec.containers[c.prometheus ?? -1]?.name;

    // Containers keep their place; everything but Prometheus' args, command and mounts is identical.
    for (const list of ['containers', 'initContainers'] as const) {
      const before = input.spec[list] ?? [];
      const after = output.spec[list] ?? [];
      before.forEach((original, i) => {
        const now = after[i];
        if (now === undefined || now.name !== original.name) fail(`${list}[${i}] ${original.name} moved or vanished`);
        if (original.name !== prometheusName || list === 'initContainers') {
          deepStrictEqual(now, original, `${list}[${i}] ${original.name} changed`);
          return;
        }
        deepStrictEqual(omit(now, ['args', 'command', 'volumeMounts', 'env']), omit(original, ['args', 'command', 'volumeMounts', 'env']), `Prometheus container ${original.name}: a field other than args/command/volumeMounts/env changed`);
        // env: the user's entries in place; POD_NAME (for a replica external label) appended unless it had one.
        deepStrictEqual((now.env ?? []).slice(0, original.env?.length ?? 0), original.env ?? [], 'Prometheus env kept in place');
        const addedEnv = (now.env ?? []).slice(original.env?.length ?? 0);
        const hadPodName = (original.env ?? []).some((e) => e.name === 'POD_NAME');
        deepStrictEqual(addedEnv, hadPodName ? [] : [{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }], 'only POD_NAME added to env');
        deepStrictEqual((now.volumeMounts ?? []).slice(0, original.volumeMounts?.length ?? 0), original.volumeMounts ?? [], 'Prometheus mounts kept in place');
        if ((now.volumeMounts ?? []).length > (original.volumeMounts ?? []).length + 1) fail('more than one mount added to Prometheus');
        // command and args: same elements except block flag values; only the documented flags (or the image defaults) appended.
        const oldArgv = [...(original.command ?? []), ...(original.args ?? [])];
        const newCommand = now.command ?? [];
        if (newCommand.length !== (original.command ?? []).length) fail('command length changed', { before: original.command, after: now.command });
        const newArgv = [...newCommand, ...(now.args ?? [])];
        oldArgv.forEach((token, j) => {
          const replaced = newArgv[j];
          if (replaced === token) return;
          const flagHere = /^--(storage\.tsdb\.(min|max)-block-duration)=/.exec(token);
          const flagBefore = /^--storage\.tsdb\.(min|max)-block-duration$/.test(oldArgv[j - 1] ?? '');
          const ok = flagHere ? replaced?.startsWith(`--${flagHere[1]}=`) && durationMs(replaced.split('=')[1]) !== undefined : flagBefore && durationMs(replaced) !== undefined;
          if (!ok) fail(`argument ${j} changed from ${token} to ${replaced}`, { before: oldArgv, after: newArgv });
        });
        const appended = newArgv.slice(oldArgv.length);
        // The documented edits: block durations, delayed compaction's upload record, no vertical compaction of overlapping blocks, external label expansion (2.x).
        const allowed = appended.filter((token) => /^--storage\.tsdb\.((min|max)-block-duration|delay-compact-file\.path)=|^--no-storage\.tsdb\.allow-overlapping-compaction$|^--enable-feature=expand-external-labels$/.test(token) || (c.imageDefaults && imageCmd(original.image).includes(token)));
        if (allowed.length !== appended.length) fail('unexpected arguments appended', appended);
      });
      if (list === 'containers' && after.length > before.length + 1) fail('more than one container added');
    }

    // Volumes: the user's first, unchanged.
    deepStrictEqual((output.spec.volumes ?? []).slice(0, input.spec.volumes?.length ?? 0), input.spec.volumes ?? [], 'volumes changed');
    // Labels, annotations, pod securityContext: every original entry unchanged.
    for (const [key, value] of Object.entries(input.metadata.labels ?? {})) {
      if (output.metadata.labels?.[key] !== value) fail(`label ${key} changed`, output.metadata.labels);
    }
    for (const [key, value] of Object.entries(input.metadata.annotations ?? {})) {
      if (output.metadata.annotations?.[key] !== value) fail(`annotation ${key} changed`, output.metadata.annotations);
    }
    for (const [key, value] of Object.entries(input.spec.securityContext ?? {})) {
      deepStrictEqual((output.spec.securityContext as Record<string, unknown> | undefined)?.[key], value, `securityContext.${key} changed`);
    }
    // The other pod-level fields are untouched.
    const edited = ['containers', 'initContainers', 'volumes', 'securityContext'];
    deepStrictEqual(omit(output.spec, edited), omit(input.spec, edited), 'other spec fields changed');
  });
  t.end();
});

void t.test('(e) the sidecar mounts the volume holding the TSDB at the same path', (t) => {
  check(t, 'sidecar sees the TSDB', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected' || c.tsdbPath === undefined) return;
    const output = patched(input, result);
    const prometheus = output.spec.containers[c.prometheus ?? -1] as V1Container;
    const sidecar = sidecarOf(output) ?? fail('no sidecar');
    const tsdbArg = (sidecar.args ?? []).find((a) => a.startsWith('--tsdb.path='));
    if (tsdbArg !== `--tsdb.path=${c.tsdbPath}`) fail(`sidecar ${tsdbArg ?? 'has no --tsdb.path'}, Prometheus keeps its TSDB in ${c.tsdbPath}`);
    const holder = (prometheus.volumeMounts ?? [])
      .filter((m) => covers(m.mountPath, c.tsdbPath as string))
      .sort((a, b) => posix.normalize(b.mountPath).length - posix.normalize(a.mountPath).length)[0];
    if (holder === undefined) fail(`no volume holds Prometheus' TSDB ${c.tsdbPath} after injection`, prometheus.volumeMounts);
    const shared = (sidecar.volumeMounts ?? []).find((m) => m.name === holder.name);
    if (shared === undefined) fail(`the sidecar does not mount ${holder.name}`, sidecar.volumeMounts);
    if (shared.mountPath !== holder.mountPath || shared.subPath !== holder.subPath || shared.subPathExpr !== holder.subPathExpr) {
      fail('the sidecar mounts the TSDB volume differently', { prometheus: holder, sidecar: shared });
    }
    if (shared.readOnly === true) fail('the sidecar mounts the TSDB read-only');
  });
  t.end();
});

void t.test('(f) a pod without a Prometheus container is skipped', (t) => {
  check(t, 'skipped without Prometheus', (c) => {
    if (c.prometheus !== undefined) return;
    const result = injectPod(inputOf(c), contextOf(c));
    if (result.outcome !== 'skipped' || result.reason !== 'no-prometheus') fail('expected a no-prometheus skip', result);
  });
  t.end();
});

void t.test('(g) after injection with object storage, Prometheus runs with min = max block duration', (t) => {
  check(t, 'block flags equal', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected' || !CONFIGS[c.configIndex]?.config.objstore.enabled) return;
    const output = patched(input, result);
    const flags = flagValues(prometheusArgv(output.spec.containers[c.prometheus ?? -1] as V1Container));
    const min = flags.get(MIN) ?? [];
    const max = flags.get(MAX) ?? [];
    if (min.length !== 1 || max.length !== 1) fail('each block flag must be set exactly once', { min, max });
    const minMs = durationMs(min[0]);
    if (minMs === undefined || minMs !== durationMs(max[0])) fail('min and max block durations differ', { min, max });
    const annotation = input.metadata.annotations?.['thanos-injector/block-duration'];
    const originalEqual = durationMs(c.minBlock) !== undefined && durationMs(c.minBlock) === durationMs(c.maxBlock);
    const expected = annotation !== undefined ? durationMs(annotation) : originalEqual ? durationMs(c.minBlock) : durationMs('2h');
    if (minMs !== expected) fail(`block duration ${min[0]}, expected ${expected}ms`);
  });
  t.end();
});

void t.test('(h) the sidecar calls Prometheus on its port and route prefix', (t) => {
  check(t, 'prometheus.url', (c) => {
    const input = inputOf(c);
    const result = injectPod(input, contextOf(c));
    if (result.outcome !== 'injected') return;
    const sidecar = sidecarOf(patched(input, result)) ?? fail('no sidecar');
    const url = (sidecar.args ?? []).find((a) => a.startsWith('--prometheus.url='));
    if (url !== `--prometheus.url=${c.prometheusUrl}`) fail(`sidecar ${url ?? 'has no --prometheus.url'}, expected ${c.prometheusUrl}`, input.spec.containers[c.prometheus ?? -1]);
  });
  t.end();
});

void t.test('(b) examples: pods the injection cannot keep valid are refused with a reason, not broken', async (t) => {
  const refused = (t: Test, pod: Pod, context: ReturnType<typeof contextOf>, reason: RegExp) => {
    t.same(validatePod(applyPodDefaults(pod)), [], 'the input is valid');
    const result = injectPod(pod, context);
    t.equal(result.outcome, 'denied', 'it is refused (no patch that would make it invalid)');
    if (result.outcome === 'denied') t.match(result.message, reason, 'with a message naming the cause and the fix');
  };
  const base = (container: V1Container, spec: Partial<Pod['spec']> = {}): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'prom-0' },
    spec: { containers: [container], ...spec },
  });
  await t.test('hostNetwork pod whose Prometheus already uses the sidecar gRPC port (sidecarMode container)', (t) => {
    // With hostNetwork every containerPort becomes a hostPort; two regular containers may not share one.
    refused(
      t,
      base({ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.path=/prometheus'], ports: [{ containerPort: 10901 }] }, { hostNetwork: true }),
      { config: CONFIGS[0]!.config, namespace: NAMESPACE, kubernetesVersion: '1.28' },
      /container prometheus already uses port 10901.*grpcPort\/httpPort/,
    );
    t.end();
  });
  await t.test('TSDB path equal to the objstore mount path', (t) => {
    refused(
      t,
      base({ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.path=/etc/thanos/objstore'] }),
      { config: CONFIGS[0]!.config, namespace: NAMESPACE, kubernetesVersion: '1.33' },
      /TSDB is mounted at \/etc\/thanos\/objstore.*objstore\.mountPath/,
    );
    t.end();
  });
});

void t.test('the generator covers the interesting shapes', (t) => {
  const samples = fc.sample(caseArb, { numRuns: 500, seed: SEED });
  const count = (f: (c: Case) => boolean) => samples.filter(f).length;
  const injected = samples.map((c) => ({ c, r: injectPod(inputOf(c), contextOf(c)) }));
  t.ok(count((c) => c.prometheus === undefined) > 25, 'pods without Prometheus');
  t.ok(count((c) => c.shell) > 10, 'shell scripts');
  t.ok(count((c) => c.imageDefaults && c.prometheus !== undefined) > 10, 'image defaults');
  t.ok(count((c) => c.pod.spec.containers.some((x) => x.command !== undefined && x.command.join(' ').includes('--storage'))) > 10, 'flags in command');
  t.ok(count((c) => c.minBlock !== undefined && c.minBlock === c.maxBlock) > 10, 'equal block flags');
  t.ok(count((c) => c.minBlock !== undefined && c.maxBlock !== undefined && c.minBlock !== c.maxBlock) > 10, 'unequal block flags');
  t.ok(count((c) => (c.pod.spec.containers[c.prometheus ?? -1]?.volumeMounts ?? []).some((m) => covers(m.mountPath, c.tsdbPath ?? ''))) > 25, 'mounts covering the TSDB');
  t.ok(count((c) => (c.pod.spec.containers[c.prometheus ?? -1]?.volumeMounts ?? []).some((m) => m.subPath !== undefined && covers(m.mountPath, c.tsdbPath ?? ''))) > 5, 'with a subPath');
  t.ok(count((c) => c.pod.spec.initContainers !== undefined) > 25, 'init containers');
  t.ok(count((c) => c.pod.spec.securityContext !== undefined) > 25, 'pod securityContext');
  t.ok(count((c) => Object.keys(c.pod.metadata.annotations ?? {}).some((k) => k.startsWith('thanos-injector/'))) > 25, 'override annotations');
  t.ok(count((c) => c.pod.spec.volumes === undefined) > 25, 'no volumes');
  t.ok(count((c) => c.pod.spec.hostNetwork === true) > 25, 'hostNetwork');
  t.ok(count((c) => c.prometheusUrl !== undefined && c.prometheusUrl !== 'http://localhost:9090') > 50, 'ports and route prefixes');
  t.ok(count((c) => validatePod(applyPodDefaults(c.pod)).length === 0) > 250, 'mostly valid pods');
  t.ok(injected.filter(({ r }) => r.outcome === 'injected').length > 250, 'mostly injected');
  t.ok(injected.filter(({ r }) => r.outcome === 'denied' && /already uses port/.test(r.message)).length > 5, 'some taken sidecar ports');
  t.ok(injected.filter(({ r }) => r.outcome === 'injected' && r.patch.some((op) => op.op === 'replace')).length > 25, 'flags replaced in place');
  t.end();
});
