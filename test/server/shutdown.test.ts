// The real process (`node src/main.ts serve`): a SIGTERM turns readiness off, lets the review in
// flight finish and exits 0 within the drain time; with no TLS flags it creates its own CA and
// serving certificate in --cert-dir and serves with them.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe } from '../support/serve.ts';
import { admissionReview, fixturePod, httpGet, httpsCall, partialRequest, prometheusPod, waitFor } from '../support/server.ts';

/** 'ready' (200), 'not-ready' (503) or 'closed' (no answer on the health port). */
async function readiness(healthPort: number): Promise<string> {
  try {
    const answer = await httpGet(healthPort, '/readyz');
    return answer.status === 200 ? 'ready' : answer.status === 503 ? 'not-ready' : `HTTP ${answer.status}`;
  } catch {
    return 'closed';
  }
}

void t.test('SIGTERM: readiness goes off, the in-flight review finishes with 200, the process exits 0 within the drain time', async (t) => {
  const { serve, port, healthPort, ca } = await startServe(t, { args: ['--drain-timeout', '5'] });
  t.equal(await readiness(healthPort), 'ready');

  const review = admissionReview(fixturePod('seed-deployment.yaml'), { uid: 'in-flight-at-sigterm' });
  const inFlight = partialRequest(port, ca, JSON.stringify(review));
  t.teardown(() => inFlight.abort());
  await inFlight.sent;
  await new Promise((resolve) => setTimeout(resolve, 300)); // headers parsed, body half read

  const signalled = Date.now();
  serve.child.kill('SIGTERM');
  const state = await waitFor('readiness to turn off', async () => {
    const now = await readiness(healthPort);
    return now === 'ready' ? undefined : now;
  }, 3000, 20);
  t.ok(state === 'not-ready' || state === 'closed', `/readyz answers 503 or the health port closed (${state})`);
  t.ok(serve.running, 'the process waits for the in-flight review');

  const refused = await httpsCall({ port, ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(prometheusPod())), timeoutMs: 2000 })
    .then((answer) => `HTTP ${answer.status}`, (error: NodeJS.ErrnoException) => error.code ?? error.message);
  t.not(refused, 'HTTP 200', `no new admission is taken while draining (${refused})`);

  inFlight.finish();
  const answer = await inFlight.answer;
  t.equal(answer.status, 200, `the in-flight review is answered (${answer.text.slice(0, 200)})`);
  const body = JSON.parse(answer.text) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType?: string } };
  t.match(body, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'in-flight-at-sigterm', allowed: true, patchType: 'JSONPatch' } });

  const exit = await Promise.race([
    serve.exited,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 7000)),
  ]);
  const took = Date.now() - signalled;
  t.ok(exit !== undefined, `the process exits (after ${took} ms)`);
  t.equal(exit?.code, 0, 'with code 0');
  t.ok(took < 5000, `within the drain time of 5 s (${took} ms)`);
  t.match(serve.output, /signal received/);
});

void t.test('SIGTERM with --shutdown-delay: a connection the client already holds is still served, and each answer closes it (no reset under a later review)', async (t) => {
  // The apiserver pools its connections by the Service's name, not by endpoint: it keeps sending
  // over the ones it holds to a terminating pod. Closing them at the end of the delay while a review
  // is on its way resets it (seen on the real node, test/node/install.test.ts): they must end with
  // an answer instead.
  const { serve, port, ca } = await startServe(t, { args: ['--shutdown-delay', '3', '--drain-timeout', '2'] });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const call = () => httpsCall({ port, ca, agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(prometheusPod())) });

  const before = await call();
  t.equal(before.status, 200);
  t.not(before.headers.connection, 'close', `before the signal the connection is kept (${before.headers.connection})`);

  serve.child.kill('SIGTERM');
  await waitFor('the shutdown to start', () => Promise.resolve(/shutting down/.test(serve.output) ? true : undefined), 3000, 20);
  const during = await call();
  t.equal(during.status, 200, 'during the delay, a review over the held connection is answered');
  t.ok(during.reusedSocket, 'over the same connection');
  t.equal(during.headers.connection, 'close', 'with Connection: close');
  const next = await call();
  t.equal(next.status, 200, 'the next review opens a new connection and is answered too');
  t.notOk(next.reusedSocket, 'not over the closed one');
  t.equal((await serve.exited).code, 0, 'then the process exits 0');
});

void t.test('SIGTERM with a review that never finishes: the drain timeout closes it and the process exits 0', async (t) => {
  const { serve, port, ca } = await startServe(t, { args: ['--drain-timeout', '1'] });
  const stuck = partialRequest(port, ca, JSON.stringify(admissionReview(prometheusPod())));
  t.teardown(() => stuck.abort());
  const outcome = stuck.answer.then((answer) => `HTTP ${answer.status}`, (error: NodeJS.ErrnoException) => error.code ?? error.message);
  await stuck.sent;
  await new Promise((resolve) => setTimeout(resolve, 300));

  const signalled = Date.now();
  serve.child.kill('SIGTERM');
  const exit = await Promise.race([serve.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000))]);
  const took = Date.now() - signalled;
  t.equal(exit?.code, 0, `exits with code 0 (after ${took} ms)`);
  t.ok(took >= 900 && took < 3000, `after about the 1 s drain timeout (${took} ms)`);
  t.not(await outcome, 'HTTP 200', 'the unfinished request is cut, not answered');
  t.match(serve.output, /drain timeout reached/);
});

void t.test('with no TLS flags, serve creates ca.crt, tls.crt and tls.key in --cert-dir and serves what ca.crt verifies', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'thanos-injector-certs-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const certDir = join(home, 'certs');
  t.notOk(existsSync(certDir), 'no certificate folder before the start');

  const first = await startServe(t, { args: ['--drain-timeout', '2'], home });
  for (const file of ['ca.crt', 'tls.crt', 'tls.key']) t.ok(existsSync(join(certDir, file)), `${file} created`);
  t.equal((await stat(join(certDir, 'tls.key'))).mode & 0o077, 0, 'tls.key is readable by its owner only');
  const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');
  const cert = await readFile(join(certDir, 'tls.crt'), 'utf8');
  const x509 = new X509Certificate(cert);
  t.ok(x509.verify(new X509Certificate(ca).publicKey), 'tls.crt is signed by ca.crt');
  t.ok(x509.checkIP('127.0.0.1') !== undefined && x509.checkHost('localhost') !== undefined, 'for 127.0.0.1 and localhost');

  const answer = await httpsCall({
    port: first.port,
    ca,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(admissionReview(prometheusPod(), { uid: 'first-start' })),
  });
  t.equal(answer.status, 200, 'an HTTPS admission verified against ca.crt');
  t.match(answer.json, { response: { uid: 'first-start', allowed: true } });

  // Also with the certificate's DNS name as the verified server name (what a caBundle client does).
  const byName = await new Promise<number>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: first.port, servername: 'localhost', path: '/healthz', ca, agent: false, signal: AbortSignal.timeout(5000) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(byName, 404, 'TLS verified for localhost (the route itself is on the health port)');
  t.match(first.serve.output, /created serving certificate/);

  first.serve.child.kill('SIGTERM');
  t.equal((await first.serve.exited).code, 0, 'stops cleanly');

  const second = await startServe(t, { args: ['--drain-timeout', '2'], home });
  t.equal(await readFile(join(certDir, 'tls.crt'), 'utf8'), cert, 'a restart reuses the valid certificate');
  t.match(second.serve.output, /reusing serving certificate/);
  const again = await httpsCall({ port: second.port, ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(prometheusPod())) });
  t.equal(again.status, 200, 'and the same ca.crt still verifies it');
});
