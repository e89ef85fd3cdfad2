// How Prometheus compacts while the sidecar uploads. `disabled`: equal min and max block durations,
// so Prometheus never compacts and every block is uploaded as cut (any versions). `delayed`
// (Prometheus >= 3.9.0, Thanos >= 0.41.0): compaction stays on but waits for the blocks the
// sidecar's upload record (thanos.shipper.json in the TSDB folder) does not list yet, so nothing
// is compacted before it is uploaded, and Prometheus keeps its larger blocks (faster queries, less
// memory). `auto` picks delayed when both images' tags say they are new enough.
import { imageVersion } from './prometheus.ts';

export type CompactionSetting = 'auto' | 'delayed' | 'disabled';
export type CompactionMode = 'delayed' | 'disabled';

/** The sidecar's upload record, in the TSDB folder (Thanos' default name, written out for Prometheus). */
export const SHIPPER_META_FILE = 'thanos.shipper.json';
/** The sidecar flag that uploads compacted blocks too (Thanos: for a migration, once, with compaction disabled). */
export const UPLOAD_COMPACTED_FLAG = '--shipper.upload-compacted';
/** The releases that delay compaction: Prometheus reads the upload record, Thanos writes it for it. */
export const PROMETHEUS_MIN: [number, number, number] = [3, 9, 0];
export const THANOS_MIN: [number, number, number] = [0, 41, 0];

export function atLeast(have: [number, number, number], want: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) return (have[i] as number) > (want[i] as number);
  return true;
}

export type CompactionChoice = { mode: CompactionMode; warning?: string } | { error: string };

/** The mode for one pod, from the setting and the Prometheus and sidecar images' tags. */
export function chooseCompaction(setting: CompactionSetting, prometheusImage: string | undefined, sidecarImage: string): CompactionChoice {
  if (setting === 'disabled') return { mode: 'disabled' };
  const prometheus = imageVersion(prometheusImage);
  const thanos = imageVersion(sidecarImage);
  const tooOld = [
    prometheus !== undefined && !atLeast(prometheus, PROMETHEUS_MIN) ? `Prometheus image ${prometheusImage ?? ''} is ${prometheus.join('.')}, older than 3.9.0` : undefined,
    thanos !== undefined && !atLeast(thanos, THANOS_MIN) ? `Thanos image ${sidecarImage} is ${thanos.join('.')}, older than 0.41.0` : undefined,
  ].filter((reason) => reason !== undefined);
  if (setting === 'delayed') {
    if (tooOld.length > 0) {
      return { error: `compaction delayed needs Prometheus >= 3.9.0 and Thanos >= 0.41.0, but the ${tooOld.join(' and the ')}; expected compaction auto or disabled for this pod` };
    }
    return { mode: 'delayed' };
  }
  if (tooOld.length > 0) return { mode: 'disabled' };
  const unknown = [prometheus === undefined ? `Prometheus image ${prometheusImage ?? '(none)'}` : undefined, thanos === undefined ? `Thanos image ${sidecarImage}` : undefined]
    .filter((what) => what !== undefined);
  if (unknown.length > 0) {
    return {
      mode: 'disabled',
      warning: `compaction auto: the version of the ${unknown.join(' and the ')} cannot be told from its tag, so compaction is disabled (equal block durations); ` +
        'set compaction delayed (config compaction, chart injection.compaction or annotation thanos-injector/compaction) when Prometheus is >= 3.9.0 and Thanos >= 0.41.0',
    };
  }
  return { mode: 'delayed' };
}
