// `check`'s row for the MutatingAdmissionPolicy of an install in injection mode both: there,
// bound, and the one the configuration makes now (its generation), or why not and what to run; in
// mode webhook, no row unless a policy of the install is bound anyway. Pure.
import type { V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { generatePolicy, GENERATION_ANNOTATION, PolicyScopeError } from '../policy/generate.ts';
import { CHECK, fail, ok, warn, type CheckRow } from './rows.ts';

export function checkPolicy(
  config: Config,
  name: string,
  namespace: string | undefined,
  policy: V1MutatingAdmissionPolicy | undefined,
  bindings: readonly V1MutatingAdmissionPolicyBinding[],
): CheckRow | undefined {
  const row = CHECK.policy;
  const bound = bindings.filter((binding) => binding.spec?.policyName === name).map((binding) => binding.metadata?.name ?? '');
  if (config.mode === 'webhook') {
    return policy !== undefined && bound.length > 0
      ? warn(row, `injection mode webhook, yet MutatingAdmissionPolicy ${name} is bound (${bound.join(', ')}): the apiserver injects too; helm upgrade with injection.mode both, or delete it`)
      : undefined;
  }
  const hook = `the chart's hook applies it: kubectl${namespace === undefined ? '' : ` -n ${namespace}`} logs job/${name}-policy, and helm upgrade runs it again`;
  if (policy === undefined) return fail(row, `injection mode both, and MutatingAdmissionPolicy ${name} is not there: the webhook injects every pod alone; ${hook}`);
  if (bound.length === 0) return fail(row, `MutatingAdmissionPolicy ${name} is bound by no binding: it injects nothing; the chart renders ${name}-namespace and ${name}-pod`);
  const applied = policy.metadata?.annotations?.[GENERATION_ANNOTATION];
  let wanted: string;
  try {
    wanted = generatePolicy(config, name).generation;
  } catch (error) {
    if (!(error instanceof PolicyScopeError)) throw error;
    return warn(row, `the configuration makes no policy (${error.message}), yet MutatingAdmissionPolicy ${name} is there: delete it, or use injection.mode webhook`);
  }
  if (applied !== wanted) {
    return warn(row, `MutatingAdmissionPolicy ${name} is generation ${applied ?? 'unknown'}, the configuration makes ${wanted}: pods it injects now differ from the webhook's; ${hook}`);
  }
  return ok(row, `MutatingAdmissionPolicy ${name} (generation ${wanted}), bound by ${bound.join(', ')}: the apiserver injects the common shapes (thanos-injector inject -o explain tells which), the webhook the rest`);
}
