// One admission: AdmissionReview in, AdmissionReview out. Knows the envelope and the apiserver's
// rules for responses (uid echoed, base64 JSONPatch, short single-line warnings), not Thanos.
import type { Config } from '../config/schema.ts';
import { applyPatchInPlace } from '../inject/patch.ts';
import { injectPod } from '../inject/inject.ts';
import type { PodLike } from '../inject/pod.ts';
import { checkPodObject, type AdmissionAnswer, type AdmissionResponse, type AdmissionReview } from './schema.ts';

export type Outcome = 'injected' | 'skipped' | 'denied' | 'error';

export interface ReviewResult {
  answer: AdmissionAnswer;
  outcome: Outcome;
  reason: string;
  /** For the log line: why it was denied or skipped. */
  message?: string;
}

export interface ReviewContext {
  config: Config;
  kubernetesVersion: string;
}

/** The apiserver keeps about 4 KiB of warnings in all; Kubernetes asks for lines of at most 120 characters. */
const MAX_WARNING_LINES = 24;
const MAX_WARNING_LENGTH = 120;
const PREFIX = 'thanos-injector: ';
const CONTINUED = '  ';

/**
 * One message as lines of at most 120 characters, broken at spaces, the later ones indented (kubectl
 * prints each as a Warning); at most `room` lines, and `complete` says whether they hold all of it.
 * Each line costs its own width: a message of megabytes (a fuzzed annotation) is not copied around.
 */
function wrap(message: string, room: number): { lines: string[]; complete: boolean } {
  const text = `${PREFIX}${message}`;
  const lines: string[] = [];
  let at = 0;
  while (lines.length < room) {
    const indent = lines.length === 0 ? '' : CONTINUED;
    const width = MAX_WARNING_LENGTH - indent.length;
    if (text.length - at <= width) {
      lines.push(indent + text.slice(at));
      return { lines, complete: true };
    }
    const window = text.slice(at, at + width + 1);
    const space = window.lastIndexOf(' ');
    const end = at + (space > (lines.length === 0 ? PREFIX.length : 0) ? space : width);
    lines.push(indent + text.slice(at, end).trimEnd());
    at = end;
    while (text[at] === ' ') at++;
  }
  return { lines, complete: false };
}

/** Warnings the apiserver will keep: lines without control characters, at most 120 characters each, a few dozen. */
export function toWarnings(messages: string[]): string[] {
  const lines: string[] = [];
  let complete = true;
  for (const message of messages) {
    if (lines.length === MAX_WARNING_LINES) {
      complete = false;
      break;
    }
    // eslint-disable-next-line no-control-regex
    const wrapped = wrap(message.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' '), MAX_WARNING_LINES - lines.length);
    lines.push(...wrapped.lines);
    complete = wrapped.complete;
    if (!complete) break;
  }
  if (!complete) lines.splice(MAX_WARNING_LINES - 1, lines.length, `${PREFIX}the rest is cut here: thanos-injector inject -f shows every warning whole`);
  return lines;
}

function envelope(response: AdmissionResponse): AdmissionAnswer {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

function failure(code: number, reason: string, message: string): AdmissionResponse['status'] {
  return { status: 'Failure', code, reason, message };
}

function isPodCreate(request: AdmissionReview['request']): boolean {
  return (
    request.kind.group === '' && request.kind.kind === 'Pod' && request.operation === 'CREATE' &&
    (request.subResource ?? '') === '' && request.object !== null && request.object !== undefined
  );
}

/** Reviews a schema-checked AdmissionReview. Never throws: a bug follows config.failurePolicy. */
export function review(body: AdmissionReview, context: ReviewContext): ReviewResult {
  const { request } = body;
  const uid = request.uid;
  if (!isPodCreate(request)) {
    return { answer: envelope({ uid, allowed: true }), outcome: 'skipped', reason: 'not-pod-create' };
  }
  try {
    const problems = checkPodObject(request.object);
    if (problems.length > 0) {
      // The apiserver validates pods after mutating admission: let it report what is wrong.
      const message = `pod not injected: ${problems[0]}`;
      return { answer: envelope({ uid, allowed: true, warnings: toWarnings([message]) }), outcome: 'skipped', reason: 'invalid-pod', message };
    }
    const pod = request.object as PodLike;
    const result = injectPod(pod, { config: context.config, namespace: request.namespace ?? '', kubernetesVersion: context.kubernetesVersion });
    if (result.outcome === 'denied') {
      return {
        answer: envelope({ uid, allowed: false, status: failure(400, 'BadRequest', `thanos-injector: ${result.message}`) }),
        outcome: 'denied', reason: result.reason, message: result.message,
      };
    }
    const response: AdmissionResponse = { uid, allowed: true };
    if (result.patch !== undefined) {
      const patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
      // A patch that does not apply fails pod creation even under failurePolicy Ignore: check first.
      applyPatchInPlace(pod, result.patch);
      response.patchType = 'JSONPatch';
      response.patch = patch;
    }
    if (result.warnings.length > 0) response.warnings = toWarnings(result.warnings);
    if (result.outcome === 'skipped') return { answer: envelope(response), outcome: 'skipped', reason: result.reason, message: result.message };
    return { answer: envelope(response), outcome: 'injected', reason: 'injected' };
  } catch (error) {
    const message = `internal error: ${error instanceof Error ? error.message : String(error)}`;
    if (context.config.failurePolicy === 'Fail') {
      return {
        answer: envelope({ uid, allowed: false, status: failure(500, 'InternalError', `thanos-injector: ${message}`) }),
        outcome: 'error', reason: 'internal-error', message,
      };
    }
    return {
      answer: envelope({ uid, allowed: true, warnings: toWarnings(['internal error; the pod was admitted without the Thanos sidecar']) }),
      outcome: 'error', reason: 'internal-error', message,
    };
  }
}
