// Certificate rotation under load: `serve` (a separate process) with --tls-cert-file and
// --tls-key-file; for STRESS_ROTATION_SECONDS (default 15) clients post reviews over NEW
// connections (a TLS handshake per request) and over keep-alive connections; in the middle a new
// pair from a NEW CA is written atomically (temporary files renamed over both). The clients trust
// [new CA, old CA] (the caBundle a rotation publishes ahead of time). Zero failed requests; once
// the reload is seen, every new connection is served the new certificate; kept-alive connections
// carry on with the certificate they opened with.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCertificates } from '../../src/certs/files.ts';
import { generateCertificates } from '../../src/certs/generate.ts';
import { startServe } from '../support/serve.ts';
import { admissionReview, injectedProblem, postReview, prometheusPod, readMetric, servedFingerprint, sleep, waitFor, within } from '../support/stress.ts';

t.setTimeout(300_000);

const SECONDS = Math.max(6, Number(process.env.STRESS_ROTATION_SECONDS ?? 15));
const NEW_CONNECTION_WORKERS = 4;
const KEEP_ALIVE_WORKERS = 4;
const NAMES = ['localhost', '127.0.0.1'];

interface Sent {
  startedAt: number;
  kind: 'new' | 'keep-alive';
  ok: boolean;
  problem?: string;
  fingerprint?: string;
  reused?: boolean;
}

void t.test(`rotation: a new pair (new CA) written mid-load is served without one failed request (${SECONDS} s)`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-rotation-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = await writeCertificates(join(dir, 'tls'), NAMES);
  const oldPair = { ca: await readFile(files.caFile, 'utf8'), cert: await readFile(files.certFile, 'utf8') };
  const next = await generateCertificates(NAMES);
  const oldFingerprint = new X509Certificate(oldPair.cert).fingerprint256;
  const newFingerprint = new X509Certificate(next.cert).fingerprint256;
  t.not(next.caCert, oldPair.ca, 'the new pair comes from a new CA');
  const trust = [next.caCert, oldPair.ca]; // [new, old]

  const { serve, port, healthPort } = await startServe(t, { home: dir, certArgs: ['--tls-cert-file', files.certFile, '--tls-key-file', files.keyFile], args: ['--drain-timeout', '5'] });
  const agent = new https.Agent({ keepAlive: true, maxSockets: KEEP_ALIVE_WORKERS });
  t.teardown(() => agent.destroy());
  t.equal(await servedFingerprint(port, trust), oldFingerprint, 'the old certificate is served at first');

  const sent: Sent[] = [];
  const started = performance.now();
  const stopAt = started + SECONDS * 1000;
  let counter = 0;
  const worker = async (kind: Sent['kind']) => {
    while (performance.now() < stopAt) {
      const uid = `rotation-${kind}-${counter++}`;
      const record: Sent = { startedAt: performance.now(), kind, ok: false };
      try {
        const answer = await postReview(port, trust, admissionReview(prometheusPod(), { uid }), kind === 'new' ? false : agent, 10_000);
        const problem = injectedProblem(answer, uid);
        record.ok = problem === '';
        if (problem) record.problem = problem;
        if (answer.fingerprint !== undefined) record.fingerprint = answer.fingerprint;
        record.reused = answer.reusedSocket;
      } catch (error) {
        record.problem = `${(error as NodeJS.ErrnoException).code ?? ''} ${(error as Error).message}`;
      }
      sent.push(record);
      await sleep(kind === 'new' ? 5 : 10);
    }
  };
  const load = Promise.all([
    ...Array.from({ length: NEW_CONNECTION_WORKERS }, () => worker('new')),
    ...Array.from({ length: KEEP_ALIVE_WORKERS }, () => worker('keep-alive')),
  ]);

  // The rotation, halfway: temporary files next to the real ones, then a rename over each.
  await sleep((SECONDS * 1000) / 2);
  const rotatedAt = performance.now();
  await writeFile(`${files.certFile}.tmp`, next.cert);
  await writeFile(`${files.keyFile}.tmp`, next.key, { mode: 0o600 });
  await rename(`${files.keyFile}.tmp`, files.keyFile);
  await rename(`${files.certFile}.tmp`, files.certFile);
  const servedAt = await waitFor(
    'the new certificate on new connections',
    async () => ((await servedFingerprint(port, trust)) === newFingerprint ? performance.now() : undefined),
    Math.max(5000, SECONDS * 500),
    50,
  ).catch(() => undefined);
  await load;

  const failed = sent.filter((s) => !s.ok);
  const after = (s: Sent) => servedAt !== undefined && s.startedAt > servedAt + 100;
  const newAfter = sent.filter((s) => s.kind === 'new' && after(s));
  const newAfterOld = newAfter.filter((s) => s.fingerprint !== newFingerprint);
  const keptAfter = sent.filter((s) => s.kind === 'keep-alive' && s.startedAt > rotatedAt);
  const keptOnOld = keptAfter.filter((s) => s.fingerprint === oldFingerprint && s.reused === true);
  const byKind = (kind: Sent['kind']) => sent.filter((s) => s.kind === kind).length;
  const seconds = (performance.now() - started) / 1000;
  t.comment(`${sent.length} requests in ${seconds.toFixed(1)} s (${(sent.length / seconds).toFixed(0)}/s): ${byKind('new')} over new connections, ${byKind('keep-alive')} over keep-alive; ${failed.length} failed`);
  t.comment(servedAt === undefined ? 'the new certificate was never served' : `new certificate served ${(servedAt - rotatedAt).toFixed(0)} ms after the rename`);
  t.comment(`after the reload: ${newAfter.length} new connections (${newAfterOld.length} not on the new certificate); ${keptAfter.length} keep-alive requests after the rename, ${keptOnOld.length} of them on connections still using the old certificate`);
  for (const f of failed.slice(0, 5)) t.comment(`failed (${f.kind}, ${((f.startedAt - rotatedAt) / 1000).toFixed(2)} s from the rename): ${f.problem ?? ''}`);

  t.equal(failed.length, 0, `zero failed requests (of ${sent.length})`);
  t.ok(servedAt !== undefined && servedAt - rotatedAt < 5000, 'the new certificate is served to new connections within 5 s of the rename');
  t.ok(newAfter.length > 0, 'new connections were made after the reload');
  t.equal(newAfterOld.length, 0, 'every new connection after the reload was served the new certificate');
  t.equal(await servedFingerprint(port, [next.caCert]), newFingerprint, 'verified by the new CA alone');
  await t.rejects(servedFingerprint(port, [oldPair.ca]), 'the old CA alone no longer verifies new connections');
  t.ok(keptOnOld.length > 0, 'kept-alive connections opened before the rotation carried on (not dropped)');
  t.ok(((await readMetric(healthPort, 'thanos_injector_tls_reloads_total', { result: 'success' })) ?? 0) >= 1, 'thanos_injector_tls_reloads_total{result="success"} >= 1');

  agent.destroy();
  const signalled = performance.now();
  serve.child.kill('SIGTERM');
  const exit = await within(serve.exited, 10_000);
  t.equal(exit?.code, 0, `serve exits 0 on SIGTERM (${exit ? `${(exit.at - signalled).toFixed(0)} ms` : 'not within 10 s'})`);
});
