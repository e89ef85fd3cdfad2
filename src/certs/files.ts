// Certificates on disk: ca.crt, tls.crt, tls.key in one folder (the layout of a Kubernetes TLS
// Secret plus its CA), created when missing or no longer fit, reused otherwise.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certificateCovers, generateCertificates } from './generate.ts';

export interface CertificateFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** False when valid files were found and reused. */
  created: boolean;
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export async function writeCertificates(dir: string, names: string[]): Promise<CertificateFiles> {
  const set = await generateCertificates(names);
  await mkdir(dir, { recursive: true });
  const files = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await writeFile(files.caFile, set.caCert);
  await writeFile(files.keyFile, set.key, { mode: 0o600 });
  await writeFile(files.certFile, set.cert);
  return { ...files, created: true };
}

/** Reuses the folder's certificates while they are valid for `names`; makes new ones otherwise. */
export async function ensureCertificates(dir: string, names: string[]): Promise<CertificateFiles> {
  const files = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  const [ca, cert, key] = await Promise.all([readIfPresent(files.caFile), readIfPresent(files.certFile), readIfPresent(files.keyFile)]);
  if (ca !== undefined && cert !== undefined && key !== undefined && certificateCovers(cert, key, names)) {
    return { ...files, created: false };
  }
  return writeCertificates(dir, names);
}
