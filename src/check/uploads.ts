// Are a pod's blocks reaching the bucket, and what is waiting? Read from the sidecar (its shipper's
// counters, the time of its last successful upload, its recent log lines) and from Prometheus (the
// blocks it has cut, from /api/v1/status/tsdb/blocks on 3.6 and later; its block duration and retention),
// then set against each other: the blocks cut that the sidecar has not uploaded, the oldest one's
// age, when retention deletes it. A stall counts as much as a failure: a block cut and not uploaded
// while no upload finishes is named within a few sync periods, whether the bucket refuses the
// requests or they hang. One judgement for `check --pod` and `register` (events, metrics). Pure:
// the callers fetch (readUploadEvidence takes their way to GET a pod's port).
import type { V1Pod } from '@kubernetes/client-node';
import { SIDECAR_NAME } from '../inject/names.ts';
import { flagValue } from '../inject/pod.ts';
import { formatDuration, parseDuration } from '../units.ts';
import { lastLine } from './logs.ts';
import { sidecarOf } from './pod.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';

export interface SidecarState {
  /** The sidecar's /metrics text, or why it could not be read. */
  metrics: { text: string } | { error: string };
  /** Its recent log lines ('' when none, or not read). */
  log: string;
  /** Why its log could not be read, when it was asked and could not be. */
  logError?: string;
}

/** A block in Prometheus' TSDB, as /api/v1/status/tsdb/blocks lists it. */
export interface LocalBlock {
  ulid: string;
  minTime: number;
  maxTime: number;
  stats?: { numSamples?: number };
  compaction: { level: number };
}

/** What Prometheus says about its blocks; each part absent when it could not be read. */
export interface PrometheusState {
  /** Prometheus 3.6 and later; older ones answer 404. */
  blocks?: LocalBlock[];
  /** The effective retention (runtimeinfo's storageRetention: `15d`, `10GiB`, `15d or 10GiB`). */
  retention?: string;
  /** --storage.tsdb.min-block-duration. */
  minBlockDuration?: string;
  /** Why a part could not be read (the first such reason). */
  error?: string;
}

export interface UploadEvidence {
  sidecar: SidecarState;
  /** Undefined when Prometheus was not asked (no address for it). */
  prometheus: PrometheusState | undefined;
}

/** The sidecar syncs every 30 s (fixed in Thanos); a block waiting longer than three syncs with no upload finishing is stuck. */
export const SYNC_PERIOD_MS = 30_000;
export const STALL_AFTER_MS = 3 * SYNC_PERIOD_MS;

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

/** Where the sidecar calls Prometheus (its --prometheus.url): the port and route prefix, when plain HTTP on the pod. */
export function prometheusAddress(pod: V1Pod): { port: number; prefix: string } | { error: string } {
  const sidecar = sidecarOf(pod);
  const url = sidecar === undefined ? undefined : flagValue(sidecar, 'prometheus.url');
  const match = /^http:\/\/(?:localhost|127\.0\.0\.1|\[::1\]):([0-9]+)(\/.*)?$/.exec(url ?? 'http://localhost:9090');
  if (match === null) return { error: `the sidecar calls Prometheus at ${url ?? '?'}, which is not read here (plain HTTP on the pod only)` };
  return { port: Number(match[1]), prefix: (match[2] ?? '').replace(/\/$/, '') };
}

/** Whether there is a sidecar to ask: the pod has one and runs. */
export function sidecarRuns(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && sidecarOf(pod) !== undefined;
}

/** GET `path` of a port of the pod: through the API's pod proxy (check) or the pod's IP (register). */
export type PodGet = (port: number, path: string) => Promise<string>;

const errorOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A read that may fail: its value, or why not. */
type Read<T> = { value: T } | { error: string };
const attempt = <T>(promise: Promise<T>): Promise<Read<T>> => promise.then((value) => ({ value }), (error: unknown) => ({ error: errorOf(error) }));

/** What Prometheus says of its blocks, retention and block duration, each part read on its own (Prometheus before 3.6 has no block list). */
async function readPrometheus(get: PodGet, { port, prefix }: { port: number; prefix: string }): Promise<PrometheusState> {
  const data = async <T>(path: string): Promise<T> => (JSON.parse(await get(port, `${prefix}${path}`)) as { data: T }).data;
  const [blocks, runtime, flags] = await Promise.all([
    attempt(data<{ blocks: LocalBlock[] }>('/api/v1/status/tsdb/blocks')),
    attempt(data<{ storageRetention?: string }>('/api/v1/status/runtimeinfo')),
    attempt(data<Record<string, string>>('/api/v1/status/flags')),
  ]);
  const state: PrometheusState = {};
  if ('value' in blocks) state.blocks = blocks.value.blocks;
  if ('value' in runtime && runtime.value.storageRetention !== undefined) state.retention = runtime.value.storageRetention;
  if ('value' in flags && flags.value['storage.tsdb.min-block-duration'] !== undefined) state.minBlockDuration = flags.value['storage.tsdb.min-block-duration'];
  if ('error' in runtime) state.error = `cannot read Prometheus' status (${runtime.error})`;
  return state;
}

/** Reads the sidecar's metrics and what Prometheus says of its blocks and retention; `log`: the sidecar's recent lines, if read. */
export async function readUploadEvidence(pod: V1Pod, get: PodGet, log: Promise<string>): Promise<UploadEvidence> {
  const port = sidecarHttpPort(pod);
  const address = prometheusAddress(pod);
  const [metrics, read, prometheus] = await Promise.all([
    port === undefined
      ? { error: 'its HTTP server listens on 127.0.0.1 only (listenLocal.http), out of reach' }
      : attempt(get(port, '/metrics')).then((read) => ('value' in read ? { text: read.value } : read)),
    log.then((text): { text: string; error?: string } => ({ text }), (error: Error) => ({ text: '', error: error.message })),
    'error' in address ? { error: address.error } : readPrometheus(get, address),
  ]);
  return { sidecar: { metrics, log: read.text, ...(read.error === undefined ? {} : { logError: read.error }) }, prometheus };
}

/** The sum of a metric's series in Prometheus text format, and the value of one label (undefined when absent). */
function sample(text: string, name: string): { value: number | undefined; label: (label: string) => string | undefined } {
  let total: number | undefined;
  let first = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (!Number.isFinite(value)) continue;
    total = (total ?? 0) + value;
    if (first === '') first = line;
  }
  return { value: total, label: (label) => new RegExp(`[{,]${label}="([^"]*)"`).exec(first)?.[1] };
}

/** The sum of a metric's series (undefined when absent). */
export const metricValue = (text: string, name: string): number | undefined => sample(text, name).value;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** When a block was written: the first ten characters of its ULID are the time in ms. */
export function ulidTime(ulid: string): number | undefined {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(ulid)) return undefined;
  let time = 0;
  for (const char of ulid.slice(0, 10)) time = time * 32 + CROCKFORD.indexOf(char);
  return time;
}

export interface PendingBlock {
  /** Undefined when Prometheus does not list its blocks (before 3.6): the newest block, estimated from its head. */
  ulid?: string;
  cutAt: number;
  maxTime: number;
}

/** What the evidence says about a sidecar's uploads, at `now`. */
export interface Backlog {
  /** When it was judged (ms). */
  at: number;
  /** The bucket's name, from the sidecar's metrics. */
  bucket?: string;
  uploads: number;
  /** Failed syncs and uploads since the sidecar started. */
  failures: number;
  /** Failed requests to the bucket since the sidecar started. */
  requestFailures: number;
  /** The last successful upload of an object (ms); undefined: none since the sidecar started. */
  lastUpload?: number;
  startedAt?: number;
  /** Blocks Prometheus cut that are not uploaded, oldest first. */
  pending: PendingBlock[];
  /** false: Prometheus does not list its blocks, so `pending` holds at most the newest one (there may be more). */
  exact: boolean;
  /** The earliest time time-based retention deletes the oldest pending block (ms). */
  deletionAt?: number;
  retention?: string;
  /** Blocks wait longer than three syncs while no upload finishes. */
  stalled: boolean;
}

/** Time-based retention in ms (runtimeinfo's `15d`, `15d or 10GiB`); undefined when only size-based, or unknown. */
function retentionTime(retention: string | undefined): number | undefined {
  const time = retention?.split(' or ').map((part) => parseDuration(part.trim())).find((ms) => ms !== undefined);
  return time === undefined || time === 0 ? undefined : time;
}

/** undefined when the sidecar does not upload (no shipper metrics). */
export function uploadBacklog(evidence: UploadEvidence, now: number): Backlog | undefined {
  if ('error' in evidence.sidecar.metrics) return undefined;
  const { text } = evidence.sidecar.metrics;
  const uploads = sample(text, 'thanos_shipper_uploads_total').value;
  if (uploads === undefined) return undefined;
  const last = sample(text, 'thanos_objstore_bucket_last_successful_upload_time');
  const syncs = sample(text, 'thanos_shipper_dir_syncs_total').value ?? 0;
  const startedSeconds = sample(text, 'process_start_time_seconds').value;
  const startedAt = startedSeconds === undefined ? undefined : startedSeconds * 1000;
  const lastUpload = last.value !== undefined && last.value > 0 ? last.value * 1000 : undefined;
  // A block written before this time is uploaded: the shipper uploads oldest first and stops at the
  // first failure, so a later successful upload went past it; with none since the start, a sync
  // that succeeded saw every block written before the start (in the bucket, or uploaded then).
  const uploadedBefore = lastUpload ?? (syncs > 0 ? startedAt : undefined) ?? 0;
  const prometheus = evidence.prometheus;
  const minBlock = parseDuration(prometheus?.minBlockDuration ?? '') ?? 2 * 3600e3;
  let pending: PendingBlock[] = [];
  let exact = false;
  if (prometheus?.blocks !== undefined) {
    exact = true;
    pending = prometheus.blocks
      .filter((block) => block.compaction.level === 1 && (block.stats?.numSamples ?? 0) > 0)
      .map((block) => ({ ulid: block.ulid, cutAt: ulidTime(block.ulid) ?? block.maxTime, maxTime: block.maxTime }))
      .filter((block) => block.cutAt > uploadedBefore)
      .sort((a, b) => a.cutAt - b.cutAt);
  } else if (prometheus !== undefined && prometheus.error === undefined) {
    // Before 3.6 Prometheus does not list its blocks, but it cuts one every block duration (the
    // first once its head spans 1.5 of them): with no upload for longer, at least one waits. When
    // it was cut is not known; this is the latest it can have been.
    const since = lastUpload ?? startedAt;
    const cutBy = since === undefined ? undefined : since + (lastUpload === undefined ? 1.5 : 1) * minBlock;
    if (cutBy !== undefined && cutBy < now) pending = [{ cutAt: cutBy, maxTime: cutBy - minBlock / 2 }];
  }
  const retention = prometheus?.retention;
  const keep = retentionTime(retention);
  const oldest = pending[0];
  const quietSince = lastUpload ?? startedAt ?? 0;
  return {
    at: now,
    bucket: last.label('bucket') ?? sample(text, 'thanos_objstore_bucket_operations_total').label('bucket'),
    uploads,
    failures: (sample(text, 'thanos_shipper_upload_failures_total').value ?? 0) + (sample(text, 'thanos_shipper_dir_sync_failures_total').value ?? 0),
    requestFailures: sample(text, 'thanos_objstore_bucket_operation_failures_total').value ?? 0,
    ...(lastUpload !== undefined ? { lastUpload } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    pending,
    exact,
    ...(oldest !== undefined && keep !== undefined ? { deletionAt: oldest.maxTime + keep } : {}),
    ...(retention !== undefined ? { retention } : {}),
    stalled: oldest !== undefined && now - oldest.cutAt > STALL_AFTER_MS && now - quietSince > STALL_AFTER_MS,
  };
}

/** A time as ISO 8601 (to the second); what a peer said is not trusted to be one. */
const iso = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : 'an unknown time');
const ago = (ms: number, now: number) => `${iso(ms)}, ${formatDuration(now - ms)} ago`;

/** Why uploads do not finish, as far as the sidecar's log and counters tell. */
export function stallCause(backlog: Backlog, { log, logError }: Pick<SidecarState, 'log' | 'logError'>): string {
  const error = lastLine(log, /level=(warn|error).*(upload|shipper|sync|exists|bucket)/i);
  const where = backlog.bucket === undefined ? 'object storage' : `bucket ${backlog.bucket}`;
  if (error !== undefined) {
    // Judged without the URLs the line quotes: their paths hold block ULIDs and object names, in which
    // any three digits can appear (CI once read a ULID's "404" as a missing bucket).
    const said = error.replace(/"?https?:\/\/[^\s"]*"?/g, '');
    if (/Access Denied|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|\b403\b|Forbidden|Unauthorized|\b401\b/i.test(said)) return `${where} refuses the sidecar's credentials (${error})`;
    if (/NoSuchBucket|bucket does not exist|\b404\b/.test(said)) return `${where} does not exist (${error})`;
    if (/connection refused|no such host|i\/o timeout|network is unreachable|no route to host|timeout awaiting response headers|context deadline exceeded|connection reset|\bEOF\b/i.test(said)) return `${where} is unreachable (${error})`;
    return `the sidecar's last error: ${error}`;
  }
  if (backlog.requestFailures > 0) {
    const log = logError === undefined ? 'its log says why' : `its log, which says why, could not be read: ${logError}`;
    return `requests to ${where} fail (${backlog.requestFailures} failed since the sidecar started; ${log})`;
  }
  return `no request to ${where} has failed either: they hang (object storage frozen, or its traffic dropped on the way)`;
}

/** `3 block(s) not uploaded, the oldest cut 5m ago`, with what retention will do to it. */
export function describeBacklog(backlog: Backlog, now: number): string {
  const oldest = backlog.pending[0];
  if (oldest === undefined) return 'no block waits';
  const count = backlog.exact ? `${backlog.pending.length} block(s)` : 'at least 1 block (Prometheus before 3.6 does not list its blocks)';
  const name = oldest.ulid === undefined ? '' : ` ${oldest.ulid}`;
  let text = `${count} cut by Prometheus not uploaded, the oldest${name} cut ${ago(oldest.cutAt, now)} (samples up to ${iso(oldest.maxTime)})`;
  if (backlog.deletionAt !== undefined) {
    text += backlog.deletionAt <= now
      ? `; retention (${backlog.retention ?? '?'}) deletes it at its next run, before it is uploaded`
      : `; retention (${backlog.retention ?? '?'}) deletes it, uploaded or not, at the earliest at ${iso(backlog.deletionAt)} (in ${formatDuration(backlog.deletionAt - now)})`;
  } else if (backlog.retention !== undefined) {
    text += `; retention ${backlog.retention} deletes blocks by size, uploaded or not`;
  }
  return text;
}

/** `the last upload finished at ...` or `no upload finished since the sidecar started at ...`. */
export function lastUploadText(backlog: Backlog, now: number): string {
  if (backlog.lastUpload !== undefined) return `the last upload finished at ${ago(backlog.lastUpload, now)}`;
  return backlog.startedAt === undefined ? 'no upload finished since the sidecar started' : `no upload finished since the sidecar started at ${ago(backlog.startedAt, now)}`;
}

/** `evidence` is what the sidecar and Prometheus said (undefined when not asked: see sidecarRuns). */
export function checkSidecarUploads(pod: V1Pod, evidence: UploadEvidence | undefined, now: number): CheckRow {
  const name = CHECK.sidecarUploads;
  if (evidence === undefined) {
    return skip(name, sidecarOf(pod) !== undefined ? `the pod is ${pod.status?.phase ?? 'not running'}: no upload to look at yet` : `no ${SIDECAR_NAME} container`);
  }
  const { sidecar } = evidence;
  const namespace = pod.metadata?.namespace ?? '';
  const logs = `kubectl -n ${namespace} logs ${pod.metadata?.name ?? ''} -c ${SIDECAR_NAME}`;
  const hardLink = lastLine(sidecar.log, /hard link.*operation not permitted/);
  if (hardLink !== undefined) {
    return fail(
      name,
      `the sidecar cannot hard-link Prometheus' block files, so nothing is uploaded (${hardLink}): Prometheus and the sidecar run as different users. ` +
        'Run both as one user with a pod securityContext (runAsUser, runAsGroup, fsGroup), which the injector sets: let it inject the pod (label the namespace thanos-injection=enabled and recreate the pod)',
    );
  }
  const uploadDir = lastLine(sidecar.log, /create upload dir.*permission denied/);
  if (uploadDir !== undefined) {
    return fail(
      name,
      `the sidecar cannot create its upload folder (${uploadDir}): the TSDB folder still holds thanos/ from a sidecar that ran as another user; remove <tsdb path>/thanos (or chown it to the pod's user) and the blocks left behind upload`,
    );
  }
  if (/no supported bucket was configured, uploads will be disabled/.test(sidecar.log)) {
    return warn(name, 'uploads are disabled: the sidecar has no object storage configuration (it only serves Prometheus over gRPC)');
  }
  if ('error' in sidecar.metrics) return warn(name, `cannot read the sidecar's metrics (${sidecar.metrics.error}); ${logs}`);
  const backlog = uploadBacklog(evidence, now);
  if (backlog === undefined) return warn(name, "the sidecar's metrics have no thanos_shipper_uploads_total: uploads are not configured");
  const waiting = describeBacklog(backlog, now);
  const unread = evidence.prometheus?.error === undefined ? '' : ` (${evidence.prometheus.error}: the blocks waiting are not known)`;
  if (backlog.stalled) {
    return fail(name, `uploads are stalled: ${waiting}; ${lastUploadText(backlog, now)}: ${stallCause(backlog, sidecar)}; ${logs}`);
  }
  const done = `${backlog.uploads} block(s) uploaded since the sidecar started, ${lastUploadText(backlog, now)}`;
  if (backlog.failures > 0) {
    const error = lastLine(sidecar.log, /level=(warn|error).*(upload|shipper|sync)/i);
    const detail = `${done}; ${backlog.failures} failed sync(s) or upload(s)${error ? `: ${error}` : ''}; ${waiting}${unread}; ${logs}`;
    return backlog.uploads > 0 || backlog.lastUpload !== undefined ? warn(name, detail) : fail(name, detail);
  }
  const cut = evidence.prometheus?.blocks?.some((block) => block.compaction.level === 1 && (block.stats?.numSamples ?? 0) > 0) ?? false;
  if (backlog.uploads === 0 && backlog.lastUpload === undefined && backlog.pending.length === 0 && !cut) {
    return warn(name, `no block uploaded yet and no failure: Prometheus cuts its first block about 1.5 block durations after it starts${unread}`);
  }
  return ok(name, `${done}; ${waiting === 'no block waits' ? 'no block waits' : `${waiting}: the next sync (every 30s) takes it`}${unread}`);
}
