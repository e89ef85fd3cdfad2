// The rollout plan: HA sets evicted one at a time (the pods of one workload, or pods whose external
// labels differ in one label), single pods of a workload restarted, bare pods left unless asked;
// and its execution against a cluster that refuses an eviction (a PodDisruptionBudget), brings a
// replacement up slowly, and lists it in Query late: nothing moves on before it may, and each pod
// leaves Query before it is evicted.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import type { Drift } from '../../src/check/drift.ts';
import type { Workload } from '../../src/check/owner.ts';
import type { Eviction, QueryRef, RolloutCluster } from '../../src/rollout/cluster.ts';
import { planRollout, type RolloutPod } from '../../src/rollout/plan.ts';
import { RolloutStopped, runStep } from '../../src/rollout/run.ts';

const outdated: Drift = { state: 'outdated', differences: ['image a -> b'] };
const current: Drift = { state: 'current', image: 'b' };
const unknown: Drift = { state: 'unknown', reason: 'injected by injector 0.1.0' };

function pod(name: string, owner?: { kind: string; name: string }, extra: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: {
      name, namespace: 'monitoring', uid: `uid-${name}`, ...extra,
      ...(owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: `uid-${owner.name}`, controller: true }] }),
    },
    spec: { containers: [{ name: 'prometheus' }], initContainers: [{ name: 'thanos-sidecar', restartPolicy: 'Always' }] },
    status: { phase: 'Running', podIP: `10.0.0.${name.length}`, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
const entry = (p: V1Pod, drift: Drift = outdated, labels?: Record<string, string>): RolloutPod => ({ pod: p, drift, ...(labels ? { labels } : {}) });
const sts = { kind: 'StatefulSet', name: 'prometheus' };
const options = { recreateBarePods: false, includeUnknown: false };

void t.test('the plan: an HA StatefulSet one at a time, a single-pod Deployment restarted, a bare pod left, current pods untouched', (t) => {
  const steps = planRollout([
    entry(pod('single-7d9f-abcde', { kind: 'ReplicaSet', name: 'single-7d9f' }, { labels: { 'pod-template-hash': '7d9f' } })),
    entry(pod('prometheus-1', sts)),
    entry(pod('prometheus-0', sts)),
    entry(pod('bare')),
    entry(pod('fine-0', { kind: 'StatefulSet', name: 'fine' }), current),
  ], options);
  t.same(steps.map((s) => [s.action, s.pods.map((p) => p.pod.metadata?.name)]), [
    ['evict-one-by-one', ['prometheus-0', 'prometheus-1']],
    ['restart', ['single-7d9f-abcde']],
    ['leave', ['bare']],
  ]);
  t.match(steps[0], { why: 'the replicas of StatefulSet/prometheus' });
  t.match(steps[1], { workload: { kind: 'Deployment', name: 'single' } });
  t.same(planRollout([entry(pod('bare'))], { ...options, recreateBarePods: true }).map((s) => s.action), ['recreate']);
  t.end();
});

void t.test('two workloads whose pods differ in one external label are one HA set; more differences are not', (t) => {
  const a = entry(pod('prometheus-a-0', { kind: 'StatefulSet', name: 'prometheus-a' }), outdated, { cluster: 'eu', replica: 'a' });
  const b = entry(pod('prometheus-b-0', { kind: 'StatefulSet', name: 'prometheus-b' }), outdated, { cluster: 'eu', replica: 'b' });
  const other = entry(pod('other-0', { kind: 'StatefulSet', name: 'other' }), outdated, { cluster: 'us', replica: 'c' });
  const steps = planRollout([a, b, other], options);
  t.same(steps.map((s) => [s.action, s.pods.map((p) => p.pod.metadata?.name)]), [
    ['evict-one-by-one', ['prometheus-a-0', 'prometheus-b-0']],
    ['restart', ['other-0']],
  ]);
  t.match(steps[0], { why: 'replicas by their external labels: StatefulSet/prometheus-a, StatefulSet/prometheus-b' });
  t.end();
});

void t.test('pods that cannot be told are rolled only when asked', (t) => {
  t.same(planRollout([entry(pod('prometheus-0', sts), unknown)], options), []);
  t.equal(planRollout([entry(pod('prometheus-0', sts), unknown)], { ...options, includeUnknown: true })[0]?.action, 'restart');
  t.end();
});

/** A StatefulSet's cluster: an evicted pod comes back under its name with a new uid, not ready at first, and Query lists it later still. */
class FakeCluster implements RolloutCluster {
  pods_ = new Map<string, V1Pod>();
  listed = new Set<string>();
  refusals = 1;
  log: string[] = [];
  generation = 0;
  constructor(pods: V1Pod[]) {
    for (const p of pods) this.pods_.set(p.metadata!.name!, p);
  }
  tick(): void {
    // Each poll moves the world one step: a new pod becomes ready, then Query lists it.
    for (const p of this.pods_.values()) {
      const ip = `${p.status?.podIP ?? ''}:10901`;
      if (p.status?.conditions?.[0]?.status === 'False') p.status.conditions[0].status = 'True';
      else if (!this.listed.has(ip)) this.listed.add(ip);
    }
  }
  injectedPods = () => Promise.resolve([...this.pods_.values()]);
  pods = () => {
    this.tick();
    return Promise.resolve([...this.pods_.values()]);
  };
  pod = (_: string, name: string) => Promise.resolve(this.pods_.get(name));
  labelInjected = (target: V1Pod, value: string) => {
    // Registration stops (or starts again) listing it; Query follows.
    const endpoint = `${target.status!.podIP!}:10901`;
    if (value === 'draining') this.listed.delete(endpoint);
    else this.listed.add(endpoint);
    this.log.push(`labelled ${target.metadata!.name!} ${value}`);
    return Promise.resolve();
  };
  evict = (target: V1Pod, dryRun = false): Promise<Eviction> => {
    if (this.refusals-- > 0) return Promise.resolve({ evicted: false, why: 'Cannot evict pod as it would violate the pod\'s disruption budget.' });
    if (dryRun) return Promise.resolve({ evicted: true });
    const name = target.metadata!.name!;
    // Query may list the replacement only once it is ready and the old endpoint has gone.
    const before = this.pods_.get(name)!;
    this.listed.delete(`${before.status!.podIP!}:10901`);
    this.generation++;
    const fresh = pod(name, sts, { uid: `uid-${name}-${this.generation}` });
    fresh.status = { phase: 'Running', podIP: `10.0.1.${this.generation}`, conditions: [{ type: 'Ready', status: 'False' }] };
    this.pods_.set(name, fresh);
    this.log.push(`evicted ${name}`);
    return Promise.resolve({ evicted: true });
  };
  restart = (_: string, workload: Workload) => {
    this.log.push(`restarted ${workload.name}`);
    return Promise.resolve();
  };
  rolledOut = () => Promise.resolve({ done: true, status: '2/2 updated, 2 ready' });
  deletePod = () => Promise.resolve();
  createPod = () => Promise.resolve();
  queryEndpoints = (_: QueryRef) => {
    this.log.push(`query: ${[...this.listed].sort().join(',')}`);
    return Promise.resolve([...this.listed]);
  };
}

void t.test('an HA set: a refused eviction is retried, and the next pod is evicted only once Query lists the replacement', async (t) => {
  const pods = [pod('prometheus-0', sts), pod('prometheus-1', sts)];
  const cluster = new FakeCluster(pods);
  for (const p of pods) cluster.listed.add(`${p.status!.podIP!}:10901`);
  const lines: string[] = [];
  const context = { cluster, query: { namespace: 'monitoring', service: 'query', port: 9090 }, grpcPort: 10901, timeoutMs: 5_000, pollMs: 1, log: (l: string) => lines.push(l), judge: () => current };
  const [step] = planRollout(pods.map((p) => entry(p)), options);
  await runStep(context, step!);
  const evictions = cluster.log.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('evicted'));
  t.same(evictions.map(([l]) => l), ['evicted prometheus-0', 'evicted prometheus-1'], 'both, in order');
  const between = cluster.log.slice(evictions[0]![1], evictions[1]![1]);
  t.ok(between.some((l) => l.startsWith('query:') && l.includes('10.0.1.1:10901')), `Query listed prometheus-0's replacement before prometheus-1 went: ${between.join(' | ')}`);
  t.match(lines.join('\n'), /prometheus-0: waiting to evict: Cannot evict pod as it would violate the pod's disruption budget\./);
  for (const name of ['prometheus-0', 'prometheus-1']) {
    const drained = cluster.log.indexOf(`labelled ${name} draining`);
    const evicted = cluster.log.indexOf(`evicted ${name}`);
    t.ok(drained >= 0 && drained < evicted, `${name}: drained from Query before it was evicted`);
  }
  t.match(lines.join('\n'), /prometheus-0: draining: waiting for Thanos Query to drop 10\.0\.0\.12:10901/);
  t.match(lines.join('\n'), /prometheus-0: replaced by prometheus-0 in \d+ s: ready, listed by Thanos Query; sidecar current/);
});

void t.test('a replacement that never comes stops the rollout, naming what it waited for', async (t) => {
  const cluster = new FakeCluster([pod('prometheus-0', sts), pod('prometheus-1', sts)]);
  cluster.refusals = 0;
  cluster.queryEndpoints = () => Promise.resolve([]);
  const context = { cluster, query: { namespace: 'monitoring', service: 'query', port: 9090 }, grpcPort: 10901, timeoutMs: 50, pollMs: 5, log: () => undefined, judge: () => current };
  const [step] = planRollout([entry(pod('prometheus-0', sts)), entry(pod('prometheus-1', sts))], options);
  await t.rejects(runStep(context, step!), new RolloutStopped('no ready replacement for monitoring/prometheus-0 within 0.05 s (waiting for Thanos Query to list monitoring/prometheus-0 (10.0.1.1:10901))'));
  t.same(cluster.log.filter((l) => l.startsWith('evicted')), ['evicted prometheus-0'], 'prometheus-1 was not touched');
});
