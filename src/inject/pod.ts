// The shape the engine works on: a Pod, or the pod template of a workload (metadata + spec).
import type { V1Container, V1ObjectMeta, V1PodSpec } from '@kubernetes/client-node';

export interface PodLike {
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

export type Container = V1Container;

/** All containers that share the pod's network and users: regular and init. */
export function allContainers(spec: V1PodSpec): Container[] {
  return [...spec.containers, ...(spec.initContainers ?? [])];
}

/** A JSON Pointer segment, escaped per RFC 6901 (`~` -> `~0`, `/` -> `~1`). */
export function escapePointer(segment: string): string {
  if (!segment.includes('~') && !segment.includes('/')) return segment;
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}
