// The commands' connection to the API: a kubeconfig it cannot use is one line naming the file and
// why; every call has a deadline.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CommandError } from '../../src/errors.ts';
import { connect } from '../../src/kube/client.ts';
import { describeApiError } from '../../src/kube/errors.ts';
import { generateCertificates } from '../../src/certs/generate.ts';

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

void t.test('every API call has a deadline: an API server that takes the request and never answers costs the deadline, not forever', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-kubeconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certs = await generateCertificates(['127.0.0.1']);
  let requests = 0;
  // Completes TLS and reads the request, then says nothing.
  const silent = createServer({ cert: certs.cert, key: certs.key }, () => void requests++);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const kubeconfig = join(dir, 'kubeconfig');
  const { port } = silent.address() as AddressInfo;
  await writeFile(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: silent',
    'clusters:', '- name: silent', '  cluster:', `    server: https://127.0.0.1:${port}`, `    certificate-authority-data: ${Buffer.from(certs.caCert).toString('base64')}`,
    'users:', '- name: u', '  user:', '    token: t',
    'contexts:', '- name: silent', '  context: { cluster: silent, user: u }', '',
  ].join('\n'));
  const kube = connect(kubeconfig, 500);
  const started = performance.now();
  const failure = await kube.core.listNamespace().then(() => undefined, (error: unknown) => error);
  const waited = performance.now() - started;
  t.equal(requests, 1, 'the request reached the server');
  t.ok(failure !== undefined, 'the call failed');
  t.ok(waited >= 450 && waited < 5000, `after the 500 ms deadline (${Math.round(waited)} ms)`);
  t.match(describeApiError('cannot list namespaces', failure, kube.server), /^cannot list namespaces: no answer from the API server https:\/\/127\.0\.0\.1:[0-9]+: /);
});
