// The Kubernetes calls certs.mode=auto makes, on the commands' client (kube/client.ts, loaded
// lazily with client-node, so a webhook without auto mode never pays for it): GET/POST/PUT of one
// Secret, GET and JSON PATCH of one MutatingWebhookConfiguration. Every call is aborted after a
// timeout, so a hung apiserver delays a check instead of stalling the keeper for good.
import type { JsonPatchOperation, WebhookConfigurationLike } from './auto.ts';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { undefinedOn404 } from '../kube/errors.ts';

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


/** The API of the cluster the injector runs in (in-cluster config) or KUBECONFIG points at. */
export async function kubernetesCertificateApi(timeoutMs = 10_000): Promise<CertificateApi> {
  const [{ PatchStrategy, setHeaderOptions }, { connect }] = await Promise.all([import('@kubernetes/client-node'), import('../kube/client.ts')]);
  const closing = new AbortController();
  const { core, admission } = connect(undefined, timeoutMs, closing.signal);
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  return {
    readSecret: (namespace, name) => undefinedOn404(core.readNamespacedSecret({ namespace, name })),
    createSecret: (namespace, secret) => core.createNamespacedSecret({ namespace, body: secret }),
    replaceSecret: (namespace, name, secret) => core.replaceNamespacedSecret({ namespace, name, body: secret }),
    readWebhookConfiguration: (name) => undefinedOn404(admission.readMutatingWebhookConfiguration({ name })),
    patchWebhookConfiguration: async (name, operations) => {
      await admission.patchMutatingWebhookConfiguration({ name, body: operations }, jsonPatch);
    },
    close: () => closing.abort(),
  };
}
