// --client-ca-file: the webhook requires a client certificate signed by the given CA (the
// apiserver's), which none of the injectors we studied offers.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { seedReview } from '../../bench/fixtures.ts';
import { freePort } from '../support/net.ts';
import { ServeProcess } from '../support/serve.ts';
import { startTestWebhook } from '../support/webhook.ts';

async function clientPair(caCommonName: string) {
  const ca = await generate([{ name: 'commonName', value: caCommonName }], {
    algorithm: 'sha256', keyType: 'ec',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true }],
  });
  const client = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
    algorithm: 'sha256', keyType: 'ec', ca: { key: ca.private, cert: ca.cert },
    extensions: [{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, critical: true }, { name: 'extKeyUsage', clientAuth: true }],
  });
  return { ca: ca.cert, cert: client.cert, key: client.private };
}

function post(url: string, ca: string, client?: { cert: string; key: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' }, ...(client ? { cert: client.cert, key: client.key } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(seedReview()));
  });
}

void t.test('with --client-ca-file only clients with a certificate from that CA are answered', async (t) => {
  const trusted = await clientPair('apiserver-client-ca');
  const stranger = await clientPair('someone-else');
  const webhook = await startTestWebhook({}, { clientCa: trusted.ca });
  t.teardown(() => webhook.close());
  t.equal(await post(webhook.url, webhook.ca, trusted), 200, 'a client certificate signed by the CA is answered');
  await t.rejects(post(webhook.url, webhook.ca), 'no client certificate: the handshake is refused');
  await t.rejects(post(webhook.url, webhook.ca, stranger), 'a certificate from another CA: refused');
});

void t.test('without --client-ca-file no client certificate is asked for', async (t) => {
  const webhook = await startTestWebhook();
  t.teardown(() => webhook.close());
  t.equal(await post(webhook.url, webhook.ca), 200);
});

void t.test('a --client-ca-file that cannot be read stops serve with the reason in words', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'thanos-injector-client-ca-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const missing = join(home, 'client-ca.crt');
  for (const [file, reason] of [[missing, 'no such file'], [home, 'is a directory']] as const) {
    const serve = new ServeProcess({
      args: ['--address', '127.0.0.1', '--port', String(await freePort()), '--health-port', String(await freePort()), '--cert-dir', join(home, 'certs'), '--client-ca-file', file],
      cwd: home,
    });
    t.teardown(() => serve.kill());
    const exit = await Promise.race([serve.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000))]);
    t.equal(exit?.code, 1, `serve exits 1 (${reason})`);
    t.equal(serve.output, `thanos-injector: cannot read --client-ca-file ${file}: ${reason}\n`, 'one line naming the file and the reason');
  }
});
