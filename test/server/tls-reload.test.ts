// Certificate hot reload: a new pair written into the certificate folder (a Secret update, a
// cert-manager renewal) is served to new connections within seconds, without dropping the
// connections already open; a broken pair is refused and the previous certificate kept.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import type tls from 'node:tls';
import { writeCertificates } from '../../src/certs/files.ts';
import { generateCertificates } from '../../src/certs/generate.ts';
import { startServe } from '../support/serve.ts';
import { startTestWebhook, type TestWebhook } from '../support/webhook.ts';
import { admissionReview, httpGet, httpsCall, metricValue, prometheusPod, servedFingerprint, waitFor } from '../support/server.ts';

const NAMES = ['localhost', '127.0.0.1'];

async function fingerprintOf(file: string): Promise<string> {
  return new X509Certificate(await readFile(file, 'utf8')).fingerprint256;
}

async function reloads(webhook: TestWebhook, result: 'success' | 'failure'): Promise<number> {
  const metrics = await httpGet(webhook.server.healthPort, '/metrics');
  return metricValue(metrics.text, 'thanos_injector_tls_reloads_total', { result }) ?? 0;
}

function admit(webhook: TestWebhook, ca: string, agent?: https.Agent) {
  return httpsCall({
    port: webhook.server.port,
    ca,
    ...(agent ? { agent } : {}),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(admissionReview(prometheusPod())),
  });
}

void t.test('a new pair (new CA) is served to new connections while a keep-alive connection keeps working', async (t) => {
  const webhook = await startTestWebhook({}, { certPollMs: 500 });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await webhook.close();
  });
  const oldCa = webhook.ca;
  const oldFingerprint = await fingerprintOf(join(webhook.certDir, 'tls.crt'));
  t.equal(await servedFingerprint(webhook.server.port, oldCa), oldFingerprint, 'the initial certificate is served');

  const first = await admit(webhook, oldCa, agent);
  t.equal(first.status, 200, 'a request over the keep-alive connection');
  t.equal(first.reusedSocket, false);
  await new Promise((resolve) => setImmediate(resolve)); // the agent takes the socket back after 'end'
  const sockets = Object.values(agent.freeSockets).flat();
  t.equal(sockets.length, 1, 'the agent keeps one idle connection');
  const keptSocket = sockets[0] as tls.TLSSocket;
  let keptClosed = false;
  keptSocket.once('close', () => (keptClosed = true));

  const files = await writeCertificates(webhook.certDir, NAMES);
  const newCa = await readFile(files.caFile, 'utf8');
  t.not(newCa, oldCa, 'a new CA');
  const newFingerprint = await fingerprintOf(files.certFile);
  t.not(newFingerprint, oldFingerprint);

  const started = Date.now();
  // Verified against the new CA alone: both CAs share the subject CN=thanos-injector-ca and carry
  // no key identifiers, so OpenSSL with a bundle [old, new] tries only the old one.
  const served = await waitFor(
    'the new certificate on new connections',
    async () => ((await servedFingerprint(webhook.server.port, newCa)) === newFingerprint ? Date.now() - started : undefined),
    5000,
  );
  t.ok(served < 5000, `new connections get the new certificate, verified by the new CA, after ${served} ms`);
  await t.rejects(servedFingerprint(webhook.server.port, oldCa), 'the old CA no longer verifies new connections');

  const fresh = await admit(webhook, newCa);
  t.equal(fresh.status, 200, 'an admission over a new connection trusting only the new CA');

  t.notOk(keptClosed, 'the keep-alive connection was not closed by the reload');
  const second = await admit(webhook, oldCa, agent);
  t.equal(second.status, 200, 'the old keep-alive connection still completes a request');
  t.equal(second.reusedSocket, true, 'over the same connection');
  t.equal(keptSocket.getPeerCertificate().fingerprint256, oldFingerprint, 'which still uses the certificate it was opened with');

  t.ok((await reloads(webhook, 'success')) >= 1, 'thanos_injector_tls_reloads_total{result="success"} >= 1');
});

void t.test('a certificate without its matching key keeps the previous certificate and counts a failure', async (t) => {
  const webhook = await startTestWebhook({}, { certPollMs: 500 });
  t.teardown(() => webhook.close());
  const certFile = join(webhook.certDir, 'tls.crt');
  const keyFile = join(webhook.certDir, 'tls.key');
  const fingerprint = await fingerprintOf(certFile);

  // A certificate from another set: it does not match the key in the folder.
  const other = await generateCertificates(NAMES);
  await writeFile(certFile, other.cert);
  await waitFor('a failed reload', async () => ((await reloads(webhook, 'failure')) >= 1 ? true : undefined), 5000);
  t.pass('thanos_injector_tls_reloads_total{result="failure"} >= 1');
  t.equal(await servedFingerprint(webhook.server.port, webhook.ca), fingerprint, 'the previous certificate is still served');
  t.equal(await reloads(webhook, 'success'), 0, 'no successful reload counted');
  const answer = await admit(webhook, webhook.ca);
  t.equal(answer.status, 200, 'admissions go on with the previous certificate');

  // Completing the pair (its matching key) is picked up: the failure was not final.
  await writeFile(keyFile, other.key, { mode: 0o600 });
  const otherFingerprint = new X509Certificate(other.cert).fingerprint256;
  await waitFor('the completed pair', async () => ((await servedFingerprint(webhook.server.port, other.caCert)) === otherFingerprint ? true : undefined), 5000);
  t.ok((await reloads(webhook, 'success')) >= 1, 'the completed pair is reloaded and counted');
  t.equal((await admit(webhook, other.caCert)).status, 200);
});

void t.test('an empty tls.key (a half-written pair) keeps the previous certificate and counts a failure', async (t) => {
  const webhook = await startTestWebhook({}, { certPollMs: 500 });
  t.teardown(() => webhook.close());
  const fingerprint = await fingerprintOf(join(webhook.certDir, 'tls.crt'));
  await writeFile(join(webhook.certDir, 'tls.key'), '');
  await waitFor('a reload attempt', async () => ((await reloads(webhook, 'failure')) + (await reloads(webhook, 'success')) >= 1 ? true : undefined), 5000).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.ok((await reloads(webhook, 'failure')) >= 1, 'a failure is counted');
  t.equal(await reloads(webhook, 'success'), 0, 'no success is counted for a pair without a key');
  const served = await servedFingerprint(webhook.server.port, webhook.ca).catch((error: Error) => `handshake failed: ${error.message}`);
  t.equal(served, fingerprint, 'new connections still get the previous certificate');
  const answer = await admit(webhook, webhook.ca).catch((error: Error) => ({ status: 0, text: error.message }));
  t.equal(answer.status, 200, `admissions go on (${answer.text.slice(0, 120)})`);
});

void t.test('an empty tls.crt in the real process keeps the previous certificate and does not crash the webhook', async (t) => {
  const { serve, port, healthPort, certDir, ca } = await startServe(t, { args: ['--drain-timeout', '2'] });
  const fingerprint = await fingerprintOf(join(certDir, 'tls.crt'));

  await writeFile(join(certDir, 'tls.crt'), '');
  // The folder watch reacts within ~200 ms; give it well over that.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.ok(serve.running, `the webhook process is still running (exit code ${serve.child.exitCode}): ${serve.output.split('\n').filter((l) => !l.startsWith('{')).slice(0, 3).join(' ').slice(0, 300)}`);
  if (!serve.running) return;
  t.equal(await servedFingerprint(port, ca), fingerprint, 'new connections still get the previous certificate');
  const metrics = await httpGet(healthPort, '/metrics');
  t.ok((metricValue(metrics.text, 'thanos_injector_tls_reloads_total', { result: 'failure' }) ?? 0) >= 1, 'a failure is counted');
});
