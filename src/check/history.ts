// A pod annotated thanos-injector/upload-history: true uploads the blocks Prometheus compacted
// before it was injected, once (the sidecar's --shipper.upload-compacted). Whether it is done, how
// far it got, or why the sidecar refuses (a compacted block that overlaps the bucket). Pure.
import type { V1Pod } from '@kubernetes/client-node';
import { UPLOAD_COMPACTED_FLAG } from '../inject/compaction.ts';
import { PREFIX, SIDECAR_NAME } from '../inject/names.ts';
import { sidecarOf } from './pod.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { lastLine } from './logs.ts';
import { metricValue, type UploadEvidence } from './uploads.ts';

/** The sidecar's line when a compacted block overlaps the bucket (Thanos' shipper). */
const OVERLAP = /cannot upload compacted block/;

export function checkHistoryUpload(pod: V1Pod, evidence: UploadEvidence | undefined): CheckRow | undefined {
  const sidecar = sidecarOf(pod);
  if (!(sidecar?.args ?? []).includes(UPLOAD_COMPACTED_FLAG)) return undefined;
  const name = CHECK.historyUpload;
  const namespace = pod.metadata?.namespace ?? '';
  if (evidence === undefined) return skip(name, `the pod is ${pod.status?.phase ?? 'not running'}: nothing uploaded yet`);
  const refused = lastLine(evidence.sidecar.log, OVERLAP);
  if (refused !== undefined) {
    return fail(name, `the sidecar refuses the history: a compacted block overlaps blocks the bucket already holds under these external labels (${refused}); ` +
      `it may be there already, or come from another Prometheus with the same labels: remove the annotation ${PREFIX}upload-history and roll the pod (thanos-injector rollout -n ${namespace})`);
  }
  if ('error' in evidence.sidecar.metrics) return warn(name, `cannot read the sidecar's metrics (${evidence.sidecar.metrics.error})`);
  const text = evidence.sidecar.metrics.text;
  const uploaded = metricValue(text, 'thanos_shipper_uploads_total') ?? 0;
  const blocks = evidence.prometheus?.blocks;
  const local = blocks === undefined ? '' : `; Prometheus holds ${blocks.length} block(s), ${blocks.filter((b) => b.compaction.level > 1).length} of them compacted`;
  if (metricValue(text, 'thanos_shipper_upload_compacted_done') === 1) {
    return ok(name, `done: every block Prometheus holds, compacted ones included, is in the bucket (${uploaded} uploaded since the sidecar started${local}); ` +
      `remove the annotation ${PREFIX}upload-history and roll the pod (thanos-injector rollout -n ${namespace}): a ${SIDECAR_NAME} without it is back to level-1 blocks`);
  }
  return warn(name, `in progress: ${uploaded} block(s) uploaded since the sidecar started${local}; the sidecar syncs every 30 s, oldest first`);
}
