// Certificate generation (selfsigned, SHA-256, P-256 keys): a CA, and serving certificates signed
// by it with the DNS names and IPs as SANs (kube-apiserver ignores the CN). selfsigned is loaded
// only when a certificate is made, so a server that serves existing files never pays for it.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
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

// `default`: a CommonJS module's exports, under Node's ES module loader and in the esbuild bundles
// alike (a bundle's dynamic import of CommonJS gives no named exports).
async function selfsigned() {
  return (await import('selfsigned')).default.generate;
}

/** A new CA, valid 10 years, with a distinct subject so that a bundle holding the old and the new
 * CA during a rotation still lets clients pick the right issuer. */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const generate = await selfsigned();
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
  const generate = await selfsigned();
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
