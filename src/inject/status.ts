// The status annotation: what one injection did to a pod, written with the patch and read back
// later. `kubectl describe` shows it; `rendered` fingerprints what was injected, aspect by aspect,
// so that `check` and `register` can tell an outdated sidecar from a current one (and say what
// differs); `undo` with the names it lists is what `uninject` needs to give the pod back as it was.
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import Type from 'typebox';
import { compileCheck } from '../validation.ts';
import type { CompactionMode } from './compaction.ts';
import { STATUS_ANNOTATION } from './names.ts';
import type { InjectionPlan } from './render.ts';
import type { TsdbVolume } from './tsdb-volume.ts';

const Digest = Type.String({ pattern: '^[0-9a-f]{12}$', description: 'a 12-digit hex digest' });
const Names = Type.Array(Type.String());

/**
 * What the injection added, aspect by aspect: the image and mode as written, the rest as a short
 * digest of the rendered value (keys sorted, so a refactor that reorders keys changes nothing).
 * `container`: the sidecar's ports, probes, mounts, hook and securityContext; `prometheus`: the
 * Prometheus container's flag edits, appended args, mounts and env; `securityContext`: the
 * pod-level fields set.
 */
const RenderedSchema = Type.Object({
  image: Type.String(),
  mode: Type.Union([Type.Literal('native'), Type.Literal('container')]),
  args: Digest,
  env: Digest,
  resources: Digest,
  container: Digest,
  volumes: Digest,
  prometheus: Digest,
  securityContext: Digest,
});
export type RenderedRecord = Type.Static<typeof RenderedSchema>;

/**
 * What cannot be told from the names alone: the Prometheus arguments replaced (with their values
 * before), how many were appended, and the lists and maps the patch added whole (JSON Pointers).
 */
const UndoSchema = Type.Object({
  created: Type.Array(Type.String()),
  replaced: Type.Array(Type.Object({ list: Type.Union([Type.Literal('args'), Type.Literal('command')]), index: Type.Integer({ minimum: 0 }), was: Type.String() })),
  appended: Type.Integer({ minimum: 0 }),
});
export type UndoRecord = Type.Static<typeof UndoSchema>;

/**
 * The status annotation, as far as it is read back (other fields are for people). A pod that keeps
 * its own sidecar has `existingSidecar` instead of `container`. `rendered` and `undo` came after
 * release 0.1.0: a pod injected by it cannot be compared or uninjected.
 */
const StatusSchema = Type.Object({
  version: Type.String(),
  container: Type.Optional(Type.String()),
  existingSidecar: Type.Optional(Type.String()),
  mode: Type.Optional(Type.String()),
  prometheus: Type.Optional(Type.String()),
  volumes: Type.Optional(Names),
  env: Type.Optional(Names),
  securityContext: Type.Optional(Names),
  rendered: Type.Optional(RenderedSchema),
  /** Injected by the MutatingAdmissionPolicy (src/policy/generate.ts): its generation, in place of `rendered`. */
  policy: Type.Optional(Type.String({ pattern: '^[0-9a-f]{12}$', description: 'a 12-digit hex digest' })),
  undo: Type.Optional(UndoSchema),
});
export type InjectionStatus = Type.Static<typeof StatusSchema> & { compaction?: CompactionMode; tsdb?: TsdbVolume; flags?: string[]; warnings?: string[] };
const checkStatus = compileCheck(StatusSchema, STATUS_ANNOTATION);

/** JSON with object keys sorted at every level. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const digest = (value: unknown): string => createHash('sha256').update(canonical(value)).digest('hex').slice(0, 12);

/** The fingerprint of a plan's additions. */
export function renderedRecord(plan: Omit<InjectionPlan, 'annotations' | 'created'>): RenderedRecord {
  const { image = '', args = [], env = [], resources = {}, ...rest } = plan.sidecar;
  return {
    image,
    mode: plan.mode,
    args: digest(args),
    env: digest(env),
    resources: digest(resources),
    container: digest({ ...rest, image: undefined }),
    volumes: digest(plan.volumes),
    prometheus: digest({ replace: plan.replaceFlags, append: plan.appendArgs, mounts: plan.prometheusMounts, env: plan.prometheusEnv }),
    securityContext: digest(plan.podSecurityContext),
  };
}

/** The pod's status annotation, parsed and checked; a string naming what is wrong with it, or undefined without one. */
export function readStatus(pod: Pick<V1Pod, 'metadata'>): InjectionStatus | { error: string } | undefined {
  const text = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (text === undefined) return undefined;
  let status: unknown;
  try {
    status = JSON.parse(text);
  } catch {
    return { error: `${STATUS_ANNOTATION} is not JSON` };
  }
  const problems = checkStatus(status);
  return problems.length > 0 ? { error: problems.join('; ') } : (status as InjectionStatus);
}
