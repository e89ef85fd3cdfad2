// Metrics of `register --watch` (prom-client): what the last reconcile found, so an alert can fire
// when labelled Prometheus pods run without the sidecar (created while the webhook was down under
// failurePolicy Ignore), injected sidecars cannot upload usable blocks (no or shared external
// labels) or their uploads are stalled (with when retention deletes the oldest block waiting), and
// so a stalled registration shows.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { registeredPodCount } from './plan.ts';
import { PROBLEM_KINDS, problemCounts } from './problems.ts';
import type { Reconciled } from './reconcile.ts';

export interface RegisterMetrics {
  registry: Registry;
  /** Call after every reconcile that read the cluster; `at` is when it finished. */
  reconciled(reconciled: Reconciled, at: Date): void;
  /** Call when a reconcile could not read the cluster at all. */
  failed(): void;
}

export function createRegisterMetrics(): RegisterMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const uninjected = new Gauge({
    name: 'thanos_injector_uninjected_prometheus_pods',
    help: 'Labelled Prometheus pods the webhook would inject that run without the thanos-sidecar container, at the last reconcile.',
    registers: [registry],
  });
  const problems = new Gauge({
    name: 'thanos_injector_sidecar_problems',
    help: 'Injected pods whose Thanos sidecar cannot upload usable blocks or needs a rollout, by problem (no-external-labels: the sidecar exits for want of them; shared-external-labels: pods upload under one identical label set; uploads-stalled: blocks wait while no upload finishes; outdated-sidecar: not what the current configuration injects), at the last reconcile.',
    labelNames: ['problem'],
    registers: [registry],
  });
  const waiting = new Gauge({
    name: 'thanos_injector_sidecar_unuploaded_blocks',
    help: 'Blocks Prometheus cut that the sidecar has not uploaded, for pods whose uploads are stalled (blocks wait over three syncs while no upload finishes), at the last reconcile. A lower bound where Prometheus (before 3.6) does not list its blocks.',
    labelNames: ['namespace', 'pod'],
    registers: [registry],
  });
  const deletion = new Gauge({
    name: 'thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds',
    help: "For pods whose uploads are stalled: the earliest time Prometheus' time-based retention deletes the oldest block not uploaded (Unix time), at the last reconcile.",
    labelNames: ['namespace', 'pod'],
    registers: [registry],
  });
  const outdated = new Gauge({
    name: 'thanos_injector_outdated_sidecar_pods',
    help: "Running injected pods whose thanos-sidecar differs from what the injector's current configuration injects (image, flags, resources, mode...), by namespace, at the last reconcile. Pods injected by release 0.1.0 cannot be told and are not counted.",
    labelNames: ['namespace'],
    registers: [registry],
  });
  const registeredPods = new Gauge({
    name: 'thanos_injector_registered_pods',
    help: 'Injected pods registered with Thanos Query (listed through the endpoints ConfigMap), at the last reconcile.',
    registers: [registry],
  });
  const endpoints = new Gauge({
    name: 'thanos_injector_registered_endpoints',
    help: 'Addresses in the endpoints ConfigMap Thanos Query reads, at the last reconcile.',
    registers: [registry],
  });
  const reconciles = new Counter({
    name: 'thanos_injector_register_reconciles_total',
    help: 'Registration reconciles, by result (success; failure: an API call failed).',
    labelNames: ['result'],
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'thanos_injector_register_last_success_timestamp_seconds',
    help: 'When the last reconcile without a failed API call finished (Unix time).',
    registers: [registry],
  });
  // Both results exist from the start, so rate() and absent() behave before the first failure.
  for (const result of ['success', 'failure']) reconciles.inc({ result }, 0);
  for (const problem of PROBLEM_KINDS) problems.set({ problem }, 0);

  return {
    registry,
    reconciled({ plan, result }, at) {
      uninjected.set(plan.missing.length);
      for (const [problem, count] of Object.entries(problemCounts(plan.problems))) problems.set({ problem }, count);
      // Only the pods stalled (or namespaces outdated) now: a pod that recovered (or went) leaves the series.
      waiting.reset();
      deletion.reset();
      outdated.reset();
      for (const namespace of plan.namespaces) outdated.set({ namespace: namespace.namespace }, 0);
      for (const problem of plan.problems) if (problem.problem === 'outdated-sidecar') outdated.inc({ namespace: problem.pod.namespace });
      for (const problem of plan.problems) {
        if (problem.problem !== 'uploads-stalled') continue;
        const labels = { namespace: problem.pod.namespace, pod: problem.pod.name };
        waiting.set(labels, problem.backlog.pending.length);
        if (problem.backlog.deletionAt !== undefined) deletion.set(labels, problem.backlog.deletionAt / 1000);
      }
      registeredPods.set(registeredPodCount(plan));
      endpoints.set(plan.configMap.addresses.length);
      if (result.failures.length > 0) {
        reconciles.inc({ result: 'failure' });
      } else {
        reconciles.inc({ result: 'success' });
        lastSuccess.set(at.getTime() / 1000);
      }
    },
    failed() {
      reconciles.inc({ result: 'failure' });
    },
  };
}
