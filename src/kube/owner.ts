// The injector's install owns what it creates at run time (the headless Services and the endpoints
// ConfigMap of `register`, the certificate Secret of `serve`): each carries an ownerReference to the
// install's MutatingWebhookConfiguration (or, for an install that injects with the policy alone, its
// MutatingAdmissionPolicy), a cluster-scoped object any namespaced object may name as its owner, so
// the garbage collector deletes them when it goes (`helm uninstall`). Pure.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';

export function ownerOf(
  configuration: { metadata?: { name?: string; uid?: string } },
  kind: 'MutatingWebhookConfiguration' | 'MutatingAdmissionPolicy' = 'MutatingWebhookConfiguration',
): V1OwnerReference | undefined {
  const { name, uid } = configuration.metadata ?? {};
  if (!name || !uid) return undefined;
  // No blockOwnerDeletion: it needs the right to update the owner's finalizers, and nothing waits on them.
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind, name, uid };
}

/** Whether `metadata` already names `owner`. */
export function isOwnedBy(metadata: V1ObjectMeta | undefined, owner: V1OwnerReference): boolean {
  return metadata?.ownerReferences?.some((ref) => ref.uid === owner.uid) ?? false;
}

/** `metadata`'s ownerReferences with `owner` added (other owners kept; one of ours left from an earlier install replaced). */
export function withOwner(metadata: V1ObjectMeta | undefined, owner: V1OwnerReference): V1OwnerReference[] {
  const others = (metadata?.ownerReferences ?? []).filter((ref) => !(ref.kind === owner.kind && ref.apiVersion === owner.apiVersion && ref.name === owner.name));
  return [...others, owner];
}
