// A serving certificate signed by a CA we already have (generate.ts always makes a new CA): a
// rotation keeps the CA, so the webhook's caBundle, and every replica's trust, stay the same.
import { isIP } from 'node:net';
import { generate } from 'selfsigned';
import { pemCertificates } from './auto.ts';

export interface CertificateAuthority {
  /** PEM; when it is a bundle, the first certificate is the one that signs. */
  cert: string;
  key: string;
}

const DAY = 24 * 3600 * 1000;

export async function issueServingCertificate(ca: CertificateAuthority, names: readonly string[], days = 365): Promise<{ cert: string; key: string }> {
  const signer = pemCertificates(ca.cert)[0];
  if (signer === undefined) throw new Error('the CA certificate holds no PEM certificate');
  const now = new Date(Date.now() - 60_000);
  const serving = await generate([{ name: 'commonName', value: names[0] ?? 'thanos-injector' }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + days * DAY),
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
