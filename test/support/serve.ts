// The real webhook process (`node src/main.ts serve ...`) for the server and stress tests: spawned
// with a controlled environment, its output drained and kept (bounded), ready/kill/log lines; and
// startServe(), which runs one on free loopback ports until the test's teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './net.ts';

const root = new URL('../..', import.meta.url).pathname;

type Json = Record<string, unknown>;

/**
 * How the image runs the webhook: the Node flags of the Dockerfile's ENTRYPOINT (read from it, so
 * the two cannot drift) and its script mapped to this checkout (dist/, compiled by `npm run build`).
 */
export function imageEntrypoint(): { nodeArgs: string[]; script: string } {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const words = line === undefined ? [] : (JSON.parse(line) as string[]);
  const script = words.at(-1);
  if (words[0] !== 'node' || script === undefined || !script.startsWith('/app/')) {
    throw new Error(`the Dockerfile's ENTRYPOINT is not ["node", <flags>..., "/app/<script>"]: ${line ?? 'none'}`);
  }
  return { nodeArgs: words.slice(1, -1), script: join(root, script.slice('/app/'.length)) };
}

export interface ServeOptions {
  /** Extra flags after `serve`. */
  args: string[];
  /** Node flags before the script (none by default). */
  nodeArgs?: string[];
  /** The script to run (default src/main.ts). */
  script?: string;
  /** Working directory, also HOME. */
  cwd: string;
  /** Environment changes (a value of undefined removes the variable). */
  env?: Record<string, string | undefined>;
  /** How much of the output to keep (the tail, after the first 16 KiB); the rest is counted and dropped. */
  keepBytes?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() at the exit. */
  at: number;
}

const HEAD_BYTES = 16 * 1024;

/** The status of a plain-HTTP GET to 127.0.0.1 (the health port). */
function getStatus(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, signal: AbortSignal.timeout(timeoutMs) });
    req.on('response', (res) => {
      res.resume();
      res.on('error', reject);
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * `node src/main.ts serve ...` as a child process. Its stdout and stderr are always drained (a
 * full pipe would stall the webhook); the first 16 KiB and the last `keepBytes` are kept, with a
 * count of the lines and bytes written. No cluster is configured unless `env` sets one (KUBECONFIG,
 * KUBERNETES_SERVICE_HOST and POD_NAMESPACE are removed), so start-up never waits for one.
 */
export class ServeProcess {
  readonly child: ChildProcess;
  readonly spawnedAt = performance.now();
  /** Settles once the process has exited and its output is read (pipes closed, or 2 s after the exit). */
  readonly exited: Promise<Exit>;
  private tail = '';
  private head = '';
  private readonly keepBytes: number;
  lines = 0;
  bytes = 0;

  constructor(options: ServeOptions) {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: options.cwd };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.POD_NAMESPACE;
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    this.keepBytes = options.keepBytes ?? 256 * 1024;
    this.child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script ?? join(root, 'src/main.ts'), 'serve', ...options.args], {
      cwd: options.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (text: string) => {
      this.bytes += Buffer.byteLength(text);
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.lines++;
      if (this.head.length < HEAD_BYTES) this.head += text.slice(0, HEAD_BYTES - this.head.length);
      this.tail += text;
      if (this.tail.length > this.keepBytes * 2) this.tail = this.tail.slice(-this.keepBytes);
    };
    // Decoded by the streams, so a character split across two chunks stays whole.
    this.child.stdout!.setEncoding('utf8').on('data', collect);
    this.child.stderr!.setEncoding('utf8').on('data', collect);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        const exit = { code, signal, at: performance.now() };
        const timer = setTimeout(() => resolve(exit), 2000);
        this.child.once('close', () => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
    });
  }

  /** All output while it is small; past that the first 16 KiB, a `[...]` line and the last `keepBytes`. */
  get output(): string {
    return this.tail.startsWith(this.head) ? this.tail : `${this.head}\n[...]\n${this.tail}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Waits for /readyz 200 on the health port and returns the ms from spawn to ready. Fails as soon
   * as the process exits, or at the deadline, with the output in the message.
   */
  async ready(healthPort: number, timeoutMs = 30_000): Promise<number> {
    const state = await waitFor(
      'the webhook to be ready',
      async () => {
        if (!this.running) return 'exited';
        return (await getStatus(healthPort, '/readyz', 1000)) === 200 ? 'ready' : undefined;
      },
      timeoutMs,
      25,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (running: ${this.running})\n--- serve output ---\n${this.output}`);
    });
    if (state === 'exited') {
      const exit = await this.exited; // the output is complete by then
      const how = exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
      throw new Error(`serve exited before it was ready (${how})\n--- serve output ---\n${this.output}`);
    }
    return performance.now() - this.spawnedAt;
  }

  /** Kills the process if it still runs (teardown). */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The JSON log lines among the kept output. */
  logLines(): Json[] {
    const lines: Json[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Json);
      } catch {
        // a partial line (the end of the buffer, or the cut before the tail)
      }
    }
    return lines;
  }
}

export interface StartServeOptions {
  /** Flags after the address, the ports and the certificate flags (e.g. --drain-timeout). */
  args?: string[];
  /** The folder to run in (cwd and HOME, certificates in certs/), left in place; by default a new
   * temporary folder, removed at the teardown. */
  home?: string;
  /** Certificate flags in place of `--cert-dir <home>/certs` (`ca` is then ''). */
  certArgs?: string[];
  env?: ServeOptions['env'];
  /** How long to wait for /readyz (default 30 s). */
  readyTimeoutMs?: number;
  /** The webhook's port (default: a free one), when it must be known before the start. */
  port?: number;
  /** Node flags and script (default: no flags, src/main.ts); imageEntrypoint() runs it as the image does. */
  entrypoint?: { nodeArgs: string[]; script: string };
}

export interface StartedServe {
  serve: ServeProcess;
  port: number;
  healthPort: number;
  home: string;
  /** <home>/certs: where serve keeps the CA and serving certificate it creates. */
  certDir: string;
  /** ca.crt of certDir, read once ready ('' with certArgs). */
  ca: string;
  /** ms from spawn to ready. */
  readyMs: number;
}

/**
 * `serve --address 127.0.0.1` on two free ports, ready; killed at the teardown of `t` (then its
 * temporary home removed). With no certificate flags it creates its own CA in <home>/certs.
 */
export async function startServe(t: { teardown(fn: () => unknown): void }, options: StartServeOptions = {}): Promise<StartedServe> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'thanos-injector-serve-')));
  const certDir = join(home, 'certs');
  const port = options.port ?? (await freePort());
  const healthPort = await freePort();
  const serve = new ServeProcess({
    args: ['--address', '127.0.0.1', '--port', String(port), '--health-port', String(healthPort), ...(options.certArgs ?? ['--cert-dir', certDir]), ...(options.args ?? [])],
    cwd: home,
    ...(options.env ? { env: options.env } : {}),
    ...options.entrypoint,
  });
  t.teardown(async () => {
    await serve.kill();
    if (options.home === undefined) await rm(home, { recursive: true, force: true });
  });
  const readyMs = await serve.ready(healthPort, options.readyTimeoutMs);
  const ca = options.certArgs ? '' : await readFile(join(certDir, 'ca.crt'), 'utf8');
  return { serve, port, healthPort, home, certDir, ca, readyMs };
}
