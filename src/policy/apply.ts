// Puts the generated policy in the cluster (the chart's hook runs `thanos-injector policy --apply`):
// the MutatingAdmissionPolicy created or replaced, then its bindings, each owned by the policy so
// that they go with it; and takes it out again (`thanos-injector uninstall`).
import type { V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding, V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding } from '@kubernetes/client-node';
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

/** A policy or binding, as far as apply reads it. */
type Named = { metadata?: { name?: string; resourceVersion?: string; ownerReferences?: unknown[]; annotations?: Record<string, string> }; spec?: unknown };

/** The calls of one kind, for one object. */
interface KindApi {
  read: () => Promise<Named>;
  create: (body: Named) => Promise<Named>;
  replace: (body: Named) => Promise<Named>;
}

/** Creates `wanted`, or replaces what is there when what was applied or its owners differ. */
async function put(kube: Kube, what: string, object: Named, api: KindApi): Promise<{ object: Named; applied: Applied }> {
  const digest = createHash('sha256').update(canonical({ spec: object.spec, owners: object.metadata?.ownerReferences ?? [] })).digest('hex').slice(0, 12);
  const wanted = { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata?.annotations, [APPLIED_ANNOTATION]: digest } } };
  const existing = await call(kube, `cannot read ${what}`, () => undefinedOn404(api.read()));
  if (existing === undefined) return { object: await call(kube, `cannot create ${what}`, () => api.create(wanted)), applied: 'created' };
  if (existing.metadata?.annotations?.[APPLIED_ANNOTATION] === digest) return { object: existing, applied: 'unchanged' };
  const body = { ...wanted, metadata: { ...wanted.metadata, resourceVersion: existing.metadata?.resourceVersion } };
  return { object: await call(kube, `cannot replace ${what}`, () => api.replace(body)), applied: 'updated' };
}

/** The API of each kind the generator makes. */
function apiOf(kube: Kube, kind: string, name: string): KindApi {
  const a = kube.admission;
  const options = () => deadline(TIMEOUT_MS);
  const apis: Record<string, KindApi> = {
    MutatingAdmissionPolicy: { read: () => a.readMutatingAdmissionPolicy({ name }, options()), create: (body) => a.createMutatingAdmissionPolicy({ body: body as V1MutatingAdmissionPolicy }, options()), replace: (body) => a.replaceMutatingAdmissionPolicy({ name, body: body as V1MutatingAdmissionPolicy }, options()) },
    MutatingAdmissionPolicyBinding: { read: () => a.readMutatingAdmissionPolicyBinding({ name }, options()), create: (body) => a.createMutatingAdmissionPolicyBinding({ body: body as V1MutatingAdmissionPolicyBinding }, options()), replace: (body) => a.replaceMutatingAdmissionPolicyBinding({ name, body: body as V1MutatingAdmissionPolicyBinding }, options()) },
    ValidatingAdmissionPolicy: { read: () => a.readValidatingAdmissionPolicy({ name }, options()), create: (body) => a.createValidatingAdmissionPolicy({ body: body as V1ValidatingAdmissionPolicy }, options()), replace: (body) => a.replaceValidatingAdmissionPolicy({ name, body: body as V1ValidatingAdmissionPolicy }, options()) },
    ValidatingAdmissionPolicyBinding: { read: () => a.readValidatingAdmissionPolicyBinding({ name }, options()), create: (body) => a.createValidatingAdmissionPolicyBinding({ body: body as V1ValidatingAdmissionPolicyBinding }, options()), replace: (body) => a.replaceValidatingAdmissionPolicyBinding({ name, body: body as V1ValidatingAdmissionPolicyBinding }, options()) },
  };
  const api = apis[kind];
  if (api === undefined) throw new Error(`the generator made a ${kind}, which apply does not know`);
  return api;
}

/**
 * Applies the MutatingAdmissionPolicy (the first object), then the rest (its bindings, the warnings'
 * ValidatingAdmissionPolicy and its bindings), each owned by it so that they go with it; one line
 * per object, saying what was done.
 */
export async function applyPolicy(kube: Kube, objects: object[]): Promise<string[]> {
  const [policy, ...rest] = objects as (Named & { kind: string })[];
  if (policy === undefined) return [];
  const name = policy.metadata?.name ?? '';
  const applied = await put(kube, `MutatingAdmissionPolicy ${name}`, policy, apiOf(kube, 'MutatingAdmissionPolicy', name));
  const lines = [`MutatingAdmissionPolicy ${name}: ${applied.applied}`];
  const owner = ownerOf({ metadata: applied.object.metadata ?? {} }, 'MutatingAdmissionPolicy');
  for (const object of rest) {
    const objectName = object.metadata?.name ?? '';
    const owned = { ...object, metadata: { ...object.metadata, ...(owner === undefined ? {} : { ownerReferences: [owner] }) } };
    const result = await put(kube, `${object.kind} ${objectName}`, owned, apiOf(kube, object.kind, objectName));
    lines.push(`${object.kind} ${objectName}: ${result.applied}`);
  }
  return lines;
}
