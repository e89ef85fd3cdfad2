// The shape the engine works on: a Pod, or the pod template of a workload (metadata + spec).
import { posix } from 'node:path';
import type { V1Container, V1ObjectMeta, V1PodSpec, V1VolumeMount } from '@kubernetes/client-node';
import { cleanPath } from '../files.ts';

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

/**
 * Which mount holds `path` in a container: the deepest of `mounts` at or above it (the one the
 * kubelet makes visible there), with the path below the mount (`rest`, '' for the mount point) and
 * within the volume (`inVolume`: the mount's subPath joined).
 */
export function mountHolding(mounts: readonly V1VolumeMount[] | undefined, path: string): { mount: V1VolumeMount; rest: string; inVolume: string } | undefined {
  const target = cleanPath(path);
  let best: { mount: V1VolumeMount; mountPath: string } | undefined;
  for (const mount of mounts ?? []) {
    const mountPath = cleanPath(mount.mountPath);
    const holds = target === mountPath || target.startsWith(mountPath === '/' ? '/' : `${mountPath}/`);
    if (holds && (best === undefined || mountPath.length > best.mountPath.length)) best = { mount, mountPath };
  }
  if (best === undefined) return undefined;
  const rest = target === best.mountPath ? '' : target.slice(best.mountPath === '/' ? 1 : best.mountPath.length + 1);
  const { subPath } = best.mount;
  return { mount: best.mount, rest, inVolume: subPath ? (rest === '' ? subPath : posix.join(subPath, rest)) : rest };
}

/** The value of `--flag=value` or `--flag value` in a container's command and args. */
export function flagValue(container: Container, flag: string): string | undefined {
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith(`--${flag}=`)) return arg.slice(flag.length + 3);
    if (arg === `--${flag}`) return argv[i + 1];
  }
  return undefined;
}
