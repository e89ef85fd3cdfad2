// Turns an injection plan into the minimal RFC 6902 operations against the exact JSON received:
// appends with `/-`, whole objects or arrays only where the parent is absent, single elements
// replaced where they stand, `~` and `/` escaped. Existing maps and arrays are never replaced.
import type { V1PodSpec } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { PatchError } from '../errors.ts';
import type { InjectionPlan } from './render.ts';
import { escapePointer, type PodLike } from './pod.ts';

export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown };

/** A JSON object that is present (YAML input may carry `null` where the apiserver omits the key). */
function isMap(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Adds `items` to the array at `path`: appended one by one when it exists, created whole when not. */
function append(ops: PatchOperation[], exists: boolean, path: string, items: unknown[]): void {
  if (items.length === 0) return;
  if (exists) for (const item of items) ops.push({ op: 'add', path: `${path}/-`, value: item });
  else ops.push({ op: 'add', path, value: items });
}

/** Sets keys of the map at `path`: one `add` per key when it exists, the whole map when not. */
function setKeys(ops: PatchOperation[], exists: boolean, path: string, entries: Record<string, unknown>): void {
  if (Object.keys(entries).length === 0) return;
  if (!exists) {
    ops.push({ op: 'add', path, value: entries });
    return;
  }
  for (const [key, value] of Object.entries(entries)) ops.push({ op: 'add', path: `${path}/${escapePointer(key)}`, value });
}

/**
 * The lists and maps the patch adds whole, because the pod has none (JSON Pointers): the status
 * annotation records them, so that `uninject` removes them again instead of leaving them empty.
 * Not the pod's securityContext: the apiserver stores `{}` for none, so an empty one is no field.
 */
export function createdCollections(pod: PodLike, plan: Omit<InjectionPlan, 'annotations' | 'created'>): string[] {
  const spec = pod.spec as V1PodSpec;
  const prometheus = spec.containers[plan.prometheusIndex];
  const prometheusPath = `/spec/containers/${plan.prometheusIndex}`;
  const wanted: [boolean, string][] = [
    [plan.appendArgs.length > 0 && !Array.isArray(prometheus?.args), `${prometheusPath}/args`],
    [plan.prometheusMounts.length > 0 && !Array.isArray(prometheus?.volumeMounts), `${prometheusPath}/volumeMounts`],
    [plan.prometheusEnv.length > 0 && !Array.isArray(prometheus?.env), `${prometheusPath}/env`],
    [plan.volumes.length > 0 && !Array.isArray(spec.volumes), '/spec/volumes'],
    [plan.mode === 'native' && !Array.isArray(spec.initContainers), '/spec/initContainers'],
  ];
  return [...wanted.filter(([created]) => created).map(([, path]) => path), ...createdMarkCollections(pod, Object.keys(plan.labels).length > 0)];
}

/** The maps the pod's marks (the status annotation, and `labels` when there are any) are added in whole. */
export function createdMarkCollections(pod: PodLike, labels: boolean): string[] {
  const metadata = pod.metadata;
  if (!isMap(metadata)) return ['/metadata'];
  return [...(labels && !isMap(metadata.labels) ? ['/metadata/labels'] : []), ...(isMap(metadata.annotations) ? [] : ['/metadata/annotations'])];
}

/** The operations that turn the pod (a Pod, or a workload's pod template, patched on its own) into the planned one. */
export function buildPatch(pod: PodLike, plan: InjectionPlan): PatchOperation[] {
  const ops: PatchOperation[] = [];
  const specPath = '/spec';
  const prometheusPath = `${specPath}/containers/${plan.prometheusIndex}`;
  const created = new Set(plan.created);
  const exists = (path: string) => !created.has(path);

  for (const edit of plan.replaceFlags) {
    ops.push({ op: 'replace', path: `${prometheusPath}/${edit.list}/${edit.index}`, value: edit.value });
  }
  append(ops, exists(`${prometheusPath}/args`), `${prometheusPath}/args`, plan.appendArgs);
  append(ops, exists(`${prometheusPath}/volumeMounts`), `${prometheusPath}/volumeMounts`, plan.prometheusMounts);
  append(ops, exists(`${prometheusPath}/env`), `${prometheusPath}/env`, plan.prometheusEnv);
  append(ops, exists(`${specPath}/volumes`), `${specPath}/volumes`, plan.volumes);
  if (plan.mode === 'native') append(ops, exists(`${specPath}/initContainers`), `${specPath}/initContainers`, [plan.sidecar]);
  else append(ops, true, `${specPath}/containers`, [plan.sidecar]);
  markPod(ops, pod, plan);
  return ops;
}

/** The pod-level securityContext fields, labels and annotations of a plan, each only where it has any. */
function markPod(ops: PatchOperation[], pod: PodLike, marks: Pick<InjectionPlan, 'podSecurityContext' | 'labels' | 'annotations'>): void {
  setKeys(ops, isMap(pod.spec?.securityContext), '/spec/securityContext', { ...marks.podSecurityContext });
  const metadata = pod.metadata;
  if (!isMap(metadata)) {
    const value = { ...(Object.keys(marks.labels).length > 0 ? { labels: marks.labels } : {}), annotations: marks.annotations };
    ops.push({ op: 'add', path: '/metadata', value });
  } else {
    setKeys(ops, isMap(metadata.labels), '/metadata/labels', marks.labels);
    setKeys(ops, isMap(metadata.annotations), '/metadata/annotations', marks.annotations);
  }
}

/** A pod that keeps its own sidecar: only the pod-level user fields and the status annotation. */
export function buildMarkPatch(pod: PodLike, marks: Pick<InjectionPlan, 'podSecurityContext' | 'annotations'>): PatchOperation[] {
  const ops: PatchOperation[] = [];
  markPod(ops, pod, { ...marks, labels: {} });
  return ops;
}

/** What fast-json-patch's validation names, in the apiserver's terms. */
const PATCH_FAILURES: Record<string, string> = {
  OPERATION_PATH_CANNOT_ADD: 'the parent is missing',
  OPERATION_PATH_UNRESOLVABLE: 'the path does not exist',
  OPERATION_VALUE_OUT_OF_BOUNDS: 'the index is out of range',
  OPERATION_VALUE_REQUIRED: 'no value',
  OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED: 'the value holds undefined',
};

/**
 * fast-json-patch's path checks, called where the path stops existing (or at the target): a
 * `replace` needs its target, an `add` its parent. Its default validator also walks every value for
 * `undefined`, twice per operation; ours come from JSON-safe plans, and that walk cost a quarter of
 * an admission.
 */
function checkPath(operation: jsonPatch.Operation, index: number, document: unknown, existingPath: string): void {
  if (operation.path === existingPath) return;
  // `existingPath` is a prefix of the path: the parent exists when one segment follows it.
  if (operation.op === 'add' && operation.path.indexOf('/', existingPath.length + 1) === -1) return;
  if (operation.op === 'add') throw new jsonPatch.JsonPatchError('no parent to add to', 'OPERATION_PATH_CANNOT_ADD', index, operation, document);
  throw new jsonPatch.JsonPatchError('no target at the path', 'OPERATION_PATH_UNRESOLVABLE', index, operation, document);
}

/**
 * Applies `ops` to `document` in place (fast-json-patch, validated as the apiserver applies it: an
 * `add` needs its parent, a `replace` its target, an index in range). The webhook runs it on the
 * received pod before answering, since a patch the apiserver cannot apply fails pod creation
 * whatever the failurePolicy; the offline CLI prints what it makes. Throws PatchError naming the
 * operation.
 */
export function applyPatchInPlace(document: object, ops: PatchOperation[]): void {
  for (const [index, operation] of ops.entries()) {
    try {
      jsonPatch.applyOperation(document, operation, checkPath, true, true, index);
    } catch (error) {
      const why = error instanceof jsonPatch.JsonPatchError ? PATCH_FAILURES[error.name] : undefined;
      throw new PatchError(`patch operation ${index} (${operation.op} ${operation.path}): ${why ?? (error instanceof Error ? error.message.split('\n')[0] : String(error))}`);
    }
  }
}
