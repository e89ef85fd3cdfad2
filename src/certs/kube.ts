// The Kubernetes calls certs.mode=auto makes, over the webhook's small client (kube/light.ts: in a
// pod, no client-node): GET/POST/PUT of one Secret, GET and JSON PATCH of one
// MutatingWebhookConfiguration. Every call is aborted after a timeout, so a hung apiserver delays a
// check instead of stalling the keeper for good.
import type { JsonPatchOperation, WebhookConfigurationLike } from './auto.ts';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { undefinedOn404 } from '../kube/errors.ts';
import { connectLight, send, sendJson, type Call } from '../kube/light.ts';

/** The part of a Secret the keeper reads and writes; the object read is sent back whole on update. */
export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; ownerReferences?: V1OwnerReference[] };
  type?: string;
  data?: Record<string, string>;
}

export interface CertificateApi {
  /** Undefined when the Secret does not exist (404). */
  readSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
  createSecret(namespace: string, secret: SecretObject): Promise<SecretObject>;
  /** PUT: fails with 409 when `secret.metadata.resourceVersion` is no longer current. */
  replaceSecret(namespace: string, name: string, secret: SecretObject): Promise<SecretObject>;
  /** Undefined when the configuration does not exist (404). */
  readWebhookConfiguration(name: string): Promise<WebhookConfigurationLike | undefined>;
  patchWebhookConfiguration(name: string, operations: JsonPatchOperation[]): Promise<void>;
  /** Aborts the calls in flight and every later one (shutdown: nothing waits on a slow API). */
  close?(): void;
}


/** The API of the cluster the injector runs in (its service account) or KUBECONFIG points at (kube/light.ts). */
export async function kubernetesCertificateApi(timeoutMs = 10_000): Promise<CertificateApi> {
  const connection = await connectLight();
  if (connection === undefined) throw new Error('no cluster configured: run in a pod, or set KUBECONFIG');
  const closing = new AbortController();
  const call = (method: Call['method'], body?: unknown, contentType?: string): Call => ({ method, body, contentType, timeoutMs, signal: closing.signal });
  const secret = (namespace: string, name = '') => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets${name === '' ? '' : `/${encodeURIComponent(name)}`}`;
  const webhook = (name: string) => `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;
  return {
    readSecret: (namespace, name) => undefinedOn404(sendJson<SecretObject>(connection, secret(namespace, name), call('GET'))),
    createSecret: (namespace, body) => sendJson<SecretObject>(connection, secret(namespace), call('POST', { apiVersion: 'v1', kind: 'Secret', ...body })),
    replaceSecret: (namespace, name, body) => sendJson<SecretObject>(connection, secret(namespace, name), call('PUT', { apiVersion: 'v1', kind: 'Secret', ...body })),
    readWebhookConfiguration: (name) => undefinedOn404(sendJson<WebhookConfigurationLike>(connection, webhook(name), call('GET'))),
    patchWebhookConfiguration: async (name, operations) => {
      await send(connection, webhook(name), call('PATCH', operations, 'application/json-patch+json'));
    },
    close: () => closing.abort(),
  };
}
