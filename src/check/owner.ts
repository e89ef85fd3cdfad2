// Which workload a pod belongs to, read from its controller reference: for the command that
// re-creates it, and for the names it gets (a Deployment's change on every rollout, a
// StatefulSet's stay). Pure.
import type { V1Pod } from '@kubernetes/client-node';

export interface Workload {
  /** Deployment (a ReplicaSet the Deployment controller made), StatefulSet, DaemonSet, ReplicaSet, Job... */
  kind: string;
  name: string;
}

/**
 * The pod's workload: its controller, and for a ReplicaSet with the pod-template-hash label the
 * Deployment behind it (the Deployment controller names its ReplicaSets `<deployment>-<hash>`).
 * Undefined for a bare pod.
 */
export function workloadOf(pod: V1Pod): Workload | undefined {
  const controller = pod.metadata?.ownerReferences?.find((owner) => owner.controller === true);
  if (controller === undefined) return undefined;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (controller.kind === 'ReplicaSet' && hash !== undefined && controller.name.endsWith(`-${hash}`)) {
    return { kind: 'Deployment', name: controller.name.slice(0, -(hash.length + 1)) };
  }
  return { kind: controller.kind, name: controller.name };
}

/** Owned by a ReplicaSet (a Deployment): its pods get a new random name whenever they are replaced. */
export function hasChangingName(pod: V1Pod): boolean {
  return pod.metadata?.ownerReferences?.some((owner) => owner.controller === true && owner.kind === 'ReplicaSet') ?? false;
}

const RESTARTABLE = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

/** The command that re-creates the pod through the admission webhook. */
export function recreateCommand(pod: V1Pod): string {
  const namespace = pod.metadata?.namespace ?? '';
  const workload = workloadOf(pod);
  if (workload !== undefined && RESTARTABLE.has(workload.kind)) {
    return `kubectl -n ${namespace} rollout restart ${workload.kind.toLowerCase()}/${workload.name}`;
  }
  const deleteIt = `kubectl -n ${namespace} delete pod ${pod.metadata?.name ?? ''}`;
  return workload === undefined ? `${deleteIt} and create it again from its manifest (a bare pod)` : `${deleteIt} (its ${workload.kind} ${workload.name} creates it again)`;
}

