// serve's small API client: a kubeconfig with a token (inline or in a file, read again for each
// call), a CA and a client certificate (inline or by a path relative to the kubeconfig) is read
// without client-node; any other user (exec) goes through client-node; a refusal reads as
// client-node's; a silent server costs the deadline.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { generateCertificates } from '../../src/certs/generate.ts';
import { describeApiError } from '../../src/kube/errors.ts';
import { connectLight, HttpStatusError, send, sendJson } from '../../src/kube/light.ts';

const certs = await generateCertificates(['127.0.0.1']);
const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-light-'));
const seen: { authorization?: string; clientCert: boolean; method?: string; contentType?: string; body: string }[] = [];
let silent = false;
const server: Server = createServer({ key: certs.key, cert: certs.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    seen.push({ authorization: req.headers.authorization, clientCert: (req.socket as TLSSocket).getPeerCertificate().subject !== undefined, method: req.method, contentType: req.headers['content-type'], body });
    if (silent) return;
    if (req.url === '/version') return void res.end(JSON.stringify({ gitVersion: 'v1.37.2' }));
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', message: 'secrets "x" not found', code: 404 }));
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
const saved = process.env.KUBECONFIG;
t.teardown(async () => {
  server.closeAllConnections();
  server.close();
  process.env.KUBECONFIG = saved;
  await rm(dir, { recursive: true, force: true });
});

const b64 = (text: string) => Buffer.from(text).toString('base64');
async function kubeconfig(name: string, cluster: string, user: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster:\n    server: ${url}\n${cluster}users:\n- name: u\n  user:\n${user}`);
  process.env.KUBECONFIG = file;
  return file;
}

void t.test('a token and the CA inline: the call is made with them, no client-node needed', async (t) => {
  await kubeconfig('token.yaml', `    certificate-authority-data: ${b64(certs.caCert)}\n`, '    token: abc\n');
  const connection = await connectLight();
  t.equal(connection?.server, url);
  t.same(await sendJson(connection!, '/version', { timeoutMs: 5000 }), { gitVersion: 'v1.37.2' });
  t.equal(seen.at(-1)?.authorization, 'Bearer abc');
});

void t.test('a token file and a CA file beside the kubeconfig, the token read again for each call (it is rotated in place)', async (t) => {
  await writeFile(join(dir, 'ca.crt'), certs.caCert);
  await writeFile(join(dir, 'token'), 'first\n');
  await kubeconfig('files.yaml', '    certificate-authority: ca.crt\n', '    tokenFile: token\n');
  const connection = (await connectLight())!;
  await send(connection, '/version', { timeoutMs: 5000 });
  t.equal(seen.at(-1)?.authorization, 'Bearer first');
  await writeFile(join(dir, 'token'), 'second\n');
  await send(connection, '/version', { timeoutMs: 5000 });
  t.equal(seen.at(-1)?.authorization, 'Bearer second');
});

void t.test('a client certificate; a PATCH carries its body and content type', async (t) => {
  await kubeconfig('cert.yaml', `    certificate-authority-data: ${b64(certs.caCert)}\n`, `    client-certificate-data: ${b64(certs.cert)}\n    client-key-data: ${b64(certs.key)}\n`);
  const connection = (await connectLight())!;
  const refused = await send(connection, '/apis/x', { method: 'PATCH', body: [{ op: 'add', path: '/a', value: 1 }], contentType: 'application/json-patch+json', timeoutMs: 5000 }).catch((error: unknown) => error);
  t.match(seen.at(-1), { clientCert: true, authorization: undefined, method: 'PATCH', contentType: 'application/json-patch+json', body: '[{"op":"add","path":"/a","value":1}]' });
  t.ok(refused instanceof HttpStatusError, 'a 404 is an HttpStatusError');
  t.equal(describeApiError('read Secret ns/x', refused), 'read Secret ns/x: HTTP 404 Not Found: secrets "x" not found', "read as client-node's errors are");
});

void t.test('an exec user is left to client-node; a kubeconfig that cannot be read is named', async (t) => {
  await kubeconfig('exec.yaml', '    insecure-skip-tls-verify: true\n', '    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/false\n');
  t.equal((await connectLight())?.server, url, "client-node's KubeConfig read it");
  const missing = join(dir, 'missing.yaml');
  process.env.KUBECONFIG = missing;
  await t.rejects(connectLight(), { message: `cannot load kubeconfig ${missing}: no such file` });
});

void t.test('a server that takes the call and never answers costs the deadline', async (t) => {
  await kubeconfig('silent.yaml', `    certificate-authority-data: ${b64(certs.caCert)}\n`, '    token: abc\n');
  silent = true;
  t.teardown(() => (silent = false));
  const started = Date.now();
  const error = await send((await connectLight())!, '/version', { timeoutMs: 300 }).catch((caught: unknown) => caught);
  t.match(describeApiError('read /version', error), /^read \/version: no answer from the API server: no answer within its 0.3s timeout$/);
  t.ok(Date.now() - started < 5000, 'within the deadline, not forever');
});
