// The Kubernetes Events registration records on pods (shown by `kubectl describe pod`). Pure.
//
// Each event has a name derived from the pod's uid and the reason, so recording it twice is the
// same object. That is how "newly registered" is decided, the same way in both endpoint modes: a
// pod is new when its ThanosSidecarRegistered event does not exist yet, and the create itself
// tells (201 new, 409 already recorded), atomically and with only the create/patch rights the
// chart grants on events (no list or get). Pods are never annotated: the job does not mutate them.
// (The ConfigMap's previous addresses were the alternative for pod-ip mode, but pod IPs are
// reused, and dnssrv mode has no per-pod trace there.) Events expire with the apiserver's
// --event-ttl (1h by default); a pod still registered after that is announced once more. The
// sidecar-problem warnings (no or shared external labels) are recorded once per pod the same way.
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { REPLICA_LABEL_FIX, SHARED_LABELS_CONSEQUENCE } from '../inject/labels-advice.ts';
import { describeLabels } from '../inject/prometheus-config.ts';
import { MISSING_REASON, REGISTERED_REASON, type MissingSidecar, type PodRef, type Registration } from './plan.ts';
import { PROBLEM_REASONS, type SidecarProblem } from './problems.ts';
import { describeBacklog, lastUploadText } from '../check/uploads.ts';

export const EVENT_COMPONENT = 'thanos-injector-register';

/** `<pod name>.<16 hex digits of sha256(uid/reason)>`: a valid, stable, per-pod-and-reason name. */
export function eventName(pod: PodRef, reason: string): string {
  const digest = createHash('sha256').update(`${pod.uid}/${reason}`).digest('hex').slice(0, 16);
  // 253 characters at most; a cut name must still end in an alphanumeric character.
  const prefix = pod.name.slice(0, 253 - 17).replace(/[^a-z0-9]+$/, '');
  return `${prefix}.${digest}`;
}

function podEvent(pod: PodRef, reason: string, type: 'Normal' | 'Warning', message: string, now: Date, host: string): CoreV1Event {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: eventName(pod, reason), namespace: pod.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid },
    reason,
    type,
    message,
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: EVENT_COMPONENT, ...(host ? { host } : {}) },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: host,
  };
}

export function registeredEvent(registration: Registration, configMap: { namespace: string; name: string }, now: Date, host: string): CoreV1Event {
  const message = `Registered with Thanos Query as ${registration.address} (ConfigMap ${configMap.namespace}/${configMap.name})`;
  return podEvent(registration.pod, REGISTERED_REASON, 'Normal', message, now, host);
}

export function missingMessage(missing: MissingSidecar): string {
  return `Prometheus runs without the thanos-sidecar container although the injector would add it (the pod was created while the webhook was unavailable, or before injection was enabled): ${missing.note}`;
}

export function missingEvent(missing: MissingSidecar, now: Date, host: string): CoreV1Event {
  return podEvent(missing.pod, MISSING_REASON, 'Warning', missingMessage(missing), now, host);
}

/** Other pods named in a message, at most this many (a DaemonSet may have hundreds). */
const NAMED_PODS = 5;

/** `pod prometheus-1`, `pods a, b and 3 more`; pods of another namespace with it. */
export function podList(pods: readonly PodRef[], namespace: string): string {
  const names = pods.map((pod) => (pod.namespace === namespace ? pod.name : `${pod.namespace}/${pod.name}`));
  const shown = names.slice(0, NAMED_PODS).join(', ');
  const more = names.length > NAMED_PODS ? ` and ${names.length - NAMED_PODS} more` : '';
  return `${names.length === 1 ? 'pod' : 'pods'} ${shown}${more}`;
}

export function problemMessage(problem: SidecarProblem): string {
  if (problem.problem === 'no-external-labels') {
    return 'The thanos-sidecar container exits: Prometheus has no external labels ("no external labels configured on Prometheus server"), ' +
      'and the sidecar uploads nothing without labels that identify this Prometheus in the bucket; ' +
      `add global.external_labels${problem.config === undefined ? '' : ` to ${problem.config}`}, e.g. cluster: <name> ` +
      '(and replica: ${POD_NAME} when Prometheus runs as several replicas of a StatefulSet; prometheus-community chart: --set server.global.external_labels.cluster=<name>)';
  }
  if (problem.problem === 'outdated-sidecar') {
    return `The thanos-sidecar differs from what the injector's current configuration injects (${problem.differences.join('; ')}): ` +
      `it keeps running as it is until the pod is re-created; roll it: ${problem.command}, or thanos-injector rollout -n ${problem.pod.namespace}`;
  }
  if (problem.problem === 'uploads-stalled') {
    return `Uploads to object storage are stalled: ${describeBacklog(problem.backlog, problem.backlog.at)}; ` +
      `${lastUploadText(problem.backlog, problem.backlog.at)}: ${problem.cause}. ` +
      `A block deleted before it is uploaded is lost; thanos-injector check -n ${problem.pod.namespace} --pod ${problem.pod.name} quotes the sidecar's own error`;
  }
  return `Prometheus uploads under the same external labels (${describeLabels(problem.labels)}; ${problem.config}) as ${podList(problem.others, problem.pod.namespace)}: ` +
    `${SHARED_LABELS_CONSEQUENCE}; ${REPLICA_LABEL_FIX}`;
}

export function problemEvent(problem: SidecarProblem, now: Date, host: string): CoreV1Event {
  return podEvent(problem.pod, PROBLEM_REASONS[problem.problem], 'Warning', problemMessage(problem), now, host);
}
