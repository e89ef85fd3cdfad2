// Small helpers every test that runs servers needs: a free loopback port, and polling.
import { createServer, type AddressInfo } from 'node:net';

/** Every port handed out in this process: a server a test stops and restarts on its port leaves it free for a moment, and the kernel may offer it again. */
const given = new Set<number>();

/** A port that was free a moment ago on 127.0.0.1, and never one this process was given before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

/** Polls `probe` until it returns a value (a rejection counts as "not yet"), or fails naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
