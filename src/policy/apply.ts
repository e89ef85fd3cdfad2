// Puts the generated policy in the cluster (the chart's hook runs `thanos-injector policy --apply`):
// the MutatingAdmissionPolicy created or replaced, then its bindings, each owned by the policy so
// that they go with it; and takes it out again (`thanos-injector uninstall`).
import type { V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import { call, type Kube } from '../kube/client.ts';
import { deadline } from '../kube/deadline.ts';
import { undefinedOn404 } from '../kube/errors.ts';
import { createHash } from 'node:crypto';
import { PREFIX } from '../inject/names.ts';
import { canonical } from '../inject/status.ts';
import { ownerOf } from '../kube/owner.ts';

const TIMEOUT_MS = 10_000;

type Applied = 'created' | 'updated' | 'unchanged';

/** Records what was applied (the apiserver fills in defaults, so the stored spec is not the one sent). */
const APPLIED_ANNOTATION = `${PREFIX}applied`;

/** Creates `wanted`, or replaces what is there when what was applied or its owners differ. */
async function put<T extends { metadata?: { name?: string; resourceVersion?: string; ownerReferences?: unknown[]; annotations?: Record<string, string> }; spec?: unknown }>(
  kube: Kube,
  what: string,
  object: T,
  api: { read: () => Promise<T>; create: (body: T) => Promise<T>; replace: (body: T) => Promise<T> },
): Promise<{ object: T; applied: Applied }> {
  const digest = createHash('sha256').update(canonical({ spec: object.spec, owners: object.metadata?.ownerReferences ?? [] })).digest('hex').slice(0, 12);
  const wanted = { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata?.annotations, [APPLIED_ANNOTATION]: digest } } };
  const existing = await call(kube, `cannot read ${what}`, () => undefinedOn404(api.read()));
  if (existing === undefined) return { object: await call(kube, `cannot create ${what}`, () => api.create(wanted)), applied: 'created' };
  if (existing.metadata?.annotations?.[APPLIED_ANNOTATION] === digest) return { object: existing, applied: 'unchanged' };
  const body = { ...wanted, metadata: { ...wanted.metadata, resourceVersion: existing.metadata?.resourceVersion } };
  return { object: await call(kube, `cannot replace ${what}`, () => api.replace(body)), applied: 'updated' };
}

/** Applies the policy and its bindings; one line per object, saying what was done. */
export async function applyPolicy(kube: Kube, objects: object[]): Promise<string[]> {
  const [policy, ...bindings] = objects as [V1MutatingAdmissionPolicy, ...V1MutatingAdmissionPolicyBinding[]];
  const name = policy.metadata?.name ?? '';
  const admission = kube.admission;
  const applied = await put(kube, `MutatingAdmissionPolicy ${name}`, policy, {
    read: () => admission.readMutatingAdmissionPolicy({ name }, deadline(TIMEOUT_MS)),
    create: (body) => admission.createMutatingAdmissionPolicy({ body }, deadline(TIMEOUT_MS)),
    replace: (body) => admission.replaceMutatingAdmissionPolicy({ name, body }, deadline(TIMEOUT_MS)),
  });
  const lines = [`MutatingAdmissionPolicy ${name}: ${applied.applied}`];
  const owner = ownerOf({ metadata: applied.object.metadata ?? {} }, 'MutatingAdmissionPolicy');
  for (const binding of bindings) {
    const bindingName = binding.metadata?.name ?? '';
    const owned = { ...binding, metadata: { ...binding.metadata, ...(owner === undefined ? {} : { ownerReferences: [owner] }) } };
    const result = await put(kube, `MutatingAdmissionPolicyBinding ${bindingName}`, owned, {
      read: () => admission.readMutatingAdmissionPolicyBinding({ name: bindingName }, deadline(TIMEOUT_MS)),
      create: (body) => admission.createMutatingAdmissionPolicyBinding({ body }, deadline(TIMEOUT_MS)),
      replace: (body) => admission.replaceMutatingAdmissionPolicyBinding({ name: bindingName, body }, deadline(TIMEOUT_MS)),
    });
    lines.push(`MutatingAdmissionPolicyBinding ${bindingName}: ${result.applied}`);
  }
  return lines;
}
