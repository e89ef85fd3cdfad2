// Is the sidecar of a pod uploading blocks? Read from the sidecar's own state through the API: its
// metrics (the shipper's counters, through the pod proxy) and its recent log lines (the errors by
// name, as the seed's author found the hard-link failure). Pure: the caller fetches both.
import type { V1Pod } from '@kubernetes/client-node';
import { SIDECAR_NAME } from '../inject/names.ts';
import { flagValue } from '../inject/pod.ts';
import { lastLine } from './logs.ts';
import { sidecarOf } from './pod.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';

export interface SidecarState {
  /** The sidecar's /metrics text, or why it could not be read. */
  metrics: { text: string } | { error: string };
  /** Its recent log lines ('' when none, or unreadable). */
  log: string;
}

/**
 * The sidecar's HTTP port: its container port named http, else Thanos' default; undefined when it
 * listens on the loopback address only (listenLocal.http), which the API's pod proxy cannot reach.
 */
export function sidecarHttpPort(pod: V1Pod): number | undefined {
  const sidecar = sidecarOf(pod);
  const address = sidecar === undefined ? undefined : flagValue(sidecar, 'http-address');
  if (address !== undefined && /^(127\.[0-9.]+|localhost|\[::1\]):/.test(address)) return undefined;
  return sidecar?.ports?.find((p) => p.name === 'http')?.containerPort ?? 10902;
}

/** The sum of a counter's series in Prometheus text format (undefined when absent). */
function counter(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** When the last block was uploaded, from the shipper's "upload new block" log line. */
function lastUpload(log: string): string | undefined {
  const lines = log.split('\n').filter((line) => line.includes('msg="upload new block"'));
  return /\bts=(\S+)/.exec(lines[lines.length - 1] ?? '')?.[1];
}

/** Whether there is a sidecar to ask: the pod has one and runs. */
export function sidecarRuns(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && sidecarOf(pod) !== undefined;
}

/** `state` is what the sidecar said (undefined when it was not asked: see sidecarRuns). */
export function checkSidecarUploads(pod: V1Pod, state: SidecarState | undefined): CheckRow {
  const name = CHECK.sidecarUploads;
  if (state === undefined) {
    return skip(name, sidecarOf(pod) !== undefined ? `the pod is ${pod.status?.phase ?? 'not running'}: no upload to look at yet` : `no ${SIDECAR_NAME} container`);
  }
  const hardLink = lastLine(state.log, /hard link.*operation not permitted/);
  if (hardLink !== undefined) {
    return fail(
      name,
      `the sidecar cannot hard-link Prometheus' block files, so nothing is uploaded (${hardLink}): Prometheus and the sidecar run as different users. ` +
        'Run both as one user with a pod securityContext (runAsUser, runAsGroup, fsGroup), which the injector sets: let it inject the pod (label the namespace thanos-injection=enabled and recreate the pod)',
    );
  }
  const uploadDir = lastLine(state.log, /create upload dir.*permission denied/);
  if (uploadDir !== undefined) {
    return fail(
      name,
      `the sidecar cannot create its upload folder (${uploadDir}): the TSDB folder still holds thanos/ from a sidecar that ran as another user; remove <tsdb path>/thanos (or chown it to the pod's user) and the blocks left behind upload`,
    );
  }
  if (/no supported bucket was configured, uploads will be disabled/.test(state.log)) {
    return warn(name, 'uploads are disabled: the sidecar has no object storage configuration (it only serves Prometheus over gRPC)');
  }
  if ('error' in state.metrics) {
    return warn(name, `cannot read the sidecar's metrics through the API (${state.metrics.error}); kubectl -n ${pod.metadata?.namespace ?? ''} logs ${pod.metadata?.name ?? ''} -c ${SIDECAR_NAME}`);
  }
  const uploads = counter(state.metrics.text, 'thanos_shipper_uploads_total');
  const failures = (counter(state.metrics.text, 'thanos_shipper_upload_failures_total') ?? 0) + (counter(state.metrics.text, 'thanos_shipper_dir_sync_failures_total') ?? 0);
  if (uploads === undefined) return warn(name, "the sidecar's metrics have no thanos_shipper_uploads_total: uploads are not configured");
  const last = lastUpload(state.log);
  const lastText = last === undefined ? '' : `, the last at ${last}`;
  if (failures > 0) {
    const error = lastLine(state.log, /level=(warn|error).*(upload|shipper|sync)/i);
    const detail = `${uploads} block(s) uploaded${lastText}, ${failures} failed sync(s) or upload(s)${error ? `: ${error}` : ''}; kubectl -n ${pod.metadata?.namespace ?? ''} logs ${pod.metadata?.name ?? ''} -c ${SIDECAR_NAME}`;
    return uploads > 0 ? warn(name, detail) : fail(name, detail);
  }
  if (uploads === 0) return warn(name, 'no block uploaded yet and no failure: Prometheus cuts its first block about 1.5 block durations after it starts');
  return ok(name, `${uploads} block(s) uploaded${lastText}, no failure`);
}
