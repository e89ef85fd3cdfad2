// What a sidecar and its Prometheus say about uploads, built for the tests of check and register:
// the sidecar's metrics as Thanos 0.42 exposes them, and blocks as Prometheus 3.6+ lists them.
import type { LocalBlock, PrometheusState, UploadEvidence } from '../../src/check/uploads.ts';

export interface SidecarMetrics {
  uploadFailures?: number;
  syncFailures?: number;
  syncs?: number;
  /** ms; 0: none since the start. */
  lastUpload?: number;
  started?: number;
  requestFailures?: number;
  bucket?: string;
}

export function sidecarMetrics(uploads: number, options: SidecarMetrics = {}): { text: string } {
  const { uploadFailures = 0, syncFailures = 0, syncs = 10, lastUpload = 0, started = Date.parse('2026-12-02T06:00:00Z'), requestFailures = 0, bucket = 'metrics-eu1' } = options;
  return {
    text: [
      '# TYPE thanos_shipper_uploads_total counter', `thanos_shipper_uploads_total ${uploads}`,
      `thanos_shipper_upload_failures_total ${uploadFailures}`, `thanos_shipper_dir_sync_failures_total ${syncFailures}`, `thanos_shipper_dir_syncs_total ${syncs}`,
      `thanos_objstore_bucket_last_successful_upload_time{bucket="${bucket}"} ${lastUpload / 1000}`,
      `thanos_objstore_bucket_operation_failures_total{bucket="${bucket}",operation="exists"} ${requestFailures}`,
      `thanos_objstore_bucket_operation_failures_total{bucket="${bucket}",operation="upload"} 0`,
      `process_start_time_seconds ${started / 1000}`,
    ].join('\n'),
  };
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID written at `time` (the first ten characters; the rest arbitrary). */
export function ulid(time: number): string {
  let prefix = '';
  for (let rest = time, i = 0; i < 10; i++, rest = Math.floor(rest / 32)) prefix = CROCKFORD[rest % 32]! + prefix;
  return `${prefix}ABCDEFGHJKMNPQRS`;
}

/** A level-1 block cut at `cut`, holding the 20 s before it (as the node tests' short blocks). */
export const block = (cut: number, samples = 100): LocalBlock => ({ ulid: ulid(cut), minTime: cut - 30_000, maxTime: cut - 10_000, stats: { numSamples: samples }, compaction: { level: 1 } });

export const evidence = (metrics: { text: string } | { error: string }, log = '', prometheus?: PrometheusState): UploadEvidence => ({ sidecar: { metrics, log }, prometheus });
