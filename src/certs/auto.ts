// certs.mode=auto, the decisions: which names the serving certificate needs, whether the Secret's
// certificates are due for a rotation, which webhooks of the MutatingWebhookConfiguration need
// their caBundle repaired and with which JSON patch, and how an API error reads in one line.
// Pure (no I/O, the clock is a parameter); the keeper (keeper.ts) acts on these answers.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { statusOf } from '../kube/errors.ts';
import { DAY_MS, pemCertificates } from './pem.ts';

/** What the Secret holds: the CA (ca.crt may carry older CAs after it, for overlapping trust). */
export interface CertificateBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

/** The Secret's keys for each part of the bundle. */
export const SECRET_KEYS: Readonly<Record<keyof CertificateBundle, string>> = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  cert: 'tls.crt',
  key: 'tls.key',
};

export interface RenewalPolicy {
  /** Validity of a new serving certificate. */
  servingDays: number;
  /** Renew a certificate (serving or CA) when less than this share of its validity is left. */
  renewWhenLeft: number;
}

/** Serving certificates for a year, CAs for ten (generate.ts); both renewed with a third left. */
export const DEFAULT_RENEWAL_POLICY: RenewalPolicy = { servingDays: 365, renewWhenLeft: 1 / 3 };

/** The SANs the apiserver may dial: the Service in its short and long forms, plus the extra names. */
export function servingNames(serviceName: string | undefined, namespace: string, dnsNames: readonly string[] = []): string[] {
  const names = serviceName
    ? [serviceName, `${serviceName}.${namespace}`, `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`]
    : [];
  return [...new Set([...names, ...dnsNames])];
}

export function bundleFromSecretData(data: Readonly<Record<string, string>> | undefined): Partial<CertificateBundle> {
  const bundle: Partial<CertificateBundle> = {};
  for (const [part, key] of Object.entries(SECRET_KEYS) as [keyof CertificateBundle, string][]) {
    const value = data?.[key];
    if (value) bundle[part] = Buffer.from(value, 'base64').toString('utf8');
  }
  return bundle;
}

export function secretDataOf(bundle: CertificateBundle): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [part, key] of Object.entries(SECRET_KEYS) as [keyof CertificateBundle, string][]) {
    data[key] = Buffer.from(bundle[part], 'utf8').toString('base64');
  }
  return data;
}

/** A new CA first (it signs), then the previous CAs that are still valid, so that a replica still
 * serving a certificate of the old CA stays trusted until it picks up the new one. */
export function trustBundle(newCaCert: string, previousCaCert: string | undefined, now: Date): string {
  const previous = pemCertificates(previousCaCert ?? '').filter((pem) => {
    try {
      return new X509Certificate(pem).validToDate.getTime() > now.getTime();
    } catch {
      return false;
    }
  });
  return [...new Set([...pemCertificates(newCaCert), ...previous])].join('\n') + '\n';
}

export type CertificatePlan =
  | { action: 'keep' }
  /** A new serving certificate signed by the CA in place (caBundle does not change). */
  | { action: 'renew-serving'; reason: string }
  /** A new CA and a new serving certificate. */
  | { action: 'renew-all'; reason: string };


/** Whether less than `renewWhenLeft` of the certificate's validity is left at `now`. */
export function renewalDue(certificate: X509Certificate, now: Date, renewWhenLeft: number): boolean {
  const from = certificate.validFromDate.getTime();
  const to = certificate.validToDate.getTime();
  return to - now.getTime() < (to - from) * renewWhenLeft;
}

function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(certificate: X509Certificate, key: string): boolean {
  try {
    return certificate.checkPrivateKey(createPrivateKey(key));
  } catch {
    return false;
  }
}

function covers(certificate: X509Certificate, name: string): boolean {
  return (isIP(name) ? certificate.checkIP(name) : certificate.checkHost(name, { subject: 'never' })) !== undefined;
}

function leftOf(certificate: X509Certificate, now: Date): string {
  const days = Math.floor((certificate.validToDate.getTime() - now.getTime()) / DAY_MS);
  return `expires ${certificate.validToDate.toISOString()} (${days} days left)`;
}

/**
 * What to do with the certificates found in the Secret (`current`, decoded; empty when there is no
 * Secret) for a server that must answer for `names` at `now`. The CA is kept whenever it can be,
 * so that caBundle (and every replica's trust) stays stable across serving-certificate rotations.
 */
export function planCertificates(
  current: Partial<CertificateBundle>,
  names: readonly string[],
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): CertificatePlan {
  if (!current.caCert && !current.caKey && !current.cert && !current.key) {
    return { action: 'renew-all', reason: 'no certificates yet' };
  }
  const ca = parseCertificate(pemCertificates(current.caCert ?? '')[0] ?? '');
  if (ca === undefined || !ca.ca || current.caKey === undefined || !keyMatches(ca, current.caKey)) {
    return { action: 'renew-all', reason: 'ca.crt and ca.key are missing, unreadable or not a matching CA pair' };
  }
  if (renewalDue(ca, now, policy.renewWhenLeft)) {
    return { action: 'renew-all', reason: `the CA ${leftOf(ca, now)}` };
  }
  const serving = parseCertificate(current.cert ?? '');
  if (serving === undefined || current.key === undefined || !keyMatches(serving, current.key)) {
    return { action: 'renew-serving', reason: 'tls.crt and tls.key are missing, unreadable or do not match' };
  }
  if (!serving.checkIssued(ca) || !serving.verify(ca.publicKey)) {
    return { action: 'renew-serving', reason: 'tls.crt is not signed by the CA in ca.crt' };
  }
  const missing = names.filter((name) => !covers(serving, name));
  if (missing.length > 0) {
    return { action: 'renew-serving', reason: `tls.crt does not cover ${missing.join(', ')}` };
  }
  if (serving.validFromDate.getTime() > now.getTime() + 5 * 60_000) {
    return { action: 'renew-serving', reason: `tls.crt is not valid before ${serving.validFromDate.toISOString()}` };
  }
  if (renewalDue(serving, now, policy.renewWhenLeft)) {
    return { action: 'renew-serving', reason: `tls.crt ${leftOf(serving, now)}` };
  }
  return { action: 'keep' };
}

/** The part of a MutatingWebhookConfiguration the keeper reads. */
export interface WebhookConfigurationLike {
  metadata?: { name?: string; uid?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'test';
  path: string;
  value: unknown;
}

export interface CaBundleRepair {
  /** Empty when every webhook already trusts the CA. */
  operations: JsonPatchOperation[];
  /** The webhooks repaired, and what their caBundle was. */
  repaired: { name: string; was: 'empty' | 'different' }[];
}

/**
 * The JSON patch that sets every webhook's clientConfig.caBundle (base64 of ca.crt, as the API
 * carries bytes) and touches nothing else. Each change is guarded by a `test` of the webhook's
 * name, so a patch computed from a configuration that changed meanwhile fails instead of writing
 * into the wrong webhook (it is recomputed on the next check).
 */
export function caBundlePatch(configuration: WebhookConfigurationLike, caBundle: string): CaBundleRepair {
  const repair: CaBundleRepair = { operations: [], repaired: [] };
  (configuration.webhooks ?? []).forEach((webhook, index) => {
    if (webhook.clientConfig === undefined) return; // required by the API; nothing sane to patch
    const current = webhook.clientConfig.caBundle;
    if (current === caBundle) return;
    repair.operations.push(
      { op: 'test', path: `/webhooks/${index}/name`, value: webhook.name },
      { op: current === undefined ? 'add' : 'replace', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle },
    );
    repair.repaired.push({ name: webhook.name, was: current ? 'different' : 'empty' });
  });
  return repair;
}

/** What a failed call most likely needs, for the error message ('' when nothing useful to say). */
export function permissionHint(error: unknown, verb: string, resource: string, namespace?: string): string {
  const status = statusOf(error);
  if (status === 403) {
    return `the injector's ServiceAccount likely lacks the RBAC permission "${verb}" on ${resource}${namespace ? ` in namespace ${namespace}` : ''}`;
  }
  if (status === 401) return 'the API refused the credentials (ServiceAccount token or KUBECONFIG)';
  if (status === 404 && verb === 'create' && namespace) return `does namespace ${namespace} exist?`;
  if (status === undefined) return 'is the Kubernetes API reachable?';
  return '';
}
