// The injection undone, from what the pod's status annotation says was added: the sidecar, the
// volumes and the Prometheus container's mounts and env by name, the Prometheus arguments replaced
// (put back) and appended (taken off), the pod-level securityContext fields, the label and the
// annotation, and the lists and maps the patch created whole. Nothing else of the pod is touched.
// Pure: the operations (RFC 6902) are applied to the object by `uninjectPod`, and written into the
// user's YAML by `uninject -f`.
import type { V1PodSpec } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { INJECTED_LABEL, STATUS_ANNOTATION } from './names.ts';
import { escapePointer, type PodLike } from './pod.ts';
import { readStatus } from './status.ts';

export type UndoOperation = { op: 'remove'; path: string } | { op: 'replace'; path: string; value: unknown };

export type Uninjection = { operations: UndoOperation[] } | { error: string };

/** Removes the items of the list at `path` whose index `drop` accepts (from the last), or the whole list when the patch created it and nothing else is left. */
function dropItems(ops: UndoOperation[], list: readonly unknown[] | undefined, path: string, drop: (item: unknown, index: number) => boolean, created: Set<string>): void {
  if (list === undefined) return;
  const indexes = list.map((item, index) => (drop(item, index) ? index : -1)).filter((index) => index >= 0);
  if (indexes.length === 0) return;
  if (indexes.length === list.length && created.has(path)) {
    ops.push({ op: 'remove', path });
    return;
  }
  for (const index of indexes.reverse()) ops.push({ op: 'remove', path: `${path}/${index}` });
}

/** Removes `keys` of the map at `path`, or the whole map when the patch created it and nothing else is left. */
function dropKeys(ops: UndoOperation[], map: object | undefined | null, path: string, keys: readonly string[], created: Set<string>): void {
  if (map === undefined || map === null) return;
  const present = keys.filter((key) => Object.hasOwn(map, key));
  if (present.length === 0) return;
  if (present.length === Object.keys(map).length && created.has(path)) {
    ops.push({ op: 'remove', path });
    return;
  }
  for (const key of present) ops.push({ op: 'remove', path: `${path}/${escapePointer(key)}` });
}

const named = (names: readonly string[] | undefined) => {
  const set = new Set(names ?? []);
  return (item: unknown) => set.has((item as { name?: string } | null)?.name ?? '');
};

/** The operations that take this injector's sidecar and everything it added out of the pod (or pod template). */
export function uninjectOperations(pod: PodLike): Uninjection {
  const status = readStatus(pod);
  if (status === undefined) return { error: `no ${STATUS_ANNOTATION} annotation: this injector did not inject the pod` };
  if ('error' in status) return { error: `unreadable ${STATUS_ANNOTATION} annotation: ${status.error}` };
  const spec = pod.spec as V1PodSpec;
  const created = new Set(status.undo?.created ?? []);
  const ops: UndoOperation[] = [];

  if (status.container !== undefined) {
    const { undo } = status;
    if (undo === undefined) return { error: `the ${STATUS_ANNOTATION} annotation was written by injector ${status.version}, which recorded too little to undo the injection exactly; re-create the pod from its manifest` };
    const index = spec.containers.findIndex((c) => c.name === status.prometheus);
    const prometheus = spec.containers[index];
    if (prometheus === undefined) return { error: `the Prometheus container ${status.prometheus ?? '(unnamed)'} that the status annotation names is not in the pod` };
    const sidecarIn = (['containers', 'initContainers'] as const).find((list) => spec[list]?.some((c) => c.name === status.container));
    if (sidecarIn === undefined) return { error: `the sidecar container ${status.container} that the status annotation names is not in the pod` };
    const path = `/spec/containers/${index}`;
    for (const { list, index: at, was } of undo.replaced) {
      if (typeof prometheus[list]?.[at] !== 'string') return { error: `Prometheus ${list}[${at}], which the injection replaced, is not there any more` };
      ops.push({ op: 'replace', path: `${path}/${list}/${at}`, value: was });
    }
    const args = prometheus.args ?? [];
    if (undo.appended > args.length) return { error: `the injection appended ${undo.appended} arguments to Prometheus, which now has ${args.length}` };
    dropItems(ops, prometheus.args, `${path}/args`, (_, at) => at >= args.length - undo.appended, created);
    dropItems(ops, prometheus.volumeMounts, `${path}/volumeMounts`, named(status.volumes), created);
    dropItems(ops, prometheus.env, `${path}/env`, named(status.env), created);
    dropItems(ops, spec.volumes, '/spec/volumes', named(status.volumes), created);
    dropItems(ops, spec[sidecarIn], `/spec/${sidecarIn}`, named([status.container]), created);
  }
  // An empty securityContext is no securityContext (the apiserver stores `{}` for none).
  dropKeys(ops, spec.securityContext, '/spec/securityContext', status.securityContext ?? [], new Set(['/spec/securityContext']));
  const metadata = pod.metadata ?? {};
  const marks = { labels: [INJECTED_LABEL], annotations: [STATUS_ANNOTATION] } as const;
  const onlyMarks = (Object.keys(metadata) as (keyof typeof metadata)[]).every((key) =>
    (key === 'labels' || key === 'annotations') && Object.keys(metadata[key] ?? {}).every((name) => (marks[key] as readonly string[]).includes(name)));
  // A metadata the patch added whole held the label and the annotation; anything since is kept.
  if (created.has('/metadata') && onlyMarks) return { operations: [...ops, { op: 'remove', path: '/metadata' }] };
  dropKeys(ops, metadata.labels, '/metadata/labels', marks.labels, created);
  dropKeys(ops, metadata.annotations, '/metadata/annotations', marks.annotations, created);
  return { operations: ops };
}

/** A copy of the pod without the injection; or why it cannot be undone. */
export function uninjectPod<T extends PodLike>(pod: T): { pod: T } | { error: string } {
  const result = uninjectOperations(pod);
  if ('error' in result) return result;
  const copy = structuredClone(pod);
  jsonPatch.applyPatch(copy, result.operations, false, true);
  return { pod: copy };
}
