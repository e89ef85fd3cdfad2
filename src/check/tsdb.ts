// Where a pod's Prometheus keeps its TSDB, and what would be lost if the pod went now: the
// judgement of src/inject/tsdb-volume.ts on the live pod (the same one the injection warned with).
import type { V1Pod } from '@kubernetes/client-node';
import { mountHolding } from '../inject/pod.ts';
import { prometheusIndex, readPrometheus } from '../inject/prometheus.ts';
import { describeTsdbVolume, EPHEMERAL_TSDB_FIX, ephemeralTsdbCost, tsdbVolume } from '../inject/tsdb-volume.ts';
import { CHECK, ok, skip, warn, type CheckRow } from './rows.ts';

export function checkTsdbVolume(pod: V1Pod): CheckRow {
  const name = CHECK.tsdbVolume;
  const index = prometheusIndex(pod);
  if (pod.spec === undefined || index === undefined) return skip(name, 'no Prometheus container');
  const prometheus = readPrometheus(pod.spec, index);
  const mount = mountHolding(prometheus.container.volumeMounts, prometheus.tsdbPath)?.mount;
  if (mount === undefined) {
    return warn(name, `no volume holds Prometheus' TSDB path ${prometheus.tsdbPath}: it is in the container's own file system, lost at every container restart, and no sidecar can read it; ${EPHEMERAL_TSDB_FIX}`);
  }
  const tsdb = tsdbVolume(pod.spec, mount.name);
  const claim = pod.spec.volumes?.find((v) => v.name === mount.name)?.persistentVolumeClaim?.claimName;
  const where = `${prometheus.tsdbPath} is on ${describeTsdbVolume(tsdb)}${claim === undefined ? '' : ` (claim ${claim})`}`;
  if (tsdb.lifetime === 'persistent') return ok(name, `${where}: it outlives the pod, and the next pod on it uploads what this one did not`);
  if (tsdb.lifetime === 'node') return ok(name, `${where}: it outlives the pod on node ${pod.spec.nodeName ?? '(not scheduled)'} only; a pod scheduled elsewhere starts empty`);
  return warn(name, `${ephemeralTsdbCost(tsdb, prometheus.minBlock?.value)}; ${EPHEMERAL_TSDB_FIX}`);
}
