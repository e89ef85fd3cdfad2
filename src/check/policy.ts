// `check`'s row for the MutatingAdmissionPolicy of an install in injection mode policy or both:
// there, bound, and the one the configuration makes now (its generation), with the
// ValidatingAdmissionPolicy that gives its warnings, or why not and what to run; in mode webhook, no
// row unless a policy of the install is bound anyway. Pure.
import type { V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { generatePolicy, GENERATION_ANNOTATION, PolicyScopeError, type InjectionMode } from '../policy/generate.ts';
import type { WarningPolicy } from './cluster.ts';
import { CHECK, fail, ok, warn, type CheckRow } from './rows.ts';
import { HELM_NAMESPACE_ANNOTATION, type InstallLocation } from './webhook.ts';

/** The chart's name, on the bindings it renders (app.kubernetes.io/name). */
const CHART_NAME = 'thanos-sidecar-injector';

/**
 * Where an install without a webhook configuration (injection mode policy) lives: the release
 * namespace Helm records on the policy's bindings, and the policy's name (the chart names the
 * policy, its ConfigMap and Secrets alike). The policy named `requested`, else the one the chart's
 * bindings bind; undefined when no binding of the chart is there.
 */
export function policyLocation(requested: string, bindings: readonly V1MutatingAdmissionPolicyBinding[]): InstallLocation | undefined {
  const ours = bindings.filter((binding) => binding.spec?.policyName === requested || binding.metadata?.labels?.['app.kubernetes.io/name'] === CHART_NAME);
  const chosen = ours.find((binding) => binding.spec?.policyName === requested) ?? ours[0];
  const namespace = chosen?.metadata?.annotations?.[HELM_NAMESPACE_ANNOTATION];
  const name = chosen?.spec?.policyName;
  return namespace && name ? { namespace, name } : undefined;
}

/** What the apiserver's metrics say of the policy's evaluations: the failed ones by error type, or why they were not read. */
export type PolicyEvaluations = { failed: { errorType: string; count: number }[] } | { error: string };

const CHECK_TOTAL = 'apiserver_mutating_admission_policy_check_total';

/** The failed evaluations of policy `name` in the apiserver's metrics (Prometheus text), summed by error type over its bindings. */
export function policyEvaluations(metrics: string, name: string): PolicyEvaluations {
  const failed = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${CHECK_TOTAL}{`)) continue;
    const labels = new Map([...line.slice(0, line.lastIndexOf('}')).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m): [string, string] => [m[1] ?? '', m[2] ?? '']));
    const count = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (labels.get('policy') !== name || labels.get('error_type') === 'no_error' || !(count > 0)) continue;
    const type = labels.get('error_type') ?? 'unknown';
    failed.set(type, (failed.get(type) ?? 0) + count);
  }
  return { failed: [...failed].map(([errorType, count]) => ({ errorType, count })).sort((a, b) => a.errorType.localeCompare(b.errorType)) };
}

export function checkPolicy(
  config: Config,
  /** The configuration's mode, auto resolved with the cluster's version. */
  mode: InjectionMode,
  name: string,
  namespace: string | undefined,
  policy: V1MutatingAdmissionPolicy | undefined,
  bindings: readonly V1MutatingAdmissionPolicyBinding[],
  /** What the apiserver's metrics said, and the warnings' ValidatingAdmissionPolicy (undefined: not read). */
  read: { evaluations?: PolicyEvaluations; warnings?: WarningPolicy } = {},
): CheckRow | undefined {
  const { evaluations, warnings } = read;
  const row = CHECK.policy;
  const bound = bindings.filter((binding) => binding.spec?.policyName === name).map((binding) => binding.metadata?.name ?? '');
  if (mode === 'webhook') {
    return policy !== undefined && bound.length > 0
      ? warn(row, `injection mode webhook, yet MutatingAdmissionPolicy ${name} is bound (${bound.join(', ')}): the apiserver injects too; helm upgrade with injection.mode both, or delete it`)
      : undefined;
  }
  const hook = `the chart's hook applies it: kubectl${namespace === undefined ? '' : ` -n ${namespace}`} logs job/${name}-policy, and helm upgrade runs it again`;
  const alone = mode === 'both' ? 'the webhook injects every pod alone' : 'nothing injects (mode policy has no webhook)';
  if (config.mode === 'auto' && policy === undefined && bound.length === 0) {
    // A configuration that does not say its mode (written by hand, or by a chart before modes): both is what auto means here, not necessarily what was installed.
    return warn(row, `injection mode auto is both on this cluster, and no MutatingAdmissionPolicy ${name} is there: the webhook injects every pod alone; set mode in the configuration (the chart writes the mode it installed), or helm upgrade to apply the policy`);
  }
  if (policy === undefined) return fail(row, `injection mode ${mode}, and MutatingAdmissionPolicy ${name} is not there: ${alone}; ${hook}`);
  if (bound.length === 0) return fail(row, `MutatingAdmissionPolicy ${name} is bound by no binding: it injects nothing, ${alone}; the chart renders ${name}-namespace and ${name}-pod`);
  const applied = policy.metadata?.annotations?.[GENERATION_ANNOTATION];
  let wanted: string;
  try {
    wanted = generatePolicy(config, name).generation;
  } catch (error) {
    if (!(error instanceof PolicyScopeError)) throw error;
    return warn(row, `the configuration makes no policy (${error.message}), yet MutatingAdmissionPolicy ${name} is there: delete it, or use injection.mode webhook`);
  }
  // Evaluation errors leave the pod as it came (failurePolicy Ignore), silently: the apiserver counts them.
  const failed = evaluations !== undefined && 'failed' in evaluations ? evaluations.failed : [];
  const total = failed.reduce((sum, f) => sum + f.count, 0);
  const errors = total === 0
    ? ''
    : `; this apiserver counted ${total} failed evaluation(s) of it since it started (${failed.map((f) => `${f.errorType}: ${f.count}`).join(', ')}): ` +
      `those pods were ${mode === 'both' ? 'left to the webhook' : 'created uninjected'} (failurePolicy Ignore); kubectl get --raw /metrics | grep '${CHECK_TOTAL}.*policy="${name}"'`;
  const unread = evaluations !== undefined && 'error' in evaluations ? ` (its evaluation errors were not read: ${evaluations.error})` : '';
  if (applied !== wanted) {
    const differ = mode === 'both' ? "differ from the webhook's" : 'are not what the configuration says';
    return warn(row, `MutatingAdmissionPolicy ${name} is generation ${applied ?? 'unknown'}, the configuration makes ${wanted}: pods it injects now ${differ}; ${hook}${errors}${unread}`);
  }
  const rest = mode === 'both' ? 'the webhook the rest' : 'the rest are created uninjected (mode policy has no webhook)';
  const silent = warningGap(config, name, warnings);
  const detail = `MutatingAdmissionPolicy ${name} (generation ${wanted}), bound by ${bound.join(', ')}: the apiserver injects the common shapes (thanos-injector inject -o explain tells which), ${rest}${silent ?? ''}${errors}${unread}`;
  return total > 0 || silent !== undefined ? warn(row, detail) : ok(row, detail);
}

/**
 * What is wrong with the ValidatingAdmissionPolicy that gives the warning the policy records on a TSDB
 * deleted with the pod (under ephemeralTsdb warn, anywhere), if anything.
 */
function warningGap(config: Config, name: string, warnings: WarningPolicy | undefined): string | undefined {
  const warned = config.ephemeralTsdb.action === 'warn' || Object.values(config.ephemeralTsdb.namespaces).includes('warn');
  if (warnings === undefined || !warned) return undefined;
  const consequence = "pods it injects with their TSDB on an emptyDir or another volume deleted with the pod are created without the webhook's warning (their status annotation still records it)";
  if (warnings.policy === undefined) return `; but ValidatingAdmissionPolicy ${name}, which gives its warnings, is not there: ${consequence}; helm upgrade applies it again`;
  const warn = warnings.bindings.filter((binding) => binding.spec?.validationActions?.includes('Warn')).map((binding) => binding.metadata?.name ?? '');
  if (warn.length === 0) return `; but ValidatingAdmissionPolicy ${name}, which gives its warnings, is bound by no Warn binding: ${consequence}; the chart renders ${name}-namespace and ${name}-pod`;
  return undefined;
}
