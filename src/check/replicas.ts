// The external labels of every pod in a namespace that uploads blocks, side by side: they are the
// identity of each block stream. Two pods with the same labels (an HA pair without a replica
// label) upload overlapping blocks that a Compactor halts on and Query cannot deduplicate; a label
// taken from a Deployment pod's name starts a new stream on every rollout. Pure.
import type { V1Pod } from '@kubernetes/client-node';
import { REPLICA_LABEL_FIX, SHARED_LABELS_CONSEQUENCE, sharedLabelGroups } from '../inject/labels-advice.ts';
import { describeLabels, type ExternalLabels } from '../inject/prometheus-config.ts';
import { isReady } from '../kube/pods.ts';
import { hasChangingName, workloadOf } from './owner.ts';
import type { PodLabels } from './prometheus-config.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';

export interface PodIdentity extends PodLabels {
  pod: V1Pod;
}

const podName = (pod: V1Pod) => pod.metadata?.name ?? '';

function names(list: readonly string[]): string {
  return list.length <= 1 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1] ?? ''}`;
}

/** The mistake next to the fix, named unless a pitfall of these pods already names it. */
const OPERATOR_FORM = "; $(POD_NAME) is prometheus-operator's form and stays literal for plain Prometheus";

type Labelled = PodIdentity & { labels: Extract<ExternalLabels, { kind: 'labels' }> };

function identicalSets(labelled: readonly Labelled[]): string[] {
  return sharedLabelGroups(labelled, (entry) => entry.labels.labels).map(({ labels, items: group }) => {
    const pitfalls = [...new Set(group.flatMap((entry) => entry.pitfalls))];
    return `pods ${names(group.map((entry) => podName(entry.pod)))} have the same external labels (${describeLabels(labels)}): ${group.length === 2 ? 'both' : 'all'} upload blocks with these labels, ` +
      `so ${SHARED_LABELS_CONSEQUENCE} (it stitches both into one series)${pitfalls.length > 0 ? `; ${pitfalls.join('; ')}` : ''}; ${REPLICA_LABEL_FIX}${pitfalls.length > 0 ? '' : OPERATOR_FORM}`;
  });
}

/** Labels that come from the pod's name, in pods whose names change on every rollout. */
function changingIdentities(labelled: readonly Labelled[]): string | undefined {
  const changing = labelled.filter((entry) => entry.labels.perPod && hasChangingName(entry.pod));
  if (changing.length === 0) return undefined;
  const owners = [...new Set(changing.map((entry) => {
    const workload = workloadOf(entry.pod);
    return workload === undefined ? 'a ReplicaSet' : `${workload.kind} ${workload.name}`;
  }))];
  const shown = changing.map((entry) => `${podName(entry.pod)}: ${describeLabels(entry.labels.labels)}`).join('; ');
  return `the external labels of ${names(owners)} come from the pod name (${shown}): its pods get new names on every rollout, and each new name starts a new block stream ` +
    'that the Compactor never merges with the old one; run Prometheus as a StatefulSet (stable names such as prometheus-0, prometheus-1)';
}

/** Why a pod's labels cannot be told, for the "not compared" list. */
function unreadable(entry: PodIdentity): string | undefined {
  const { labels } = entry;
  if (labels.kind === 'labels') return undefined;
  const why = labels.kind === 'unknown' ? labels.reason : labels.kind === 'invalid' ? labels.error : 'no external labels';
  return `${podName(entry.pod)} (${why})`;
}

/**
 * Every pod that uploads blocks has labels of its own, stable across rollouts. `pods`: the
 * namespace's pods with a Thanos sidecar (injected or their own), minus those on their way out.
 * Only ready pods are compared: a rollout runs the new pod next to the old one until it is ready.
 */
export function checkLabelsDistinct(namespace: string, pods: readonly PodIdentity[]): CheckRow {
  const name = CHECK.labelsDistinct;
  if (pods.length === 0) return skip(name, `no pod of namespace ${namespace} runs a Thanos sidecar (injected or its own): nothing to compare`);
  const labelled = pods.filter((entry): entry is Labelled => entry.labels.kind === 'labels');
  const unread = pods.map(unreadable).filter((reason) => reason !== undefined);
  if (labelled.length === 0) return skip(name, `cannot read the external labels of any pod: ${unread.join('; ')}`);
  const ready = labelled.filter((entry) => isReady(entry.pod));
  const starting = labelled.filter((entry) => !isReady(entry.pod)).map((entry) => `${podName(entry.pod)} (not ready: compared once it is)`);
  const notCompared = unread.length + starting.length > 0 ? `; not compared: ${[...unread, ...starting].join('; ')}` : '';
  const identical = identicalSets(ready);
  const changing = changingIdentities(labelled);
  if (identical.length > 0) return fail(name, `${[...identical, ...(changing === undefined ? [] : [changing])].join('; ')}${notCompared}`);
  if (changing !== undefined) return warn(name, `${changing}${notCompared}`);
  if (ready.length === 0) return skip(name, `no pod to compare yet${notCompared}`);
  const shown = ready.map((entry) => `${podName(entry.pod)} (${describeLabels(entry.labels.labels)})`).join(', ');
  const summary = ready.length === 1 ? `1 pod with a sidecar: ${shown}` : `${ready.length} pods, each with labels of its own: ${shown}`;
  return ok(name, `${summary}${notCompared}`);
}
