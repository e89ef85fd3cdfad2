// Graceful shutdown under load: `serve` (a process) with --drain-timeout 10 takes ~100 requests/s
// (keep-alive and new connections) plus a batch of slow reviews whose bodies are only half sent
// when SIGTERM arrives. The slow reviews are finished after the signal and must all get 200; every
// request that got a response got a 200; requests refused at connect once the listener is closed
// are counted apart; the process exits 0 within the drain time.
import t from 'tap';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { startServe } from '../support/serve.ts';
import { admissionReview, injectedProblem, partialRequest, postReview, prometheusPod, readinessOff, sleep, within } from '../support/stress.ts';

t.setTimeout(300_000);

const DRAIN_SECONDS = 10;
const RATE = 100;
const SLOW_REQUESTS = 20;
const LOAD_BEFORE_MS = 3000;
const MAX_IN_FLIGHT = 32;

/** A review POSTed with only half of its body sent; finish() sends the rest. */
function slowRequest(port: number, ca: string, uid: string) {
  return { uid, ...partialRequest(port, ca, JSON.stringify(admissionReview(prometheusPod(), { uid })), 30_000) };
}

type Outcome = 'ok' | 'non-200' | 'refused' | 'dropped' | 'other-error';

void t.test(`SIGTERM under ${RATE} requests/s with ${SLOW_REQUESTS} half-sent reviews: all in-flight reviews get 200, exit 0 within ${DRAIN_SECONDS} s`, async (t) => {
  const { serve, port, healthPort, ca } = await startServe(t, { args: ['--drain-timeout', String(DRAIN_SECONDS)] });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());

  let signalledAt = Infinity;
  const results: { outcome: Outcome; afterSignal: boolean; detail: string; reused: boolean; keepAlive: boolean }[] = [];
  let inFlight = 0;
  let stop = false;
  let n = 0;
  const fire = () => {
    if (inFlight >= MAX_IN_FLIGHT) return;
    const keepAlive = n % 3 !== 0;
    const uid = `load-${n++}`;
    const startedAt = performance.now();
    inFlight++;
    postReview(port, ca, admissionReview(prometheusPod(), { uid }), keepAlive ? agent : false, 15_000)
      .then(
        (answer) => {
          const problem = injectedProblem(answer, uid);
          results.push({ outcome: problem === '' ? 'ok' : 'non-200', afterSignal: startedAt > signalledAt, detail: problem, reused: answer.reusedSocket, keepAlive });
        },
        (error: NodeJS.ErrnoException) => {
          const code = error.code ?? error.name;
          const outcome: Outcome = code === 'ECONNREFUSED' ? 'refused' : ['ECONNRESET', 'EPIPE', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC'].includes(code) || /socket hang up|closed/i.test(error.message) ? 'dropped' : 'other-error';
          results.push({ outcome, afterSignal: startedAt > signalledAt, detail: `${code}: ${error.message}`, reused: false, keepAlive });
        },
      )
      .finally(() => inFlight--);
  };
  const ticker = setInterval(() => {
    if (!stop) fire();
  }, 1000 / RATE);
  t.teardown(() => clearInterval(ticker));

  await sleep(LOAD_BEFORE_MS - 1000);
  const slow = Array.from({ length: SLOW_REQUESTS }, (_, i) => slowRequest(port, ca, `slow-${i}`));
  t.teardown(() => slow.forEach((s) => s.abort()));
  await Promise.all(slow.map((s) => s.sent));
  await sleep(1000); // headers parsed, half of each body read

  signalledAt = performance.now();
  serve.child.kill('SIGTERM');
  const readyOff = await readinessOff(healthPort, signalledAt, 2000);
  await sleep(300);
  for (const s of slow) s.finish();
  const slowAnswers = await Promise.all(slow.map((s) => s.answer.then((a) => injectedProblem(a, s.uid), (error: Error) => `no answer: ${error.message}`)));
  const exit = await within(serve.exited, (DRAIN_SECONDS + 5) * 1000);
  const exitMs = exit ? exit.at - signalledAt : undefined;
  await sleep(500);
  stop = true;
  clearInterval(ticker);
  const drained = await within((async () => {
    while (inFlight > 0) await sleep(20);
  })(), 20_000);
  void drained;

  const slowFailed = slowAnswers.filter((p) => p !== '');
  const count = (outcome: Outcome, after?: boolean) => results.filter((r) => r.outcome === outcome && (after === undefined || r.afterSignal === after)).length;
  t.comment(`in-flight slow reviews: ${SLOW_REQUESTS - slowFailed.length} completed with 200, ${slowFailed.length} failed`);
  t.comment(`load: ${results.length} requests; before SIGTERM: ${count('ok', false)} ok, ${count('non-200', false)} non-200, ${count('dropped', false)} dropped, ${count('refused', false)} refused, ${count('other-error', false)} other errors`);
  t.comment(`load after SIGTERM: ${count('ok', true)} ok, ${count('non-200', true)} answered non-200, ${count('refused', true)} refused at connect (expected), ${count('dropped', true)} closed without an answer, ${count('other-error', true)} other errors`);
  t.comment(`readiness off ${readyOff?.toFixed(0) ?? 'never'} ms after SIGTERM; exit ${exit ? `code ${exit.code} ${exitMs?.toFixed(0)} ms after SIGTERM` : `not within ${DRAIN_SECONDS + 5} s`}`);
  for (const r of results.filter((x) => x.outcome !== 'ok' && x.outcome !== 'refused').slice(0, 5)) t.comment(`  ${r.outcome} (${r.afterSignal ? 'after' : 'before'} SIGTERM, ${r.keepAlive ? `keep-alive${r.reused ? ' reused' : ''}` : 'new connection'}): ${r.detail.slice(0, 160)}`);
  for (const p of slowFailed.slice(0, 5)) t.comment(`  slow review: ${p}`);

  t.same(slowFailed, [], `all ${SLOW_REQUESTS} in-flight reviews finished after SIGTERM got a 200 with their patch`);
  t.ok(count('ok', false) > RATE, `the load ran before the signal (${count('ok', false)} ok)`);
  t.equal(count('non-200'), 0, 'every request that got a response got a 200');
  t.equal(count('dropped', false) + count('other-error', false) + count('refused', false), 0, 'no request sent before SIGTERM failed');
  t.equal(count('other-error', true), 0, 'after SIGTERM, failures are connection refusals or closed idle connections only');
  t.ok(readyOff !== undefined && readyOff < 1000, `readiness turns off within 1 s (${readyOff?.toFixed(0) ?? 'never'} ms)`);
  t.equal(exit?.code, 0, 'the process exits 0');
  t.ok(exitMs !== undefined && exitMs < DRAIN_SECONDS * 1000, `within the drain time of ${DRAIN_SECONDS} s (${exitMs?.toFixed(0) ?? 'not yet'} ms)`);
});

void t.test('SIGTERM: a connection the server accepted before the signal, whose review arrives during the drain, gets a 200 (not a 503)', async (t) => {
  const { serve, port, healthPort, ca } = await startServe(t, { args: ['--drain-timeout', String(DRAIN_SECONDS)] });
  // TCP accepted by the server now; the TLS handshake and the review come after SIGTERM, while the
  // process drains (what an apiserver connection opened just before the endpoints update sees).
  const raw = net.connect({ host: '127.0.0.1', port });
  await once(raw, 'connect');
  const busy = slowRequest(port, ca, 'keeps-the-drain-open');
  t.teardown(() => {
    busy.abort();
    raw.destroy();
  });
  await busy.sent;
  await sleep(300);

  const signalledAt = performance.now();
  serve.child.kill('SIGTERM');
  await readinessOff(healthPort, signalledAt, 2000);
  const socket = tls.connect({ socket: raw, ca, servername: 'localhost' });
  const status = await within(
    (async () => {
      await once(socket, 'secureConnect');
      const body = JSON.stringify(admissionReview(prometheusPod(), { uid: 'accepted-before-sigterm' }));
      socket.write(`POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      let text = '';
      socket.setEncoding('utf8');
      for await (const chunk of socket) {
        text += chunk as string;
        if (/\r\n\r\n/.test(text)) break;
      }
      return text.split('\r\n')[0] ?? '';
    })().catch((error: Error) => `error: ${error.message}`),
    5000,
  );
  socket.destroy();
  busy.finish();
  const busyAnswer = await busy.answer.then((a) => a.status, (error: Error) => error.message);
  const exit = await within(serve.exited, (DRAIN_SECONDS + 5) * 1000);
  t.comment(`the review on the connection accepted before SIGTERM got: ${status ?? 'nothing within 5 s'}; the in-flight one: ${busyAnswer}; exit ${exit ? `${exit.code} after ${(exit.at - signalledAt).toFixed(0)} ms` : 'not yet'}`);
  t.equal(status, 'HTTP/1.1 200 OK', 'the server answers the review it accepted a connection for (a 503 fails the pod under failurePolicy Fail, or drops the sidecar under Ignore)');
  t.equal(busyAnswer, 200, 'the in-flight review gets its 200');
  t.equal(exit?.code, 0, 'the process exits 0');
});
