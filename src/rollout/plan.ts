// What `thanos-injector rollout` does with the injected pods it found, decided before anything is
// touched (and all `--dry-run` prints). Pods whose sidecar is outdated (check's drift judgement)
// are grouped by what keeps Prometheus' data served while they are re-created:
// - the replicas of a Prometheus HA set (the pods of one workload, or pods whose external labels
//   differ in one label only) are evicted one at a time, the next only once the replacement is
//   ready and listed by Thanos Query, so that Query always has one of them;
// - a workload with one such pod is restarted as `kubectl rollout restart` does (its controller
//   starts the new pod as its strategy says);
// - a bare pod has nothing to re-create it: it is listed, or with --recreate-bare-pods deleted and
//   created again from its own spec (uninjected, so the webhook injects it anew). Pure.
import type { V1Pod } from '@kubernetes/client-node';
import type { Drift } from '../check/drift.ts';
import { workloadOf, type Workload } from '../check/owner.ts';
import type { ExternalLabels } from '../inject/prometheus-config.ts';

export interface RolloutPod {
  pod: V1Pod;
  drift: Drift;
  /** The external labels Prometheus uploads under, when they could be read. */
  labels?: Extract<ExternalLabels, { kind: 'labels' }>['labels'];
}

export type RolloutStep =
  /** Evict these pods one by one (an HA set), waiting for each replacement. */
  | { action: 'evict-one-by-one'; namespace: string; why: string; pods: RolloutPod[] }
  /** Restart this workload (its pod template's restartedAt annotation), waiting for its rollout. */
  | { action: 'restart'; namespace: string; workload: Workload; pods: RolloutPod[] }
  /** A bare pod, deleted and created again from its spec (--recreate-bare-pods). */
  | { action: 'recreate'; namespace: string; pods: [RolloutPod] }
  /** Left as it is, and why. */
  | { action: 'leave'; namespace: string; why: string; pods: [RolloutPod] };

const RESTARTABLE = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

export interface RolloutOptions {
  recreateBarePods: boolean;
  /** Also roll pods whose drift cannot be told (injected by release 0.1.0). */
  includeUnknown: boolean;
}

const nameOf = (entry: RolloutPod) => entry.pod.metadata?.name ?? '';
const keyOf = (workload: Workload | undefined, entry: RolloutPod) => (workload === undefined ? `pod/${nameOf(entry)}` : `${workload.kind}/${workload.name}`);

/** Two label sets with the same names that differ in exactly one value: the replicas of one Prometheus. */
function replicaPartners(a: Record<string, string>, b: Record<string, string>): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length || !names.every((name) => name in b)) return false;
  return names.filter((name) => a[name] !== b[name]).length === 1;
}

/** The pods of one namespace, grouped: one workload each, then workloads whose pods' labels are replica partners joined. */
function groups(entries: readonly RolloutPod[]): RolloutPod[][] {
  const byWorkload = new Map<string, RolloutPod[]>();
  for (const entry of entries) {
    const key = keyOf(workloadOf(entry.pod), entry);
    byWorkload.set(key, [...(byWorkload.get(key) ?? []), entry]);
  }
  const sets = [...byWorkload.values()];
  // Join sets (union by merging) while a pod of one and a pod of another are replica partners.
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      const partners = sets[i]!.some((a) => sets[j]!.some((b) => a.labels !== undefined && b.labels !== undefined && replicaPartners(a.labels, b.labels)));
      if (!partners) continue;
      sets[i] = [...sets[i]!, ...sets[j]!];
      sets.splice(j, 1);
      j = i;
    }
  }
  return sets;
}

/** What to do, in order: HA sets first (the slowest), then restarts, then bare pods; within each by name. */
export function planRollout(found: readonly RolloutPod[], options: RolloutOptions): RolloutStep[] {
  const due = found.filter(({ drift }) => drift.state === 'outdated' || (options.includeUnknown && drift.state === 'unknown'));
  const namespaces = [...new Set(due.map((entry) => entry.pod.metadata?.namespace ?? ''))].sort();
  const steps: RolloutStep[] = [];
  for (const namespace of namespaces) {
    for (const set of groups(due.filter((entry) => (entry.pod.metadata?.namespace ?? '') === namespace))) {
      set.sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
      const workloads = [...new Set(set.map((entry) => keyOf(workloadOf(entry.pod), entry)))];
      const first = set[0]!;
      const workload = workloadOf(first.pod);
      if (set.length > 1) {
        const why = workloads.length === 1 ? `the replicas of ${workloads[0]}` : `replicas by their external labels: ${workloads.join(', ')}`;
        steps.push({ action: 'evict-one-by-one', namespace, why, pods: set });
      } else if (workload !== undefined && RESTARTABLE.has(workload.kind)) {
        steps.push({ action: 'restart', namespace, workload, pods: set });
      } else if (workload !== undefined) {
        steps.push({ action: 'evict-one-by-one', namespace, why: `its ${workload.kind} ${workload.name} creates it again`, pods: set });
      } else if (options.recreateBarePods) {
        steps.push({ action: 'recreate', namespace, pods: [first] });
      } else {
        steps.push({ action: 'leave', namespace, why: 'a bare pod: nothing creates it again (--recreate-bare-pods deletes it and creates it from its own spec)', pods: [first] });
      }
    }
  }
  const order = { 'evict-one-by-one': 0, restart: 1, recreate: 2, leave: 3 } as const;
  return steps.sort((a, b) => order[a.action] - order[b.action]);
}
