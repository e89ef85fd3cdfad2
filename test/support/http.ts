// Raw HTTPS and HTTP calls to the webhook on 127.0.0.1, with no test double in between, for the
// server and the stress tests: one request, a GET on the health port, a POST sent in two halves,
// and the certificate a new TLS connection is served.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, undefined when it is not JSON. */
  json: unknown;
  /** Whether the request went over a socket that was already used (keep-alive). */
  reusedSocket: boolean;
  /** SHA-256 fingerprint of the certificate the server presented on this connection (HTTPS). */
  fingerprint?: string;
  /** The TLS version of the connection, e.g. 'TLSv1.3' (HTTPS). */
  protocol?: string;
  elapsedMs: number;
}

export interface CallOptions {
  port: number;
  ca?: string | string[];
  method?: string;
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Send the body chunked (Transfer-Encoding) instead of with a Content-Length. */
  chunked?: boolean;
  agent?: https.Agent | false;
  timeoutMs?: number;
  /** Pin the TLS version (both ends of the range). */
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function collect(req: http.ClientRequest, resolve: (answer: Answer) => void, reject: (error: Error) => void): void {
  const started = performance.now();
  req.on('response', (res) => {
    const chunks: Buffer[] = [];
    const socket = res.socket as tls.TLSSocket | null;
    const fingerprint = socket?.getPeerCertificate?.()?.fingerprint256;
    const protocol = socket?.getProtocol?.() ?? undefined;
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('error', reject);
    res.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        text,
        json: parseJson(text),
        reusedSocket: req.reusedSocket,
        ...(fingerprint ? { fingerprint } : {}),
        ...(protocol ? { protocol } : {}),
        elapsedMs: performance.now() - started,
      });
    });
  });
  req.on('error', reject);
}

/** One HTTPS call to 127.0.0.1 (by default a POST to /mutate), verified against `ca` (never rejectUnauthorized: false). */
export function httpsCall(options: CallOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: options.port,
      method: options.method ?? 'POST',
      path: options.path ?? '/mutate?timeout=10s',
      ca: options.ca,
      agent: options.agent ?? false,
      ...(options.minVersion ? { minVersion: options.minVersion } : {}),
      ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      headers: {
        ...(options.body === undefined ? {} : options.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(options.body) }),
        ...options.headers,
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    collect(req, resolve, reject);
    req.end(options.body);
  });
}

/** A plain-HTTP GET to 127.0.0.1 (the health port). */
export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, signal: AbortSignal.timeout(timeoutMs) });
    collect(req, resolve, reject);
    req.end();
  });
}

/**
 * A POST to /mutate whose headers and first half of `body` go out now; `finish()` sends the rest,
 * `abort()` drops the connection. `sent` settles once the first half is written.
 */
export function partialRequest(port: number, ca: string, body: string, timeoutMs?: number) {
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  const req = https.request({
    host: '127.0.0.1',
    port,
    path: '/mutate?timeout=10s',
    method: 'POST',
    ca,
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': bytes.length },
    ...(timeoutMs !== undefined ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
  });
  const answer = new Promise<Answer>((resolve, reject) => collect(req, resolve, reject));
  req.flushHeaders();
  const sent = new Promise<void>((resolve, reject) => req.write(bytes.subarray(0, half), (error) => (error ? reject(error) : resolve())));
  return {
    sent,
    answer,
    finish: () => req.end(bytes.subarray(half)),
    abort: () => req.destroy(),
  };
}

/** The SHA-256 fingerprint a NEW TLS connection to 127.0.0.1 is served, verified against `ca` (for 127.0.0.1, as the apiserver calls a url webhook). */
export function servedFingerprint(port: number, ca: string | string[], timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}
