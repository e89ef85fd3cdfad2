// Is an injected pod's sidecar what the current configuration would inject? The pod is uninjected
// (what its status annotation records), injected again with today's configuration, and the two
// fingerprints compared aspect by aspect (src/inject/status.ts). Said once here; `check`, `register`
// (Event, metric) and `rollout` read it. Pure.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { injectPod, type InjectionContext } from '../inject/inject.ts';
import { SIDECAR_NAME } from '../inject/names.ts';
import { applyPatchInPlace } from '../inject/patch.ts';
import { allContainers } from '../inject/pod.ts';
import { canonical, readStatus, type RenderedRecord } from '../inject/status.ts';
import { uninjectPod } from '../inject/uninject.ts';
import { generatePolicy, PolicyScopeError } from '../policy/generate.ts';
import { isDeleting, isTerminal } from '../kube/pods.ts';
import { recreateCommand } from './owner.ts';
import { CHECK, ok, skip, warn, type CheckRow } from './rows.ts';

export type Drift =
  | { state: 'current'; image: string }
  | { state: 'outdated'; differences: string[] }
  /** Injected, but it cannot be compared (no fingerprint: an older release, or an annotation edited by hand). */
  | { state: 'unknown'; reason: string }
  /** Not this injector's sidecar to judge, or a pod that is done or going. */
  | { state: 'not-judged'; reason: string };

/** `--name=value` (or a bare `--name`, and the subcommand) by name, in order. */
function flags(args: readonly string[]): Map<string, string> {
  return new Map(args.map((arg) => {
    const equals = arg.indexOf('=');
    return arg.startsWith('--') && equals > 0 ? [arg.slice(0, equals), arg] : [arg, arg];
  }));
}

/** The flags that differ between the running sidecar and the one the configuration renders now. */
function argsDifference(running: readonly string[], wanted: readonly string[]): string {
  const before = flags(running);
  const after = flags(wanted);
  const changes: string[] = [];
  for (const [name, arg] of after) {
    const was = before.get(name);
    if (was === undefined) changes.push(`+${arg}`);
    else if (was !== arg) changes.push(`${was} -> ${arg}`);
  }
  for (const [name, arg] of before) if (!after.has(name)) changes.push(`-${arg}`);
  return changes.length > 0 ? changes.join(', ') : 'their order';
}

const compact = (value: unknown) => canonical(value ?? {}).replaceAll('"', '');

function describeDifference(aspect: keyof RenderedRecord, was: RenderedRecord, now: RenderedRecord, running: V1Container | undefined, wanted: V1Container | undefined): string {
  switch (aspect) {
    case 'image':
      return `image ${was.image} -> ${now.image}`;
    case 'mode':
      return `sidecar mode ${was.mode} -> ${now.mode}`;
    case 'args':
      return `flags ${argsDifference(running?.args ?? [], wanted?.args ?? [])}`;
    case 'resources':
      return `resources ${compact(running?.resources)} -> ${compact(wanted?.resources)}`;
    case 'env':
      return `env ${(running?.env ?? []).map((e) => e.name).join(',') || 'none'} -> ${(wanted?.env ?? []).map((e) => e.name).join(',') || 'none'}`;
    case 'container':
      return "the sidecar's ports, probes, mounts, preStop hook or securityContext";
    case 'volumes':
      return 'the volumes added to the pod';
    case 'prometheus':
      return "Prometheus' flags, env or mounts";
    case 'securityContext':
      return "the pod's securityContext";
  }
}

const sidecarIn = (pod: Pick<V1Pod, 'spec'>, name: string) => (pod.spec === undefined ? undefined : allContainers(pod.spec).find((c) => c.name === name));

/** The drift of one pod's sidecar from what `context` (the configuration, the cluster's version, the pod's namespace) injects now. */
export function sidecarDrift(pod: V1Pod, context: InjectionContext): Drift {
  if (isTerminal(pod)) return { state: 'not-judged', reason: `the pod has ${pod.status?.phase === 'Succeeded' ? 'completed' : 'failed'}` };
  if (isDeleting(pod)) return { state: 'not-judged', reason: 'the pod is terminating' };
  const status = readStatus(pod);
  if (status === undefined) return { state: 'not-judged', reason: `no status annotation: ${SIDECAR_NAME} was not added by this injector` };
  if ('error' in status) return { state: 'unknown', reason: `its status annotation cannot be read (${status.error})` };
  if (status.container === undefined) return { state: 'not-judged', reason: 'the pod runs its own Thanos sidecar' };
  if (status.policy !== undefined && status.rendered === undefined) return policyDrift(pod, status.policy, context);
  const was = status.rendered;
  if (was === undefined) {
    return { state: 'unknown', reason: `injected by injector ${status.version}, which recorded no fingerprint of what it added: cannot tell (a rollout injects the current sidecar)` };
  }
  const uninjected = uninjectPod(pod);
  if ('error' in uninjected) return { state: 'unknown', reason: `cannot take the injection out to compare: ${uninjected.error}` };
  const again = injectPod(uninjected.pod, context);
  if (again.outcome !== 'injected') {
    return { state: 'outdated', differences: [`the current configuration would not inject it (${again.reason}): ${again.message}`] };
  }
  const rendered = structuredClone(uninjected.pod);
  applyPatchInPlace(rendered, again.patch);
  const now = readStatus(rendered);
  if (now === undefined || 'error' in now || now.rendered === undefined) throw new Error('a fresh injection without its fingerprint');
  const aspects = (Object.keys(was) as (keyof RenderedRecord)[]).filter((aspect) => was[aspect] !== now.rendered?.[aspect]);
  if (aspects.length === 0) return { state: 'current', image: was.image };
  const running = sidecarIn(pod, status.container);
  const wanted = sidecarIn(rendered, status.container);
  return { state: 'outdated', differences: aspects.map((aspect) => describeDifference(aspect, was, now.rendered!, running, wanted)) };
}

/** The generation of the policy a configuration makes, once per configuration; the reason when it makes none. */
const generations = new WeakMap<InjectionContext['config'], { generation: string } | { reason: string }>();

function currentGeneration(config: InjectionContext['config']): { generation: string } | { reason: string } {
  let known = generations.get(config);
  if (known === undefined) {
    try {
      known = { generation: generatePolicy(config, 'current').generation };
    } catch (error) {
      if (!(error instanceof PolicyScopeError)) throw error;
      known = { reason: error.message };
    }
    generations.set(config, known);
  }
  return known;
}

/**
 * A pod the apiserver injected with the policy records the policy's generation, not fingerprints
 * (CEL has no hash): the same generation injects the same sidecar (the differential test holds the
 * policy to the webhook), so it is current when the configuration makes that generation today.
 * Otherwise what differs is told from the sidecar as it runs against what would be injected now.
 */
function policyDrift(pod: V1Pod, generation: string, context: InjectionContext): Drift {
  const current = currentGeneration(context.config);
  const running = sidecarIn(pod, SIDECAR_NAME);
  if ('generation' in current && current.generation === generation) return { state: 'current', image: running?.image ?? '' };
  const uninjected = uninjectPod(pod);
  const again = 'error' in uninjected ? undefined : { pod: uninjected.pod, injection: injectPod(uninjected.pod, context) };
  const wanted = again?.injection.outcome === 'injected' ? sidecarIn(patched(again.pod, again.injection.patch), SIDECAR_NAME) : undefined;
  const differences = [
    `injected by policy generation ${generation}; the current configuration ${'generation' in current ? `makes generation ${current.generation}` : `makes no policy (${current.reason})`}`,
    ...(wanted !== undefined && running?.image !== wanted.image ? [`image ${running?.image ?? 'none'} -> ${wanted.image ?? 'none'}`] : []),
    ...(wanted !== undefined && canonical(running?.args ?? []) !== canonical(wanted.args ?? []) ? [`flags ${argsDifference(running?.args ?? [], wanted.args ?? [])}`] : []),
    ...(wanted !== undefined && canonical(running?.resources ?? {}) !== canonical(wanted.resources ?? {}) ? [`resources ${compact(running?.resources)} -> ${compact(wanted.resources)}`] : []),
  ];
  return { state: 'outdated', differences };
}

function patched(pod: V1Pod, patch: Parameters<typeof applyPatchInPlace>[1]): V1Pod {
  const copy = structuredClone(pod);
  applyPatchInPlace(copy, patch);
  return copy;
}

/**
 * `check`'s row. An outdated sidecar is a warning, not a failure: it still uploads, and every
 * upgrade of the injector leaves the running pods so until they are rolled (as `linkerd check
 * --proxy` warns about an outdated proxy).
 */
export function checkSidecarCurrent(pod: V1Pod, drift: Drift): CheckRow {
  const name = CHECK.sidecarCurrent;
  switch (drift.state) {
    case 'current':
      return ok(name, `${SIDECAR_NAME} is what the current configuration injects (${drift.image})`);
    case 'outdated':
      return warn(name, `outdated: ${drift.differences.join('; ')}; roll it: ${recreateCommand(pod)}, or thanos-injector rollout -n ${pod.metadata?.namespace ?? ''}`);
    case 'unknown':
      return warn(name, `cannot tell: ${drift.reason}`);
    case 'not-judged':
      return skip(name, drift.reason);
  }
}
