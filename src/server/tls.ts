// The serving certificate, loaded from files and reloaded when they change (a Secret volume
// update, cert-manager renewal, a rotation by hand) without a restart or a dropped connection.
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { messageOf } from '../errors.ts';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface ReloaderEvents {
  onReload: (pair: KeyPair, expiresAt: Date) => void;
  /** Why the files could not be reloaded, in one line. */
  onError: (message: string) => void;
}

/** Reads the pair and proves it is usable: a parseable certificate, and the key that matches it. */
export async function loadKeyPair(certFile: string, keyFile: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new Error(`${certFile} holds no PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`${keyFile} holds no PEM private key`);
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new Error(`${keyFile} is not the key of ${certFile}`);
  createSecureContext({ cert, key }); // what the TLS server will do with it
  return { cert, key };
}

export function expiryOf(cert: string): Date {
  return new Date(new X509Certificate(cert).validTo);
}

/**
 * Watches the folders of both files (Kubernetes swaps Secret contents through a symlink, which a
 * watch on the file itself would miss) and polls as a safety net. Reports a changed, valid pair.
 */
export class CertificateReloader {
  private readonly certFile: string;
  private readonly keyFile: string;
  private readonly events: ReloaderEvents;
  private readonly watchers: FSWatcher[] = [];
  private readonly poll: NodeJS.Timeout;
  private fingerprint: string;
  private pending: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();

  constructor(certFile: string, keyFile: string, initial: KeyPair, events: ReloaderEvents, pollMs = 10_000) {
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.events = events;
    this.fingerprint = CertificateReloader.hash(initial);
    for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
      const watcher = watch(dir, () => this.schedule());
      watcher.on('error', () => undefined); // the poll keeps working if the folder goes away
      this.watchers.push(watcher);
    }
    this.poll = setInterval(() => this.schedule(), pollMs).unref();
  }

  private static hash(pair: KeyPair): string {
    return createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
  }

  /** Debounced: a rotation writes two files, and the pair is read once both are in place. */
  private schedule(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.reloading = this.reloading.then(() => this.reload()).catch((error: unknown) => this.events.onError(messageOf(error)));
    }, 200).unref();
  }

  async reload(): Promise<void> {
    let pair: KeyPair;
    try {
      pair = await loadKeyPair(this.certFile, this.keyFile);
    } catch (error) {
      this.events.onError(messageOf(error)); // keep serving the previous pair; retried on the next change
      return;
    }
    const fingerprint = CertificateReloader.hash(pair);
    if (fingerprint === this.fingerprint) return;
    this.events.onReload(pair, expiryOf(pair.cert)); // may throw: then the pair is retried next time
    this.fingerprint = fingerprint;
  }

  close(): void {
    clearInterval(this.poll);
    if (this.pending) clearTimeout(this.pending);
    for (const watcher of this.watchers) watcher.close();
  }
}
