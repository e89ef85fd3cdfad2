// The serving pair of certs.mode=auto on disk, in a private temporary folder (0700, key 0600),
// where the server's CertificateReloader watches it. A new pair is swapped in the way the kubelet
// updates a Secret volume: files in a fresh `..<stamp>` folder, then one atomic rename of the
// `..data` symlink, so a reader never sees a new certificate next to an old key.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServedPair {
  caCert: string;
  cert: string;
  key: string;
}

export class ServedCertificates {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  private current: ServedPair | undefined;
  /** The key must not outlive the process, whichever way it ends. */
  private readonly removeOnExit = () => rmSync(this.dir, { recursive: true, force: true });

  private constructor(dir: string) {
    this.dir = dir;
    process.once('exit', this.removeOnExit);
    this.certFile = join(dir, 'tls.crt');
    this.keyFile = join(dir, 'tls.key');
    this.caFile = join(dir, 'ca.crt');
  }

  static async create(parent = tmpdir()): Promise<ServedCertificates> {
    return new ServedCertificates(await mkdtemp(join(parent, 'thanos-injector-certs-'))); // mode 0700
  }

  /** Whether `pair` is what the folder already holds. */
  holds(pair: ServedPair): boolean {
    return this.current !== undefined && this.current.cert === pair.cert && this.current.key === pair.key && this.current.caCert === pair.caCert;
  }

  /** Swaps the folder's content for `pair`; false when it already held it. */
  async write(pair: ServedPair): Promise<boolean> {
    if (this.holds(pair)) return false;
    const version = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
    await mkdir(join(this.dir, version), { mode: 0o700 });
    await writeFile(join(this.dir, version, 'tls.key'), pair.key, { mode: 0o600 });
    await writeFile(join(this.dir, version, 'tls.crt'), pair.cert, { mode: 0o644 });
    await writeFile(join(this.dir, version, 'ca.crt'), pair.caCert, { mode: 0o644 });
    const previous = await readlink(join(this.dir, '..data')).catch(() => undefined);
    await symlink(version, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (previous === undefined) {
      for (const name of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', name), join(this.dir, name));
    } else {
      await rm(join(this.dir, previous), { recursive: true, force: true });
    }
    this.current = pair;
    return true;
  }

  async remove(): Promise<void> {
    process.removeListener('exit', this.removeOnExit);
    await rm(this.dir, { recursive: true, force: true });
  }
}
