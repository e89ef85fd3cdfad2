// The live webhooks' matchConditions against the ones this injector generates: the apiserver
// evaluates them before calling the injector, so a stale or hand-edited condition silently keeps
// Prometheus pods from it. Where they differ, the live conditions are evaluated (the same standard
// CEL the apiserver runs) on the pod shapes the injector acts on, and the row names those dropped.
import type { V1MatchCondition, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { isCelError, run, type CelInput } from '@bufbuild/cel';
import { matchConditions, type MatchCondition } from '../inject/match-conditions.ts';
import { MIRROR_ANNOTATION, PREFIX } from '../inject/names.ts';
import type { PodLike } from '../inject/pod.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { WEBHOOK_SUFFIX } from './webhook.ts';

/** JSON as the apiserver hands it to CEL: objects are maps, integers ints. */
function toCel(value: unknown): CelInput {
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') return new Map(Object.entries(value).map(([key, inner]) => [key, toCel(inner)]));
  if (typeof value === 'number') return BigInt(Math.trunc(value));
  return value as CelInput;
}

/** Whether the apiserver would call the webhook for this pod: every condition true; an error counts as not called (under Ignore it is skipped). */
export function callsWebhook(conditions: readonly MatchCondition[], pod: PodLike): { called: boolean; errors: string[] } {
  const object = toCel({ apiVersion: 'v1', kind: 'Pod', metadata: {}, ...structuredClone(pod) });
  const errors: string[] = [];
  let called = true;
  for (const condition of conditions) {
    const result = run(condition.expression, { object, oldObject: null });
    if (isCelError(result)) errors.push(`${condition.name}: ${result.message}`);
    else if (result !== true) called = false;
  }
  return { called: called && errors.length === 0, errors };
}

const prometheus = { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.16.0' };

/** The pod shapes the injector acts on (a test holds the engine to each), as the row names them. */
export const PROBE_PODS: readonly { what: string; pod: PodLike }[] = [
  { what: 'a container named prometheus', pod: { spec: { containers: [prometheus] } } },
  { what: 'a Prometheus image under another name (e.g. the prometheus-community chart\'s prometheus-server)', pod: { spec: { containers: [{ name: 'prometheus-server', image: 'registry.example.com/mirror/prometheus@sha256:0123' }] } } },
  {
    what: `the container named by ${PREFIX}prometheus-container`,
    pod: { metadata: { annotations: { [`${PREFIX}prometheus-container`]: 'tsdb' } }, spec: { containers: [{ name: 'tsdb', image: 'registry.example.com/tsdb:1' }] } },
  },
  { what: 'a pod with a Thanos sidecar of its own (the injector warns and may set its user)', pod: { spec: { containers: [prometheus, { name: 'thanos', image: 'thanosio/thanos:v0.36.1', args: ['sidecar'] }] } } },
];

const same = (live: readonly V1MatchCondition[], generated: readonly MatchCondition[]) =>
  live.length === generated.length && live.every((condition, i) => condition.name === generated[i]?.name && condition.expression === generated[i]?.expression);

/** One webhook's conditions: undefined when they are this injector's, else what is wrong. */
function judge(conditions: readonly V1MatchCondition[], generated: readonly MatchCondition[]): { missed: string[]; note: string } | undefined {
  if (same(conditions, generated)) return undefined;
  if (conditions.length === 0) return { missed: [], note: 'none' };
  const missed = PROBE_PODS.filter(({ pod }) => !callsWebhook(conditions, pod).called).map(({ what }) => what);
  return { missed, note: `${conditions.map((c) => c.name).join(', ')} (not this injector's)` };
}

/** The webhooks' matchConditions are this injector's, or at least send it every Prometheus pod shape it acts on. */
export function checkMatchConditions(configuration: V1MutatingWebhookConfiguration): CheckRow {
  const name = CHECK.matchConditions;
  const ours = (configuration.webhooks ?? []).filter((webhook) => webhook.name.endsWith(WEBHOOK_SUFFIX));
  if (ours.length === 0) return skip(name, 'no webhook of the injector');
  const generated = matchConditions();
  const judged = ours.map((webhook) => ({ webhook: webhook.name, verdict: judge(webhook.matchConditions ?? [], generated) }));
  const dropping = judged.filter(({ verdict }) => (verdict?.missed.length ?? 0) > 0);
  const reapply = 'helm upgrade --reuse-values the chart (or copy charts/thanos-sidecar-injector/files/match-conditions.yaml)';
  if (dropping.length > 0) {
    const what = dropping.map(({ webhook, verdict }) => `${webhook} (${verdict?.note ?? ''}) never calls the injector for ${verdict?.missed.join('; ') ?? ''}`).join('; ');
    return fail(name, `${what}: such pods start WITHOUT the sidecar and the injector cannot warn; ${reapply}`);
  }
  const without = judged.filter(({ verdict }) => verdict?.note === 'none').map(({ webhook }) => webhook);
  const differing = judged.filter(({ verdict }) => verdict !== undefined && verdict.note !== 'none').map(({ webhook }) => webhook);
  if (without.length > 0) {
    return warn(name, `${without.join(', ')}: no matchConditions, so every pod created in the selected namespaces waits for the injector (and under failurePolicy Fail an injector outage stops them all); on Kubernetes 1.30 or later: helm upgrade --reuse-values --set webhook.matchConditions=true`);
  }
  if (differing.length > 0) {
    return warn(name, `${differing.join(', ')}: matchConditions differ from this injector's but still send it every Prometheus pod shape it knows; ${reapply} to get the current ones`);
  }
  return ok(name, `both webhooks send the injector only pods that may be Prometheus pods or run their own Thanos sidecar (${generated.map((c) => c.name).join(', ')}); mirror pods (${MIRROR_ANNOTATION}) and injected pods are never sent`);
}
