// `thanos-injector inject`: a manifest or config file that cannot be read is one line on stderr
// with the reason in words, and exit code 1.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { run } from '../../src/cli/inject.ts';
import { CommandError } from '../../src/errors.ts';

const root = new URL('../..', import.meta.url).pathname;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-inject-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `node src/main.ts inject ...`: exit code and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [join(root, 'src/main.ts'), 'inject', ...args], { cwd: root }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

void t.test('-f FILE that cannot be read: the file and the reason in words', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'pods.yaml');
  const failure = (argv: string[]) => run(argv).then(() => undefined, (error: unknown) => error);
  const noFile = await failure(['-f', missing]);
  t.type(noFile, CommandError);
  t.equal((noFile as Error).message, `cannot read ${missing}: no such file`);
  const directory = await failure(['-f', dir]);
  t.type(directory, CommandError);
  t.equal((directory as Error).message, `cannot read ${dir}: is a directory`);
});

void t.test('the process prints one line, no errno code and no stack, and exits 1', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'pods.yaml');
  t.same(await cli(['-f', missing]), { code: 1, stdout: '', stderr: `thanos-injector: cannot read ${missing}: no such file\n` });
  const config = join(dir, 'config.yaml');
  t.same(await cli(['-f', missing, '--config', config]), { code: 1, stdout: '', stderr: `thanos-injector: cannot read config file ${config}: no such file\n` });
});
