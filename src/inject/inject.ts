// The injection, shared by the webhook and the offline CLI: decide -> resolve overrides ->
// read Prometheus -> render -> patch. Only the envelope around it differs between the two.
import type { Config } from '../config/schema.ts';
import { decide, type SkipReason } from './decide.ts';
import { parseOverrides, resolveSettings } from './overrides.ts';
import { buildPatch, type PatchOperation } from './patch.ts';
import type { PodLike } from './pod.ts';
import { readPrometheus } from './prometheus.ts';
import { render } from './render.ts';

export interface InjectionContext {
  config: Config;
  /** The namespace the pod is created in (the AdmissionReview's, not the object's). */
  namespace: string;
  /** The cluster's version, for sidecarMode auto. */
  kubernetesVersion: string;
}

export type Injection =
  | { outcome: 'injected'; reason: 'injected'; patch: PatchOperation[]; warnings: string[] }
  | { outcome: 'skipped'; reason: SkipReason; message: string; warnings: string[] }
  | { outcome: 'denied'; reason: 'invalid-annotation' | 'unsupported-pod'; message: string };

/** Decide, resolve the settings, render and patch one pod (or pod template). */
export function injectPod(pod: PodLike, context: InjectionContext): Injection {
  const verdict = decide(pod, context.namespace, context.config);
  if (verdict.verdict === 'skip') return { outcome: 'skipped', reason: verdict.reason, message: verdict.message, warnings: [] };
  if (verdict.verdict === 'deny') return { outcome: 'denied', reason: verdict.reason, message: verdict.message };

  const overrides = parseOverrides(pod.metadata?.annotations ?? undefined);
  const { settings, errors } = resolveSettings(context.config, overrides.values, context.kubernetesVersion);
  const problems = [...overrides.errors, ...errors];
  if (problems.length > 0) return { outcome: 'denied', reason: 'invalid-annotation', message: problems.join('; ') };

  const prometheus = readPrometheus(pod.spec!, verdict.prometheusIndex);
  const rendered = render(pod, prometheus, settings, overrides.warnings);
  if ('error' in rendered) return { outcome: 'denied', reason: 'unsupported-pod', message: rendered.error };
  return { outcome: 'injected', reason: 'injected', patch: buildPatch(pod, rendered.plan), warnings: rendered.plan.warnings };
}
