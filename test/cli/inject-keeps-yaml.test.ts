// `inject -f` keeps the user's YAML: comments, key order, quoting, flow style, blank values and
// indentation of everything it does not change stay byte for byte; only the injected parts are new.
// Proven on a real chart's `helm template` output (test/fixtures/charts/README.md) with `diff`, and
// on the shapes hand-written manifests take (JSON, kubectl's unindented lists, 4 spaces, CRLF, no
// final newline, `{}` placeholders, anchors).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;
const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-keeps-yaml-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function inject(input: string, name = 'in.yaml'): Promise<{ stdout: string; stderr: string }> {
  const file = join(dir, name);
  await writeFile(file, input);
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), 'inject', '-f', file, '--kube-version', '1.28'], { cwd: root, maxBuffer: 1 << 24 });
  return { stdout, stderr };
}

/** `diff` of input and output: the lines it removes and adds. */
function lineDiff(before: string, after: string): { removed: string[]; added: string[]; text: string } {
  const a = join(dir, 'a'), b = join(dir, 'b');
  writeFileSync(a, before);
  writeFileSync(b, after);
  const text = spawnSync('diff', ['-u', a, b], { encoding: 'utf8' }).stdout.split('\n').slice(2).join('\n');
  const lines = text.split('\n').filter((l) => !l.startsWith('@@'));
  return { removed: lines.filter((l) => l.startsWith('-')).map((l) => l.slice(1)), added: lines.filter((l) => l.startsWith('+')).map((l) => l.slice(1)), text };
}

const objects = (text: string) => parseAllDocuments(text, { merge: true }).map((d) => d.toJS() as unknown).filter((o) => o !== null);

const POD = (body: string) => `apiVersion: v1
kind: Pod
metadata:
  name: prometheus
spec:
${body}`;

void t.test("a real chart's rendered output: the diff holds only the injection", async (t) => {
  const input = await readFile(join(root, 'test/fixtures/charts/prometheus-29.27.0.yaml'), 'utf8');
  const { stdout, stderr } = await inject(input, 'chart.yaml');
  const diff = lineDiff(input, stdout);
  t.comment(`diff -u rendered injected:\n${diff.text}`);
  t.same(diff.removed, [], 'not one line of the chart is removed or changed');
  t.match(stderr, /Deployment\/prometheus-server: injected/);
  t.ok(diff.added.some((l) => /^ {8}- name: thanos-sidecar$/.test(l)), 'the sidecar is added at the chart\'s own indentation');
  t.ok(diff.added.includes('            - --no-storage.tsdb.allow-overlapping-compaction'), 'Prometheus\' flag is appended to its argument list');
  // Every other document, comments and quotes included, is where it was.
  const rest = (text: string) => text.split(/^---$/m).filter((doc) => !(doc.includes('\nkind: Deployment\n') && doc.includes('\n  name: prometheus-server\n')));
  t.same(rest(stdout), rest(input), 'the ConfigMaps, Services, other workloads and `# Source:` comments are unchanged');
  t.equal(objects(stdout).length, objects(input).length, 'as many objects as the chart rendered');
  t.notOk(/written anew/.test(stderr), 'edited in place');
});

void t.test('quotes, comments, blank values and flow lists of the Prometheus container stay as written', async (t) => {
  const input = POD(`  # the server
  containers:
    - name: prometheus   # keep me
      image: "quay.io/prometheus/prometheus:v3.5.0"
      args: ['--storage.tsdb.path=/prometheus', '--storage.tsdb.min-block-duration=30m', '--storage.tsdb.max-block-duration=6h']
      resources:
      volumeMounts: [{name: data, mountPath: /prometheus}]
  volumes: [{name: data, emptyDir: {}}]
`);
  const { stdout } = await inject(input);
  const diff = lineDiff(input, stdout);
  t.same(diff.removed, [
    "      args: ['--storage.tsdb.path=/prometheus', '--storage.tsdb.min-block-duration=30m', '--storage.tsdb.max-block-duration=6h']",
    '  volumes: [{name: data, emptyDir: {}}]',
  ], 'only the two lines the injection extends change');
  t.ok(diff.added.includes("      args: ['--storage.tsdb.path=/prometheus', '--storage.tsdb.min-block-duration=2h', '--storage.tsdb.max-block-duration=2h', '--no-storage.tsdb.allow-overlapping-compaction']"),
    'replaced flags keep their single quotes, and so does the appended one');
  t.ok(diff.added.includes('  volumes: [{name: data, emptyDir: {}}, {"name":"thanos-objstore","secret":{"secretName":"thanos-objstore"}}]'), 'a flow list grows in flow style');
  t.match(stdout, /# the server\n/);
  t.match(stdout, /- name: prometheus {3}# keep me\n/);
  t.match(stdout, /image: "quay.io\/prometheus\/prometheus:v3.5.0"\n/);
  t.match(stdout, /resources:\n/, 'a blank value stays blank (not null)');
});

void t.test("kubectl's unindented lists and 4-space indentation: new parts follow the document's style", async (t) => {
  // kubectl get -o yaml's shape: lists not indented under their key, 4 spaces.
  const input = await readFile(join(root, 'test/fixtures/shapes/kubectl-4-spaces.yaml'), 'utf8');
  const { stdout } = await inject(input);
  const diff = lineDiff(input, stdout);
  t.same(diff.removed, []);
  t.ok(diff.added.includes('            - name: thanos-sidecar'), 'the sidecar at the containers list\'s own column');
  t.ok(diff.added.includes('              - --storage.tsdb.min-block-duration=2h'), 'a flag at the args list\'s column');
  t.ok(diff.added.includes('            volumes:') && diff.added.includes('            - name: thanos-objstore'), 'a new list under its key, unindented like the others');
  t.ok(diff.added.includes('            securityContext:') && diff.added.includes('                runAsUser: 65534'), 'a new map indented 4 spaces');
  t.ok(diff.added.includes('                thanos-injector/injected: "true"'), 'a label added to the existing labels');
});

void t.test('JSON in, JSON out', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'prometheus', annotations: {} }, spec: { securityContext: {}, containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--storage.tsdb.path=/prometheus'] }] } };
  const input = `${JSON.stringify(pod, null, 2)}\n`;
  const { stdout } = await inject(input, 'pod.json');
  const output = JSON.parse(stdout) as { spec: { containers: { name: string }[]; securityContext: Record<string, unknown> }; metadata: { annotations: Record<string, string> } };
  t.same(output.spec.containers.map((c) => c.name), ['prometheus', 'thanos-sidecar']);
  t.equal(output.spec.securityContext.runAsUser, 65534, 'the empty {} is filled');
  t.type(output.metadata.annotations['thanos-injector/status'], 'string');
  t.same(lineDiff(input, stdout).removed.filter((l) => !/^\s*("args": \[|"securityContext": \{\},?|"annotations": \{\},?|"--storage.tsdb.path=\/prometheus"|[\]}],?)$/.test(l)), [], 'only the lines the injection extends change');
});

void t.test('`{}` placeholders under a block key become block maps; CRLF and a missing final newline are kept', async (t) => {
  const input = POD(`  securityContext: {}
  containers:
    - name: prometheus
      image: quay.io/prometheus/prometheus:v3.5.0`).replaceAll('\n', '\r\n');
  const { stdout } = await inject(input);
  t.notOk(/[^\r]\n/.test(stdout), 'every line ends in CRLF');
  t.notOk(stdout.endsWith('\n'), 'no final newline added');
  t.match(stdout, /\r\n {2}securityContext:\r\n {4}runAsUser: 65534\r\n/, 'the {} became a block map');
  t.match(stdout, /\r\n {4}- name: thanos-sidecar\r\n/);
  t.same(objects(stdout)[0], objects((await inject(input.replace('  securityContext: {}\r\n', ''))).stdout)[0], 'the same pod as without the placeholder');
});

void t.test('merge keys are read as kubectl reads them; a list behind an alias is written anew, said on stderr, and still right', async (t) => {
  const defaults = `x-defaults: &defaults
  image: quay.io/prometheus/prometheus:v3.5.0
`;
  const merged = await inject(`${defaults}---
${POD(`  containers:
    - <<: *defaults
      name: prometheus
`)}`.replace(/^x-defaults/, '# shared\nx-defaults').replace('---\n', ''));
  t.notOk(/written anew/.test(merged.stderr), 'a merge key is edited around');
  t.same((objects(merged.stdout)[0] as { spec: { containers: { image: string }[] } }).spec.containers.map((c) => c.image),
    ['quay.io/prometheus/prometheus:v3.5.0', 'quay.io/thanos/thanos:v0.42.5'], 'the merged image is the Prometheus image');

  const aliased = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: prometheus}
    spec:
      containers: &containers
        - name: prometheus
          image: quay.io/prometheus/prometheus:v3.5.0
          args: [--storage.tsdb.path=/prometheus]
  - apiVersion: v1
    kind: Pod
    metadata: {name: copy}
    spec:
      containers: *containers
`;
  const { stdout, stderr } = await inject(aliased);
  t.match(stderr, /List\/\(unnamed\): note: written anew, its comments and layout not kept \(the path goes through an alias\)/);
  const list = objects(stdout)[0] as { items: { spec: { containers: { name: string }[] } }[] };
  t.same(list.items.map((pod) => pod.spec.containers.map((c) => c.name)), [['prometheus', 'thanos-sidecar'], ['prometheus', 'thanos-sidecar']], 'both pods injected once each');
});

void t.test('documents the injector leaves alone are printed exactly, empty ones and separators included', async (t) => {
  const other = "# a comment\n---\napiVersion: v1\nkind: ConfigMap   # trailing\nmetadata: {name: 'x'}\ndata:\n  k: \"v\"\n...\n---\n\n";
  const { stdout } = await inject(other + POD('  containers:\n    - name: prometheus\n      image: quay.io/prometheus/prometheus:v3.5.0\n'));
  t.ok(stdout.startsWith(other), 'byte for byte up to the injected Pod');
});
