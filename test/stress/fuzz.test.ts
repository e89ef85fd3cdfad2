// Fuzzing the real webhook over HTTPS (one in-process server, keep-alive, 16 requests in flight):
// (a) at least 10 000 AdmissionReviews of generated pod shapes, every answer checked the way the
//     apiserver would use it (strict RFC 6902 patch, v1 defaults, pod validation) against a small
//     model of what the injector must do (skip, deny with a named annotation, or inject);
// (b) hostile bodies: wrong types at every level of a real AdmissionReview, missing fields, 1 MB
//     strings, 10 000-level nesting, invalid UTF-8, duplicate keys, prototype keys, out-of-range
//     numbers, truncated JSON, empty bodies, wrong content types and methods. Never a 5xx, never a
//     hang, a clear 4xx JSON error or a well-formed AdmissionReview, no prototype pollution.
// Seed: STRESS_SEED (printed); size: STRESS_FUZZ_RUNS (default 10000). STRESS_PROBLEMS_FILE=PATH
// writes every problem (PATH.a, PATH.b) and the inputs behind the first ones (PATH.cases.json).
import t from 'tap';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { seedReview } from '../../bench/fixtures.ts';
import { applyPatchStrict } from '../harness/jsonpatch.ts';
import { applyPodDefaults } from '../harness/pod-defaults.ts';
import { validatePod } from '../harness/pod-validation.ts';
import { startTestWebhook, type TestWebhook } from '../support/webhook.ts';
import { httpsCall, pool, type Answer, type Json } from '../support/stress.ts';

t.setTimeout(600_000);

const SEED = Number(process.env.STRESS_SEED ?? 20261125);
const RUNS = Math.max(1, Number(process.env.STRESS_FUZZ_RUNS ?? 10_000));
const CONCURRENCY = 16;
/** Wall-clock bound of each part (the loops stop there and the shortfall is reported). */
const PART_DEADLINE_MS = 240_000;
const REQUEST_TIMEOUT_MS = 15_000;

const PREFIX = 'thanos-injector/';
const SIDECAR = 'thanos-sidecar';
const MIRROR = 'kubernetes.io/config.mirror';
const INJECTOR_NAMESPACE = 'thanos-system';
const EXCLUDED = ['kube-system', 'kube-public', 'kube-node-lease'];

// ---------------------------------------------------------------------------------------------
// What a hostile or odd answer must never say (an exception leaking out instead of a sentence).
const LEAKS = /Maximum call stack|internal error|Cannot read propert|is not a function|undefined is not|TypeError|RangeError|ReferenceError|\[object Object\]|\.ts:[0-9]+/;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

interface ReviewBody {
  apiVersion?: unknown;
  kind?: unknown;
  response?: { uid?: unknown; allowed?: unknown; patch?: unknown; patchType?: unknown; warnings?: unknown; status?: { code?: unknown; message?: unknown } };
}

/** Problems with a 200 answer as an AdmissionReview for `uid` (warnings, patch encoding). */
function reviewProblems(answer: Answer, uid: unknown): { problems: string[]; review?: ReviewBody; ops?: unknown[] } {
  const problems: string[] = [];
  const review = answer.json as ReviewBody | undefined;
  if (!/^application\/json/.test(String(answer.headers['content-type']))) problems.push(`content-type ${String(answer.headers['content-type'])}`);
  if (review === undefined || review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview' || typeof review.response !== 'object' || review.response === null) {
    return { problems: [...problems, `200 without an AdmissionReview: ${answer.text.slice(0, 200)}`] };
  }
  const response = review.response;
  if (response.uid !== uid) problems.push(`response.uid ${JSON.stringify(response.uid)} does not echo ${JSON.stringify(uid)}`);
  if (typeof response.allowed !== 'boolean') problems.push(`response.allowed is ${JSON.stringify(response.allowed)}`);
  if (response.warnings !== undefined) {
    if (!Array.isArray(response.warnings)) problems.push('warnings is not an array');
    else {
      for (const warning of response.warnings as unknown[]) {
        if (typeof warning !== 'string') problems.push(`warning ${JSON.stringify(warning)} is not a string`);
        else {
          if (warning.length > 120) problems.push(`warning over 120 characters: ${warning.slice(0, 80)}...`);
          if (CONTROL.test(warning)) problems.push(`warning with a control character: ${JSON.stringify(warning).slice(0, 120)}`);
          if (/internal error/.test(warning)) problems.push(`internal error (an exception inside the injector): ${warning}`);
        }
      }
    }
  }
  let ops: unknown[] | undefined;
  if (response.patch !== undefined) {
    if (response.patchType !== 'JSONPatch') problems.push(`patch with patchType ${JSON.stringify(response.patchType)}`);
    if (typeof response.patch !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(response.patch) || response.patch.length % 4 !== 0) {
      problems.push('patch is not standard padded base64');
    } else {
      try {
        const decoded = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown;
        if (!Array.isArray(decoded)) problems.push('patch is not a JSON array');
        else ops = decoded;
      } catch {
        problems.push('patch is not JSON');
      }
    }
  }
  return { problems, review, ops };
}

/** Problems with a 4xx answer: JSON {error, message}, a message that says what is wrong. */
function errorProblems(answer: Answer): string[] {
  const problems: string[] = [];
  if (!/^application\/json/.test(String(answer.headers['content-type']))) problems.push(`content-type ${String(answer.headers['content-type'])}`);
  const body = answer.json as { error?: unknown; message?: unknown } | undefined;
  if (typeof body?.error !== 'string' || body.error === '' || typeof body.message !== 'string' || body.message.trim() === '') {
    return [...problems, `HTTP ${answer.status} without a JSON {error, message}: ${answer.text.slice(0, 200)}`];
  }
  const leak = LEAKS.exec(body.message);
  if (leak) problems.push(`HTTP ${answer.status} message is not clear (leaks "${leak[0]}"): ${body.message.slice(0, 200)}`);
  if (body.message.length > 2000) problems.push(`HTTP ${answer.status} message of ${body.message.length} characters`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Part (a): generated pods

const PROMETHEUS_IMAGES = [
  'quay.io/prometheus/prometheus:v3.5.0',
  'prom/prometheus',
  'prom/prometheus:v2.53.0',
  'docker.io/prom/prometheus:latest',
  'registry:5000/team/prometheus@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
];
const OTHER_IMAGES = [
  'nginx:1.27',
  'busybox',
  'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2',
  'prom/node-exporter:v1.8.2',
  'quay.io/thanos/thanos:v0.42.5',
  'ghcr.io/example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
];
const OTHER_NAMES = ['app', 'config-reloader', 'web', 'init-chown', 'exporter', 'x'];
const VOLUME_NAMES = ['data', 'config', 'prometheus-data', 'thanos-tsdb', 'thanos-objstore', 'tmp', 'kube-api-access-x7k2p'];
const MOUNT_PATHS = ['/prometheus', '/prometheus/', '/data', '/var/lib/prometheus', '/etc/prometheus', '/etc/thanos/objstore', '/etc/thanos', '/tmp', '/', '/prometheus/data', '/srv//prom/./tsdb'];

/** Override annotations: values that must be accepted, values that must deny, and edge values (either is fine). */
const OVERRIDES: Record<string, { valid: string[]; invalid: string[]; edge: string[] }> = {
  image: { valid: ['quay.io/thanos/thanos:v0.40.0', 'thanosio/thanos@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'registry:5000/thanos:dev', ' quay.io/thanos/thanos:v0.39.2 '], invalid: ['', 'has space:1', ':nope', 'x'.repeat(600), 'a\nb'], edge: [] },
  'objstore-secret': { valid: ['bucket', 'bucket/s3.yaml', 'a.b-c/key_1.yml'], invalid: ['Bad_Name', 'a/b/c', 'name/..', '', 'name/'], edge: [] },
  'block-duration': { valid: ['2h', '1m', '30m', '1h30m', '1d', '120m'], invalid: ['59s', '0s', '2x', '', '1h 30m', '-2h'], edge: ['300y', '1h0m', '99999999999999999999d'] },
  'sidecar-mode': { valid: ['auto', 'native', 'container'], invalid: ['Native', 'sidecar', ''], edge: [] },
  'run-as-user': { valid: ['1', '1000', '65534', '2147483647', ' 1000 '], invalid: ['0', '-1', '2147483648', 'root', '1e3', ''], edge: ['007'] },
  'log-level': { valid: ['debug', 'info', 'warn', 'error'], invalid: ['trace', 'INFO', ''], edge: [] },
  'cpu-request': { valid: ['100m', '0.5', '1', '+2'], invalid: ['lots', '1.', '-1', ''], edge: ['1e400', '0', '1e3'] },
  // Well-formed quantities may still conflict (request over limit): the model computes that.
  'memory-request': { valid: ['128Mi', '64Mi', '100M', '256Mi', '1Ti', '0'], invalid: ['1GB', ''], edge: [] },
  'memory-limit': { valid: ['512Mi', '1Gi', '768Mi', '1Mi'], invalid: ['1 Gi', ''], edge: [] },
};

/** Bytes of the memory quantities above (the model's own table, not src/inject/units.ts). */
const MEMORY_BYTES: Record<string, number> = {
  '0': 0, '1Mi': 2 ** 20, '64Mi': 64 * 2 ** 20, '100M': 100e6, '128Mi': 128 * 2 ** 20, '256Mi': 256 * 2 ** 20,
  '512Mi': 512 * 2 ** 20, '768Mi': 768 * 2 ** 20, '1Gi': 2 ** 30, '1Ti': 2 ** 40,
};
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Validity = 'valid' | 'invalid' | 'edge';

const tokenValue: Record<string, string[]> = {
  'storage.tsdb.path': ['/prometheus', '/data', 'data', './tsdb/', '/etc/thanos/objstore', '/prometheus/data', '', '/srv//prom/./tsdb'],
  'web.listen-address': [':9091', '0.0.0.0:9090', '[::]:9095', ':abc', '0.0.0.0:99999'],
  'web.route-prefix': ['/', '/prom', 'prom/', ''],
  'web.external-url': ['https://p.example.com/sub/', '/prometheus/', '::::', 'http://[::1'],
  'storage.tsdb.retention.time': ['15d', '1h', 'bogus'],
  'storage.tsdb.min-block-duration': ['2h', '1h', '30m', '2x', ''],
  'storage.tsdb.max-block-duration': ['2h', '1h', '30m', '2x', ''],
  'web.config.file': ['/etc/prometheus/web.yml'],
};

const tokenArb: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('--config.file=/etc/prometheus/prometheus.yml', '--web.enable-lifecycle', '--web.enable-admin-api', '--log.level=debug', '--').map((token) => [token]) },
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(...Object.keys(tokenValue))
      .chain((flag) => fc.tuple(fc.constant(flag), fc.constantFrom(...(tokenValue[flag] as string[])), fc.boolean()))
      .map(([flag, value, equals]) => (equals ? [`--${flag}=${value}`] : [`--${flag}`, value])),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((s) => [s]) },
);

const weirdString = fc.string({ maxLength: 20, unit: 'binary' }).filter((s) => !/prometheus/i.test(s));

interface GenContainer {
  name: string;
  image?: string;
  command?: string[] | null;
  args?: string[] | null;
  workingDir?: string;
  ports?: Json[];
  volumeMounts?: Json[] | null;
  securityContext?: Json | null;
  env?: Json[];
  resources?: Json;
  restartPolicy?: string;
}

const containerArb = (init: boolean): fc.Arbitrary<GenContainer> =>
  fc
    .record({
      name: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('prometheus', ...OTHER_NAMES) },
        { weight: 3, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/).filter((n) => n !== SIDECAR) },
        { weight: 1, arbitrary: fc.constantFrom(SIDECAR, 'Bad_Name', 'a'.repeat(64), '-x') },
      ),
      image: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...PROMETHEUS_IMAGES) },
        { weight: 4, arbitrary: fc.constantFrom(...OTHER_IMAGES) },
        { weight: 1, arbitrary: weirdString },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      placement: fc.constantFrom('none', 'args', 'args', 'command', 'split', 'shell', 'null'),
      tokens: fc.array(tokenArb, { maxLength: 7 }).map((list) => list.flat()),
      split: fc.nat(),
      workingDir: fc.option(fc.constantFrom('/prometheus', '/data', '/', '/srv/prom/'), { nil: undefined }),
      ports: fc.array(
        fc.record(
          {
            containerPort: fc.oneof(
              { weight: 8, arbitrary: fc.constantFrom(8080, 9090) },
              { weight: 1, arbitrary: fc.constantFrom(10901, 10902) },
              { weight: 3, arbitrary: fc.integer({ min: 1, max: 65535 }) },
            ),
            name: fc.constantFrom('http', 'grpc', 'web', 'metrics', 'Bad Name'),
            protocol: fc.constantFrom('TCP', 'UDP'),
            hostPort: fc.constantFrom(9090, 10901),
          },
          { requiredKeys: ['containerPort'] },
        ),
        { maxLength: 3 },
      ),
      mounts: fc.option(
        fc.array(
          fc.record(
            {
              name: fc.constantFrom(...VOLUME_NAMES),
              mountPath: fc.constantFrom(...MOUNT_PATHS),
              subPath: fc.constantFrom('sub', 'a/b', '../x'),
              subPathExpr: fc.constantFrom('$(POD_NAME)'),
              readOnly: fc.boolean(),
            },
            { requiredKeys: ['name', 'mountPath'] },
          ),
          { maxLength: 3 },
        ),
        { nil: undefined, freq: 4 },
      ),
      nullMounts: fc.integer({ min: 0, max: 30 }).map((n) => n === 0),
      securityContext: fc.option(
        fc.record(
          {
            runAsUser: fc.constantFrom(0, 1000, 65534, 2147483647),
            runAsGroup: fc.constantFrom(0, 1000, 65534),
            privileged: fc.boolean(),
            allowPrivilegeEscalation: fc.boolean(),
            readOnlyRootFilesystem: fc.boolean(),
          },
          { requiredKeys: [] },
        ),
        { nil: undefined, freq: 3 },
      ),
      env: fc.array(fc.record({ name: fc.constantFrom('FOO', 'TZ', 'GOMAXPROCS'), value: fc.constantFrom('1', 'UTC', '') }), { maxLength: 2 }),
      resources: fc.option(
        fc.constantFrom<Json>({ requests: { cpu: '100m', memory: '128Mi' } }, { limits: { memory: '1Gi' } }, { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } }),
        { nil: undefined, freq: 4 },
      ),
      restartPolicy: fc.option(fc.constantFrom('Always', 'OnFailure'), { nil: undefined, freq: init ? 3 : 40 }),
    })
    .map((r) => {
      const c: GenContainer = { name: r.name };
      if (r.image !== undefined) c.image = r.image;
      const tokens = r.tokens;
      switch (r.placement) {
        case 'args':
          c.args = tokens;
          break;
        case 'command':
          c.command = ['/bin/prometheus', ...tokens];
          break;
        case 'split': {
          const at = r.split % (tokens.length + 1);
          c.command = ['/bin/prometheus', ...tokens.slice(0, at)];
          c.args = tokens.slice(at);
          break;
        }
        case 'shell':
          c.command = ['/bin/sh', r.split % 2 === 0 ? '-c' : '-ec'];
          c.args = [`exec /bin/prometheus ${tokens.map((x) => (r.split % 3 === 0 ? `'${x}'` : x)).join(' ')}`];
          break;
        case 'null':
          c.args = null;
          c.command = null;
          break;
        default:
          break;
      }
      if (r.workingDir !== undefined) c.workingDir = r.workingDir;
      if (r.ports.length > 0) c.ports = r.ports;
      if (r.nullMounts) c.volumeMounts = null;
      else if (r.mounts !== undefined) c.volumeMounts = r.mounts;
      if (r.securityContext !== undefined) c.securityContext = r.securityContext;
      if (r.env.length > 0) c.env = r.env;
      if (r.resources !== undefined) c.resources = r.resources;
      if (r.restartPolicy !== undefined) c.restartPolicy = r.restartPolicy;
      return c;
    });

interface Annotation {
  key: string;
  value: string;
  validity: Validity;
}

const overrideArb: fc.Arbitrary<Annotation> = fc
  .constantFrom(...Object.keys(OVERRIDES))
  .chain((key) => {
    const sets = OVERRIDES[key] as { valid: string[]; invalid: string[]; edge: string[] };
    const choices: fc.WeightedArbitrary<Annotation>[] = [
      { weight: 6, arbitrary: fc.constantFrom(...sets.valid).map((value) => ({ key: `${PREFIX}${key}`, value, validity: 'valid' as const })) },
      { weight: 1, arbitrary: fc.constantFrom(...sets.invalid).map((value) => ({ key: `${PREFIX}${key}`, value, validity: 'invalid' as const })) },
    ];
    if (sets.edge.length > 0) choices.push({ weight: 1, arbitrary: fc.constantFrom(...sets.edge).map((value) => ({ key: `${PREFIX}${key}`, value, validity: 'edge' as const })) });
    return fc.oneof(...choices);
  });

const otherAnnotationArb: fc.Arbitrary<Annotation> = fc
  .tuple(
    fc.constantFrom('prometheus.io/scrape', 'example.com/owner', `${PREFIX}status`, `${PREFIX}imgae`, `${PREFIX}unknown~key`, 'a.b.c/d_e', 'bad key', 'note'),
    fc.oneof(fc.constantFrom('true', '', '{"json": [1]}', 'with / slash ~ tilde', 'line\nbreak\u0085c1'), fc.string({ maxLength: 30 })),
  )
  .map(([key, value]) => ({ key, value, validity: 'valid' as const }));

type PrometheusTarget = 'none' | 'first' | 'padded' | 'missing' | 'bad-form';

interface Case {
  review: Json;
  sent: Json;
  uid: string;
  /** Where the model says the answer must land. */
  expect: { kind: 'no-patch'; why: string } | { kind: 'deny'; keys: string[] } | { kind: 'inject'; portConflict: boolean; edgeKeys: string[] };
  inputValid: boolean;
}

const podArb = fc.record({
  containers: fc.array(containerArb(false), { minLength: 1, maxLength: 4 }),
  inits: fc.option(fc.array(containerArb(true), { maxLength: 2 }), { nil: undefined, freq: 2 }),
  volumes: fc.option(
    fc.uniqueArray(fc.constantFrom(...VOLUME_NAMES), { maxLength: 4 }).chain((names) =>
      fc.tuple(...names.map((name) => fc.constantFrom<Json>({ name, emptyDir: {} }, { name, persistentVolumeClaim: { claimName: `${name}-pvc` } }, { name, configMap: { name: 'cm' } }, { name, secret: { secretName: 's' } }, { name }))),
    ),
    { nil: undefined, freq: 5 },
  ),
  nullVolumes: fc.integer({ min: 0, max: 30 }).map((n) => n === 0),
  podSecurityContext: fc.option(
    fc.record(
      { runAsUser: fc.constantFrom(0, 1000, 65534), runAsGroup: fc.constantFrom(0, 2000), fsGroup: fc.constantFrom(2000, 65534), runAsNonRoot: fc.boolean(), supplementalGroups: fc.constant([4000]) },
      { requiredKeys: [] },
    ),
    { nil: undefined, freq: 2 },
  ),
  labels: fc.option(fc.dictionary(fc.constantFrom('app', 'thanos-injection', 'thanos-injector/injected', 'tier'), fc.constantFrom('prometheus', 'enabled', 'disabled', 'false', ''), { maxKeys: 3 }), { nil: undefined, freq: 2 }),
  overrides: fc.array(overrideArb, { maxLength: 3 }),
  others: fc.array(otherAnnotationArb, { maxLength: 2 }),
  noAnnotations: fc.boolean(),
  mirror: fc.integer({ min: 0, max: 40 }).map((n) => n === 0),
  target: fc.constantFrom<PrometheusTarget>('none', 'none', 'none', 'none', 'first', 'padded', 'missing', 'bad-form'),
  targetIndex: fc.nat(),
  namespace: fc.oneof(
    { weight: 16, arbitrary: fc.constantFrom('monitoring', 'default', 'team-a', '') },
    { weight: 1, arbitrary: fc.constantFrom(INJECTOR_NAMESPACE, ...EXCLUDED) },
  ),
  operation: fc.oneof({ weight: 20, arbitrary: fc.constant('CREATE') }, { weight: 1, arbitrary: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT') }),
  kind: fc.oneof({ weight: 30, arbitrary: fc.constant('Pod') }, { weight: 1, arbitrary: fc.constant('Deployment') }),
  subResource: fc.oneof({ weight: 30, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('status', 'ephemeralcontainers') }),
  hostNetwork: fc.option(fc.boolean(), { nil: undefined, freq: 3 }),
  restartPolicy: fc.option(fc.constantFrom('Always', 'OnFailure', 'Never'), { nil: undefined, freq: 3 }),
  generateName: fc.boolean(),
  defaulted: fc.integer({ min: 0, max: 9 }).map((n) => n > 0),
  /** Most pods run Prometheus in their first container (the rest exercise the skip paths). */
  prometheusFirst: fc.integer({ min: 0, max: 9 }).map((n) => n < 7),
  prometheusImage: fc.constantFrom(...PROMETHEUS_IMAGES),
  /** Make the pod one the apiserver would accept (the "valid in, valid out" property needs many). */
  clean: fc.integer({ min: 0, max: 9 }).map((n) => n < 6),
  uid: fc.uuid(),
});

const INVALID_CONTAINER_NAME = /^(?![a-z0-9]([-a-z0-9]*[a-z0-9])?$)|^.{64,}$/;

/** Turns a generated pod into one that passes pod validation (see the harness), keeping its shape. */
function clean(containers: GenContainer[], inits: GenContainer[] | undefined, volumes: Json[] | undefined, hostNetwork: boolean | undefined): void {
  const volumeNames = new Set((volumes ?? []).map((v) => v.name as string));
  const names = new Set<string>();
  [...containers, ...(inits ?? [])].forEach((c, i) => {
    if (INVALID_CONTAINER_NAME.test(c.name) || names.has(c.name)) c.name = `c${i}-${c.name.length}`;
    names.add(c.name);
    if (c.image === undefined || c.image.trim() === '' || c.image !== c.image.trim()) c.image = 'busybox:1.36';
    if (c.ports !== undefined) {
      const seen = new Set<string>();
      c.ports = c.ports.filter((raw) => {
        const p = raw as { containerPort: number; protocol?: string; name?: string };
        const key = `${p.containerPort}/${p.protocol ?? 'TCP'}`;
        if (seen.has(key) || (p.name !== undefined && seen.has(`name:${p.name}`))) return false;
        seen.add(key);
        if (p.name !== undefined) seen.add(`name:${p.name}`);
        return true;
      });
      for (const p of c.ports) {
        if (p.name === 'Bad Name') delete p.name;
        if (hostNetwork === true) p.hostPort = p.containerPort;
        else delete p.hostPort;
      }
    }
    if (Array.isArray(c.volumeMounts)) {
      const paths = new Set<string>();
      c.volumeMounts = c.volumeMounts.filter((m) => {
        if (!volumeNames.has(m.name as string) || paths.has(m.mountPath as string)) return false;
        paths.add(m.mountPath as string);
        return true;
      });
      for (const m of c.volumeMounts) {
        if (m.subPath === '../x') delete m.subPath;
        if (m.subPath !== undefined) delete m.subPathExpr;
      }
    }
    const sc = c.securityContext;
    if (sc && sc.privileged === true && sc.allowPrivilegeEscalation === false) delete sc.allowPrivilegeEscalation;
    const requests = (c.resources?.requests ?? {}) as Json;
    const limits = (c.resources?.limits ?? {}) as Json;
    if (requests.memory === '2Gi' && limits.memory === '1Gi') delete c.resources;
  });
  for (const c of containers) delete c.restartPolicy;
  for (const c of inits ?? []) if (c.restartPolicy !== 'Always') delete c.restartPolicy;
}

function isPrometheusImage(image: string | undefined): boolean {
  return image !== undefined && PROMETHEUS_IMAGES.includes(image);
}

type PodRecord = typeof podArb extends fc.Arbitrary<infer R> ? R : never;

function buildCase(r: PodRecord): Case {
  const containers = r.containers;
  if (r.prometheusFirst) (containers[0] as GenContainer).image = r.prometheusImage;
  if (r.clean) clean(containers, r.inits, r.nullVolumes ? undefined : r.volumes, r.hostNetwork);
  const annotations: Record<string, string> = {};
  const tracked: Annotation[] = [];
  for (const a of [...r.overrides, ...(r.clean ? r.others.filter((o) => o.key !== 'bad key') : r.others)]) {
    annotations[a.key] = a.value;
    tracked.push(a);
  }
  let requested: string | undefined;
  const target = containers[r.targetIndex % containers.length] as GenContainer;
  if (r.target === 'first') requested = target.name;
  else if (r.target === 'padded') requested = ` ${target.name} `;
  else if (r.target === 'missing') requested = 'not-a-container';
  else if (r.target === 'bad-form') requested = 'Bad_Name!';
  if (requested !== undefined) annotations[`${PREFIX}prometheus-container`] = requested;
  if (r.mirror) annotations[MIRROR] = 'abc123';
  const metadata: Json = r.generateName ? { generateName: 'prometheus-7d9f8c6b5-', namespace: r.namespace } : { name: 'prometheus-0', namespace: r.namespace };
  if (r.labels !== undefined) metadata.labels = r.labels;
  if (!r.noAnnotations || Object.keys(annotations).length > 0) metadata.annotations = annotations;
  const spec: Json = { containers };
  if (r.inits !== undefined) spec.initContainers = r.inits;
  if (r.nullVolumes) spec.volumes = null;
  else if (r.volumes !== undefined) spec.volumes = r.volumes;
  if (r.podSecurityContext !== undefined) spec.securityContext = r.podSecurityContext;
  if (r.hostNetwork !== undefined) spec.hostNetwork = r.hostNetwork;
  if (r.restartPolicy !== undefined) spec.restartPolicy = r.restartPolicy;
  const pod: Json = { apiVersion: 'v1', kind: 'Pod', metadata, spec };
  const sent = r.defaulted ? applyPodDefaults(pod) : (JSON.parse(JSON.stringify(pod)) as Json);
  const kind = { group: r.kind === 'Pod' ? '' : 'apps', version: 'v1', kind: r.kind };
  const resource = { group: kind.group, version: 'v1', resource: r.kind === 'Pod' ? 'pods' : 'deployments' };
  const review: Json = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: r.uid,
      kind,
      resource,
      ...(r.subResource !== undefined ? { subResource: r.subResource } : {}),
      requestKind: kind,
      requestResource: resource,
      name: r.generateName ? '' : 'prometheus-0',
      namespace: r.namespace,
      operation: r.operation,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:authenticated'] },
      object: r.operation === 'DELETE' ? null : sent,
      oldObject: r.operation === 'CREATE' ? null : sent,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };

  // The model: decide.ts's order, written independently.
  const all = [...containers, ...(r.inits ?? [])];
  let expect: Case['expect'];
  if (r.operation !== 'CREATE' || r.kind !== 'Pod' || r.subResource !== undefined) expect = { kind: 'no-patch', why: 'not a pod CREATE' };
  else if (EXCLUDED.includes(r.namespace)) expect = { kind: 'no-patch', why: 'namespace excluded' };
  else if (r.namespace === INJECTOR_NAMESPACE) expect = { kind: 'no-patch', why: "injector's namespace" };
  else if (r.mirror) expect = { kind: 'no-patch', why: 'mirror pod' };
  else if (r.labels?.['thanos-injection'] === 'disabled') expect = { kind: 'no-patch', why: 'labelled disabled' };
  else if (all.some((c) => c.name === SIDECAR)) expect = { kind: 'no-patch', why: 'already injected' };
  else if (requested !== undefined && !containers.some((c) => c.name === requested.trim())) expect = { kind: 'deny', keys: [`${PREFIX}prometheus-container`] };
  else if (requested === undefined && !containers.some((c) => c.name === 'prometheus' || isPrometheusImage(c.image))) expect = { kind: 'no-patch', why: 'no Prometheus' };
  else {
    const current = tracked.filter((a) => annotations[a.key] === a.value);
    const invalid = current.filter((a) => a.validity === 'invalid').map((a) => a.key);
    // A container that exists but whose name is no DNS label (an invalid pod) is no valid override.
    if (requested !== undefined && (!DNS_LABEL.test(requested.trim()) || requested.trim().length > 63)) invalid.push(`${PREFIX}prometheus-container`);
    // Request over limit: the annotation set on the pod is blamed, the request first.
    const memoryRequest = annotations[`${PREFIX}memory-request`]?.trim();
    const memoryLimit = annotations[`${PREFIX}memory-limit`]?.trim();
    const requestBytes = MEMORY_BYTES[memoryRequest ?? ''] ?? 64 * 2 ** 20; // config default request
    const limitBytes = MEMORY_BYTES[memoryLimit ?? ''] ?? 512 * 2 ** 20; // config default limit
    if (requestBytes > limitBytes) invalid.push(`${PREFIX}${memoryRequest !== undefined && MEMORY_BYTES[memoryRequest] !== undefined ? 'memory-request' : 'memory-limit'}`);
    if (invalid.length > 0) expect = { kind: 'deny', keys: [...new Set(invalid)] };
    else {
      const portConflict = all.some((c) => (c.ports ?? []).some((p) => p.containerPort === 10901 || p.containerPort === 10902));
      const edgeKeys = tracked.filter((a) => a.validity === 'edge' && annotations[a.key] === a.value).map((a) => a.key);
      expect = { kind: 'inject', portConflict, edgeKeys };
    }
  }
  return { review, sent, uid: r.uid, expect, inputValid: validatePod(applyPodDefaults(sent)).length === 0 };
}

const caseArb: fc.Arbitrary<Case> = podArb.map((r) => buildCase(r));

const OTHER_DENIALS = /already uses port [0-9]+, which the Thanos sidecar needs|runs Prometheus through a shell script|where the objstore Secret goes/;

interface Tally {
  sent: number;
  byStatus: Record<string, number>;
  byOutcome: Record<string, number>;
  problems: string[];
}

/** A counter keyed by arbitrary text (no prototype: a key like "constructor" is just a key). */
function counter(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function newTally(): Tally {
  return { sent: 0, byStatus: counter(), byOutcome: counter(), problems: [] };
}

function note(tally: Tally, problem: string): void {
  tally.problems.push(problem);
}

/** Checks one answer to a generated case; returns the patched, defaulted pod when injected. */
function checkCase(c: Case, answer: Answer, tally: Tally): Json | undefined {
  const label = `uid ${c.uid}`;
  count(tally.byStatus, String(answer.status));
  if (answer.status !== 200) {
    count(tally.byOutcome, `http-${answer.status}`);
    note(tally, `${label}: HTTP ${answer.status} for a valid AdmissionReview: ${answer.text.slice(0, 200)}`);
    return undefined;
  }
  const { problems, review, ops } = reviewProblems(answer, c.uid);
  for (const p of problems) note(tally, `${label}: ${p}`);
  const response = review?.response;
  if (response === undefined) return undefined;
  const warnings = (Array.isArray(response.warnings) ? response.warnings : []) as string[];
  const patched = ops !== undefined && ops.length > 0;

  if (response.allowed === false) {
    const message = typeof response.status?.message === 'string' ? response.status.message : '';
    const code = response.status?.code;
    const annotationDenial = /^thanos-injector: annotation thanos-injector\/[a-z-]+/.test(message);
    count(tally.byOutcome, annotationDenial ? 'denied-annotation' : 'denied-other');
    if (code !== 400) note(tally, `${label}: denied with status.code ${String(code)}: ${message}`);
    if (!annotationDenial && !(message.startsWith('thanos-injector: ') && OTHER_DENIALS.test(message))) {
      note(tally, `${label}: denial message names no annotation nor a known problem: ${message.slice(0, 200)}`);
    }
    if (c.expect.kind === 'no-patch') note(tally, `${label}: denied, but the pod must be left alone (${c.expect.why}): ${message.slice(0, 160)}`);
    else if (c.expect.kind === 'deny') {
      for (const key of c.expect.keys) if (!message.includes(`annotation ${key}`)) note(tally, `${label}: denial does not name ${key}: ${message.slice(0, 200)}`);
    } else {
      const fine = (c.expect.portConflict && /already uses port/.test(message)) || /shell script|objstore Secret/.test(message) || c.expect.edgeKeys.some((key) => message.includes(`annotation ${key}`));
      if (!fine) note(tally, `${label}: denied although every annotation is valid: ${message.slice(0, 200)}`);
    }
    return undefined;
  }

  if (!patched) {
    count(tally.byOutcome, warnings.some((w) => w.includes('pod not injected')) ? 'skipped-invalid-pod' : 'allowed-no-patch');
    if (c.expect.kind === 'deny') note(tally, `${label}: allowed, but ${c.expect.keys.join(', ')} is invalid`);
    if (c.expect.kind === 'inject') note(tally, `${label}: not injected (no patch) though the model expects an injection; warnings: ${warnings.join(' | ')}`);
    return undefined;
  }

  count(tally.byOutcome, 'injected');
  if (c.expect.kind !== 'inject') {
    note(tally, `${label}: got a patch but must ${c.expect.kind === 'deny' ? `be denied (${c.expect.keys.join(', ')})` : `be left alone (${c.expect.why})`}`);
  } else if (c.expect.portConflict) note(tally, `${label}: injected although a container uses the sidecar's port 10901/10902`);
  if ((ops as { op?: unknown }[]).some((op) => op.op !== 'add' && op.op !== 'replace')) note(tally, `${label}: the patch has an op other than add/replace`);
  let result: Json;
  try {
    result = applyPodDefaults(applyPatchStrict(c.sent, ops) as Json);
  } catch (error) {
    note(tally, `${label}: patch does not apply with apiserver semantics: ${(error as Error).message}`);
    return undefined;
  }
  if (c.inputValid) {
    const errors = validatePod(result);
    if (errors.length > 0) note(tally, `${label}: a valid pod became invalid: ${errors.slice(0, 3).join('; ')}`);
  }
  const spec = result.spec as { containers: Json[]; initContainers?: Json[] };
  const sidecars = [...spec.containers, ...(spec.initContainers ?? [])].filter((x) => x.name === SIDECAR).length;
  if (sidecars !== 1) note(tally, `${label}: ${sidecars} ${SIDECAR} containers after the patch`);
  const before = (c.sent.spec as { containers: Json[] }).containers;
  before.forEach((container, i) => {
    const after = spec.containers[i];
    if (after === undefined || after.name !== container.name || after.image !== container.image) note(tally, `${label}: container ${i} (${String(container.name)}) changed name or image`);
  });
  const metadata = result.metadata as { labels?: Record<string, string>; annotations?: Record<string, string> };
  if (metadata.labels?.['thanos-injector/injected'] !== 'true') note(tally, `${label}: no thanos-injector/injected=true label`);
  let status: { prometheus?: string } = {};
  try {
    status = JSON.parse(metadata.annotations?.['thanos-injector/status'] ?? '') as { prometheus?: string };
  } catch {
    note(tally, `${label}: thanos-injector/status is not JSON`);
  }
  // The block flags Prometheus is started with must be durations Prometheus accepts.
  const named = spec.containers.filter((x) => x.name === status.prometheus) as unknown as GenContainer[];
  const prometheus = named.length === 1 ? named[0] : undefined; // (an invalid pod may repeat a name)
  if (prometheus !== undefined && !isShell(prometheus)) {
    const argv = [...(prometheus.command ?? []), ...(prometheus.args ?? [])];
    for (const flag of ['storage.tsdb.min-block-duration', 'storage.tsdb.max-block-duration']) {
      const value = flagValue(argv, flag);
      if (value === undefined) note(tally, `${label}: --${flag} missing after injection`);
      else if (!prometheusDurationOk(value)) note(tally, `${label}: --${flag}=${value} is a duration Prometheus refuses (it would not start)`);
    }
  }
  return result;
}

function isShell(c: GenContainer): boolean {
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  return argv.length > 0 && /(^|\/)(sh|bash|ash|dash|zsh)$/.test(argv[0] as string);
}

/** The value of the first --flag=value or --flag value in argv (what Prometheus reads). */
function flagValue(argv: string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token.startsWith(`--${flag}=`)) return token.slice(flag.length + 3);
    if (token === `--${flag}`) return argv[i + 1];
  }
  return undefined;
}

/** prometheus/common model.ParseDuration: units largest first, at most 2^63-1 ns ("duration out of range"). */
function prometheusDurationOk(text: string): boolean {
  if (text === '0') return true;
  const match = /^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/.exec(text);
  if (text === '' || match === null) return false;
  const ms = [365n * 86_400_000n, 7n * 86_400_000n, 86_400_000n, 3_600_000n, 60_000n, 1000n, 1n];
  let total = 0n;
  match.slice(1).forEach((part, i) => {
    if (part !== undefined) total += BigInt(part) * (ms[i] as bigint) * 1_000_000n;
  });
  return total <= 2n ** 63n - 1n;
}

// ---------------------------------------------------------------------------------------------
// Part (b): hostile bodies

interface Hostile {
  category: string;
  body: string | Buffer;
  contentType?: string;
  method?: string;
  path?: string;
  /** Statuses this input must get (else: any 4xx or a 200 review). */
  expectStatus?: number[];
  expectMessage?: RegExp;
  /** The same document with its deep part replaced by a string: what a patch is checked against
   * (the harness's own applier recurses, and no injector patch reaches into the deep part). */
  shallow?: string;
}

function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...pathsOf(item, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...prefix, key]));
  return paths;
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  const copy = JSON.parse(JSON.stringify(root)) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (remove) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const WRONG: unknown[] = [null, true, 0, -1, 1.5, 1e308, '', 'x', [], {}, [1, 'a', null], { k: 'v' }];

const deepArray = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
const deepObject = (n: number): string => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

function hostileBodies(): Hostile[] {
  const base = seedReview();
  const text = JSON.stringify(base);
  const list: Hostile[] = [];

  // Wrong types at every level, and every field missing.
  const paths = pathsOf(base);
  paths.forEach((path, i) => {
    const original = path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], base);
    const wrong = WRONG.filter((v) => typeOf(v) !== typeOf(original));
    for (let k = 0; k < 3; k++) list.push({ category: 'wrong-type', body: JSON.stringify(setAt(base, path, wrong[(i * 3 + k) % wrong.length])) });
    if (path.length > 0) list.push({ category: 'missing-field', body: JSON.stringify(setAt(base, path, undefined, true)) });
  });

  // Random JSON values at random places, and random JSON documents.
  const paths2 = paths.filter((p) => p.length > 0);
  const randomPlaced = fc.sample(fc.tuple(fc.nat({ max: paths2.length - 1 }), fc.jsonValue({ maxDepth: 4 })), { numRuns: 300, seed: SEED + 1 });
  for (const [index, value] of randomPlaced) list.push({ category: 'random-value', body: JSON.stringify(setAt(base, paths2[index] as (string | number)[], value)) });
  for (const value of fc.sample(fc.jsonValue({ maxDepth: 5 }), { numRuns: 150, seed: SEED + 2 })) list.push({ category: 'random-document', body: JSON.stringify(value) ?? 'null' });

  // 1 MB strings.
  const huge = 'x'.repeat(1 << 20);
  const hugeAt: [string, (string | number)[]][] = [
    ['uid', ['request', 'uid']],
    ['namespace', ['request', 'namespace']],
    ['request name', ['request', 'name']],
    ['operation', ['request', 'operation']],
    ['kind', ['request', 'kind', 'kind']],
    ['pod name', ['request', 'object', 'metadata', 'generateName']],
    ['container name', ['request', 'object', 'spec', 'containers', 0, 'name']],
    ['image', ['request', 'object', 'spec', 'containers', 0, 'image']],
    ['arg', ['request', 'object', 'spec', 'containers', 0, 'args', 0]],
    ['mountPath', ['request', 'object', 'spec', 'containers', 0, 'volumeMounts', 0, 'mountPath']],
    ['volume name', ['request', 'object', 'spec', 'volumes', 0, 'name']],
    ['label value', ['request', 'object', 'metadata', 'labels', 'app']],
    ['annotation value', ['request', 'object', 'metadata', 'annotations', 'note']],
    ['image override', ['request', 'object', 'metadata', 'annotations', `${PREFIX}image`]],
    ['prometheus-container override', ['request', 'object', 'metadata', 'annotations', `${PREFIX}prometheus-container`]],
    ['unknown override', ['request', 'object', 'metadata', 'annotations', `${PREFIX}whatever`]],
    ['unknown field', ['request', 'object', 'spec', 'unknownField']],
  ];
  for (const [what, path] of hugeAt) {
    const withAnnotations = setAt(base, ['request', 'object', 'metadata', 'annotations'], ((base.request as Json).object as { metadata: { annotations?: Json } }).metadata.annotations ?? {});
    list.push({ category: `huge-string ${what}`, body: JSON.stringify(setAt(withAnnotations, path, huge)) });
  }
  list.push({ category: 'huge-string annotation key', body: text.replace('"metadata":{', `"metadata":{"annotations":{"${PREFIX}${huge}":"v"},`) });
  list.push({ category: 'huge body over 4 MiB', body: JSON.stringify(setAt(base, ['request', 'object', 'spec', 'pad'], 'y'.repeat(5 << 20))), expectStatus: [413] });

  // 10 000 levels of arrays and objects, at every kind of place.
  const deepAt = ['request.uid', 'request', 'request.object', 'object.metadata', 'object.metadata.name', 'object.metadata.annotations', 'object.spec', 'object.spec.containers', 'container', 'container.args', 'container.image', 'unknown field', 'root'];
  for (const where of deepAt) {
    for (const [shape, deep] of [['arrays', deepArray(10_000)], ['objects', deepObject(10_000)]] as const) {
      const marker = '"__DEEP__"';
      let doc: unknown;
      switch (where) {
        case 'root':
          list.push({ category: `deep ${shape} at ${where}`, body: deep });
          continue;
        case 'request.uid':
          doc = setAt(base, ['request', 'uid'], '__DEEP__');
          break;
        case 'request':
          doc = setAt(base, ['request'], '__DEEP__');
          break;
        case 'request.object':
          doc = setAt(base, ['request', 'object'], '__DEEP__');
          break;
        case 'object.metadata':
          doc = setAt(base, ['request', 'object', 'metadata'], '__DEEP__');
          break;
        case 'object.metadata.name':
          doc = setAt(base, ['request', 'object', 'metadata', 'name'], '__DEEP__');
          break;
        case 'object.metadata.annotations':
          doc = setAt(base, ['request', 'object', 'metadata', 'annotations'], '__DEEP__');
          break;
        case 'object.spec':
          doc = setAt(base, ['request', 'object', 'spec'], '__DEEP__');
          break;
        case 'object.spec.containers':
          doc = setAt(base, ['request', 'object', 'spec', 'containers'], '__DEEP__');
          break;
        case 'container':
          doc = setAt(base, ['request', 'object', 'spec', 'containers', 0], '__DEEP__');
          break;
        case 'container.args':
          doc = setAt(base, ['request', 'object', 'spec', 'containers', 0, 'args'], '__DEEP__');
          break;
        case 'container.image':
          doc = setAt(base, ['request', 'object', 'spec', 'containers', 0, 'image'], '__DEEP__');
          break;
        default:
          doc = setAt(base, ['request', 'object', 'spec', 'unknownField'], '__DEEP__');
      }
      list.push({ category: `deep ${shape} at ${where}`, body: JSON.stringify(doc).replace(marker, deep), shallow: JSON.stringify(doc).replace(marker, shape === 'arrays' ? '[[]]' : '{"a":{"a":1}}') });
    }
  }

  // Invalid UTF-8 (raw bytes), inside and outside strings.
  const bytes = Buffer.from(text, 'utf8');
  const splice = (needle: string, insert: number[], after = true): Buffer => {
    const at = bytes.indexOf(needle) + (after ? Buffer.byteLength(needle) : 0);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(insert), bytes.subarray(at)]);
  };
  const invalidSequences = [[0xff], [0xfe, 0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80, 0x80, 0x80]];
  for (const sequence of invalidSequences) {
    list.push({ category: 'invalid-utf8 in uid', body: splice('"uid":"', sequence) });
    list.push({ category: 'invalid-utf8 in container name', body: splice('"containers":[{"name":"', sequence) });
    list.push({ category: 'invalid-utf8 in annotation key', body: splice('"metadata":{', [0x22, ...sequence, 0x22, 0x3a, 0x22, 0x76, 0x22, 0x2c]) });
    list.push({ category: 'invalid-utf8 outside strings', body: splice('{', sequence) });
  }
  list.push({ category: 'invalid-utf8 truncated at the end', body: Buffer.concat([bytes.subarray(0, bytes.length - 2), Buffer.from([0xe2, 0x82])]) });
  list.push({ category: 'utf-16 body', body: Buffer.from(text, 'utf16le') });
  list.push({ category: 'utf-8 BOM', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]) });

  // Duplicate keys (the last one wins, in JSON.parse as in Go's encoding/json).
  list.push({ category: 'duplicate uid', body: text.replace('"uid":"bench-uid-0001"', '"uid":"first-uid","uid":"bench-uid-0001"') });
  list.push({ category: 'duplicate uid (bad last)', body: text.replace('"uid":"bench-uid-0001"', '"uid":"bench-uid-0001","uid":42') });
  list.push({ category: 'duplicate request', body: text.replace('"request":{', '"request":{"uid":"shadowed"},"request":{') });
  list.push({ category: 'duplicate kind', body: text.replace('"kind":"AdmissionReview"', '"kind":"AdmissionReview","kind":"Nope"') });
  list.push({ category: 'duplicate object', body: text.replace('"object":{', '"object":{"spec":{"containers":[{"name":"prometheus","image":"prom/prometheus"}]}},"object":{') });
  list.push({ category: 'duplicate annotation', body: text.replace('"metadata":{', `"metadata":{"annotations":{"${PREFIX}log-level":"trace","${PREFIX}log-level":"debug"},`) });
  list.push({ category: 'duplicate operation', body: text.replace('"operation":"CREATE"', '"operation":"DELETE","operation":"CREATE"') });

  // Prototype keys at every level, escaped or not.
  const protoKeys = ['"__proto__":{"polluted":"yes"}', '"constructor":{"prototype":{"polluted":"yes"}}', '"\\u005f_proto__":{"polluted":"yes"}', '"__proto__":[1,2]', '"__proto__":null'];
  const protoAt = ['{', '"request":{', '"object":{', '"metadata":{', '"spec":{', '"containers":[{', '"labels":{'];
  for (const key of protoKeys) {
    for (const at of protoAt) {
      const index = text.indexOf(at);
      if (index < 0) continue;
      const body = `${text.slice(0, index + at.length)}${key},${text.slice(index + at.length)}`;
      list.push({ category: 'prototype key', body, expectStatus: [400], expectMessage: /__proto__|prototype/ });
    }
  }
  list.push({ category: 'constructor key without prototype', body: text.replace('"metadata":{', '"metadata":{"constructor":{"name":"x"},') });

  // Numbers out of range.
  const numbers = ['1e309', '-1e309', '-0', '18446744073709551616', '9007199254740993', '1e-400', '0.5', '-2147483649', '2147483648', '1E+2'];
  const numberAt: [string, string][] = [
    ['runAsUser', '"securityContext":{'],
    ['containerPort', '"ports":[{'],
    ['terminationGracePeriodSeconds', '"spec":{'],
  ];
  for (const value of numbers) {
    list.push({ category: `number ${value} as uid`, body: text.replace('"uid":"bench-uid-0001"', `"uid":${value}`) });
    list.push({ category: `number ${value} as dryRun`, body: text.replace('"dryRun":false', `"dryRun":${value}`) });
    for (const [field, at] of numberAt) {
      const index = text.indexOf(at);
      if (index < 0) continue;
      list.push({ category: `number ${value} as ${field}`, body: `${text.slice(0, index + at.length)}"${field}":${value},${text.slice(index + at.length)}` });
    }
    list.push({ category: `number ${value} as pod runAsUser`, body: text.replace('"securityContext":{}', `"securityContext":{"runAsUser":${value}}`) });
  }

  // Truncated JSON.
  for (const cut of fc.sample(fc.integer({ min: 1, max: text.length - 1 }), { numRuns: 120, seed: SEED + 3 })) {
    list.push({ category: 'truncated', body: text.slice(0, cut), expectStatus: [400] });
  }

  // Empty and degenerate bodies.
  for (const body of ['', ' ', '\n\t ', 'null', '[]', '""', '0', 'true', '{}', '{"apiVersion":"admission.k8s.io/v1"}']) {
    list.push({ category: 'degenerate body', body, expectStatus: [400] });
  }
  list.push({ category: 'empty body', body: '', expectStatus: [400], expectMessage: /empty/ });

  // Wrong content types (with a valid review).
  for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/jsonx', 'text/json', '*/*', 'application/octet-stream']) {
    list.push({ category: 'wrong content type', body: text, contentType, expectStatus: [415] });
  }
  list.push({ category: 'no content type', body: text, contentType: '', expectStatus: [415] });
  for (const contentType of ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON']) {
    list.push({ category: 'json content type variant', body: text, contentType, expectStatus: [200] });
  }

  // Methods and paths.
  for (const [method, path] of [['GET', '/mutate'], ['PUT', '/mutate'], ['DELETE', '/mutate'], ['PATCH', '/mutate'], ['POST', '/'], ['POST', '/mutate/extra'], ['POST', '/MUTATE'], ['OPTIONS', '/mutate']] as const) {
    const bodyless = method === 'GET' || method === 'DELETE' || method === 'OPTIONS';
    list.push({ category: `method ${method} ${path}`, body: bodyless ? '' : text, ...(bodyless ? { contentType: '' } : {}), method, path, expectStatus: [404] });
  }
  for (const path of ['/mutate?timeout=abc', '/mutate?timeout=10s&timeout=1s', '/mutate?x=%ff%fe', '/mutate?%', `/mutate?${'q'.repeat(4000)}`]) {
    list.push({ category: 'odd query', body: text, path, expectStatus: [200] });
  }
  return list;
}

/** The uid a well-formed answer must echo, from the body as the server parses it. */
function sentUid(body: string | Buffer): { parsed: unknown; uid: unknown } {
  try {
    const parsed = JSON.parse((typeof body === 'string' ? body : body.toString('utf8')).replace(/^\uFEFF/, '')) as { request?: { uid?: unknown } };
    return { parsed, uid: parsed?.request?.uid };
  } catch {
    return { parsed: undefined, uid: undefined };
  }
}

function checkHostile(h: Hostile, answer: Answer, tally: Tally): void {
  const label = `[${h.category}]`;
  count(tally.byStatus, String(answer.status));
  if (h.expectStatus !== undefined && !h.expectStatus.includes(answer.status)) {
    note(tally, `${label} HTTP ${answer.status}, expected ${h.expectStatus.join(' or ')}: ${answer.text.slice(0, 160)}`);
  }
  if (answer.status === 200) {
    const { uid } = sentUid(h.body);
    const { parsed } = sentUid(h.shallow ?? h.body);
    const { problems, review, ops } = reviewProblems(answer, uid);
    for (const p of problems) note(tally, `${label} ${p}`);
    const response = review?.response;
    if (response === undefined) {
      count(tally.byOutcome, 'http-200-malformed');
      return;
    }
    const outcome = response.allowed === false ? 'denied' : ops !== undefined && ops.length > 0 ? 'injected' : 'allowed-no-patch';
    count(tally.byOutcome, `review-${outcome}`);
    if (ops !== undefined && ops.length > 0) {
      try {
        applyPatchStrict((parsed as { request: { object: unknown } }).request.object, ops);
      } catch (error) {
        note(tally, `${label} the patch does not apply to the object sent: ${(error as Error).message}`);
      }
    }
    return;
  }
  if (answer.status >= 400 && answer.status < 500) {
    count(tally.byOutcome, `error-${answer.status}`);
    for (const p of errorProblems(answer)) note(tally, `${label} ${p}`);
    if (h.expectMessage !== undefined && !h.expectMessage.test(String((answer.json as { message?: unknown } | undefined)?.message))) {
      note(tally, `${label} message does not match ${String(h.expectMessage)}: ${answer.text.slice(0, 160)}`);
    }
    return;
  }
  count(tally.byOutcome, `http-${answer.status}`);
  note(tally, `${label} HTTP ${answer.status} (never a 5xx): ${answer.text.slice(0, 200)}`);
}

// ---------------------------------------------------------------------------------------------

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function summary(t: Test, name: string, tally: Tally, seconds: number): void {
  t.comment(`${name}: ${tally.sent} requests in ${seconds.toFixed(1)} s (${(tally.sent / seconds).toFixed(0)}/s), seed ${SEED}`);
  t.comment(`${name}: by status ${JSON.stringify(tally.byStatus)}`);
  t.comment(`${name}: by outcome ${JSON.stringify(tally.byOutcome)}`);
  if (tally.problems.length > 0) {
    const kinds = new Map<string, number>();
    for (const p of tally.problems) {
      const kind = p.replace(/^uid [0-9a-f-]+: /, '').replace(/^\[[^\]]*\] /, '').slice(0, 70);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    if (process.env.STRESS_PROBLEMS_FILE) writeFileSync(`${process.env.STRESS_PROBLEMS_FILE}.${name.replace(/[^a-z]/g, '')}`, `${tally.problems.join('\n')}\n`);
    t.comment(`${name}: ${tally.problems.length} problems; most frequent:`);
    for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 12)) t.comment(`  ${n} x ${kind}`);
  }
}

let webhook: TestWebhook;
let agent: https.Agent;

t.before(async () => {
  webhook = await startTestWebhook({ injectorNamespace: INJECTOR_NAMESPACE });
  agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
});
t.teardown(async () => {
  agent.destroy();
  await webhook.close();
});

function post(body: string | Buffer, options: { contentType?: string; method?: string; path?: string } = {}): Promise<Answer> {
  const contentType = options.contentType ?? 'application/json';
  return httpsCall({
    port: webhook.server.port,
    ca: webhook.ca,
    agent,
    method: options.method ?? 'POST',
    path: options.path ?? '/mutate?timeout=10s',
    headers: { ...(contentType !== '' ? { 'content-type': contentType } : {}), accept: 'application/json, */*' },
    ...(body.length > 0 || (options.method ?? 'POST') === 'POST' ? { body } : {}),
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
}

void t.test(`(a) ${RUNS} generated AdmissionReviews: every answer is one the apiserver can use, and the model's verdict`, async (t) => {
  const tally = newTally();
  const started = performance.now();
  const deadline = started + PART_DEADLINE_MS;
  let reinvoked = 0;
  let validInputs = 0;
  /** The inputs behind the first problems (written next to STRESS_PROBLEMS_FILE). */
  const failingCases: { review: Json; answer: unknown }[] = [];
  const CHUNK = 500;
  function* cases(): Generator<Case> {
    for (let offset = 0; offset < RUNS; offset += CHUNK) {
      yield* fc.sample(caseArb, { numRuns: Math.min(CHUNK, RUNS - offset), seed: SEED + offset });
    }
  }
  await pool(cases(), CONCURRENCY, async (c) => {
    if (performance.now() > deadline) return;
    if (c.inputValid) validInputs++;
    tally.sent++;
    let answer: Answer;
    try {
      answer = await post(JSON.stringify(c.review));
    } catch (error) {
      count(tally.byOutcome, 'no-answer');
      note(tally, `uid ${c.uid}: no answer: ${(error as Error).message}`);
      return;
    }
    const problemsBefore = tally.problems.length;
    const result = checkCase(c, answer, tally);
    if (tally.problems.length > problemsBefore && failingCases.length < 50) failingCases.push({ review: c.review, answer: answer.json });
    if (result === undefined) return;
    // Reinvocation (reinvocationPolicy IfNeeded): the injected, defaulted pod changes no more.
    const again = structuredClone(c.review) as { request: Json };
    again.request.uid = `${c.uid}-again`;
    again.request.object = result;
    tally.sent++;
    reinvoked++;
    try {
      const second = await post(JSON.stringify(again));
      count(tally.byStatus, String(second.status));
      const { problems, review, ops } = second.status === 200 ? reviewProblems(second, `${c.uid}-again`) : { problems: [`HTTP ${second.status}`], review: undefined, ops: undefined };
      for (const p of problems) note(tally, `uid ${c.uid} (reinvocation): ${p}`);
      if (review?.response?.allowed !== true || (ops !== undefined && ops.length > 0)) {
        note(tally, `uid ${c.uid}: reinvocation of the injected pod was not allowed unchanged: ${second.text.slice(0, 200)}`);
      }
    } catch (error) {
      note(tally, `uid ${c.uid} (reinvocation): no answer: ${(error as Error).message}`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  summary(t, '(a)', tally, seconds);
  if (process.env.STRESS_PROBLEMS_FILE && failingCases.length > 0) writeFileSync(`${process.env.STRESS_PROBLEMS_FILE}.cases.json`, JSON.stringify(failingCases, null, 1));
  t.comment(`(a): ${validInputs} inputs passed pod validation before the webhook; ${reinvoked} injected pods sent again (reinvocation)`);
  t.ok(tally.sent >= RUNS, `all ${RUNS} generated reviews were sent within ${PART_DEADLINE_MS / 1000} s (${tally.sent} requests incl. reinvocations)`);
  t.ok((tally.byOutcome.injected ?? 0) > RUNS / 10, `a fair share was injected (${tally.byOutcome.injected ?? 0})`);
  t.ok((tally.byOutcome['denied-annotation'] ?? 0) > RUNS / 50, `a fair share was denied for an annotation (${tally.byOutcome['denied-annotation'] ?? 0})`);
  t.same(tally.problems.slice(0, 15), [], `no problem in ${tally.sent} answers (${tally.problems.length} problems; the first 15 shown)`);
});

void t.test('(b) hostile bodies: a clear 4xx JSON error or a well-formed AdmissionReview, never a 5xx nor a hang', async (t) => {
  const pollutedBefore = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
  const bodies = hostileBodies();
  const tally = newTally();
  const byCategory = counter();
  const started = performance.now();
  const deadline = started + PART_DEADLINE_MS;
  let slowest = { ms: 0, category: '' };
  await pool(bodies, CONCURRENCY, async (h) => {
    if (performance.now() > deadline) return;
    tally.sent++;
    count(byCategory, h.category.split(' ')[0] as string);
    try {
      const answer = await post(h.body, { ...(h.contentType !== undefined ? { contentType: h.contentType } : {}), ...(h.method ? { method: h.method } : {}), ...(h.path ? { path: h.path } : {}) });
      if (answer.elapsedMs > slowest.ms) slowest = { ms: answer.elapsedMs, category: h.category };
      checkHostile(h, answer, tally);
    } catch (error) {
      count(tally.byOutcome, 'no-answer');
      note(tally, `[${h.category}] no answer within ${REQUEST_TIMEOUT_MS} ms or connection error: ${(error as Error).message}`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  summary(t, '(b)', tally, seconds);
  t.comment(`(b): by category ${JSON.stringify(byCategory)}; slowest answer ${slowest.ms.toFixed(0)} ms (${slowest.category})`);
  t.equal(tally.sent, bodies.length, `all ${bodies.length} hostile bodies were sent within ${PART_DEADLINE_MS / 1000} s`);
  t.same(tally.problems.slice(0, 15), [], `every hostile body got a clear answer (${tally.problems.length} problems; the first 15 shown)`);

  const good = await post(JSON.stringify({ ...seedReview(), request: { ...(seedReview().request as Json), uid: 'after-the-storm' } }));
  t.equal(good.status, 200, 'the server still answers a good request');
  t.match(good.json, { response: { uid: 'after-the-storm', allowed: true, patchType: 'JSONPatch' } }, 'and injects it');
  t.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), pollutedBefore, 'Object.prototype has no new property');
  t.equal(({} as { polluted?: unknown }).polluted, undefined, 'no "polluted" property reaches plain objects');
});
