// The summary `register` prints: one row per namespace, the ConfigMap, the labelled Prometheus pods
// running without the sidecar, then injected sidecars that cannot upload usable blocks. Pure text from a plan and what applying it did.
import { table } from '../table.ts';
import type { ApplyResult } from './apply.ts';
import { podList } from './events.ts';
import { describeLabels } from '../inject/prometheus-config.ts';
import { registeredPodCount, type Plan, type RegisterSettings, type ServiceAction } from './plan.ts';
import type { SidecarProblem } from './problems.ts';
import { describeBacklog } from '../check/uploads.ts';

const DONE: Record<ServiceAction['action'], string> = {
  create: 'created',
  update: 'updated',
  recreate: 'recreated',
  delete: 'deleted',
  unchanged: 'unchanged',
  conflict: 'conflict (not ours)',
};

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

export function summarize(plan: Plan, result: ApplyResult, settings: Pick<RegisterSettings, 'endpoints'>): string {
  const parts: string[] = [];
  if (plan.namespaces.length === 0) {
    parts.push('No injected pods (label thanos-injector/injected=true) and no Service of ours in scope.\n');
  } else {
    const rows = plan.namespaces.map((row) => [
      row.namespace,
      String(row.injectedPods),
      result.failedServices.has(row.namespace) ? `${row.service} failed` : DONE[row.service],
      String(row.endpoints),
    ]);
    parts.push(table(['NAMESPACE', 'INJECTED PODS', 'SERVICE', 'REGISTERED ENDPOINTS'], rows));
  }
  const { configMap } = plan;
  const state = result.configMapFailed ? `${configMap.action} failed` : configMap.action === 'unchanged' ? 'unchanged' : `${configMap.action}d`;
  parts.push(`\nConfigMap ${configMap.namespace}/${configMap.name}: ${state} (${plural(configMap.addresses.length, 'endpoint')}, ${settings.endpoints} mode)\n`);
  const registered = registeredPodCount(plan);
  parts.push(`Registered pods: ${registered} (${result.newlyRegistered.length} newly registered)\n`);
  for (const action of plan.services) if (action.action === 'conflict') parts.push(`Conflict: ${action.message}\n`);

  if (plan.missing.length === 0) {
    parts.push('\nMissing sidecar: none (every labelled Prometheus pod has thanos-sidecar)\n');
  } else {
    parts.push(`\nMissing sidecar: ${plural(plan.missing.length, 'labelled Prometheus pod runs', 'labelled Prometheus pods run')} without thanos-sidecar\n`);
    const restarted = new Set(result.restarted.map((pod) => pod.uid));
    const rows = plan.missing.map((missing) => [
      missing.pod.namespace,
      missing.pod.name,
      missing.owner ?? '(none)',
      missing.restart && !restarted.has(missing.pod.uid) ? 'restart failed' : missing.note,
    ]);
    parts.push(table(['NAMESPACE', 'POD', 'OWNER', 'ACTION'], rows));
  }
  if (plan.problems.length > 0) parts.push(problemsSection(plan.problems));
  if (result.failures.length > 0) parts.push(`\n${plural(result.failures.length, 'API call')} failed (see stderr)\n`);
  return parts.join('');
}

/** One row per pod and problem; the events carry the consequence and the fix. */
function problemsSection(problems: readonly SidecarProblem[]): string {
  const pods = new Set(problems.map((p) => p.pod.uid)).size;
  const rows = problems.map((p) => [
    p.pod.namespace,
    p.pod.name,
    p.problem,
    p.problem === 'no-external-labels'
      ? `the sidecar exits: no global.external_labels${p.config === undefined ? '' : ` in ${p.config}`}`
      : p.problem === 'uploads-stalled'
        ? `${describeBacklog(p.backlog, p.backlog.at)}: ${p.cause}`
        : p.problem === 'outdated-sidecar'
          ? p.differences.join('; ')
          : `${describeLabels(p.labels)}, as ${podList(p.others, p.pod.namespace)}`,
  ]);
  return `\nSidecar problems: ${plural(pods, 'injected pod')} (the fix is in each pod's Warning event: kubectl describe pod)\n` +
    table(['NAMESPACE', 'POD', 'PROBLEM', 'DETAIL'], rows);
}

/** True when this reconcile changed something or found something to report (the watch prints those in full). */
export function eventful(plan: Plan, result: ApplyResult): boolean {
  return (
    plan.services.some((a) => a.action !== 'unchanged') ||
    plan.configMap.action !== 'unchanged' ||
    result.newlyRegistered.length > 0 ||
    plan.missing.length > 0 ||
    plan.problems.length > 0 ||
    result.failures.length > 0
  );
}
