// The injector behind the webhook: is something there to answer the apiserver (ready endpoints of
// its Service, or a TLS answer at its URL), and where its serving certificate lives (the Secret the
// injector Deployment mounts or keeps, else `<service>-tls`). Pure.
import type { V1Container, V1Deployment, V1EndpointSlice, V1Secret, V1Service, V1Volume } from '@kubernetes/client-node';
import { parsePemBundle, type Served, type ServedCertificate } from './certificate.ts';
import { CHECK, fail, ok, type CheckRow } from './rows.ts';
import { selectorMatches, type WebhookTarget } from './webhook.ts';
import { flagValue, mountHolding } from '../inject/pod.ts';

export const TLS_CERT_KEY = 'tls.crt';

/** Where the serving certificate is read from: a Secret and its key, and how that was worked out. */
export interface ServingSecret {
  name: string;
  key: string;
  /** e.g. "--certs-secret of Deployment x", "default <service>-tls". */
  how: string;
}



/** The Secret volume mounted at `dir` (or holding `file`) in this container. */
function secretAt(container: V1Container, volumes: readonly V1Volume[], path: string, exact: boolean): { volume: V1Volume; rest: string } | undefined {
  const held = mountHolding(container.volumeMounts, path);
  if (held === undefined || (exact && held.rest !== '')) return undefined;
  const volume = volumes.find((v) => v.name === held.mount.name && v.secret?.secretName !== undefined);
  return volume === undefined ? undefined : { volume, rest: held.inVolume };
}

/** The injector Deployments: those whose pods the Service selects (the chart gives both the same name). */
export function injectorDeployments(service: V1Service | undefined, deployments: readonly V1Deployment[]): V1Deployment[] {
  const selector = service?.spec?.selector ?? {};
  if (Object.keys(selector).length === 0) return deployments.filter((d) => d.metadata?.name === service?.metadata?.name);
  return deployments.filter((d) => selectorMatches({ matchLabels: selector }, d.spec?.template.metadata?.labels ?? {}));
}

/**
 * The Secret holding the serving certificate: `--certs-secret` (certs.mode auto), the Secret mounted
 * at `--cert-dir` or holding `--tls-cert-file`, else the chart's default `<service>-tls`.
 */
export function servingSecret(serviceName: string, deployments: readonly V1Deployment[]): ServingSecret {
  for (const deployment of deployments) {
    const spec = deployment.spec?.template.spec;
    const owner = `Deployment ${deployment.metadata?.name ?? ''}`;
    for (const container of spec?.containers ?? []) {
      const kept = flagValue(container, 'certs-secret');
      if (kept) return { name: kept, key: TLS_CERT_KEY, how: `--certs-secret of ${owner}` };
      const certFile = flagValue(container, 'tls-cert-file');
      const fileSecret = certFile === undefined ? undefined : secretAt(container, spec?.volumes ?? [], certFile, false);
      if (fileSecret?.volume.secret?.secretName) {
        const item = fileSecret.volume.secret.items?.find((i) => i.path === fileSecret.rest);
        return { name: fileSecret.volume.secret.secretName, key: item?.key ?? fileSecret.rest, how: `--tls-cert-file of ${owner}` };
      }
      const dir = flagValue(container, 'cert-dir');
      const dirSecret = dir === undefined ? undefined : secretAt(container, spec?.volumes ?? [], dir, true);
      if (dirSecret?.volume.secret?.secretName) {
        const item = dirSecret.volume.secret.items?.find((i) => i.path === TLS_CERT_KEY);
        return { name: dirSecret.volume.secret.secretName, key: item?.key ?? TLS_CERT_KEY, how: `the Secret volume at --cert-dir of ${owner}` };
      }
    }
  }
  return { name: `${serviceName}-tls`, key: TLS_CERT_KEY, how: 'the chart default' };
}

/** The certificate chain in a Secret's key (data is base64, as the API returns it). */
export function servedFromSecret(namespace: string, reference: ServingSecret, secret: V1Secret | undefined): Served {
  const where = `Secret ${namespace}/${reference.name} (${reference.how})`;
  if (secret === undefined) return { error: `${where} not found: the injector has no certificate to serve; create it or fix certs.secretName`, reported: false };
  const data = secret.data?.[reference.key];
  if (data === undefined) return { error: `${where} has no key ${reference.key}`, reported: false };
  const chain = parsePemBundle(Buffer.from(data, 'base64').toString('utf8'));
  if (chain.length === 0) return { error: `${where} key ${reference.key} holds no PEM certificate`, reported: false };
  return { certificate: { source: `Secret ${namespace}/${reference.name}`, chain } };
}

/** A Service target: the Service exists and some injector pod behind it is ready. */
export function checkServiceEndpoints(target: Extract<WebhookTarget, { kind: 'service' }>, service: V1Service | undefined, slices: readonly V1EndpointSlice[], failurePolicy: string): CheckRow {
  const name = CHECK.injectorReachable;
  const where = `Service ${target.namespace}/${target.name}`;
  const effect = failurePolicy === 'Ignore' ? 'pods are created WITHOUT the sidecar' : 'pod creation is refused';
  if (service === undefined) return fail(name, `${where} not found: the apiserver cannot call the injector, so ${effect}; re-apply the chart`);
  const port = (service.spec?.ports ?? []).find((p) => p.port === target.port);
  if (port === undefined) return fail(name, `${where} has no port ${target.port}: the apiserver cannot call the injector, so ${effect}`);
  const endpoints = slices.flatMap((slice) => slice.endpoints ?? []);
  const ready = endpoints.filter((endpoint) => endpoint.conditions?.ready !== false).length;
  if (ready === 0) {
    return fail(name, `${where} has no ready endpoint (${endpoints.length} not ready): no injector pod answers, so ${effect}; kubectl -n ${target.namespace} get pods,events`);
  }
  return ok(name, `${where} has ${ready} ready endpoint${ready === 1 ? '' : 's'}`);
}

/** The outcome of a TLS handshake with a url target (made from where check runs). */
export type Handshake = { certificate: ServedCertificate } | { error: string };

/** A url target: something answers TLS there (seen from this machine, which may not be the apiserver's network). */
export function checkUrlReachable(target: Extract<WebhookTarget, { kind: 'url' }>, handshake: Handshake, failurePolicy: string): CheckRow {
  const name = CHECK.injectorReachable;
  if ('error' in handshake) {
    const effect = failurePolicy === 'Ignore' ? 'pods are created WITHOUT the sidecar' : 'pod creation is refused';
    return fail(name, `${target.url}: ${handshake.error}: the injector is not running or not reachable, so ${effect}; start it (thanos-injector serve) or fix webhook.url`);
  }
  return ok(name, `${target.host}:${target.port} answers TLS`);
}
