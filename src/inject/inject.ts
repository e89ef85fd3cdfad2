// The injection, shared by the webhook and the offline CLI: decide -> resolve overrides ->
// read Prometheus -> render -> patch. Only the envelope around it differs between the two.
import type { Config } from '../config/schema.ts';
import { decide, type SkipReason } from './decide.ts';
import { parseOverrides, resolveSettings } from './overrides.ts';
import { buildMarkPatch, buildPatch, type PatchOperation } from './patch.ts';
import { PREFIX } from './names.ts';
import type { PodLike } from './pod.ts';
import { readPrometheus } from './prometheus.ts';
import { render, shareUserPlan } from './render.ts';
import { EPHEMERAL_TSDB_FIX, ephemeralTsdbAction } from './tsdb-volume.ts';

export interface InjectionContext {
  config: Config;
  /** The namespace the pod is created in (the AdmissionReview's, not the object's). */
  namespace: string;
  /** The cluster's version, for sidecarMode auto. */
  kubernetesVersion: string;
}

export type Injection =
  | { outcome: 'injected'; reason: 'injected'; patch: PatchOperation[]; warnings: string[] }
  /** `patch`: a pod with its own sidecar and share-user on gets the pod-level user, nothing else. */
  | { outcome: 'skipped'; reason: SkipReason; message: string; warnings: string[]; patch?: PatchOperation[] }
  | { outcome: 'denied'; reason: 'invalid-annotation' | 'unsupported-pod' | 'ephemeral-tsdb'; message: string };

/** Decide, resolve the settings, render and patch one pod (or pod template). */
export function injectPod(pod: PodLike, context: InjectionContext): Injection {
  const verdict = decide(pod, context.namespace, context.config);
  if (verdict.verdict === 'skip' && verdict.container !== undefined) return keepExistingSidecar(pod, verdict.container, verdict.message, context);
  if (verdict.verdict === 'skip') return { outcome: 'skipped', reason: verdict.reason, message: verdict.message, warnings: [] };
  if (verdict.verdict === 'deny') return { outcome: 'denied', reason: verdict.reason, message: verdict.message };

  const overrides = parseOverrides(pod.metadata?.annotations ?? undefined);
  const { settings, errors } = resolveSettings(context.config, overrides.values, context.kubernetesVersion);
  const problems = [...overrides.errors, ...errors];
  if (problems.length > 0) return { outcome: 'denied', reason: 'invalid-annotation', message: problems.join('; ') };

  const prometheus = readPrometheus(pod.spec!, verdict.prometheusIndex);
  const policy = ephemeralTsdbAction(context.config, context.namespace, overrides.values['ephemeral-tsdb']);
  const rendered = render(pod, prometheus, settings, overrides.warnings, policy.action);
  if ('error' in rendered) return { outcome: 'denied', reason: 'unsupported-pod', message: rendered.error };
  const { plan } = rendered;
  const cost = plan.ephemeralCost;
  if (cost !== undefined && (policy.action === 'skip' || policy.action === 'deny')) {
    if (policy.action === 'deny') return { outcome: 'denied', reason: 'ephemeral-tsdb', message: `${cost}; pods with such a TSDB are refused here (${policy.from}: deny): ${EPHEMERAL_TSDB_FIX}` };
    return { outcome: 'skipped', reason: 'ephemeral-tsdb', message: `${cost}; such pods are admitted without the sidecar here (${policy.from}: skip): ${EPHEMERAL_TSDB_FIX}`, warnings: [] };
  }
  return { outcome: 'injected', reason: 'injected', patch: buildPatch(pod, plan), warnings: plan.warnings };
}

/**
 * A pod that runs its own Thanos sidecar is admitted as written, with a warning; with share-user on
 * (annotation existing-sidecar, or the config's existingSidecar for all or some namespaces) it gets
 * the pod-level user too, so that sidecar can upload (the seed's step 8).
 */
function keepExistingSidecar(pod: PodLike, container: string, message: string, context: InjectionContext): Injection {
  // Only the annotations this path reads: an invalid one is refused, the others are not looked at.
  const read = new Set([`${PREFIX}existing-sidecar`, `${PREFIX}run-as-user`]);
  const overrides = parseOverrides(Object.fromEntries(Object.entries(pod.metadata?.annotations ?? {}).filter(([key]) => read.has(key))));
  if (overrides.errors.length > 0) return { outcome: 'denied', reason: 'invalid-annotation', message: overrides.errors.join('; ') };
  const choice = overrides.values['existing-sidecar'];
  const { existingSidecar } = context.config;
  const shareUser = choice !== undefined ? choice === 'share-user' : existingSidecar.shareUser || existingSidecar.namespaces.includes(context.namespace);
  const skipped = { outcome: 'skipped', reason: 'existing-sidecar' } as const;
  if (!shareUser) {
    return { ...skipped, message, warnings: [`container ${container} already runs a Thanos sidecar: pod admitted as written, no second sidecar added`] };
  }
  const { settings } = resolveSettings(context.config, overrides.values, context.kubernetesVersion);
  const plan = shareUserPlan(pod, container, settings);
  const fields = Object.keys(plan.podSecurityContext);
  const kept = `container ${container} already runs a Thanos sidecar: kept, no second sidecar added;`;
  // Nothing left to set (a reinvocation, or a pod that sets them all): no patch, so nothing changes.
  if (fields.length === 0) return { ...skipped, message: `${kept} the pod already sets its user and groups (share-user)`, warnings: plan.warnings };
  return { ...skipped, message: `${kept} the pod-level ${fields.join(', ')} set so that it can upload (share-user)`, warnings: plan.warnings, patch: buildMarkPatch(pod, plan) };
}
