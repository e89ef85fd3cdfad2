// Certificate generation (selfsigned, SHA-256, P-256 keys): a CA and a serving certificate signed
// by it, with the DNS names and IPs as SANs (kube-apiserver ignores the CN).
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface CertificateSet {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

const DAY = 24 * 3600 * 1000;

export async function generateCertificates(names: string[], days = 365): Promise<CertificateSet> {
  const now = new Date(Date.now() - 60_000);
  // A distinct subject per CA, so a bundle holding the old and the new CA during a rotation
  // still lets clients pick the right issuer.
  const caName = `thanos-injector-ca-${randomBytes(4).toString('hex')}`;
  const ca = await generate([{ name: 'commonName', value: caName }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 10 * 365 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const serving = await generate([{ name: 'commonName', value: names[0] ?? 'thanos-injector' }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + days * DAY),
    ca: { key: ca.private, cert: ca.cert },
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
  return { caCert: ca.cert, caKey: ca.private, cert: serving.cert, key: serving.private };
}

/** Whether `cert` is usable for `names` for at least `marginDays` more days, and `key` is its key. */
export function certificateCovers(cert: string, key: string, names: string[], marginDays = 1): boolean {
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) return false;
    if (new Date(x509.validTo).getTime() - Date.now() < marginDays * DAY) return false;
    return names.every((name) => (isIP(name) ? x509.checkIP(name) : x509.checkHost(name, { subject: 'never' })) !== undefined);
  } catch {
    return false;
  }
}
