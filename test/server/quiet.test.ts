// The memory reducer: one memory-reducing collection at start and once per quiet spell, none while
// requests come; and, with V8's real gc, the young generation really shrinks.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { reduceMemoryWhenQuiet } from '../../src/server/quiet.ts';

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

const get = (port: number) =>
  new Promise<void>((resolve, reject) => {
    request({ host: '127.0.0.1', port, agent: false }, (res) => res.resume().on('end', resolve)).on('error', reject).end();
  });

void t.test('once after start, never while requests come, once when they stop, then not again while quiet', async (t) => {
  const { server, port } = await listening();
  t.teardown(() => server.close());
  const calls: unknown[] = [];
  const stop = reduceMemoryWhenQuiet(server, { quietMs: 600, tickMs: 50, gc: (options: unknown) => calls.push(options) });
  await sleep(300);
  t.same(calls, [{ type: 'major', execution: 'sync', flavor: 'last-resort' }], 'the start\'s garbage: one memory-reducing collection');
  const busyUntil = performance.now() + 1_500;
  while (performance.now() < busyUntil) {
    await get(port);
    await sleep(100);
  }
  t.equal(calls.length, 1, 'none while a request comes every 100 ms (quiet after 600 ms)');
  await sleep(1_500);
  t.equal(calls.length, 2, 'one after the requests stopped');
  await sleep(1_000);
  t.equal(calls.length, 2, 'not again while it stays quiet');
  stop();
  await get(port);
  await sleep(1_000);
  t.equal(calls.length, 2, 'stopped: no tick, no request counted');
  t.equal(server.listenerCount('request'), 1, 'only the server\'s own handler is left');
});

void t.test('without gc (node started without --expose-gc) it does nothing', async (t) => {
  const { server } = await listening();
  t.teardown(() => server.close());
  const before = server.listenerCount('request');
  const stop = reduceMemoryWhenQuiet(server, { quietMs: 10, tickMs: 10 });
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'this test process has no gc');
  t.equal(server.listenerCount('request'), before, 'no listener added');
  stop();
});

void t.test('with V8\'s gc (--expose-gc), a grown young generation shrinks once the server is quiet', (t) => {
  const script = join(t.testdir(), 'grow.mjs');
  writeFileSync(script, `
import { createServer } from 'node:http';
import { getHeapSpaceStatistics } from 'node:v8';
import { reduceMemoryWhenQuiet } from ${JSON.stringify(new URL('../../src/server/quiet.ts', import.meta.url).href)};
const young = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;
const server = createServer().listen(0, '127.0.0.1');
let keep = [];
for (let i = 0; i < 200_000; i++) { keep.push({ i, text: 'x'.repeat(i % 50) }); if (keep.length > 50_000) keep = []; }
const grown = young();
reduceMemoryWhenQuiet(server, { quietMs: 100, tickMs: 50 });
setTimeout(() => { process.stdout.write(JSON.stringify({ grown, after: young() })); server.close(); }, 500);
`);
  const { grown, after } = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=4', script], { encoding: 'utf8' })) as { grown: number; after: number };
  t.ok(grown >= 4 * 1024 * 1024, `the young generation grew (${grown} bytes)`);
  t.ok(after <= grown / 2, `and shrank once quiet (${after} bytes)`);
  t.end();
});
