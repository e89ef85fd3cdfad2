// Gives memory back when the webhook goes quiet. V8 shrinks its heap (the young generation back
// to its smallest, garbage large objects freed) only in a collection that aims to reduce memory,
// and an idle Node process never starts one by itself: a server that started, or answered a
// burst, keeps that size while it waits: about 7 MB of idle RSS (BENCHMARKS.md).
// Active where the process has `gc` (`node --expose-gc`, as the image's ENTRYPOINT runs it).
import type { Server } from 'node:net';

export interface QuietOptions {
  /** How long without a request before memory is reduced (once per quiet spell). */
  quietMs: number;
  /** How often requests are looked at. */
  tickMs: number;
  /** V8's `gc` (default: the global one `--expose-gc` makes); without it nothing is done. */
  gc?: unknown;
}

/** The webhook's quiet spell: 10 s without an admission request. */
export const QUIET_MS = 10_000;
const DEFAULTS: QuietOptions = { quietMs: QUIET_MS, tickMs: 1_000 };

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * Counts `server`'s requests; once no request has come for `quietMs` (and at the first tick, for
 * the start's garbage), one memory-reducing collection. Returns the stop function; without `gc`
 * it does nothing.
 */
export function reduceMemoryWhenQuiet(server: Server, options: Partial<QuietOptions> = {}): () => void {
  const { quietMs, tickMs } = { ...DEFAULTS, ...options };
  const gc = options.gc ?? (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function') return () => {};
  let requests = 0;
  let seen = 0;
  let quietSince = -Infinity;
  let reducedAt = -1;
  const count = () => requests++;
  server.on('request', count);
  const timer = setInterval(() => {
    const now = performance.now();
    if (requests !== seen) {
      seen = requests;
      quietSince = now;
      return;
    }
    if (reducedAt !== requests && now - quietSince >= quietMs) {
      reducedAt = requests;
      (gc as Gc)({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    }
  }, tickMs).unref();
  return () => {
    clearInterval(timer);
    server.off('request', count);
  };
}
