// The sidecar's preStop hook: a SIGTERM cancels the upload in flight (Thanos aborts its shipper's
// context), so before it the hook waits for that upload to finish (the shipper hard-links each block
// into <tsdb>/thanos/upload/<ULID> for its upload and removes the folder after), and, when the TSDB
// is deleted with the pod, also for the blocks Prometheus cut that the sidecar's upload record
// (thanos.shipper.json) does not list yet: they would be lost with the pod otherwise, and the next
// sync (every 30 s) takes them. Bounded a little under the pod's grace period, so the sidecar still
// gets its SIGTERM. A half-uploaded block is never visible to readers either way: Thanos uploads
// meta.json last, and readers, the Compactor included, take a block only by its meta.json. Pure.
import type { V1Lifecycle } from '@kubernetes/client-node';
import { SHIPPER_META_FILE } from './compaction.ts';
import type { TsdbLifetime } from './tsdb-volume.ts';

/** The kubelet's default when a pod sets none. */
const DEFAULT_GRACE_SECONDS = 30;
/** Left of the grace period for the sidecar's own shutdown after the hook. */
const SHUTDOWN_SECONDS = 2;

/** A shell word for a path (single-quoted). */
const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

export function preStopWait(tsdbPath: string, lifetime: TsdbLifetime, graceSeconds: number | undefined): V1Lifecycle | undefined {
  const limit = (graceSeconds ?? DEFAULT_GRACE_SECONDS) - SHUTDOWN_SECONDS;
  if (limit <= 0) return undefined;
  const dir = quote(tsdbPath);
  // Only level-1 blocks with samples are uploaded (compacted and empty ones never are).
  const cut = lifetime === 'pod'
    ? `for m in ${dir}/*/meta.json; do [ -f "$m" ] && grep -q '"level": 1,' "$m" && grep -q '"numSamples"' "$m" || continue; ` +
      `b=\${m%/meta.json}; grep -qs "\${b##*/}" ${dir}/${SHIPPER_META_FILE} || return 0; done; `
    : '';
  const script = `waiting() { [ -n "$(ls -A ${dir}/thanos/upload 2>/dev/null)" ] && return 0; ${cut}return 1; }; ` +
    `n=0; while waiting && [ $n -lt ${limit} ]; do sleep 1; n=$((n+1)); done`;
  return { preStop: { exec: { command: ['/bin/sh', '-c', script] } } };
}
