// What is wrong with the external labels a workload's Prometheus gives its Thanos sidecar, as
// warnings for `inject -f` (the configuration file is in the input): none at all (the sidecar
// exits), one label set shared by replicas (overlapping blocks halt the Compactor; Query cannot
// deduplicate), prometheus-operator's `$(VAR)` form (literal for Prometheus), and labels taken from
// the generated pod names of a Deployment (a new block stream on every rollout). The consequence
// and fix texts are shared with `register`'s events. Pure.
import type { V1PodSpec } from '@kubernetes/client-node';
import { describeLabels, externalLabels, type ConfigObjectRef } from './prometheus-config.ts';
import type { Container, PodLike } from './pod.ts';

/** How many pods a workload runs: spec.replicas, or one per node for a DaemonSet. */
export type Replicas = number | 'per-node';

export interface LabelsWorkload {
  kind: string;
  replicas: Replicas;
}

/** The configuration file behind --config.file, as read from the object that holds it. */
export interface ConfigFile {
  ref: ConfigObjectRef;
  /** The path Prometheus reads (--config.file). */
  path: string;
  /** The Prometheus container that reads it. */
  container: string;
  text: string;
}

/** Kinds whose pods get generated names, new on every rollout. */
const GENERATED_NAMES = new Set(['Deployment', 'ReplicaSet', 'ReplicationController', 'DaemonSet']);
/** Kinds whose pod count is spec.replicas (1 when unset, as the apiserver defaults it). */
const SCALED = new Set(['Deployment', 'StatefulSet', 'ReplicaSet', 'ReplicationController']);

/** The pods a workload manifest runs, for the question "do they need labels of their own?". */
export function workloadReplicas(kind: string, spec: { replicas?: unknown } | undefined): Replicas {
  if (kind === 'DaemonSet') return 'per-node';
  if (!SCALED.has(kind)) return 1;
  return typeof spec?.replicas === 'number' ? spec.replicas : 1;
}

const several = (replicas: Replicas) => replicas === 'per-node' || replicas > 1;

/**
 * Items whose label sets are the same block stream for Thanos (a label with an empty value is no
 * label, order does not matter), in groups of two or more: pods that would upload overlapping
 * blocks under one identity. `labelsOf` returns undefined for an item whose labels are not known.
 */
export function sharedLabelGroups<T>(items: readonly T[], labelsOf: (item: T) => Record<string, string> | undefined): { labels: Record<string, string>; items: T[] }[] {
  const groups = new Map<string, { labels: Record<string, string>; items: T[] }>();
  for (const item of items) {
    const stream = Object.entries(labelsOf(item) ?? {}).filter(([, value]) => value !== '').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (stream.length === 0) continue;
    const key = JSON.stringify(stream);
    const group = groups.get(key) ?? { labels: Object.fromEntries(stream), items: [] };
    group.items.push(item);
    groups.set(key, group);
  }
  return [...groups.values()].filter((group) => group.items.length > 1);
}

export const SHARED_LABELS_CONSEQUENCE =
  'their sidecars upload overlapping blocks under one label set, so the Thanos Compactor halts ("overlaps found") and Thanos Query cannot deduplicate them';

/** The one line that gives each pod of a StatefulSet labels of its own (the injector sets POD_NAME). */
export const REPLICA_LABEL_FIX =
  "give each pod a label of its own: replica: ${POD_NAME} under global.external_labels (prometheus-community chart: --set 'server.global.external_labels.replica=${POD_NAME}') and run Thanos Query with --query.replica-label=replica";

const STATEFULSET_FIX = 'run Prometheus as a StatefulSet, whose pod names survive a rollout (prometheus-community chart: --set server.statefulSet.enabled=true)';

/** DaemonSet pods are one per node, not replicas of each other: the node's name tells them apart and stays across rollouts. */
const NODE_LABEL_FIX =
  'give each pod the label of its node: env NODE_NAME (valueFrom.fieldRef.fieldPath: spec.nodeName) on the Prometheus container and node: ${NODE_NAME} under global.external_labels';

const where = (config: ConfigFile) => `${config.ref.kind} ${config.ref.name} key ${config.ref.key}`;

function noLabels(workload: LabelsWorkload, config: ConfigFile): string {
  const perNode = workload.replicas === 'per-node';
  const replicated = !perNode && several(workload.replicas);
  const example = perNode ? 'cluster: <name>, node: ${NODE_NAME}' : replicated ? 'cluster: <name>, replica: ${POD_NAME}' : 'cluster: <name>';
  const chart = `--set server.global.external_labels.cluster=<name>${replicated ? " --set 'server.global.external_labels.replica=${POD_NAME}'" : ''}`;
  const statefulSet = replicated && GENERATED_NAMES.has(workload.kind) ? `; and ${STATEFULSET_FIX}` : '';
  return `${where(config)} (--config.file=${config.path}) sets no global.external_labels: the Thanos sidecar exits at start without them ` +
    `("no external labels configured on Prometheus server") and uploads nothing; add labels that identify this Prometheus, ` +
    `e.g. global.external_labels: {${example}} (prometheus-community chart: ${chart})${statefulSet}`;
}

function sharedLabels(workload: LabelsWorkload, config: ConfigFile, labels: Record<string, string>, expands: boolean): string {
  const pods = workload.replicas === 'per-node' ? 'its pods (one per node)' : `its ${workload.replicas} replicas`;
  const fix = workload.replicas === 'per-node' ? NODE_LABEL_FIX : GENERATED_NAMES.has(workload.kind) ? `${STATEFULSET_FIX}, and ${REPLICA_LABEL_FIX}` : REPLICA_LABEL_FIX;
  const unexpanded = !expands && Object.values(labels).some((value) => value.includes('$'))
    ? ' (this Prometheus does not expand ${VAR} in external labels: 3.x does, 2.27-2.55 with --enable-feature=expand-external-labels)'
    : '';
  return `${pods} share one set of external labels (${describeLabels(labels)}; ${where(config)})${unexpanded}: ${SHARED_LABELS_CONSEQUENCE}; ${fix}`;
}

function literalLabels(config: ConfigFile, written: Record<string, string>, literal: string[]): string {
  const shown = literal.map((key) => `${key}: ${written[key] ?? ''}`).join(', ');
  const fixed = literal.map((key) => `${key}: ${(written[key] ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, '$${$1}')}`).join(', ');
  return `external label ${shown} in ${where(config)} uses prometheus-operator's $(VAR) form, which Prometheus keeps as literal text ` +
    `(only the operator's config reloader expands it), so every pod uploads under that same text; write ${fixed}`;
}

function perPodLabels(workload: LabelsWorkload, config: ConfigFile, labels: Record<string, string>): string {
  const fix = workload.kind === 'DaemonSet' ? NODE_LABEL_FIX.replace('give each pod', 'instead, give each pod') : STATEFULSET_FIX;
  return `its external labels (${describeLabels(labels)}; ${where(config)}) take the pod name, which a ${workload.kind} changes on every rollout: ` +
    `each new pod starts a new block stream in the bucket that the Thanos Compactor never merges with the old ones; ${fix}`;
}

/**
 * Names of the Prometheus container's variables that hold the node's name (spec.nodeName): a label
 * from one is distinct per pod of a DaemonSet (externalLabels counts it as shared, rightly for other kinds).
 */
function nodeVariables(container: Container | undefined): string[] {
  return (container?.env ?? []).filter((variable) => variable.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName').map((variable) => variable.name);
}

/** Some written label value refers to one of these variables (`${NAME}`, or `$NAME` as Go's os.Expand reads it). */
export function labelsReferTo(written: Record<string, string>, names: readonly string[]): boolean {
  const refersTo = (value: string, name: string) =>
    value.includes(`\${${name}}`) || (/^[A-Za-z0-9_]+$/.test(name) && new RegExp(`\\$${name}(?![A-Za-z0-9_])`).test(value));
  return names.some((name) => Object.values(written).some((value) => refersTo(value, name)));
}

function prometheusContainer(spec: V1PodSpec | undefined, name: string | undefined): Container | undefined {
  return spec?.containers.find((container) => container.name === name);
}

/**
 * Warnings about the external labels `config` gives the pods of `template` (a workload's pod
 * template, or a Pod), one sentence each naming what is wrong, what follows and the fix; [] when
 * nothing is wrong or the file is not valid YAML (Prometheus itself says so).
 */
export function labelsAdvice(template: PodLike, workload: LabelsWorkload, config: ConfigFile): string[] {
  const found = externalLabels(template, config.text);
  if (found.kind === 'invalid') return [];
  if (found.kind === 'none') return [noLabels(workload, config)];
  const warnings: string[] = [];
  if (found.literal.length > 0) warnings.push(literalLabels(config, found.written, found.literal));
  const perNode = workload.replicas === 'per-node' && found.expands && labelsReferTo(found.written, nodeVariables(prometheusContainer(template.spec, config.container)));
  if (several(workload.replicas) && !found.perPod && !perNode) warnings.push(sharedLabels(workload, config, found.labels, found.expands));
  if (found.perPod && GENERATED_NAMES.has(workload.kind)) warnings.push(perPodLabels(workload, config, found.labels));
  return warnings;
}
