// Slow and broken clients against the in-process webhook (test/support/webhook.ts): slowloris
// (TLS connections sending their headers one byte per second), bodies that never complete,
// connections that never even start TLS, and clients that disconnect mid-request. Meanwhile a good
// review must keep being answered promptly (under 1 s); the bad connections must be closed by the
// server within the configured timeouts (src/server/app.ts: headersTimeout 10 s, requestTimeout
// 30 s); and once the attack is over the server's connection count goes back to where it was.
import t from 'tap';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { startTestWebhook, type TestWebhook } from '../support/webhook.ts';
import { admissionReview, injectedProblem, ms, percentile, postReview, prometheusPod, sleep, waitFor } from '../support/stress.ts';

t.setTimeout(300_000);

const HEADERS_TIMEOUT_MS = 10_000; // src/server/app.ts
const REQUEST_TIMEOUT_MS = 30_000; // src/server/app.ts
/** How late a close may come and still count as "within the timeout" (timer granularity, load). */
const MARGIN_MS = 2_000;
/** The attack is watched at most this long: long enough to see each close happen, late or not. */
const WATCH_MS = 70_000;
const SLOWLORIS = 50;
const STALLED_BODIES = 20;
const NO_TLS = 20;
const DISCONNECTS = 40;
const GOOD_EVERY_MS = 250;
const GOOD_LATENCY_LIMIT_MS = 1000;

interface Bad {
  kind: 'slowloris' | 'stalled-body' | 'no-tls' | 'disconnect';
  openedAt: number;
  /** When the connection was up (TLS handshake done; TCP connected for no-tls): where the server's
   * header and request timers start. On a loaded machine a handshake alone can take a second. */
  upAt?: number;
  /** When the server closed it (undefined: still open when we looked, or we closed it). */
  closedByServerAt?: number;
  /** What the server sent before closing (e.g. an HTTP 408). */
  received: string;
  socket: net.Socket;
  ourClose: boolean;
}

let webhook: TestWebhook;
const bad: Bad[] = [];
const good: { latencyMs: number; problem: string; kind: string }[] = [];
let baseline = 0;
let attackStartedAt = 0;
let watchedMs = 0;
let countBeforeDisconnects: number | undefined;
/** The server's connections after the disconnects, less the attack connections still open. */
let countAfterDisconnects: number | undefined;

function connections(): Promise<number> {
  return new Promise((resolve, reject) => webhook.server.webhook.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

function track(kind: Bad['kind'], socket: net.Socket): Bad {
  const entry: Bad = { kind, openedAt: performance.now(), received: '', socket, ourClose: false };
  socket.on('data', (chunk: Buffer | string) => {
    if (entry.received.length < 200) entry.received += chunk.toString();
  });
  socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => (entry.upAt = performance.now()));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (!entry.ourClose) entry.closedByServerAt = performance.now();
  });
  bad.push(entry);
  return entry;
}

function tlsSocket(): tls.TLSSocket {
  return tls.connect({ host: '127.0.0.1', port: webhook.server.port, ca: webhook.ca, servername: 'localhost' });
}

t.before(async () => {
  webhook = await startTestWebhook();
});
t.teardown(async () => {
  for (const b of bad) {
    b.ourClose = true;
    b.socket.destroy();
  }
  await webhook.close();
});

void t.test('the attack: slowloris, stalled bodies, connections without TLS, mid-request disconnects; good reviews measured meanwhile', async (t) => {
  baseline = await connections();
  attackStartedAt = performance.now();
  const timers: NodeJS.Timeout[] = [];
  t.teardown(() => timers.forEach((timer) => clearInterval(timer)));

  // Slowloris: a request line and headers, one byte per second, never finished.
  const headerText = `POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ${'s'.repeat(120)}\r\n`;
  for (let i = 0; i < SLOWLORIS; i++) {
    const socket = tlsSocket();
    const entry = track('slowloris', socket);
    socket.once('secureConnect', () => {
      let sent = 0;
      const timer = setInterval(() => {
        if (entry.closedByServerAt !== undefined || entry.ourClose || sent >= headerText.length) return clearInterval(timer);
        socket.write(headerText.charAt(sent++));
      }, 1000);
      timers.push(timer);
    });
  }
  // Bodies that never complete: complete headers, 100 of the 2000 bytes announced.
  for (let i = 0; i < STALLED_BODIES; i++) {
    const socket = tlsSocket();
    track('stalled-body', socket);
    socket.once('secureConnect', () => socket.write(`POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n{"apiVersion":"admission.k8s.io/v1",${' '.repeat(63)}`));
  }
  // TCP connections that never send a ClientHello.
  for (let i = 0; i < NO_TLS; i++) track('no-tls', net.connect({ host: '127.0.0.1', port: webhook.server.port }));

  // Good reviews, over a new connection and over keep-alive, every 250 ms while the attack runs.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  let goodCount = 0;
  const goodLoop = (async () => {
    while (performance.now() - attackStartedAt < WATCH_MS) {
      const kind = goodCount % 2 === 0 ? 'new connection' : 'keep-alive';
      const uid = `good-${goodCount++}`;
      const started = performance.now();
      try {
        const answer = await postReview(webhook.server.port, webhook.ca, admissionReview(prometheusPod(), { uid }), kind === 'keep-alive' ? agent : false, 10_000);
        good.push({ latencyMs: performance.now() - started, problem: injectedProblem(answer, uid), kind });
      } catch (error) {
        good.push({ latencyMs: performance.now() - started, problem: `no answer: ${(error as Error).message}`, kind });
      }
      const open = bad.filter((b) => b.kind !== 'no-tls' && b.closedByServerAt === undefined && !b.ourClose).length;
      if (open === 0 && performance.now() - attackStartedAt > 5000) break;
      await sleep(GOOD_EVERY_MS);
    }
  })();

  // Clients that disconnect mid-request: headers and half a body, then the socket is destroyed.
  const body = JSON.stringify(admissionReview(prometheusPod()));
  const attackers = SLOWLORIS + STALLED_BODIES + NO_TLS;
  countBeforeDisconnects = await waitFor(
    `the ${attackers} attack connections accepted`,
    async () => {
      const count = await connections();
      return count >= baseline + attackers ? count : undefined;
    },
    8000,
    50,
  ).catch(() => connections());
  for (let i = 0; i < DISCONNECTS; i++) {
    const socket = tlsSocket();
    const entry = track('disconnect', socket);
    await new Promise<void>((resolve) => {
      socket.once('secureConnect', () => {
        socket.write(`POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, body.length / 2)}`, () => resolve());
      });
      socket.once('error', () => resolve());
    });
    await sleep(50);
    entry.ourClose = true;
    socket.destroy();
  }
  // Connections that are neither an attacker still open nor the good reviews' (at most 2).
  const leftover = async () => (await connections()) - openAttackers();
  countAfterDisconnects = await waitFor('the disconnected clients released', async () => ((await leftover()) <= baseline + 2 ? leftover() : undefined), 3000, 50).catch(leftover);

  await goodLoop;
  watchedMs = performance.now() - attackStartedAt;
  t.pass(`attack watched for ${(watchedMs / 1000).toFixed(1)} s`);
});

const openAttackers = () => bad.filter((b) => b.kind !== 'disconnect' && b.closedByServerAt === undefined && !b.ourClose).length;
const closeTimes = (kind: Bad['kind']) => bad.filter((b) => b.kind === kind).map((b) => (b.closedByServerAt === undefined ? Infinity : b.closedByServerAt - (b.upAt ?? b.openedAt)));
const describe = (values: number[]) => {
  const closed = values.filter(Number.isFinite);
  return closed.length === 0 ? `none closed by the server within ${(watchedMs / 1000).toFixed(0)} s` : `${closed.length}/${values.length} closed by the server, after ${ms(Math.min(...closed))} .. ${ms(Math.max(...closed))}`;
};

void t.test(`good reviews stay fast during the attack (each under ${GOOD_LATENCY_LIMIT_MS} ms)`, (t) => {
  const latencies = good.map((g) => g.latencyMs);
  t.comment(`${good.length} good reviews: p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))}`);
  t.ok(good.length >= 10, `good reviews were sent during the attack (${good.length})`);
  t.same(good.filter((g) => g.problem !== '').map((g) => `${g.kind}: ${g.problem}`).slice(0, 5), [], 'every good review was injected');
  t.ok(Math.max(...latencies) < GOOD_LATENCY_LIMIT_MS, `the slowest good review took ${ms(Math.max(...latencies))}`);
  t.end();
});

void t.test(`slowloris connections are closed by the server within headersTimeout (${HEADERS_TIMEOUT_MS / 1000} s + ${MARGIN_MS / 1000} s)`, (t) => {
  const times = closeTimes('slowloris');
  const answered408 = bad.filter((b) => b.kind === 'slowloris' && b.received.startsWith('HTTP/1.1 408')).length;
  t.comment(`slowloris: ${describe(times)}; ${answered408} answered 408 first`);
  t.ok(times.every((x) => x <= HEADERS_TIMEOUT_MS + MARGIN_MS), `all ${SLOWLORIS} closed within ${(HEADERS_TIMEOUT_MS + MARGIN_MS) / 1000} s of its TLS handshake (latest: ${Number.isFinite(Math.max(...times)) ? ms(Math.max(...times)) : 'never'})`);
  t.end();
});

void t.test(`bodies that never complete are closed by the server within requestTimeout (${REQUEST_TIMEOUT_MS / 1000} s + ${MARGIN_MS / 1000} s)`, (t) => {
  const times = closeTimes('stalled-body');
  t.comment(`stalled bodies: ${describe(times)}`);
  t.ok(times.every((x) => x <= REQUEST_TIMEOUT_MS + MARGIN_MS), `all ${STALLED_BODIES} closed within ${(REQUEST_TIMEOUT_MS + MARGIN_MS) / 1000} s (latest: ${Number.isFinite(Math.max(...times)) ? ms(Math.max(...times)) : 'never'})`);
  t.end();
});

void t.test(`connections that never start TLS are closed by the server within headersTimeout (${HEADERS_TIMEOUT_MS / 1000} s + ${MARGIN_MS / 1000} s)`, (t) => {
  const times = closeTimes('no-tls');
  t.comment(`no-TLS connections: ${describe(times)}`);
  t.ok(times.every((x) => x <= HEADERS_TIMEOUT_MS + MARGIN_MS), `all ${NO_TLS} closed within ${(HEADERS_TIMEOUT_MS + MARGIN_MS) / 1000} s (latest: ${Number.isFinite(Math.max(...times)) ? ms(Math.max(...times)) : 'never'})`);
  t.end();
});

void t.test('no connection leaks: mid-request disconnects are released at once, and the count returns to the baseline', async (t) => {
  const stillOpen = bad.filter((b) => b.kind !== 'disconnect' && b.closedByServerAt === undefined).length;
  t.comment(`server connections: baseline ${baseline}; before the ${DISCONNECTS} mid-request disconnects ${String(countBeforeDisconnects)}; after them, less the attackers still open: ${String(countAfterDisconnects)}; attackers still open when watching ended: ${stillOpen}`);
  t.ok(countBeforeDisconnects !== undefined && countAfterDisconnects !== undefined && countAfterDisconnects <= baseline + 2, `the ${DISCONNECTS} disconnected clients left no connection behind (${String(countAfterDisconnects)} besides the open attackers, baseline ${baseline} + the good reviews' 2)`);
  for (const b of bad) {
    b.ourClose = true;
    b.socket.destroy();
  }
  const settled = await waitFor('the connection count back at the baseline', async () => ((await connections()) <= baseline ? true : undefined), 5000, 100).catch(() => false);
  t.ok(settled, `the server's connection count is back to ${baseline} once the clients are gone (now ${await connections()})`);
  const answer = await postReview(webhook.server.port, webhook.ca, admissionReview(prometheusPod(), { uid: 'after-the-attack' }));
  t.equal(injectedProblem(answer, 'after-the-attack'), '', 'and it still injects');
});
