// Certificate generation (selfsigned, SHA-256, P-256 keys): a CA, and serving certificates signed
// by it with the DNS names and IPs as SANs (kube-apiserver ignores the CN). selfsigned runs only
// when a certificate is made, and in a child process, so a server never holds it.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { DAY_MS, pemCertificates } from './pem.ts';

export interface CertificateAuthority {
  /** PEM; when it is a bundle, the first certificate is the one that signs. */
  cert: string;
  key: string;
}

export interface CertificateSet {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

type Generate = typeof import('selfsigned').generate;
type Generated = Awaited<ReturnType<Generate>>;

/** In the environment of the child process `generate` starts: make one certificate and exit. */
const CHILD = 'THANOS_INJECTOR_SELFSIGNED_CHILD';

// `default`: a CommonJS module's exports, under Node's ES module loader and in the esbuild bundles
// alike (a bundle's dynamic import of CommonJS gives no named exports).
async function selfsigned(): Promise<Generate> {
  return (await import('selfsigned')).default.generate;
}

/**
 * selfsigned's generate, run by a short-lived `node` process of this same module (arguments and
 * answer pass as V8 serialisations on its stdin and stdout): a server in certs auto mode would
 * otherwise keep the generator's modules (selfsigned, @peculiar/x509, pkijs, asn1js: about 9 MB)
 * for good after making one certificate, and a worker thread gives its memory back no better.
 * Where this module is not a file of its own (the one-file CLI, one CommonJS script) it runs here.
 */
async function generate(...args: Parameters<Generate>): Promise<Generated> {
  const here = import.meta.url as string | undefined;
  if (here === undefined) return (await selfsigned())(...args);
  const what = `the certificate generator (${process.execPath} ${fileURLToPath(here)})`;
  const child = spawn(process.execPath, [fileURLToPath(here)], { env: { ...process.env, [CHILD]: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  // A child that ends before reading its input: its exit status says why, not EPIPE.
  child.stdin.on('error', () => {});
  child.stdin.end(serialize(args));
  const [code] = (await once(child, 'close').catch((error: unknown) => {
    throw new Error(`${what} did not start: ${error instanceof Error ? error.message : String(error)}`);
  })) as [number | null];
  if (code !== 0) throw new Error(`${what} failed: ${Buffer.concat(err).toString().trim() || `exit code ${code}`}`);
  return deserialize(Buffer.concat(out)) as Generated;
}

if (import.meta.main && process.env[CHILD] === '1') {
  const input: Buffer[] = [];
  process.stdin.on('data', (chunk: Buffer) => input.push(chunk));
  process.stdin.on('end', () => {
    const args = deserialize(Buffer.concat(input)) as Parameters<Generate>;
    selfsigned().then((run) => run(...args)).then(
      (answer) => process.stdout.write(serialize(answer)),
      (error: unknown) => {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      },
    );
  });
}

/** A new CA, valid 10 years, with a distinct subject so that a bundle holding the old and the new
 * CA during a rotation still lets clients pick the right issuer. */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const now = new Date(Date.now() - 60_000);
  const ca = await generate([{ name: 'commonName', value: `thanos-injector-ca-${randomBytes(4).toString('hex')}` }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 10 * 365 * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/** A serving certificate for `names` signed by `ca` (a rotation keeps the CA, and so the caBundle). */
export async function issueServingCertificate(ca: CertificateAuthority, names: readonly string[], days = 365): Promise<{ cert: string; key: string }> {
  const signer = pemCertificates(ca.cert)[0];
  if (signer === undefined) throw new Error('the CA certificate holds no PEM certificate');
  const now = new Date(Date.now() - 60_000);
  const serving = await generate([{ name: 'commonName', value: names[0] ?? 'thanos-injector' }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + days * DAY_MS),
    ca: { key: ca.key, cert: signer },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((name) => (isIP(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })),
      },
    ],
  });
  return { cert: serving.cert, key: serving.private };
}

/** A new CA and a serving certificate signed by it. */
export async function generateCertificates(names: string[], days = 365): Promise<CertificateSet> {
  const ca = await createCertificateAuthority();
  const serving = await issueServingCertificate(ca, names, days);
  return { caCert: ca.cert, caKey: ca.key, ...serving };
}

/** Whether `cert` is usable for `names` for at least `marginDays` more days, and `key` is its key. */
export function certificateCovers(cert: string, key: string, names: string[], marginDays = 1): boolean {
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) return false;
    if (new Date(x509.validTo).getTime() - Date.now() < marginDays * DAY_MS) return false;
    return names.every((name) => (isIP(name) ? x509.checkIP(name) : x509.checkHost(name, { subject: 'never' })) !== undefined);
  } catch {
    return false;
  }
}
