// loadConfig: a config file that cannot be read is named, with the reason in words.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

void t.test('a config file that cannot be read: the path and the reason in words', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const missing = join(dir, 'missing.yaml');
  const failure = (path: string) => loadConfig(path).then(() => undefined, (error: unknown) => error);
  const noFile = await failure(missing);
  t.type(noFile, ConfigError);
  t.equal((noFile as Error).message, `cannot read config file ${missing}: no such file`);
  const directory = await failure(dir);
  t.type(directory, ConfigError);
  t.equal((directory as Error).message, `cannot read config file ${dir}: is a directory`);
});
