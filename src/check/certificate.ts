// The webhook's TLS as the apiserver sees it: does the caBundle verify the certificate the injector
// serves, does that certificate cover the name the apiserver dials, and how long until it expires.
// Pure: certificates in, rows out (node:crypto X509Certificate for parsing and signatures).
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import type { WebhookTarget } from './webhook.ts';
import { DAY_MS, pemCertificates } from '../certs/pem.ts';

export const EXPIRY_WARNING_DAYS = 30;
const MAX_CHAIN = 5;

/** The certificate the injector serves, leaf first, and where it was read. */
export interface ServedCertificate {
  source: string;
  chain: X509Certificate[];
}

/**
 * The serving certificate, or why it could not be read. `reported`: another row already failed
 * for that reason (the injector is unreachable), so the certificate rows are skipped, not failed.
 */
export type Served = { certificate: ServedCertificate } | { error: string; reported: boolean };


/** Every certificate of a PEM bundle; blocks that do not parse are left out. */
export function parsePemBundle(pem: string): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  for (const block of pemCertificates(pem)) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      // Not a certificate: the caller reports an empty bundle.
    }
  }
  return certificates;
}

/** A webhook's caBundle is base64 of PEM (client-node keeps `format: byte` fields as base64). */
export function decodeCaBundle(caBundle: string): string {
  return Buffer.from(caBundle, 'base64').toString('utf8');
}

export function commonName(certificate: X509Certificate): string {
  const cn = certificate.subject.split('\n').find((line) => line.startsWith('CN='));
  return cn === undefined ? certificate.subject.replace(/\n/g, ', ') : cn;
}

function issuerName(certificate: X509Certificate): string {
  const cn = certificate.issuer.split('\n').find((line) => line.startsWith('CN='));
  return cn === undefined ? certificate.issuer.replace(/\n/g, ', ') : cn;
}

const isValidAt = (certificate: X509Certificate, now: Date) =>
  new Date(certificate.validFrom).getTime() <= now.getTime() && now.getTime() <= new Date(certificate.validTo).getTime();

function signedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

export type ChainResult =
  | { verified: true; root: X509Certificate }
  | { verified: false; reason: string };

/**
 * Builds a path from `leaf` through `intermediates` (what the server sends after its leaf) to one
 * of `roots`, as the apiserver's Go TLS client does: signatures checked, every certificate on the
 * path valid now. A root that is the leaf itself also verifies (a pinned self-signed certificate).
 */
export function verifyChain(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[], now: Date): ChainResult {
  let expiredIssuer: X509Certificate | undefined;
  const walk = (certificate: X509Certificate, depth: number): X509Certificate | undefined => {
    for (const root of roots) {
      const trusted = root.fingerprint256 === certificate.fingerprint256 || signedBy(certificate, root);
      if (!trusted) continue;
      if (isValidAt(root, now)) return root;
      expiredIssuer = root;
    }
    if (depth >= MAX_CHAIN) return undefined;
    for (const intermediate of intermediates) {
      if (intermediate.fingerprint256 === certificate.fingerprint256 || !signedBy(certificate, intermediate)) continue;
      if (!isValidAt(intermediate, now)) {
        expiredIssuer = intermediate;
        continue;
      }
      const root = walk(intermediate, depth + 1);
      if (root !== undefined) return root;
    }
    return undefined;
  };
  const root = walk(leaf, 0);
  if (root !== undefined) return { verified: true, root };
  if (expiredIssuer !== undefined) {
    return { verified: false, reason: `its issuer ${commonName(expiredIssuer)} is not valid now (valid ${expiredIssuer.validFrom} to ${expiredIssuer.validTo})` };
  }
  return { verified: false, reason: `it is issued by ${issuerName(leaf)}, which the caBundle does not hold or cannot verify` };
}

/** Whether the certificate is valid for `name` as Go checks it: SANs only (the CN is ignored). */
export function covers(certificate: X509Certificate, name: string): boolean {
  return (isIP(name) ? certificate.checkIP(name) : certificate.checkHost(name, { subject: 'never' })) !== undefined;
}

function consequence(failurePolicy: string): string {
  return failurePolicy === 'Ignore'
    ? 'pods are created WITHOUT the sidecar (failurePolicy Ignore)'
    : 'pod creation is refused (failurePolicy Fail)';
}

export interface CaBundleInput {
  target: WebhookTarget;
  served: Served;
  failurePolicy: string;
  now: Date;
  /** The trust roots the apiserver falls back to for a url webhook without caBundle (PEM). */
  systemRoots?: readonly string[];
}

/** The caBundle verifies the served certificate, and the certificate covers the name the apiserver dials. */
export function checkCaBundle({ target, served, failurePolicy, now, systemRoots = [] }: CaBundleInput): CheckRow {
  const name = CHECK.caBundle;
  if ('error' in served) {
    return served.reported ? skip(name, `cannot check: ${served.error}`) : fail(name, `cannot check: ${served.error}`);
  }
  const [leaf, ...intermediates] = served.certificate.chain;
  const source = served.certificate.source;
  if (leaf === undefined) return fail(name, `${source} holds no PEM certificate`);
  const fix = target.kind === 'url'
    ? 'set the webhook caBundle to the CA that signed the serving certificate (chart: --set-file certs.caBundle=ca.crt)'
    : 'set the webhook caBundle to the CA that signed it (certs.mode auto: the injector re-patches it when running; external: --set-file certs.caBundle=ca.crt)';
  let trustedBy: string;
  if (target.caBundle.trim() === '') {
    const roots = systemRoots.flatMap((pem) => parsePemBundle(pem));
    if (target.kind !== 'url' || !verifyChain(leaf, intermediates, roots, now).verified) {
      return fail(name, `the webhook's caBundle is empty: the apiserver cannot verify ${source}, so ${consequence(failurePolicy)}; ${fix}`);
    }
    trustedBy = 'the system roots (caBundle empty) verify';
  } else {
    const roots = parsePemBundle(decodeCaBundle(target.caBundle));
    if (roots.length === 0) return fail(name, `the webhook's caBundle holds no PEM certificate, so ${consequence(failurePolicy)}; ${fix}`);
    const result = verifyChain(leaf, intermediates, roots, now);
    if (!result.verified) {
      const held = roots.map(commonName).join(', ');
      return fail(name, `stale caBundle (${held}): it does not verify the serving certificate from ${source}: ${result.reason}; the apiserver's calls fail (x509: certificate signed by unknown authority), so ${consequence(failurePolicy)}; ${fix}`);
    }
    trustedBy = `the caBundle (${commonName(result.root)}) verifies`;
  }
  if (!covers(leaf, target.dnsName)) {
    return fail(name, `the serving certificate from ${source} does not cover ${target.dnsName} (${leaf.subjectAltName ?? 'no subjectAltName'}): the apiserver refuses it, so ${consequence(failurePolicy)}; reissue it for ${target.dnsName}`);
  }
  return ok(name, `${trustedBy} the serving certificate from ${source}, valid for ${target.dnsName}`);
}

const dateOf = (text: string) => new Date(text).toISOString().slice(0, 10);

/** Days until the served certificate expires: warn under 30, fail once expired (or not yet valid). */
export function checkExpiry(served: Served, now: Date): CheckRow {
  const name = CHECK.certificateExpiry;
  if ('error' in served) return skip(name, `cannot check: ${served.error}`);
  const leaf = served.certificate.chain[0];
  if (leaf === undefined) return skip(name, `${served.certificate.source} holds no certificate`);
  const renew = 'renew it (certs.mode auto rotates it while the injector runs; cert-manager renews it; external: replace tls.crt/tls.key)';
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = new Date(leaf.validTo).getTime();
  if (notBefore > now.getTime()) {
    return fail(name, `the serving certificate is not valid before ${leaf.validFrom}: the apiserver refuses it; check the clocks or reissue it`);
  }
  const days = Math.floor((notAfter - now.getTime()) / DAY_MS);
  if (notAfter < now.getTime()) {
    const ago = Math.floor((now.getTime() - notAfter) / DAY_MS);
    const when = ago === 0 ? 'less than a day ago' : ago === 1 ? '1 day ago' : `${ago} days ago`;
    return fail(name, `the serving certificate expired on ${dateOf(leaf.validTo)} (${when}): the apiserver refuses it; ${renew}`);
  }
  if (days < EXPIRY_WARNING_DAYS) return warn(name, `the serving certificate expires in ${days} days (${dateOf(leaf.validTo)}): ${renew}`);
  return ok(name, `${days} days left (expires ${dateOf(leaf.validTo)})`);
}
