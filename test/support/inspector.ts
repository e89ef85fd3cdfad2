// The V8 inspector of a spawned Node process (started with --inspect=127.0.0.1:0), over the
// Chrome DevTools Protocol on Node's own WebSocket client: a full garbage collection and the heap
// still in use after it, which is what a leak test compares (the heap before a collection, and RSS,
// also hold garbage and memory the allocator keeps).

/** The inspector's WebSocket URL from the process' output ('Debugger listening on ws://...'). */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
}

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id as number);
      if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.addEventListener('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector: connection closed'));
      this.pending.clear();
    });
  }

  static connect(url: string, timeoutMs = 5000): Promise<Inspector> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`inspector: no connection to ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(new Inspector(socket));
      });
      socket.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new Error(`inspector: cannot connect to ${url}`));
      });
    });
  }

  private call<T>(method: string, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: ${method} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.send(JSON.stringify({ id, method }));
    });
  }

  /** Bytes of JavaScript heap in use after full collections (the least of three). */
  async retainedHeap(): Promise<number> {
    let least = Infinity;
    for (let i = 0; i < 3; i++) {
      await this.call('HeapProfiler.collectGarbage');
      least = Math.min(least, (await this.call<{ usedSize: number }>('Runtime.getHeapUsage')).usedSize);
    }
    return least;
  }

  close(): void {
    this.socket.close();
  }
}
