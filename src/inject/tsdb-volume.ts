// Does Prometheus' TSDB outlive the pod? On a PersistentVolumeClaim (or a StatefulSet's
// volumeClaimTemplates) the head and the blocks not yet uploaded come back with the next pod, which
// uploads them; on an emptyDir (or a generic ephemeral volume, or an inline CSI volume) they are
// deleted with the pod, at every rollout, eviction or node drain. One judgement for the injection
// (its warning, the ephemeralTsdb policy, the status annotation) and for `check`. Pure.
import type { V1PodSpec, V1Volume } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { formatDuration, parseDuration } from '../units.ts';
import { PREFIX } from './names.ts';

/** persistent: outlives the pod; node: outlives it on its node only (hostPath); pod: deleted with it. */
export type TsdbLifetime = 'persistent' | 'node' | 'pod';

export interface TsdbVolume {
  /** The volume's name in the pod. */
  volume: string;
  /** Its source: persistentVolumeClaim, volumeClaimTemplate, emptyDir, ephemeral, hostPath, csi, nfs, ... */
  kind: string;
  /** emptyDir in RAM (tmpfs): also counted against the pod's memory limit. */
  medium?: 'Memory';
  lifetime: TsdbLifetime;
}

/** What to do with a pod whose TSDB is deleted with it: inject silently, warn, admit it without the sidecar, or refuse it. */
export const EPHEMERAL_TSDB_ACTIONS = ['allow', 'warn', 'skip', 'deny'] as const;
export type EphemeralTsdbAction = (typeof EPHEMERAL_TSDB_ACTIONS)[number];

/** Sources that live and die with the pod (the read-only ones cannot hold a TSDB anyway). */
const POD_SOURCES = ['emptyDir', 'ephemeral', 'csi', 'configMap', 'secret', 'downwardAPI', 'projected', 'image', 'gitRepo'];

/** The TSDB volume of a pod (or pod template) whose Prometheus container mounts it as `name`. */
export function tsdbVolume(spec: V1PodSpec, name: string): TsdbVolume {
  const volume = (spec.volumes ?? []).find((v) => v.name === name);
  // A template's mount of a volume it does not list is one of its StatefulSet's volumeClaimTemplates.
  if (volume === undefined) return { volume: name, kind: 'volumeClaimTemplate', lifetime: 'persistent' };
  const kind = Object.keys(volume).find((key) => key !== 'name' && volume[key as keyof V1Volume] !== undefined) ?? 'unknown';
  if (kind === 'hostPath') return { volume: name, kind, lifetime: 'node' };
  if (!POD_SOURCES.includes(kind)) return { volume: name, kind, lifetime: 'persistent' };
  return { volume: name, kind, ...(volume.emptyDir?.medium === 'Memory' ? { medium: 'Memory' as const } : {}), lifetime: 'pod' };
}

/** `emptyDir volume prometheus-data (in memory)`. */
export function describeTsdbVolume(tsdb: TsdbVolume): string {
  const source = tsdb.kind === 'ephemeral' ? 'generic ephemeral volume' : tsdb.kind === 'csi' ? 'inline CSI volume' : `${tsdb.kind} volume`;
  return `${source} ${tsdb.volume}${tsdb.medium === 'Memory' ? ' (medium Memory: in RAM, counted against the memory limit)' : ''}`;
}

/** The samples Prometheus holds in its head before it cuts them into a block: up to 1.5 block durations. */
function headSpan(minBlockDuration: string | undefined): string {
  const ms = parseDuration(minBlockDuration ?? '') ?? 2 * 3600e3;
  return `up to ${formatDuration(ms * 1.5)} with ${formatDuration(ms)} blocks`;
}

/** How the warning on a TSDB deleted with the pod begins (the policy's claim tells it from the others by it). */
export const EPHEMERAL_WARNING_START = "Prometheus' TSDB is on ";

/** What is lost when a pod on this volume goes: the one wording inject, the webhook and check use. */
export function ephemeralTsdbCost(tsdb: TsdbVolume, minBlockDuration: string | undefined): string {
  return `${EPHEMERAL_WARNING_START}${describeTsdbVolume(tsdb)}, which is deleted with the pod: every rollout, eviction or node drain loses the samples ` +
    `not yet cut into a block (${headSpan(minBlockDuration)}) and every block the sidecar has not uploaded yet`;
}

/** How to keep them. */
export const EPHEMERAL_TSDB_FIX = 'keep the TSDB on a PersistentVolumeClaim (a StatefulSet with volumeClaimTemplates; prometheus-community chart: --set server.persistentVolume.enabled=true)';

/** The action for a pod of `namespace`: its annotation, else the namespace's, else the configuration's. */
export function ephemeralTsdbAction(config: Config, namespace: string, annotation: string | undefined): { action: EphemeralTsdbAction; from: string } {
  if (annotation !== undefined) return { action: annotation as EphemeralTsdbAction, from: `annotation ${PREFIX}ephemeral-tsdb` };
  const forNamespace = config.ephemeralTsdb.namespaces[namespace];
  if (forNamespace !== undefined) return { action: forNamespace, from: `ephemeralTsdb.namespaces.${namespace} in the injector configuration` };
  return { action: config.ephemeralTsdb.action, from: 'ephemeralTsdb.action in the injector configuration' };
}
