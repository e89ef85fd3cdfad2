// A pod's containers as the kubelet reports them: any container (Prometheus, the sidecar, the
// chart's config reloader) that crash-loops or runs without being ready, with the cause it left
// behind (its termination message, which the injected sidecar fills with its last log lines, else
// the log of its previous instance) and, for the failures this injector meets, the fix: a second
// sidecar on the same ports, no external labels, Prometheus and the sidecar as two users. Pure.
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { existingSidecar, runsThanosSidecar } from '../inject/decide.ts';
import { PREFIX, SIDECAR_NAME } from '../inject/names.ts';
import { allContainers } from '../inject/pod.ts';
import { lastError, lastLine } from './logs.ts';
import { isDeleting } from '../kube/pods.ts';
import { recreateCommand } from './owner.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';

/**
 * A container whose last exit with an error is this recent is still crash-looping (the kubelet's
 * back-off tops out at 5 minutes); an older one has recovered and is only worth a warning.
 */
export const CRASH_WINDOW_MS = 10 * 60_000;
/** Prometheus replays its write-ahead log before it is ready: a container this young is given time. */
export const READY_GRACE_MS = 5 * 60_000;
/** The Thanos sidecar's gRPC and HTTP ports (Thanos' defaults and the injector's). */
const SIDECAR_PORTS = [10901, 10902];

/** The log of a container's previous instance, or why it could not be read. */
export type PreviousLog = { text: string } | { error: string };

interface Observed {
  status: V1ContainerStatus;
  /** Readiness counts: regular containers and native sidecars, not init containers that run to completion. */
  serves: boolean;
}

function observed(pod: V1Pod): Observed[] {
  const sidecars = new Set((pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  return [
    ...(pod.status?.initContainerStatuses ?? []).map((status) => ({ status, serves: sidecars.has(status.name) })),
    ...(pod.status?.containerStatuses ?? []).map((status) => ({ status, serves: true })),
  ];
}

const timeOf = (value: Date | string | undefined): Date | undefined => (value === undefined ? undefined : new Date(value));

function age(from: Date, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - from.getTime()) / 1000));
  return seconds < 120 ? `${seconds}s` : seconds < 7200 ? `${Math.round(seconds / 60)}m` : `${Math.round(seconds / 3600)}h`;
}

const iso = (date: Date) => date.toISOString().replace(/\.000Z$/, 'Z');

/** Keeps exiting with an error: in back-off, just exited, or back up after a recent failed exit. */
function isCrashLooping(status: V1ContainerStatus, now: Date): boolean {
  if (status.state?.waiting?.reason === 'CrashLoopBackOff') return true;
  const current = status.state?.terminated;
  if (current !== undefined && current.exitCode !== 0) return true;
  const last = status.lastState?.terminated;
  if (status.restartCount === 0 || last === undefined || last.exitCode === 0) return false;
  const finished = timeOf(last.finishedAt);
  return finished === undefined || now.getTime() - finished.getTime() <= CRASH_WINDOW_MS;
}

function terminationMessage(status: V1ContainerStatus): string | undefined {
  return [status.state?.terminated?.message, status.lastState?.terminated?.message].find((message) => message !== undefined && message.trim() !== '');
}

/** Crash-looping containers that left no termination message: their previous instance's log says why. */
export function containersToExplain(pod: V1Pod, now: Date): string[] {
  return observed(pod)
    .filter(({ status }) => isCrashLooping(status, now) && terminationMessage(status) === undefined)
    .map(({ status }) => status.name);
}

/** `CrashLoopBackOff, 7 restarts, last exit code 1 (Error) at 2026-12-02T06:44:14Z` */
function describeCrash(status: V1ContainerStatus): string {
  const exit = status.state?.terminated ?? status.lastState?.terminated;
  const state = status.state?.waiting?.reason ?? (status.state?.running !== undefined ? 'running again' : 'exited');
  const restarts = `${status.restartCount} restart${status.restartCount === 1 ? '' : 's'}`;
  if (exit === undefined) return `${state}, ${restarts}`;
  const finished = timeOf(exit.finishedAt);
  return `${state}, ${restarts}, last exit code ${exit.exitCode}${exit.reason ? ` (${exit.reason})` : ''}${finished ? ` at ${iso(finished)}` : ''}`;
}

function portsOf(container: V1Container): number[] {
  return (container.ports ?? []).map((port) => port.containerPort);
}

/** `thanos (runs thanos sidecar, ports 10901, 10902)` */
function describeListener(container: V1Container): string {
  const ports = portsOf(container);
  const what = [
    container.name === SIDECAR_NAME || runsThanosSidecar(container) ? 'runs thanos sidecar' : undefined,
    ports.length > 0 ? `port${ports.length === 1 ? '' : 's'} ${ports.join(', ')}` : undefined,
  ].filter((part) => part !== undefined);
  return `${container.name} (${what.join(', ')})`;
}

/** A second listener on the port: every container that runs a Thanos sidecar or declares that port or a sidecar port. */
function portFix(pod: V1Pod, line: string): string {
  const spec = pod.spec;
  if (spec === undefined) return '';
  const bound = Number(/:([0-9]+): bind: address already in use/.exec(line)?.[1]);
  const ports = new Set([...SIDECAR_PORTS, ...(Number.isInteger(bound) ? [bound] : [])]);
  const listeners = allContainers(spec).filter((c) => c.name === SIDECAR_NAME || runsThanosSidecar(c) || portsOf(c).some((port) => ports.has(port)));
  const named = `containers ${listeners.map(describeListener).join(', ')}`;
  const own = existingSidecar(spec);
  const recreate = recreateCommand(pod);
  if (own !== undefined && listeners.some((c) => c.name === SIDECAR_NAME)) {
    return `${named} share the pod's network, so only one of them can listen there: the pod runs its own sidecar (${own.name}) and the injector's ${SIDECAR_NAME}. ` +
      `The injector now leaves a pod that runs its own sidecar alone: re-create the pod (${recreate}) and it keeps ${own.name} only ` +
      `(annotate the pod template ${PREFIX}existing-sidecar: share-user first so that ${own.name} can upload)`;
  }
  return `${named} share the pod's network, so only one of them can listen there: give the other container another port (or set the injector's grpcPort/httpPort), then re-create the pod (${recreate})`;
}

const LABELS_FIX =
  'Prometheus has no global.external_labels and the sidecar cannot run without them: add them to the file behind --config.file, ' +
  'e.g. global.external_labels: {cluster: <name>} (prometheus-community chart: helm upgrade ... --set server.global.external_labels.cluster=<name>), ' +
  'plus replica: ${POD_NAME} for an HA pair (the injector gives Prometheus POD_NAME); the sidecar starts at its next restart';

function hardLinkFix(pod: V1Pod, container: string): string {
  const own = pod.spec === undefined ? undefined : existingSidecar(pod.spec);
  const recreate = recreateCommand(pod);
  const cause = 'Prometheus and the sidecar run as different users, so the sidecar cannot hard-link the block files and uploads nothing';
  if (own !== undefined && own.name === container) {
    return `${cause}: annotate the pod template ${PREFIX}existing-sidecar: share-user and re-create the pod (${recreate}): the injector then sets one pod-level runAsUser, runAsGroup and fsGroup`;
  }
  return `${cause}: run both as one user with one pod-level securityContext (runAsUser, runAsGroup, fsGroup), which the injector sets on the pods it injects: re-create the pod (${recreate})`;
}

interface KnownCause {
  pattern: RegExp;
  fix: (pod: V1Pod, container: string, line: string) => string;
}

/** The failures the injected sidecar meets, by the line the process leaves behind. */
const KNOWN_CAUSES: readonly KnownCause[] = [
  { pattern: /bind: address already in use/, fix: (pod, _container, line) => portFix(pod, line) },
  { pattern: /no external labels configured/, fix: () => LABELS_FIX },
  { pattern: /hard link.*operation not permitted/, fix: (pod, container) => hardLinkFix(pod, container) },
];

/** Why a crash-looping container exits, and what to do: from its termination message, else its previous log. */
function explainCrash(pod: V1Pod, status: V1ContainerStatus, previous: PreviousLog | undefined): string {
  const logs = `kubectl -n ${pod.metadata?.namespace ?? ''} logs ${pod.metadata?.name ?? ''} -c ${status.name} --previous`;
  const message = terminationMessage(status);
  const previousText = previous !== undefined && 'text' in previous && previous.text.trim() !== '' ? previous.text : undefined;
  const text = message ?? previousText;
  if (text === undefined) {
    const unread = previous !== undefined && 'error' in previous ? `its previous log could not be read (${previous.error})` : 'its previous instance left no log';
    return `no termination message, and ${unread}: ${logs}`;
  }
  const from = message !== undefined ? 'its termination message' : 'the log of its previous instance';
  for (const cause of KNOWN_CAUSES) {
    const line = lastLine(text, cause.pattern);
    if (line !== undefined) return `${line} (${from}); ${cause.fix(pod, status.name, line)}`;
  }
  return `${lastError(text) ?? text.trim()} (${from}); ${logs}`;
}

interface Finding {
  severity: 'fail' | 'warn';
  text: string;
}

/** What is wrong with one container, if anything. */
function findingOf(pod: V1Pod, { status, serves }: Observed, previous: PreviousLog | undefined, now: Date, podRunning: boolean): Finding | undefined {
  const container = `container ${status.name}`;
  if (isCrashLooping(status, now)) {
    return { severity: 'fail', text: `${container} is crash-looping (${describeCrash(status)}): ${explainCrash(pod, status, previous)}` };
  }
  const running = status.state?.running;
  const waiting = status.state?.waiting;
  if (serves && running !== undefined && !status.ready) {
    const started = timeOf(running.startedAt);
    if (started !== undefined && now.getTime() - started.getTime() < READY_GRACE_MS) {
      return { severity: 'warn', text: `${container} started ${age(started, now)} ago and is not ready yet (Prometheus replays its write-ahead log first): run check again in a few minutes` };
    }
    const since = started === undefined ? '' : ` (running since ${iso(started)}, ${age(started, now)})`;
    return { severity: 'fail', text: `${container} runs but is not ready${since}: its readiness probe fails; kubectl -n ${pod.metadata?.namespace ?? ''} describe pod ${pod.metadata?.name ?? ''} shows why` };
  }
  if (podRunning && serves && running === undefined) {
    const exited = status.state?.terminated;
    const why = waiting !== undefined
      ? `${waiting.reason ?? 'waiting'}${waiting.message ? `: ${waiting.message}` : ''}`
      : `exited${exited === undefined ? '' : ` with code ${exited.exitCode}${exited.reason ? ` (${exited.reason})` : ''}`}`;
    return { severity: 'fail', text: `${container} is not running (${why})` };
  }
  const last = status.lastState?.terminated;
  if (status.restartCount > 0 && last !== undefined && last.exitCode !== 0) {
    const finished = timeOf(last.finishedAt);
    return { severity: 'warn', text: `${container} runs and is ready, but restarted ${status.restartCount} time${status.restartCount === 1 ? '' : 's'} (last exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}${finished ? ` at ${iso(finished)}` : ''})` };
  }
  return undefined;
}

/** Why a pod is Pending: its containers' waiting reasons and the conditions that do not hold. */
function pendingReasons(pod: V1Pod): string {
  const waiting = observed(pod)
    .filter(({ status }) => status.state?.waiting !== undefined)
    .map(({ status }) => `container ${status.name} ${status.state?.waiting?.reason ?? 'waiting'}${status.state?.waiting?.message ? ` (${status.state.waiting.message})` : ''}`);
  const conditions = (pod.status?.conditions ?? [])
    .filter((condition) => condition.status === 'False' && condition.message)
    .map((condition) => `${condition.type}: ${condition.message ?? ''}`);
  const reasons = [...waiting, ...conditions];
  return reasons.length > 0 ? `: ${reasons.join('; ')}` : '';
}

/**
 * Every container of the pod runs and is ready. `previousLogs`: what containersToExplain asked for,
 * by container name. A pod that is still starting or already gone is a warning or a skip.
 */
export function checkContainers(pod: V1Pod, previousLogs: ReadonlyMap<string, PreviousLog>, now: Date): CheckRow {
  const name = CHECK.podContainers;
  const podName = `pod ${pod.metadata?.name ?? ''}`;
  const phase = pod.status?.phase;
  if (isDeleting(pod)) return skip(name, `${podName} is being deleted`);
  if (phase === 'Succeeded' || phase === 'Failed') {
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    return warn(name, `${podName} is ${phase}${why ? ` (${why})` : ''}: it runs no container any more; its controller replaces it`);
  }
  if (phase === 'Unknown') return warn(name, `${podName} is in phase Unknown: its node stopped reporting it; kubectl get nodes`);
  const containers = observed(pod);
  const findings = containers
    .map((container) => findingOf(pod, container, previousLogs.get(container.status.name), now, phase === 'Running'))
    .filter((finding) => finding !== undefined);
  const told = `${podName}: ${findings.map((finding) => finding.text).join('; ')}`;
  if (findings.some((finding) => finding.severity === 'fail')) return fail(name, told);
  if (phase === 'Pending') return warn(name, `${podName} is Pending${pendingReasons(pod)}`);
  if (containers.length === 0) return skip(name, `${podName} is ${phase ?? 'without a phase'} and reports no container status yet`);
  if (findings.length > 0) return warn(name, told);
  const serving = containers.filter((container) => container.serves).map((container) => container.status.name);
  return ok(name, `${podName}: ${serving.length} container${serving.length === 1 ? '' : 's'} running and ready (${serving.join(', ')})`);
}
