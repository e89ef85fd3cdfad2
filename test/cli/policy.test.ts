// `thanos-injector policy`: YAML kubectl applies, for a cluster that serves the policy; a clear
// refusal for one that does not (or would crash on it) and for a configuration it cannot express.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;
const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-policy-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function policy(...flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), 'policy', ...flags], { cwd: root, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

void t.test('from Kubernetes 1.36.6: the policy and its bindings, as YAML', async (t) => {
  const result = await policy('--kube-version', 'v1.36.6', '--name', 'tsi');
  t.equal(result.code, 0, result.stderr);
  const kinds = parseAllDocuments(result.stdout).map((document) => (document.toJS() as { kind: string; metadata: { name: string } }));
  t.same(kinds.map((o) => `${o.kind}/${o.metadata.name}`), ['MutatingAdmissionPolicy/tsi', 'MutatingAdmissionPolicyBinding/tsi-namespace', 'MutatingAdmissionPolicyBinding/tsi-pod',
    'ValidatingAdmissionPolicy/tsi', 'ValidatingAdmissionPolicyBinding/tsi-namespace', 'ValidatingAdmissionPolicyBinding/tsi-pod']);
  const only = await policy('--kube-version', 'v1.36.6', '--name', 'tsi', '--policy-only');
  t.same(parseAllDocuments(only.stdout).map((document) => (document.toJS() as { kind: string }).kind), ['MutatingAdmissionPolicy', 'ValidatingAdmissionPolicy'], '--policy-only: the two policies, no binding');
});

void t.test('older clusters are refused with the reason', async (t) => {
  for (const version of ['1.32.13', 'v1.35.4', '1.36.5']) {
    const result = await policy('--kube-version', version);
    t.equal(result.code, 1, version);
    t.equal(result.stdout, '');
    t.match(result.stderr, `thanos-injector: Kubernetes ${version} cannot run the policy: admissionregistration.k8s.io/v1 MutatingAdmissionPolicy is served from 1.36, and apiservers before v1.36.6 crash on the list values it adds; the webhook injects there\n`);
  }
  const bad = await policy('--kube-version', 'latest');
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--kube-version: "latest" is not valid; expected a version such as 1.36.6');
});

void t.test('a configuration the policy cannot express: exit 1 with the reason', async (t) => {
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'objstore:\n  enabled: false\n');
  const result = await policy('--kube-version', '1.37.2', '--config', config);
  t.equal(result.code, 1);
  t.equal(result.stderr, 'thanos-injector: objstore.enabled is false: the webhook injects with this configuration, the policy cannot\n');
});

void t.test('inject -o explain: which back end injects each pod once the policy is bound, and why', async (t) => {
  const explain = async (file: string, ...flags: string[]) =>
    promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), 'inject', '-f', join(root, 'test/fixtures', file), '-o', 'explain', ...flags], { cwd: root })
      .then((r) => r.stdout);
  const chart = await explain('charts/prometheus-29.27.0.yaml', '--kube-version', '1.37.2');
  t.match(chart, /^OBJECT +BACK END +WHY\n/);
  t.match(chart, /\nDeployment\/prometheus-server +policy +the apiserver injects it, exactly as the webhook would\n/, "the prometheus-community chart's server: the policy");
  t.match(chart, /\nDeployment\/prometheus-kube-state-metrics +webhook +neither injects it \(no-prometheus\)/);
  t.match(await explain('inject/statefulset-claim.yaml', '--kube-version', '1.37.2'), /StatefulSet\/prometheus +policy/, "a StatefulSet's TSDB on its claim: the policy");
  t.match(await explain('inject/seed-deployment.yaml', '--kube-version', '1.37.2'), /Deployment\/prometheus-deploy +policy +/, "the seed's Deployment: the policy, its emptyDir warning given by the ValidatingAdmissionPolicy");
  t.match(await explain('inject/compaction-disabled-annotation.yaml', '--kube-version', '1.37.2'), /Pod\/prometheus +webhook +it has a thanos-injector\/ annotation \(per-pod settings\)/);
  t.match(await explain('inject/seed-deployment.yaml', '--kube-version', '1.33'), /Deployment\/prometheus-deploy +webhook +Kubernetes 1\.33 cannot run the policy/);
  const config = join(dir, 'off.yaml');
  await writeFile(config, 'objstore:\n  enabled: false\n');
  t.match(await explain('inject/persistent-volume-claim.yaml', '--kube-version', '1.37.2', '--config', config), /webhook +the configuration has no policy: objstore\.enabled is false/);
  const mode = async (value: string) => {
    const file = join(dir, `mode-${value}.yaml`);
    await writeFile(file, `mode: ${value}\n`);
    return file;
  };
  t.match(await explain('inject/statefulset-claim.yaml', '--kube-version', '1.37.2', '--config', await mode('webhook')), /StatefulSet\/prometheus +webhook +injection mode webhook: no policy/, 'mode webhook: the webhook, whatever the shape');
  t.match(await explain('inject/statefulset-claim.yaml', '--kube-version', '1.37.2', '--config', await mode('policy')), /StatefulSet\/prometheus +policy/, 'mode policy: the policy takes what it claims');
  t.match(await explain('inject/compaction-disabled-annotation.yaml', '--kube-version', '1.37.2', '--config', await mode('policy')),
    /Pod\/prometheus +none +not injected: injection mode policy has no webhook, and it has a thanos-injector\/ annotation/, 'and the rest is not injected, said so');
});
