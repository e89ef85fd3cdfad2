// `uninject -f` gives back what `inject -f` was given, byte for byte: every golden output, a real
// chart's rendered output, and the shapes hand-written manifests take (JSON, kubectl's unindented
// lists at 4 spaces, CRLF without a final newline, flow lists). What it cannot undo exactly it
// refuses, naming the object and why.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = new URL('../..', import.meta.url).pathname;
const fixtures = join(root, 'test/fixtures/inject');
const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-uninject-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

interface Result { code: number; stdout: string; stderr: string }

async function cli(command: 'inject' | 'uninject', file: string, ...flags: string[]): Promise<Result> {
  return promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), command, '-f', file, ...flags], { cwd: root, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function roundTrip(input: string, name: string): Promise<{ injected: Result; back: Result }> {
  const file = join(dir, name);
  await writeFile(file, input);
  const injected = await cli('inject', file, '--kube-version', '1.33');
  await writeFile(`${file}.injected`, injected.stdout);
  return { injected, back: await cli('uninject', `${file}.injected`) };
}

void t.test('every golden output uninjected is its input, byte for byte', async (t) => {
  const outputs = readdirSync(fixtures).filter((f) => f.endsWith('.yaml.injected')).sort();
  t.ok(outputs.length > 30, `${outputs.length} golden outputs`);
  for (const output of outputs) {
    const back = await cli('uninject', join(fixtures, output));
    t.equal(back.code, 0, `${output}: exits 0 (${back.stderr.trim()})`);
    t.equal(back.stdout, await readFile(join(fixtures, output.replace(/\.injected$/, '')), 'utf8'), `${output}: the input again`);
  }
});

void t.test("a real chart's rendered output: injected and uninjected, the chart again", async (t) => {
  const input = await readFile(join(root, 'test/fixtures/charts/prometheus-29.27.0.yaml'), 'utf8');
  const { injected, back } = await roundTrip(input, 'chart.yaml');
  t.match(injected.stderr, /Deployment\/prometheus-server: injected/);
  t.not(injected.stdout, input);
  t.equal(back.code, 0, back.stderr);
  t.match(back.stderr, /Deployment\/prometheus-server: uninjected/);
  t.notMatch(back.stderr, /written anew/, 'edited in place');
  t.equal(back.stdout, input, 'byte for byte');
});

void t.test('JSON, kubectl lists at 4 spaces, CRLF without a final newline, flow lists: each comes back as written', async (t) => {
  const shapes: Record<string, string> = {
    'pod.json': `${JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'prometheus', annotations: { team: 'a' } }, spec: { containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--storage.tsdb.path=/prometheus', '--storage.tsdb.max-block-duration=1d'] }] } }, null, 2)}\n`,
    'kubectl.yaml': await readFile(join(root, 'test/fixtures/shapes/kubectl-4-spaces.yaml'), 'utf8'),
    'crlf.yaml': 'apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: prometheus # the server\r\nspec:\r\n  containers:\r\n    - name: prometheus\r\n      image: quay.io/prometheus/prometheus:v3.5.0',
    'flow.yaml': `apiVersion: v1
kind: Pod
metadata: {name: prometheus, labels: {app: prometheus}}
spec:
  containers:
    - {name: prometheus, image: "quay.io/prometheus/prometheus:v2.55.0", args: [--storage.tsdb.path=/data, '--storage.tsdb.retention.time=30d']}
  volumes: [{name: data, emptyDir: {}}]
`,
  };
  for (const [name, input] of Object.entries(shapes)) {
    const { injected, back } = await roundTrip(input, name);
    t.equal(injected.code, 0, `${name}: injected (${injected.stderr.trim()})`);
    t.match(injected.stdout, /thanos-sidecar/, `${name}: with the sidecar`);
    t.equal(back.code, 0, `${name}: uninjected (${back.stderr.trim()})`);
    t.notMatch(back.stderr, /written anew/, `${name}: edited in place`);
    t.equal(back.stdout, input, `${name}: byte for byte`);
  }
});

void t.test('what cannot be undone exactly is refused with the object and the reason; other objects pass through', async (t) => {
  const released = `apiVersion: v1
kind: Pod
metadata:
  name: old
  annotations:
    thanos-injector/status: '{"version":"0.1.0","container":"thanos-sidecar","mode":"native","prometheus":"prometheus","volumes":["thanos-objstore"],"flags":[],"securityContext":[]}'
spec:
  containers:
    - name: prometheus
      image: quay.io/prometheus/prometheus:v3.5.0
  initContainers:
    - name: thanos-sidecar
      image: quay.io/thanos/thanos:v0.42.5
`;
  await writeFile(join(dir, 'released.yaml'), released);
  const old = await cli('uninject', join(dir, 'released.yaml'));
  t.equal(old.code, 1);
  t.equal(old.stdout, '', 'nothing printed');
  t.match(old.stderr, /^thanos-injector: Pod\/old: the thanos-injector\/status annotation was written by injector 0\.1\.0, which recorded too little to undo the injection exactly; re-create the pod from its manifest\n$/);

  const broken = released.replace(/thanos-injector\/status: '.*'/, `thanos-injector/status: '{"version":"9","container":"thanos-sidecar","undo":{"appended":-1}}'`);
  await writeFile(join(dir, 'broken.yaml'), broken);
  const unreadable = await cli('uninject', join(dir, 'broken.yaml'));
  t.equal(unreadable.code, 1);
  t.match(unreadable.stderr, /Pod\/old: unreadable thanos-injector\/status annotation: .*undo/);
  t.notMatch(unreadable.stderr, /\n\s+at /, 'no stack trace');

  const plain = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n# untouched\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: nginx}]}\n';
  await writeFile(join(dir, 'plain.yaml'), plain);
  const passed = await cli('uninject', join(dir, 'plain.yaml'));
  t.equal(passed.code, 0);
  t.equal(passed.stdout, plain, 'printed as it was');
});
