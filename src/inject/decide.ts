// Should this pod be injected? Every reason a pod is left alone lives here, as a value that
// becomes a log field, a metric label and CLI output.
import type { Config } from '../config/schema.ts';
import { INJECTION_LABEL, MIRROR_ANNOTATION, PREFIX, SIDECAR_NAME } from './names.ts';
import { allContainers, type Container, type PodLike } from './pod.ts';
import { findPrometheus, runsAsAgent } from './prometheus.ts';

export type SkipReason =
  | 'namespace-excluded'
  | 'injector-namespace'
  | 'mirror-pod'
  | 'pod-opted-out'
  | 'already-injected'
  | 'no-prometheus'
  | 'agent-mode';

export type Verdict =
  | { verdict: 'inject'; prometheusIndex: number }
  | { verdict: 'skip'; reason: SkipReason; message: string }
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
  const requested = annotations[`${PREFIX}prometheus-container`]?.trim();
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
