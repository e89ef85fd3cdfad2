// What keeps injected sidecars from uploading usable blocks, as registration sees it in the
// cluster: a sidecar that exits for want of external labels (its termination message says so),
// pods that upload under one identical label set (their labels computed from the ConfigMap behind
// each pod's --config.file, as its Prometheus expands them), and blocks that wait while no upload
// finishes (check's backlog judgement, on what each sidecar and Prometheus said). Pure.
import type { V1ConfigMap, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { SIDECAR_NAME } from '../inject/names.ts';
import { externalLabels, prometheusConfigSource, readConfigText, type ConfigObjectRef } from '../inject/prometheus-config.ts';
import { labelsReferTo, sharedLabelGroups } from '../inject/labels-advice.ts';
import type { PodRef } from './plan.ts';
import { stallCause, uploadBacklog, type Backlog, type UploadEvidence } from '../check/uploads.ts';
import type { Drift } from '../check/drift.ts';
import { recreateCommand } from '../check/owner.ts';

export const NO_EXTERNAL_LABELS_REASON = 'ThanosSidecarNoExternalLabels';
export const SHARED_EXTERNAL_LABELS_REASON = 'ThanosSidecarSharedExternalLabels';
export const UPLOADS_STALLED_REASON = 'ThanosSidecarUploadsStalled';
export const OUTDATED_REASON = 'ThanosSidecarOutdated';

export type SidecarProblem =
  | {
    problem: 'no-external-labels';
    pod: PodRef;
    /** Where --config.file comes from (`ConfigMap ns/name key k`), when the pod says. */
    config: string | undefined;
  }
  | {
    problem: 'shared-external-labels';
    pod: PodRef;
    labels: Record<string, string>;
    /** The other pods with exactly these labels. */
    others: PodRef[];
    config: string;
  }
  | {
    problem: 'outdated-sidecar';
    pod: PodRef;
    /** What differs from what the current configuration injects (check's judgement). */
    differences: string[];
    /** The command that re-creates the pod through the webhook. */
    command: string;
  }
  | {
    problem: 'uploads-stalled';
    pod: PodRef;
    /** What waits, since when, and when retention deletes it (check's judgement). */
    backlog: Backlog;
    cause: string;
  };

export type ProblemKind = SidecarProblem['problem'];
export const PROBLEM_KINDS: readonly ProblemKind[] = ['no-external-labels', 'shared-external-labels', 'uploads-stalled', 'outdated-sidecar'];

export const PROBLEM_REASONS: Record<ProblemKind, string> = {
  'no-external-labels': NO_EXTERNAL_LABELS_REASON,
  'shared-external-labels': SHARED_EXTERNAL_LABELS_REASON,
  'uploads-stalled': UPLOADS_STALLED_REASON,
  'outdated-sidecar': OUTDATED_REASON,
};

/** The start of the line the Thanos sidecar exits with (cmd/thanos/sidecar.go). */
export const NO_EXTERNAL_LABELS_EXIT = 'no external labels configured';

/** A pod registration looks at: not finished, not being deleted. */
export interface RunningPod {
  ref: PodRef;
  pod: V1Pod;
  /** Its Ready condition. */
  ready: boolean;
}

function sidecarStatus(pod: V1Pod): V1ContainerStatus | undefined {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find((status) => status.name === SIDECAR_NAME);
}

/**
 * The sidecar exited for want of external labels and has not come up since (its status keeps the
 * last exit's message after the labels are fixed, until it is ready again).
 */
export function sidecarLacksLabels(pod: V1Pod): boolean {
  const status = sidecarStatus(pod);
  if (status === undefined || status.ready) return false;
  const messages = [status.state?.terminated?.message, status.lastState?.terminated?.message];
  return messages.some((message) => message?.includes(NO_EXTERNAL_LABELS_EXIT) ?? false);
}

const describeRef = (namespace: string, ref: ConfigObjectRef) => `${ref.kind} ${namespace}/${ref.name} key ${ref.key}`;

/**
 * The variables of the Prometheus container whose value registration cannot know (other fields,
 * Secrets, ConfigMap keys): externalLabels puts a placeholder there, equal for every pod.
 */
function unknownVariables(pod: V1Pod, container: string): string[] {
  const known = new Set(['metadata.name', 'metadata.namespace']);
  const env = pod.spec?.containers.find((c) => c.name === container)?.env ?? [];
  return env.filter((v) => v.valueFrom !== undefined && !known.has(v.valueFrom.fieldRef?.fieldPath ?? '')).map((v) => v.name);
}

/** The labels a running pod's Prometheus uploads under, from its ConfigMap; undefined when they cannot be known for certain. */
function podLabels(pod: V1Pod, configMaps: ReadonlyMap<string, V1ConfigMap>): { labels: Record<string, string>; config: string } | undefined {
  const source = prometheusConfigSource(pod);
  const namespace = pod.metadata?.namespace ?? '';
  const file = readConfigText(source, (ref) => (ref.kind === 'ConfigMap' ? configMaps.get(`${namespace}/${ref.name}`) : undefined));
  if (file === undefined || source.kind !== 'objects') return undefined;
  const found = externalLabels(pod, file.text, pod.metadata?.name ?? '');
  // Labels from the pod's own name differ by construction; placeholders would make different values look equal.
  if (found.kind !== 'labels' || found.perPod || (found.expands && labelsReferTo(found.written, unknownVariables(pod, source.container)))) return undefined;
  return { labels: found.labels, config: describeRef(namespace, file.ref) };
}

/** Where a pod's --config.file comes from, without reading it. */
function configOf(pod: V1Pod): string | undefined {
  const source = prometheusConfigSource(pod);
  const ref = source.kind === 'objects' ? source.candidates[0] : undefined;
  return ref === undefined ? undefined : describeRef(pod.metadata?.namespace ?? '', ref);
}

/** Pods (ready ones only: a rollout's new pod is not ready while the old one still runs) that share one label set. */
function sharedLabelSets(pods: readonly RunningPod[], configMaps: readonly V1ConfigMap[]): SidecarProblem[] {
  const byName = new Map(configMaps.map((c) => [`${c.metadata?.namespace ?? ''}/${c.metadata?.name ?? ''}`, c]));
  const known = pods.flatMap(({ ref, pod, ready }) => {
    const found = ready ? podLabels(pod, byName) : undefined;
    return found === undefined ? [] : [{ ref, ...found }];
  });
  return sharedLabelGroups(known, (entry) => entry.labels).flatMap((group) =>
    group.items.map(({ ref, labels, config }): SidecarProblem => ({
      problem: 'shared-external-labels',
      pod: ref,
      labels,
      others: group.items.filter((other) => other.ref.uid !== ref.uid).map((other) => other.ref),
      config,
    })));
}

const order = (a: PodRef, b: PodRef) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);

/** Pods whose blocks wait while no upload finishes, judged from what their sidecar and Prometheus said at `now`. */
function stalledUploads(pods: readonly RunningPod[], uploads: ReadonlyMap<string, UploadEvidence>, now: number): SidecarProblem[] {
  return pods.flatMap(({ ref }) => {
    const evidence = uploads.get(ref.uid);
    const backlog = evidence === undefined ? undefined : uploadBacklog(evidence, now);
    if (evidence === undefined || backlog === undefined || !backlog.stalled) return [];
    return [{ problem: 'uploads-stalled', pod: ref, backlog, cause: stallCause(backlog, evidence.sidecar) }];
  });
}

/** Pods whose sidecar is not what the current configuration injects. */
function outdatedSidecars(pods: readonly RunningPod[], drift: (pod: V1Pod) => Drift): SidecarProblem[] {
  return pods.flatMap(({ ref, pod }) => {
    const judged = drift(pod);
    return judged.state === 'outdated' ? [{ problem: 'outdated-sidecar', pod: ref, differences: judged.differences, command: recreateCommand(pod) }] : [];
  });
}

/**
 * The problems of the running injected pods, by pod. `configMaps`: those behind their --config.file
 * (as read); `uploads`: what each pod's sidecar and Prometheus said, by uid, read at `now`; `drift`:
 * how a pod's sidecar compares with what the current configuration injects.
 */
export function sidecarProblems(pods: readonly RunningPod[], configMaps: readonly V1ConfigMap[], uploads: ReadonlyMap<string, UploadEvidence>, now: number, drift: (pod: V1Pod) => Drift): SidecarProblem[] {
  const exited = pods
    .filter(({ pod }) => sidecarLacksLabels(pod))
    .map(({ ref, pod }): SidecarProblem => ({ problem: 'no-external-labels', pod: ref, config: configOf(pod) }));
  return [...exited, ...sharedLabelSets(pods, configMaps), ...stalledUploads(pods, uploads, now), ...outdatedSidecars(pods, drift)].sort((a, b) => order(a.pod, b.pod) || a.problem.localeCompare(b.problem));
}

/** The ConfigMaps behind these pods' --config.file, as `{namespace, name}` (Secrets are never read). */
export function configMapsToRead(pods: readonly V1Pod[]): { namespace: string; name: string }[] {
  const wanted = new Map<string, { namespace: string; name: string }>();
  for (const pod of pods) {
    const source = prometheusConfigSource(pod);
    if (source.kind !== 'objects') continue;
    const namespace = pod.metadata?.namespace ?? '';
    for (const ref of source.candidates) if (ref.kind === 'ConfigMap') wanted.set(`${namespace}/${ref.name}`, { namespace, name: ref.name });
  }
  return [...wanted.values()];
}

/** How many pods have each problem. */
export function problemCounts(problems: readonly SidecarProblem[]): Record<ProblemKind, number> {
  const counts: Record<ProblemKind, number> = { 'no-external-labels': 0, 'shared-external-labels': 0, 'uploads-stalled': 0, 'outdated-sidecar': 0 };
  for (const kind of PROBLEM_KINDS) counts[kind] = new Set(problems.filter((p) => p.problem === kind).map((p) => p.pod.uid)).size;
  return counts;
}
