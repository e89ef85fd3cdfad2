// Should this pod be injected? Every reason a pod is left alone lives here, as a value that
// becomes a log field, a metric label and CLI output.
import { posix } from 'node:path';
import type { V1PodSpec } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { INJECTION_LABEL, MIRROR_ANNOTATION, PREFIX, SIDECAR_NAME } from './names.ts';
import { allContainers, type Container, type PodLike } from './pod.ts';
import { findPrometheus, requestedPrometheus, runsAsAgent } from './prometheus.ts';

export type SkipReason =
  | 'namespace-excluded'
  | 'injector-namespace'
  | 'mirror-pod'
  | 'pod-opted-out'
  | 'already-injected'
  | 'existing-sidecar'
  | 'no-prometheus'
  | 'agent-mode'
  /** The TSDB volume is deleted with the pod and the ephemeralTsdb policy says skip. */
  | 'ephemeral-tsdb';

export type Verdict =
  | { verdict: 'inject'; prometheusIndex: number }
  | { verdict: 'skip'; reason: SkipReason; message: string; container?: string }
  | { verdict: 'deny'; reason: 'invalid-annotation'; message: string };

export function decide(pod: PodLike, namespace: string, config: Config): Verdict {
  const skip = (reason: SkipReason, message: string): Verdict => ({ verdict: 'skip', reason, message });
  if (config.excludedNamespaces.includes(namespace)) {
    return skip('namespace-excluded', `namespace ${namespace} is excluded from injection`);
  }
  if (config.injectorNamespace !== '' && namespace === config.injectorNamespace) {
    return skip('injector-namespace', `namespace ${namespace} is the injector's own namespace`);
  }
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[MIRROR_ANNOTATION] !== undefined) {
    return skip('mirror-pod', 'mirror pods (static pods) cannot be changed');
  }
  if (pod.metadata?.labels?.[INJECTION_LABEL] === 'disabled') {
    return skip('pod-opted-out', `the pod is labelled ${INJECTION_LABEL}=disabled`);
  }
  const spec = pod.spec;
  if (spec === undefined) return skip('no-prometheus', 'the pod has no spec');
  if (allContainers(spec).some((c) => c.name === SIDECAR_NAME)) {
    return skip('already-injected', `the pod already has a ${SIDECAR_NAME} container`);
  }
  const own = existingSidecar(spec);
  if (own !== undefined) {
    return {
      verdict: 'skip',
      reason: 'existing-sidecar',
      container: own.name,
      message: `container ${own.name} already runs a Thanos sidecar, so none is added and the pod is admitted as written (a second one could not bind its ports); ` +
        `to have the injector manage the sidecar, remove that container; to let it upload as it is, annotate the pod ${PREFIX}existing-sidecar: share-user (one user for both containers)`,
    };
  }
  const requested = requestedPrometheus(annotations);
  const index = findPrometheus(spec, requested);
  if (index === undefined && requested !== undefined) {
    const names = spec.containers.map((c) => c.name).join(', ');
    return {
      verdict: 'deny',
      reason: 'invalid-annotation',
      message: `annotation ${PREFIX}prometheus-container: ${JSON.stringify(requested)} is not a container of this pod; expected one of ${names}`,
    };
  }
  if (index === undefined) {
    return skip('no-prometheus', 'no container is named prometheus or runs a Prometheus image');
  }
  const prometheus = spec.containers[index] as Container;
  if (runsAsAgent(prometheus)) {
    return skip('agent-mode', `container ${prometheus.name} runs Prometheus in agent mode (--agent or --enable-feature=agent): it keeps only a write-ahead log and cuts no blocks for a sidecar to upload`);
  }
  return { verdict: 'inject', prometheusIndex: index };
}

/** True for a Thanos image (`quay.io/thanos/thanos`, `thanosio/thanos:v0.36.1`, a mirror's `.../thanos@sha256:...`). */
export function isThanosImage(image: string | undefined): boolean {
  const withoutDigest = (image ?? '').split('@')[0] ?? '';
  return withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1).split(':')[0] === 'thanos';
}

/**
 * A container that runs `thanos sidecar`, whatever its name: the `sidecar` subcommand after a
 * `thanos` program (in command, args or a `sh -c` script), or first in the args of a Thanos image
 * whose own entrypoint is thanos. Global flags may come before the subcommand.
 */
export function runsThanosSidecar(container: Container): boolean {
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  // Every admission asks this of every container: most never mention thanos.
  if (!isThanosImage(container.image) && !argv.some((arg) => arg.includes('thanos'))) return false;
  const words = argv
    .flatMap((arg) => arg.split(/[\s;&|]+/))
    .map((word) => word.replace(/['"]/g, ''))
    .filter(Boolean);
  const program = words.findIndex((word) => !word.startsWith('-') && posix.basename(word) === 'thanos');
  const from = program >= 0 ? program + 1 : container.command === undefined && isThanosImage(container.image) ? 0 : -1;
  if (from < 0) return false;
  return words.slice(from).find((word) => !word.startsWith('-')) === 'sidecar';
}

/** A Thanos sidecar the pod brings itself (any name but the injector's own). */
export function existingSidecar(spec: V1PodSpec): Container | undefined {
  return allContainers(spec).find((c) => c.name !== SIDECAR_NAME && runsThanosSidecar(c));
}
