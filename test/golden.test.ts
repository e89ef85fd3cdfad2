// Golden pairs: test/fixtures/inject/X.yaml -> X.yaml.injected (or X.yaml.error), each run through
// BOTH the offline CLI and the webhook (over HTTPS, patch applied with the apiserver's semantics,
// defaulted, validated, and reviewed again), and the stored pod uninjected again. `UPDATE_GOLDEN=1 npm test` rewrites the expected files.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, type Document } from 'yaml';
import { admitWithReinvocation } from './harness/apiserver.ts';
import { applyPodDefaults } from './harness/pod-defaults.ts';
import { podPointer } from '../src/cli/workloads.ts';
import type { PodLike } from '../src/inject/pod.ts';
import { STATUS_ANNOTATION } from '../src/inject/names.ts';
import { uninjectPod } from '../src/inject/uninject.ts';
import { resolvePointer } from '../src/validation.ts';
import { startTestWebhook, type TestWebhook } from './support/webhook.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'test/fixtures/inject');
const update = process.env.UPDATE_GOLDEN === '1';
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.config.yaml')).sort();

interface Manifest {
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  items?: Manifest[];
}

/** Every Pod or pod template in a YAML stream, in order, with where it came from. */
function podsOf(text: string): { where: string; namespace: string; pod: Record<string, unknown>; claims: string[] }[] {
  const found: { where: string; namespace: string; pod: Record<string, unknown>; claims: string[] }[] = [];
  const visit = (object: Manifest) => {
    if (object.kind === 'List') return object.items?.forEach(visit);
    const pointer = podPointer(object.kind);
    if (pointer === undefined) return;
    const template = resolvePointer(object, pointer) as Record<string, unknown>;
    const claims = ((object as { spec?: { volumeClaimTemplates?: { metadata: { name: string } }[] } }).spec?.volumeClaimTemplates ?? []).map((c) => c.metadata.name);
    found.push({
      where: `${object.kind}/${object.metadata?.name ?? ''}`,
      namespace: object.metadata?.namespace ?? 'default',
      pod: { apiVersion: 'v1', kind: 'Pod', ...template },
      claims,
    });
  };
  for (const document of parseAllDocuments(text) as Document[]) {
    const value = document.toJS() as Manifest | null;
    if (value) visit(value);
  }
  return found;
}

function configFor(fixture: string): string | undefined {
  const path = join(dir, fixture.replace(/\.yaml$/, '.config.yaml'));
  return existsSync(path) ? path : undefined;
}

void t.test('every expected file and config has its fixture (UPDATE_GOLDEN=1 removes the stale ones)', (t) => {
  for (const file of readdirSync(dir).filter((f) => /\.(injected|error)$|\.config\.yaml$/.test(f))) {
    const source = file.replace(/\.(injected|error)$/, '').replace(/\.config\.yaml$/, '.yaml');
    if (existsSync(join(dir, source))) continue;
    if (update) rmSync(join(dir, file));
    else t.fail(`${file}: no ${source} beside it (a renamed or deleted fixture); UPDATE_GOLDEN=1 removes it`);
  }
  t.pass('no stale file');
  t.end();
});

void t.test('golden pairs through the offline CLI', async (t) => {
  for (const fixture of fixtures) {
    await t.test(fixture, async (t) => {
      const config = configFor(fixture);
      const args = ['src/main.ts', 'inject', '-f', join(dir, fixture), '--kube-version', '1.33', ...(config ? ['--config', config] : [])];
      const result = await run(process.execPath, args, { cwd: root }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
      const injectedPath = join(dir, `${fixture}.injected`);
      const errorPath = join(dir, `${fixture}.error`);
      if (update) {
        // One expected outcome per fixture: the other file goes when the outcome changes.
        writeFileSync(result.code === 0 ? injectedPath : errorPath, result.code === 0 ? result.stdout : result.stderr);
        rmSync(result.code === 0 ? errorPath : injectedPath, { force: true });
      }
      if (existsSync(errorPath)) {
        t.equal(result.code, 1, 'exits 1');
        t.equal(result.stdout, '', 'prints nothing on stdout');
        t.equal(result.stderr, readFileSync(errorPath, 'utf8'), 'prints the expected error');
        t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
      } else {
        t.equal(result.code, 0, `exits 0 (stderr: ${result.stderr})`);
        t.equal(result.stdout, readFileSync(injectedPath, 'utf8'), 'prints the expected manifests');
      }
    });
  }
});

void t.test('golden pairs through the webhook, as the apiserver calls it', async (t) => {
  const webhooks = new Map<string, TestWebhook>();
  t.teardown(async () => {
    for (const webhook of webhooks.values()) await webhook.close();
  });
  for (const fixture of fixtures) {
    await t.test(fixture, async (t) => {
      const configPath = configFor(fixture);
      const key = configPath ?? '';
      if (!webhooks.has(key)) webhooks.set(key, await startTestWebhook(configPath ? parse(readFileSync(configPath, 'utf8')) : {}));
      const webhook = webhooks.get(key)!;
      const inputs = podsOf(readFileSync(join(dir, fixture), 'utf8'));
      const errorPath = join(dir, `${fixture}.error`);
      const expected = existsSync(errorPath) ? undefined : podsOf(readFileSync(join(dir, `${fixture}.injected`), 'utf8'));
      t.ok(inputs.length > 0, 'the fixture holds a pod');
      for (const [i, input] of inputs.entries()) {
        const opts = { url: webhook.url, ca: webhook.ca, namespace: input.namespace, volumeClaimTemplateNames: input.claims };
        if (expected === undefined) {
          const { admit } = await import('./harness/apiserver.ts');
          const result = await admit(input.pod, opts);
          t.equal(result.allowed, false, `${input.where} is denied`);
          t.equal(result.status?.code, 400, 'with code 400');
          const cliMessage = readFileSync(errorPath, 'utf8').replace(/^thanos-injector: [^:]+: /, '').trim();
          t.equal(result.status?.message, `thanos-injector: ${cliMessage}`, 'with the same message as the CLI');
          continue;
        }
        const { first, second } = await admitWithReinvocation(input.pod, opts);
        t.same(first.object, applyPodDefaults(expected[i]!.pod), `${input.where}: the apiserver stores what the CLI prints`);
        t.same(second.ops, [], `${input.where}: a second review (reinvocation) changes nothing`);
        t.equal(second.changed, false);
        // What the apiserver stored, uninjected, is the pod as it was created (drift is judged on it).
        const stored = first.object as PodLike;
        if (stored.metadata?.annotations?.[STATUS_ANNOTATION] === undefined) continue;
        const back = uninjectPod(stored);
        if ('error' in back) t.fail(`${input.where}: uninject: ${back.error}`);
        else t.same(applyPodDefaults(back.pod as Record<string, unknown>), applyPodDefaults(input.pod), `${input.where}: uninjecting the stored pod gives back the pod created`);
      }
    });
  }
});
