// The registration job's connection: a kubeconfig it cannot use is one line naming the file and why.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError } from '../../src/errors.ts';
import { connect } from '../../src/kube/client.ts';

void t.test('a kubeconfig that cannot be loaded or has no current cluster', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-kubeconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const missing = join(dir, 'missing.yaml');
  t.throws(() => connect(missing), new CommandError(`cannot load kubeconfig ${missing}: no such file`));
  t.throws(() => connect(dir), new CommandError(`cannot load kubeconfig ${dir}: is a directory`));
  const empty = join(dir, 'empty.yaml');
  await writeFile(empty, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
  t.throws(() => connect(empty), new CommandError(`kubeconfig ${empty}: no current cluster; set current-context`));
});
