// A TCP proxy between the sidecars and MinIO (not a test file), to put faults on the way to object
// storage as they happen in clusters: `refuse` (object storage stopped: nothing listens, every
// connection refused), `hang` (frozen or blackholed: connections are accepted and nothing moves,
// in either direction, on new and open connections alike), `slow` (a thin link: what the sidecar
// sends goes through at a set rate), and `pass`. MinIO itself stays up and real; the proxy runs in
// the test's network namespace, on the node's address, which the pods reach.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { NODE_IP } from '../cluster/node.ts';

export type FaultMode = 'pass' | 'refuse' | 'hang' | { slow: number };

interface Link {
  client: Socket;
  upstream: Socket;
}

export class FaultProxy {
  private mode: FaultMode = 'pass';
  private readonly links = new Set<Link>();
  /** Data held while hanging, forwarded in order once the mode allows it. */
  private held: (() => void)[] = [];
  private server: Server | undefined;
  private port = 0;
  private readonly upstream: string;
  private readonly host: string;

  /** `upstream`: `host:port` of MinIO; `host`: where to listen (the node's address, which pods reach). */
  constructor(upstream: string, host = NODE_IP) {
    this.upstream = upstream;
    this.host = host;
  }

  /** `host:port` to give the sidecars as their bucket's endpoint. */
  get endpoint(): string {
    return `${this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    await this.listen();
  }

  /** Changes the fault, for open connections too. */
  async set(mode: FaultMode): Promise<void> {
    const was = this.mode;
    this.mode = mode;
    if (mode === 'refuse') {
      for (const link of this.links) this.close(link);
      await this.unlisten();
      return;
    }
    if (was === 'refuse') await this.listen();
    if (mode !== 'hang') {
      const held = this.held;
      this.held = [];
      for (const resume of held) resume();
    }
  }

  async stop(): Promise<void> {
    for (const link of this.links) this.close(link);
    await this.unlisten();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private unlisten(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return new Promise((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  }

  private accept(client: Socket): void {
    const [host, port] = [this.upstream.slice(0, this.upstream.lastIndexOf(':')), Number(this.upstream.slice(this.upstream.lastIndexOf(':') + 1))];
    const upstream = connect(port, host);
    const link = { client, upstream };
    this.links.add(link);
    const end = () => this.close(link);
    // A hanging link stays open towards the sidecar even when MinIO drops its side (idle keep-alive):
    // a blackhole tells the client nothing.
    const upstreamEnd = () => (this.mode === 'hang' ? this.held.push(end) : end());
    client.on('error', end).on('close', end);
    upstream.on('error', upstreamEnd).on('close', upstreamEnd);
    client.on('data', (chunk: Buffer) => this.forward(chunk, client, upstream, true));
    upstream.on('data', (chunk: Buffer) => this.forward(chunk, upstream, client, false));
  }

  /** One chunk on its way: held while hanging; from the sidecar, paced while slow (a tenth of a second's worth at a time). */
  private forward(chunk: Buffer, from: Socket, to: Socket, outbound: boolean): void {
    const mode = this.mode;
    if (mode === 'hang') {
      from.pause();
      this.held.push(() => {
        from.resume();
        this.forward(chunk, from, to, outbound);
      });
      return;
    }
    if (to.destroyed) return;
    if (!outbound || typeof mode !== 'object' || chunk.length === 0) {
      to.write(chunk);
      return;
    }
    from.pause();
    const slice = Math.max(1, Math.floor(mode.slow / 10));
    to.write(chunk.subarray(0, slice));
    setTimeout(() => {
      from.resume();
      if (chunk.length > slice) this.forward(chunk.subarray(slice), from, to, outbound);
    }, (Math.min(slice, chunk.length) / mode.slow) * 1000);
  }

  private close(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.destroy();
    link.upstream.destroy();
  }
}
