// One registration pass: read the cluster, plan, apply. Shared by the one-shot run and the watch.
import type { Kube } from '../kube/client.ts';
import { applyPlan, type ApplyOptions, type ApplyResult } from './apply.ts';
import { plan as makePlan, type Plan, type RegisterSettings } from './plan.ts';
import { readState, type Scope } from './state.ts';

export interface Reconciled {
  plan: Plan;
  result: ApplyResult;
}

export async function reconcile(kube: Kube, scope: Scope, settings: RegisterSettings, options: ApplyOptions): Promise<Reconciled> {
  const state = await readState(kube, scope, { namespace: settings.queryNamespace, name: settings.configMapName }, settings.owner);
  const plan = makePlan(state, settings);
  const result = await applyPlan(kube, plan, options);
  // A ConfigMap that could not be read is a failed API call like any other (exit 1, the failure metric), though registration went on.
  result.failures.unshift(...state.unreadable);
  return { plan, result };
}
