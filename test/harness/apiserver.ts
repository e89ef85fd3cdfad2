// A test double for kube-apiserver's side of a mutating admission webhook
// call: it builds the admission.k8s.io/v1 AdmissionReview, POSTs it over
// HTTPS/1.1 with certificate verification, checks the answer in the order the
// apiserver does, applies the JSON patch with evanphx/json-patch v4 semantics,
// re-applies the Pod defaults and validates the result.
//
// Sources (kubernetes/kubernetes, staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook):
// - request/admissionreview.go: CreateV1AdmissionReview, VerifyAdmissionResponse
// - mutating/dispatcher.go: failurePolicy handling, patch application,
//   defaulting of the patched object, reinvocation
// - endpoints/filters/warning.go + util/net NewWarningHeader: warning filtering
// See also /work/shared/reference/admission-facts.md, sections 1, 2, 5, 6.

import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { applyPatchStrict } from './jsonpatch.ts';
import { applyPodDefaults } from './pod-defaults.ts';
import { validatePod } from './pod-validation.ts';
import { isRecord, jsonClone, jsonEqual } from './json.ts';
import type { JsonRecord } from './json.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
}

export interface AdmitOptions {
  /** Webhook URL without a query, e.g. https://127.0.0.1:8443/mutate (`?timeout=10s` is appended). */
  url: string;
  /** PEM CA bundle used to verify the serving certificate (the caBundle). */
  ca: string;
  /** request.namespace (always set by the apiserver for namespaced objects). */
  namespace: string;
  /** Default CREATE. */
  operation?: Operation;
  /** request.dryRun, always sent. Default false. */
  dryRun?: boolean;
  /** request.name. Default: object.metadata.name, else "" (generateName pods). */
  name?: string;
  /** request.kind and requestKind. Default {group:'',version:'v1',kind:'Pod'}. */
  kind?: GroupVersionKind;
  /** request.resource and requestResource. Default {group:'',version:'v1',resource:'pods'}. */
  resource?: GroupVersionResource;
  /** Default Fail (the MutatingWebhookConfiguration default). */
  failurePolicy?: 'Fail' | 'Ignore';
  /** request.oldObject for UPDATE/DELETE (null otherwise). For DELETE, defaults to `object`. */
  oldObject?: unknown;
  /** TLS server name to verify (and send as SNI), e.g. `svc.ns.svc`, when the URL host is an IP. */
  servername?: string;
  /** timeoutSeconds of the webhook configuration (1..30, default 10). */
  timeoutSeconds?: number;
  /** request.userInfo. Default: the ReplicaSet controller's service account. */
  userInfo?: UserInfo;
  /**
   * The apiserver sends the webhook an object that is already defaulted.
   * For Pods the harness applies the v1 defaults to `object` before sending
   * it, unless this is true.
   */
  skipInputDefaults?: boolean;
  /** For StatefulSet-style pods, names that volumeMounts may refer to besides spec.volumes. */
  volumeClaimTemplateNames?: string[];
}

export interface AdmitResult {
  /** Whether the request was admitted (true also when an Ignore policy failed open). */
  allowed: boolean;
  /** The status of a denial as the client would see it (code defaults to 403). */
  status?: { code?: number; message?: string; reason?: string };
  /** Warnings the apiserver would pass on to the client. */
  warnings: string[];
  /** Warnings the apiserver would silently drop (empty, control characters, invalid UTF-8). */
  droppedWarnings: string[];
  /** The decoded JSON Patch ([] when there was none). */
  ops: unknown[];
  /** The object after the patch and the v1 defaults (the sent object when nothing was patched). */
  object: unknown;
  /** The object that was sent in request.object. */
  sentObject: unknown;
  /** Whether `object` differs from `sentObject` (what triggers reinvocation). */
  changed: boolean;
  auditAnnotations?: Record<string, string>;
  /** The raw AdmissionReview the webhook answered (undefined when there was no parseable answer). */
  response: unknown;
  /** The AdmissionReview that was sent. */
  request: JsonRecord;
  /** HTTP status of the answer (0 when no HTTP answer arrived). */
  httpStatus: number;
  /** Set when the call failed and failurePolicy Ignore let the request through. */
  webhookError?: string;
}

const DEFAULT_KIND: GroupVersionKind = { group: '', version: 'v1', kind: 'Pod' };
const DEFAULT_RESOURCE: GroupVersionResource = { group: '', version: 'v1', resource: 'pods' };
const DEFAULT_USER: UserInfo = {
  username: 'system:serviceaccount:kube-system:replicaset-controller',
  uid: 'b9a7a2f4-3a1e-4a55-9d0e-5f6a4c0f4c11',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
};
const OPTIONS_KIND: Record<Operation, string | undefined> = {
  CREATE: 'CreateOptions',
  UPDATE: 'UpdateOptions',
  DELETE: 'DeleteOptions',
  CONNECT: undefined,
};

/**
 * A failure of the webhook call itself (transport, HTTP, undecodable or
 * invalid AdmissionReview): the only kind of failure failurePolicy governs
 * (webhookutil.ErrCallingWebhook in the dispatcher).
 */
class WebhookCallError extends Error {
  readonly httpStatus: number;
  readonly response: unknown;
  constructor(reason: string, httpStatus = 0, response: unknown = undefined) {
    super(reason);
    this.name = 'WebhookCallError';
    this.httpStatus = httpStatus;
    this.response = response;
  }
}

/** CreateV1AdmissionReview: the request the apiserver sends. */
export function buildAdmissionReview(object: unknown, opts: AdmitOptions, uid: string = randomUUID()): JsonRecord {
  const operation: Operation = opts.operation ?? 'CREATE';
  const kind = opts.kind ?? DEFAULT_KIND;
  const resource = opts.resource ?? DEFAULT_RESOURCE;
  const meta = isRecord(object) && isRecord(object.metadata) ? object.metadata : {};
  const name = opts.name ?? (typeof meta.name === 'string' ? meta.name : '');
  const optionsKind = OPTIONS_KIND[operation];
  const request: JsonRecord = {
    uid,
    kind,
    resource,
    // subResource is omitted when empty (omitempty).
    requestKind: kind,
    requestResource: resource,
    name,
    namespace: opts.namespace,
    operation,
    userInfo: opts.userInfo ?? DEFAULT_USER,
    // DELETE sends no object, only oldObject.
    object: operation === 'DELETE' ? null : object,
    oldObject: operation === 'UPDATE' ? (opts.oldObject ?? null) : operation === 'DELETE' ? (opts.oldObject ?? object) : null,
    dryRun: opts.dryRun ?? false,
    options: optionsKind ? { apiVersion: 'meta.k8s.io/v1', kind: optionsKind } : null,
  };
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

interface HttpAnswer {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

/** POST the review over HTTPS/1.1, verifying the server against `ca`. */
function post(opts: AdmitOptions, body: string): Promise<HttpAnswer> {
  const timeoutSeconds = opts.timeoutSeconds ?? 10;
  const url = new URL(opts.url);
  if (url.protocol !== 'https:') return Promise.reject(new WebhookCallError(`webhook URL must be https: ${opts.url}`));
  if (url.search || url.hash || url.username || url.password) {
    // clientConfig.url may not carry a query, fragment or user info (RT).
    return Promise.reject(new WebhookCallError(`webhook URL may not have a query, fragment or user info: ${opts.url}`));
  }
  // The apiserver appends ?timeout=<timeoutSeconds>s to the path.
  url.search = `?timeout=${timeoutSeconds}s`;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        ca: opts.ca,
        ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
        minVersion: 'TLSv1.2',
        agent: false, // a fresh connection per call, nothing kept alive
        signal: AbortSignal.timeout(timeoutSeconds * 1000),
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, */*',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks) }),
        );
        res.on('error', (err: Error) => reject(new WebhookCallError(`reading response: ${err.message}`, res.statusCode ?? 0)));
      },
    );
    req.on('error', (err: Error) => {
      const reason = err.name === 'AbortError' || err.name === 'TimeoutError' ? `context deadline exceeded (timeout ${timeoutSeconds}s)` : err.message;
      reject(new WebhookCallError(`Post "${url.toString()}": ${reason}`));
    });
    req.end(body);
  });
}

/** Go's encoding/json decodes []byte from standard, padded base64 (CR/LF ignored). */
function decodeBase64Std(text: string): Buffer | undefined {
  const s = text.replace(/[\r\n]/g, '');
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

/**
 * NewWarningHeader rejects (and the recorder silently drops) warnings that
 * are empty or contain control characters (unicode.IsControl: C0, DEL, C1).
 * Invalid UTF-8 cannot survive JSON decoding (Go, like TextDecoder, turns it
 * into U+FFFD), so it is not checked here.
 */
function isDeliverableWarning(w: string): boolean {
  // eslint-disable-next-line no-control-regex
  return w.length > 0 && !/[\u0000-\u001f\u007f-\u009f]/.test(w);
}

interface VerifiedResponse {
  review: JsonRecord;
  response: JsonRecord;
  allowed: boolean;
  patch: Buffer | undefined;
  warnings: string[];
  auditAnnotations: Record<string, string> | undefined;
  status: JsonRecord | undefined;
}

/**
 * Decode the body into an AdmissionReview and run VerifyAdmissionResponse,
 * in the apiserver's order. Any failure is a WebhookCallError.
 */
function verifyResponse(answer: HttpAnswer, uid: string): VerifiedResponse {
  const { status } = answer;
  if (status !== 200) {
    const snippet = answer.body.toString('utf8').slice(0, 200);
    throw new WebhookCallError(`the server responded with HTTP ${status}: ${snippet}`, status);
  }
  // client-go: a content type that has no decoder cannot be decoded; an
  // absent one defaults to the client's (application/json).
  if (answer.contentType !== undefined) {
    const mediaType = answer.contentType.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') {
      throw new WebhookCallError(`serializer for ${answer.contentType} doesn't exist`, status);
    }
  }
  let review: unknown;
  try {
    review = JSON.parse(new TextDecoder('utf-8').decode(answer.body));
  } catch (err) {
    throw new WebhookCallError(`response body is not JSON: ${(err as Error).message}`, status);
  }
  if (!isRecord(review)) throw new WebhookCallError('response body is not a JSON object', status, review);

  // 1. response present
  const response = review.response;
  if (!isRecord(response)) throw new WebhookCallError('webhook response was absent', status, review);
  // 2. uid echoes the request uid
  if (response.uid !== uid) {
    throw new WebhookCallError(`expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? '')}`, status, review);
  }
  // 3. apiVersion/kind
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw new WebhookCallError(
      `expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${String(review.apiVersion)}, Kind=${String(review.kind)}`,
      status,
      review,
    );
  }
  // Field types, as the typed Go decoder would enforce them.
  if (response.allowed !== undefined && typeof response.allowed !== 'boolean') {
    throw new WebhookCallError('cannot decode response.allowed: not a boolean', status, review);
  }
  let patch: Buffer | undefined;
  if (response.patch !== undefined && response.patch !== null) {
    if (typeof response.patch !== 'string') throw new WebhookCallError('cannot decode response.patch: not a base64 string', status, review);
    patch = decodeBase64Std(response.patch);
    if (!patch) throw new WebhookCallError('cannot decode response.patch: illegal base64 data', status, review);
  }
  const patchType = response.patchType ?? '';
  if (typeof patchType !== 'string') throw new WebhookCallError('cannot decode response.patchType: not a string', status, review);
  let warnings: string[] = [];
  if (response.warnings !== undefined && response.warnings !== null) {
    if (!Array.isArray(response.warnings) || !response.warnings.every((w) => typeof w === 'string')) {
      throw new WebhookCallError('cannot decode response.warnings: not an array of strings', status, review);
    }
    warnings = response.warnings;
  }
  let auditAnnotations: Record<string, string> | undefined;
  if (response.auditAnnotations !== undefined && response.auditAnnotations !== null) {
    const aa = response.auditAnnotations;
    if (!isRecord(aa) || !Object.values(aa).every((v) => typeof v === 'string')) {
      throw new WebhookCallError('cannot decode response.auditAnnotations: not a map of strings', status, review);
    }
    auditAnnotations = aa as Record<string, string>;
  }
  let statusObj: JsonRecord | undefined;
  if (response.status !== undefined && response.status !== null) {
    if (!isRecord(response.status)) throw new WebhookCallError('cannot decode response.status: not an object', status, review);
    statusObj = response.status;
  }
  // 4. patch / patchType: a patch needs patchType JSONPatch (the only accepted
  // value); patchType without a patch is accepted (no change).
  if (patchType === '') {
    if (patch && patch.length > 0) throw new WebhookCallError('webhook returned response.patch but not response.patchType', status, review);
  } else if (patchType !== 'JSONPatch') {
    throw new WebhookCallError(`webhook returned invalid response.patchType of ${JSON.stringify(patchType)}`, status, review);
  }
  return {
    review,
    response,
    // A missing `allowed` decodes as false: the request is denied.
    allowed: response.allowed === true,
    patch,
    warnings,
    auditAnnotations,
    status: statusObj,
  };
}

function splitWarnings(all: string[]): { warnings: string[]; droppedWarnings: string[] } {
  const warnings: string[] = [];
  const droppedWarnings: string[] = [];
  for (const w of all) (isDeliverableWarning(w) ? warnings : droppedWarnings).push(w);
  return { warnings, droppedWarnings };
}

function containerNames(obj: unknown): string[] {
  const spec = isRecord(obj) && isRecord(obj.spec) ? obj.spec : {};
  const names: string[] = [];
  for (const list of ['initContainers', 'containers'] as const) {
    const arr = spec[list];
    if (Array.isArray(arr)) for (const c of arr) names.push(isRecord(c) && typeof c.name === 'string' ? `${list}/${c.name}` : `${list}/?`);
  }
  return names;
}

/**
 * Call the webhook once, as kube-apiserver would, and return what the
 * apiserver would make of the answer.
 *
 * Throws:
 * - `failed calling webhook: <reason>` for a transport/response failure when
 *   failurePolicy is Fail (the default);
 * - `patch does not apply: <reason>` when the patch is not a JSON array or
 *   fails to apply (an InternalError: rejected even with Ignore);
 * - `invalid pod after patch: <errors>` when the patched, defaulted Pod fails
 *   validation.
 * A denial (`allowed: false`) is a result, never an exception.
 */
export async function admit(object: unknown, opts: AdmitOptions): Promise<AdmitResult> {
  const kind = opts.kind ?? DEFAULT_KIND;
  const isPod = kind.group === '' && kind.kind === 'Pod';
  const operation = opts.operation ?? 'CREATE';
  const sentObject = isPod && !opts.skipInputDefaults && operation !== 'DELETE' ? applyPodDefaults(object) : jsonClone(object);
  const uid = randomUUID();
  const review = buildAdmissionReview(sentObject, opts, uid);

  let verified: VerifiedResponse;
  let httpStatus = 0;
  try {
    const answer = await post(opts, JSON.stringify(review));
    httpStatus = answer.status;
    verified = verifyResponse(answer, uid);
  } catch (err) {
    if (!(err instanceof WebhookCallError)) throw err;
    if ((opts.failurePolicy ?? 'Fail') === 'Fail') {
      throw new Error(`failed calling webhook: ${err.message}`, { cause: err });
    }
    // failurePolicy Ignore: fail open, the object goes on unchanged.
    return {
      allowed: true,
      warnings: [],
      droppedWarnings: [],
      ops: [],
      object: sentObject,
      sentObject,
      changed: false,
      response: err.response,
      request: review,
      httpStatus: err.httpStatus || httpStatus,
      webhookError: err.message,
    };
  }

  // The dispatcher records audit annotations and warnings before looking at `allowed`.
  const { warnings, droppedWarnings } = splitWarnings(verified.warnings);
  const base = {
    warnings,
    droppedWarnings,
    sentObject,
    response: verified.review,
    request: review,
    httpStatus,
    ...(verified.auditAnnotations ? { auditAnnotations: verified.auditAnnotations } : {}),
  };

  // allowed:false always rejects, whatever failurePolicy (403 unless the webhook set a code).
  if (!verified.allowed) {
    const st = verified.status ?? {};
    return {
      ...base,
      allowed: false,
      status: {
        code: typeof st.code === 'number' && st.code !== 0 ? st.code : 403,
        ...(typeof st.message === 'string' ? { message: st.message } : {}),
        ...(typeof st.reason === 'string' ? { reason: st.reason } : {}),
      },
      ops: [],
      object: sentObject,
      changed: false,
    };
  }

  // Empty patch or [] = no change.
  let ops: unknown[] = [];
  if (verified.patch && verified.patch.length > 0) {
    let decoded: unknown;
    try {
      decoded = JSON.parse(verified.patch.toString('utf8'));
    } catch (err) {
      // jsonpatch.DecodePatch failure -> apierrors.NewInternalError: not covered by failurePolicy.
      throw new Error(`patch does not apply: patch is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(decoded)) throw new Error('patch does not apply: patch is not a JSON array of operations');
    ops = decoded;
  }
  if (ops.length === 0) {
    return { ...base, allowed: true, ops, object: sentObject, changed: false };
  }
  if (operation === 'DELETE' || sentObject === null || sentObject === undefined) {
    throw new Error('patch does not apply: the webhook attempted to modify the object, which is not supported for this operation');
  }

  let patched: unknown;
  try {
    patched = applyPatchStrict(sentObject, ops);
  } catch (err) {
    // A patch that fails to apply is an InternalError: rejected even with Ignore.
    throw new Error(`patch does not apply: ${(err as Error).message}`, { cause: err });
  }

  let result = patched;
  if (isPod) {
    // The patched JSON is decoded and defaulted again, then validated
    // (ValidatePodCreate, or the container-set rule of ValidatePodUpdate).
    result = applyPodDefaults(patched);
    const errors = validatePod(result, opts.volumeClaimTemplateNames ? { volumeClaimTemplateNames: opts.volumeClaimTemplateNames } : {});
    if (operation === 'UPDATE') {
      const before = containerNames(sentObject).join(',');
      const after = containerNames(result).join(',');
      if (before !== after) errors.push(`spec: Forbidden: pod updates may not add or remove containers (${before} -> ${after})`);
    }
    if (errors.length > 0) throw new Error(`invalid pod after patch: ${errors.join('; ')}`);
  }
  return { ...base, allowed: true, ops, object: result, changed: !jsonEqual(result, sentObject) };
}

/**
 * Call the webhook, then call it again with the mutated and defaulted object
 * and a fresh uid, as reinvocationPolicy IfNeeded does. An idempotent webhook
 * answers the second call with no change (`second.changed === false`).
 * Throws when the first call denies the request (there is nothing to reinvoke).
 */
export async function admitWithReinvocation(
  object: unknown,
  opts: AdmitOptions,
): Promise<{ first: AdmitResult; second: AdmitResult }> {
  const first = await admit(object, opts);
  if (!first.allowed) {
    throw new Error(`cannot reinvoke: the first call denied the request (${first.status?.message ?? 'no message'})`);
  }
  // The object is already defaulted; send it as it is.
  const second = await admit(first.object, { ...opts, skipInputDefaults: true });
  return { first, second };
}
