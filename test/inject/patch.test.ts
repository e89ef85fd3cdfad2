// The RFC 6902 operations the injector sends: whole objects/arrays only where the parent is
// missing, `/-` appends and single keys where it exists, escaped keys, block flags replaced where
// they stand, and never an op that overwrites an existing array or map.
import t from 'tap';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod, type InjectionContext } from '../../src/inject/inject.ts';
import { PatchError } from '../../src/errors.ts';
import { applyPatchInPlace, type PatchOperation } from '../../src/inject/patch.ts';
import { escapePointer, type PodLike } from '../../src/inject/pod.ts';
import { applyPatchStrict, encodePointerToken } from '../harness/jsonpatch.ts';
import { applyPodDefaults } from '../harness/pod-defaults.ts';
import { validatePod } from '../harness/pod-validation.ts';

/** The type of a subtest's `t`. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const native: InjectionContext = { config: buildConfig({}), namespace: 'monitoring', kubernetesVersion: '1.33' };
const container: InjectionContext = { config: buildConfig({}), namespace: 'monitoring', kubernetesVersion: '1.28' };

function patchOf(pod: unknown, context: InjectionContext = native): PatchOperation[] {
  const result = injectPod(pod as PodLike, context);
  if (result.outcome !== 'injected') throw new Error(`expected an injection, got ${JSON.stringify(result)}`);
  return result.patch;
}

/** JSON Pointers of every array and object in `doc` ('' is the root). */
function containerPointers(doc: unknown, pointer = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(doc)) {
    out.add(pointer);
    doc.forEach((item, i) => containerPointers(item, `${pointer}/${i}`, out));
  } else if (typeof doc === 'object' && doc !== null) {
    out.add(pointer);
    for (const [key, value] of Object.entries(doc)) containerPointers(value, `${pointer}/${encodePointerToken(key)}`, out);
  }
  return out;
}

/** No add/replace may target an array or object that exists in the input (it would replace the user's content). */
function checkNoOverwrite(t: Test, doc: unknown, ops: PatchOperation[]): void {
  const existing = containerPointers(doc);
  const offending = ops.filter((op) => existing.has(op.path));
  t.same(offending, [], 'no op targets an existing array or map');
  t.same(ops.filter((op) => op.op !== 'add' && op.op !== 'replace'), [], 'only add and replace ops');
  t.same(ops.filter((op) => op.op === 'replace' && !/\/(args|command)\/[0-9]+$/.test(op.path)), [], 'replace only on single command/args elements');
}


/** The patch applies with the apiserver's semantics and adds no validation error (a `~` key is already invalid in the input). */
function checkApplies(t: Test, doc: unknown, ops: PatchOperation[]): Record<string, unknown> {
  let patched: unknown;
  t.doesNotThrow(() => {
    patched = applyPatchStrict(doc, ops);
  }, 'the patch applies (evanphx v4 semantics)');
  const before = validatePod(applyPodDefaults(doc));
  t.same(validatePod(applyPodDefaults(patched)).filter((e) => !before.includes(e)), [], 'the patch adds no validation error');
  return patched as Record<string, unknown>;
}

const paths = (ops: PatchOperation[]) => ops.map((op) => op.path);

/** The patch paths for a pod with none of the parents injection adds to (missing or null): one whole add each, in order. */
const EVERY_PARENT_CREATED = [
  '/spec/containers/0/args',
  '/spec/containers/0/volumeMounts',
  '/spec/containers/0/env',
  '/spec/volumes',
  '/spec/initContainers',
  '/spec/securityContext',
  '/metadata/labels',
  '/metadata/annotations',
];

void t.test('escapePointer', (t) => {
  t.equal(escapePointer('a~b/c'), 'a~0b~1c');
  t.equal(escapePointer('thanos-injector/status'), 'thanos-injector~1status');
  t.equal(escapePointer('~1'), '~01', '~ is escaped before /, so ~1 stays the literal text');
  t.equal(escapePointer('/~/'), '~1~0~1');
  t.equal(escapePointer('plain'), 'plain');
  t.equal(escapePointer(''), '');
  t.equal(escapePointer('~~//'), '~0~0~1~1');
  t.end();
});

void t.test('missing parents: one add of the whole array or object', (t) => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bare' },
    spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus:v3.5.0' }] },
  };
  const ops = patchOf(pod);
  t.same(paths(ops), EVERY_PARENT_CREATED, 'one op per missing parent, in order');
  t.ok(ops.every((op) => op.op === 'add'), 'all adds');
  const byPath = new Map(ops.map((op) => [op.path, op.value]));
  t.same(byPath.get('/spec/containers/0/args'), [
    '--config.file=/etc/prometheus/prometheus.yml',
    '--storage.tsdb.path=/prometheus',
    '--storage.tsdb.min-block-duration=2h',
    '--storage.tsdb.max-block-duration=2h',
    '--no-storage.tsdb.allow-overlapping-compaction',
  ], 'args created whole: the image defaults plus the block and compaction flags');
  t.same(byPath.get('/spec/containers/0/volumeMounts'), [{ name: 'thanos-tsdb', mountPath: '/prometheus' }]);
  t.same(byPath.get('/spec/volumes'), [{ name: 'thanos-tsdb', emptyDir: {} }, { name: 'thanos-objstore', secret: { secretName: 'thanos-objstore' } }]);
  t.ok(Array.isArray(byPath.get('/spec/initContainers')), 'initContainers created as an array');
  t.match(byPath.get('/spec/initContainers'), [{ name: 'thanos-sidecar', restartPolicy: 'Always' }]);
  t.same(byPath.get('/spec/securityContext'), { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true });
  t.same(byPath.get('/metadata/labels'), { 'thanos-injector/injected': 'true' });
  t.same(Object.keys(byPath.get('/metadata/annotations') as object), ['thanos-injector/status']);
  checkNoOverwrite(t, pod, ops);
  checkApplies(t, pod, ops);
  t.end();
});

void t.test('missing metadata altogether', (t) => {
  const pod = { spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.path=/p'] }] } };
  const ops = patchOf(pod);
  const metadata = ops.filter((op) => op.path.startsWith('/metadata'));
  t.same(paths(metadata), ['/metadata'], 'one add of the whole metadata');
  t.match(metadata[0]?.value, { labels: { 'thanos-injector/injected': 'true' }, annotations: { 'thanos-injector/status': String } });
  const patched = applyPatchStrict(pod, ops);
  t.match(patched, { metadata: { labels: { 'thanos-injector/injected': 'true' } } });
  t.end();
});

void t.test('existing parents: appends with /- and single keys', (t) => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'full',
      labels: { app: 'prometheus', 'app.kubernetes.io/name': 'prometheus' },
      annotations: { 'prometheus.io/scrape': 'true', 'a~b/c': 'tilde' },
    },
    spec: {
      securityContext: { fsGroup: 2000 },
      initContainers: [{ name: 'init-chown', image: 'busybox', command: ['sh', '-c', 'true'] }],
      containers: [
        {
          name: 'prometheus',
          image: 'prom/prometheus:v3.5.0',
          args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/data'],
          volumeMounts: [{ name: 'config', mountPath: '/etc/prometheus' }],
          env: [{ name: 'TZ', value: 'UTC' }],
        },
      ],
      volumes: [{ name: 'config', configMap: { name: 'prometheus-config' } }],
    },
  };
  const ops = patchOf(pod);
  t.same(ops.map((op) => `${op.op} ${op.path}`), [
    'add /spec/containers/0/args/-',
    'add /spec/containers/0/args/-',
    'add /spec/containers/0/args/-',
    'add /spec/containers/0/volumeMounts/-',
    'add /spec/containers/0/env/-',
    'add /spec/volumes/-',
    'add /spec/volumes/-',
    'add /spec/initContainers/-',
    'add /spec/securityContext/runAsUser',
    'add /spec/securityContext/runAsGroup',
    'add /spec/securityContext/runAsNonRoot',
    'add /metadata/labels/thanos-injector~1injected',
    'add /metadata/annotations/thanos-injector~1status',
  ]);
  t.same(ops.slice(0, 3).map((op) => op.value), ['--storage.tsdb.min-block-duration=2h', '--storage.tsdb.max-block-duration=2h', '--no-storage.tsdb.allow-overlapping-compaction'], 'one flag per append, in order');
  t.same(ops[3]?.value, { name: 'thanos-tsdb', mountPath: '/data' }, 'a single mount, not an array');
  t.same(ops[4]?.value, { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }, 'a single variable');
  t.same(ops[5]?.value, { name: 'thanos-tsdb', emptyDir: {} }, 'a single volume');
  t.same(ops[6]?.value, { name: 'thanos-objstore', secret: { secretName: 'thanos-objstore' } });
  t.match(ops[7]?.value, { name: 'thanos-sidecar', restartPolicy: 'Always' }, 'a single container');
  t.notOk(ops.some((op) => op.path === '/spec/securityContext/fsGroup'), 'the pod fsGroup is left alone');
  checkNoOverwrite(t, pod, ops);
  const patched = checkApplies(t, pod, ops) as typeof pod;
  t.same(patched.metadata.labels, { app: 'prometheus', 'app.kubernetes.io/name': 'prometheus', 'thanos-injector/injected': 'true' }, 'user labels kept');
  t.same(Object.keys(patched.metadata.annotations), ['prometheus.io/scrape', 'a~b/c', 'thanos-injector/status'], 'user annotations kept');
  t.equal(patched.spec.securityContext.fsGroup, 2000);
  t.same(patched.spec.initContainers.map((c) => c.name), ['init-chown', 'thanos-sidecar'], 'the sidecar after the existing init containers');
  t.end();
});

void t.test('empty existing maps and arrays are appended to, not replaced', (t) => {
  const pod = {
    metadata: { name: 'empty', labels: {}, annotations: {} },
    spec: {
      securityContext: {},
      initContainers: [],
      volumes: [],
      containers: [{ name: 'prometheus', image: 'prom/prometheus', command: ['/bin/prometheus'], args: [], volumeMounts: [], env: [] }],
    },
  };
  const ops = patchOf(pod);
  t.ok(ops.every((op) => op.path.endsWith('/-') || /securityContext\/|labels\/|annotations\//.test(op.path)), 'only appends and single keys');
  checkNoOverwrite(t, pod, ops);
  checkApplies(t, pod, ops);
  t.end();
});

void t.test('null where the apiserver would omit the key (YAML input)', (t) => {
  const pod = {
    metadata: { name: 'nulls', labels: null, annotations: null },
    spec: { securityContext: null, volumes: null, initContainers: null, containers: [{ name: 'prometheus', image: 'prom/prometheus', args: null, volumeMounts: null }] },
  };
  const ops = patchOf(pod);
  t.same(paths(ops), EVERY_PARENT_CREATED, 'null parents are created whole');
  applyPatchStrict(pod, ops);
  t.pass('applies');
  t.end();
});

void t.test('container mode appends to spec.containers', (t) => {
  const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.path=/p'] }] } };
  const ops = patchOf(pod, container);
  const sidecarOps = ops.filter((op) => (op.value as { name?: string } | undefined)?.name === 'thanos-sidecar');
  t.same(paths(sidecarOps), ['/spec/containers/-']);
  t.notOk(ops.some((op) => op.path.startsWith('/spec/initContainers')), 'no init container');
  t.notOk('restartPolicy' in (sidecarOps[0]?.value as object), 'no restartPolicy on a regular container');
  checkNoOverwrite(t, pod, ops);
  checkApplies(t, pod, ops);
  t.end();
});

void t.test('block flags are replaced in place, one element each', (t) => {
  const args = [
    '--config.file=/etc/prometheus/prometheus.yml',
    '--storage.tsdb.min-block-duration=30m',
    '--storage.tsdb.path',
    '/data',
    '--storage.tsdb.max-block-duration',
    '6h',
    '--web.enable-lifecycle',
  ];
  const pod = {
    metadata: { name: 'p' },
    spec: {
      containers: [{ name: 'prometheus', image: 'prom/prometheus', args, volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
  const ops = patchOf(pod);
  const flagOps = ops.filter((op) => op.path.startsWith('/spec/containers/0/args'));
  t.same(flagOps, [
    { op: 'replace', path: '/spec/containers/0/args/1', value: '--storage.tsdb.min-block-duration=2h' },
    { op: 'replace', path: '/spec/containers/0/args/5', value: '2h' },
  ], 'equals form replaced by the whole flag, separate form by the value alone');
  t.notOk(ops.some((op) => op.path === '/spec/containers/0/args'), 'never the whole args');
  checkNoOverwrite(t, pod, ops);
  const patched = checkApplies(t, pod, ops) as typeof pod;
  t.same(patched.spec.containers[0]?.args, [
    '--config.file=/etc/prometheus/prometheus.yml',
    '--storage.tsdb.min-block-duration=2h',
    '--storage.tsdb.path',
    '/data',
    '--storage.tsdb.max-block-duration',
    '2h',
    '--web.enable-lifecycle',
  ], 'every other argument keeps its place');
  t.end();
});

void t.test('one block flag replaced, the other appended; flags in command', (t) => {
  const pod = {
    metadata: { name: 'p' },
    spec: {
      containers: [
        { name: 'app', image: 'nginx' },
        { name: 'sidecar', image: 'busybox' },
        {
          name: 'prometheus',
          image: 'prom/prometheus',
          command: ['/bin/prometheus', '--storage.tsdb.max-block-duration', '1h', '--storage.tsdb.path=/data'],
          args: ['--web.listen-address=:9091'],
        },
      ],
    },
  };
  const ops = patchOf(pod);
  t.same(ops.slice(0, 2), [
    { op: 'replace', path: '/spec/containers/2/command/2', value: '2h' },
    { op: 'add', path: '/spec/containers/2/args/-', value: '--storage.tsdb.min-block-duration=2h' },
  ], 'replace in command at the exact index, append the missing flag to args');
  t.ok(ops.every((op) => !op.path.startsWith('/spec/containers/0') && !op.path.startsWith('/spec/containers/1')), 'other containers untouched');
  checkNoOverwrite(t, pod, ops);
  checkApplies(t, pod, ops);

  const commandOnly = { metadata: { name: 'p' }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus', command: ['/bin/prometheus', '--storage.tsdb.min-block-duration=2h'] }] } };
  const commandOps = patchOf(commandOnly);
  t.same(commandOps[0], { op: 'add', path: '/spec/containers/0/args', value: ['--storage.tsdb.max-block-duration=2h'] }, 'args created with only the missing flag');
  t.notOk(commandOps.some((op) => op.path.includes('/command')), 'command untouched: the min flag was right');
  checkNoOverwrite(t, commandOnly, commandOps);
  checkApplies(t, commandOnly, commandOps);
  t.end();
});

void t.test('equal block flags are left alone', (t) => {
  const pod = {
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.min-block-duration=1h', '--storage.tsdb.max-block-duration', '60m'] }] },
  };
  const ops = patchOf(pod);
  t.notOk(ops.some((op) => op.path.includes('/args')), 'no args op when min = max already');
  const explicit = { ...pod, metadata: { name: 'p', annotations: { 'thanos-injector/block-duration': '2h' } } };
  const explicitOps = patchOf(explicit);
  t.same(explicitOps.filter((op) => op.path.includes('/args')), [
    { op: 'replace', path: '/spec/containers/0/args/0', value: '--storage.tsdb.min-block-duration=2h' },
    { op: 'replace', path: '/spec/containers/0/args/2', value: '2h' },
  ], 'an explicit block-duration annotation replaces equal flags');
  checkNoOverwrite(t, explicit, explicitOps);
  checkApplies(t, explicit, explicitOps);
  t.end();
});

void t.test('objstore disabled: no flag edits, no secret volume', (t) => {
  const context: InjectionContext = { config: buildConfig({ objstore: { enabled: false } }), namespace: 'monitoring', kubernetesVersion: '1.33' };
  const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.min-block-duration=30m'] }] } };
  const ops = patchOf(pod, context);
  t.notOk(ops.some((op) => op.path.includes('/args')), 'args untouched');
  t.same(ops.find((op) => op.path === '/spec/volumes')?.value, [{ name: 'thanos-tsdb', emptyDir: {} }]);
  checkNoOverwrite(t, pod, ops);
  checkApplies(t, pod, ops);
  t.end();
});

void t.test('no op overwrites an existing array or map, on several pods', async (t) => {
  const pods: unknown[] = [
    {
      metadata: { name: 'a', labels: { 'example.com/a~b': 'x' }, annotations: { 'thanos-injector/log-level': 'debug', 'x/y': 'z' } },
      spec: {
        securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, runAsNonRoot: true },
        containers: [
          { name: 'prometheus', image: 'prom/prometheus', args: ['--storage.tsdb.path=/prometheus'], volumeMounts: [{ name: 'data', mountPath: '/prometheus' }], env: [{ name: 'A', value: 'b' }] },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      },
    },
    {
      metadata: { name: 'b', annotations: { 'thanos-injector/sidecar-mode': 'container' } },
      spec: {
        initContainers: [{ name: 'init', image: 'busybox' }],
        containers: [
          { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2', args: ['--reload-url=http://localhost:9090/-/reload'] },
          { name: 'server', image: 'quay.io/prometheus/prometheus:v3.5.0', workingDir: '/srv', args: ['--storage.tsdb.max-block-duration=2h'], volumeMounts: [{ name: 'thanos-tsdb', mountPath: '/srv', subPath: 'prom' }] },
        ],
        volumes: [{ name: 'thanos-tsdb', emptyDir: {} }, { name: 'thanos-objstore', emptyDir: {} }],
      },
    },
    {
      metadata: { name: 'c', labels: {}, annotations: {} },
      spec: {
        securityContext: {},
        containers: [{ name: 'prometheus', image: 'prom/prometheus', command: ['/bin/prometheus', '--storage.tsdb.min-block-duration', '6h'], volumeMounts: [] }],
        volumes: [],
        initContainers: [],
      },
    },
    {
      metadata: { name: 'd', annotations: { 'thanos-injector/block-duration': '1h', 'thanos-injector/objstore-secret': 'bucket/cfg.yaml' } },
      spec: {
        containers: [{ name: 'prometheus', image: 'prom/prometheus' }],
        volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }],
      },
    },
  ];
  for (const [i, pod] of pods.entries()) {
    for (const context of [native, container]) {
      await t.test(`pod ${i} on ${context.kubernetesVersion}`, (t) => {
        const ops = patchOf(pod, context);
        checkNoOverwrite(t, pod, ops);
        checkApplies(t, pod, ops);
        checkNoOverwrite(t, applyPodDefaults(pod), patchOf(applyPodDefaults(pod), context));
        t.end();
      });
    }
  }
});

void t.test('applyPatchInPlace applies as the apiserver does, and a patch it cannot apply names the operation', (t) => {
  const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'prometheus', args: ['--a'] }] } };
  applyPatchInPlace(pod, [
    { op: 'add', path: '/spec/volumes', value: [{ name: 'v' }] },
    { op: 'add', path: '/spec/containers/0/args/-', value: '--b' },
    { op: 'replace', path: '/spec/containers/0/args/0', value: '--c' },
    { op: 'add', path: '/metadata/labels', value: { 'a/b': 'x' } },
  ]);
  t.same(pod, { metadata: { name: 'p', labels: { 'a/b': 'x' } }, spec: { containers: [{ name: 'prometheus', args: ['--c', '--b'] }], volumes: [{ name: 'v' }] } }, 'in place');
  const failure = (ops: PatchOperation[]) => {
    try {
      applyPatchInPlace(structuredClone(pod), ops);
      return undefined;
    } catch (error) {
      t.type(error, PatchError);
      return (error as Error).message;
    }
  };
  t.equal(failure([{ op: 'add', path: '/spec/volumes/-', value: {} }, { op: 'add', path: '/spec/initContainers/-', value: {} }]),
    'patch operation 1 (add /spec/initContainers/-): the parent is missing');
  t.equal(failure([{ op: 'replace', path: '/spec/containers/0/command/0', value: 'x' }]), 'patch operation 0 (replace /spec/containers/0/command/0): the path does not exist');
  t.equal(failure([{ op: 'add', path: '/spec/containers/5', value: {} }]), 'patch operation 0 (add /spec/containers/5): the index is out of range');
  t.match(failure([{ op: 'add', path: '/__proto__/polluted', value: 'x' }]), /^patch operation 0 \(add \/__proto__\/polluted\): /);
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched');
  t.end();
});
