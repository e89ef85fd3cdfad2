// Whether the file behind a Prometheus pod's --config.file (inject/prometheus-config.ts follows it)
// sets the global.external_labels the Thanos sidecar cannot run without, and what they become for
// the pod once Prometheus has expanded its variables: the pitfalls there (prometheus-operator's
// `$(VAR)`, which Prometheus keeps literally; `${VAR}` on a 2.x without the feature flag; a
// variable the container does not set). Pure.
import type { V1ConfigMap, V1Pod, V1Secret } from '@kubernetes/client-node';
import { configText, describeLabels, externalLabels, type ConfigObjectRef, type ConfigSource, type ExternalLabels } from '../inject/prometheus-config.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { messageOf } from '../errors.ts';
import { parse } from 'yaml';

const refName = (ref: ConfigObjectRef) => `${ref.kind} ${ref.name}`;

/** Objects read for a config source's candidates, by `<kind>/<name>` (undefined: not found). */
export type ConfigObjects = ReadonlyMap<string, V1ConfigMap | V1Secret | undefined>;

export const objectKey = (ref: Pick<ConfigObjectRef, 'kind' | 'name'>) => `${ref.kind}/${ref.name}`;

/** The text Prometheus reads and where it comes from, or why it cannot be read (a skip, or a failure of its own). */
export type ConfigFile =
  | { text: string; where: string }
  | { problem: { status: 'skip' | 'fail'; reason: string } };

/** The first candidate that holds the file, as Prometheus sees it through its volume. */
export function readConfigFile(namespace: string, source: ConfigSource, objects: ConfigObjects): ConfigFile {
  if (source.kind === 'unknown') return { problem: { status: 'skip', reason: `cannot check: ${source.reason}; make sure it sets global.external_labels` } };
  const flag = `--config.file=${source.path}`;
  const problems: string[] = [];
  for (const ref of source.candidates) {
    const object = objects.get(objectKey(ref));
    if (object === undefined) {
      problems.push(`${refName(ref)} not found in ${namespace} (the pod cannot start)`);
      continue;
    }
    const content = configText(ref, object);
    if (content === undefined) {
      problems.push(`${refName(ref)} has no key ${ref.key}`);
      continue;
    }
    const where = `${ref.kind} ${namespace}/${ref.name} key ${ref.key} (${flag})`;
    if ('error' in content) return { problem: { status: 'fail', reason: `${where} ${content.error}` } };
    return { text: content.text, where };
  }
  return { problem: { status: 'fail', reason: `${flag} on volume ${source.volume}: ${problems.join('; ')}; the sidecar cannot read external labels from a Prometheus that does not start` } };
}

const VARIABLE = /\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/;

/**
 * Why the labels a pod's Prometheus uses are not what the file seems to say: `$(VAR)` kept
 * literally, `${VAR}` not expanded (2.x without the feature), a variable the container lacks.
 */
export function labelPitfalls(labels: Extract<ExternalLabels, { kind: 'labels' }>, container: string): string[] {
  const pitfalls: string[] = [];
  for (const key of labels.literal) {
    const written = labels.written[key] ?? '';
    pitfalls.push(`label ${key}: ${written} is prometheus-operator's $(VAR) form, which Prometheus itself keeps literally: write ${key}: ${written.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, '${$1}')}`);
  }
  const withVariables = Object.entries(labels.written).filter(([, value]) => VARIABLE.test(value));
  if (!labels.expands) {
    for (const [key, value] of withVariables) {
      pitfalls.push(`label ${key}: ${value} stays literally ${value}: this Prometheus 2.x expands variables only with --enable-feature=expand-external-labels (2.27+), which the injector adds to the pods it injects`);
    }
    return pitfalls;
  }
  for (const [key, value] of withVariables) {
    if (labels.labels[key] !== '') continue;
    const match = VARIABLE.exec(value);
    const variable = match?.[1] ?? match?.[2] ?? '';
    pitfalls.push(`label ${key}: ${value} is empty for this pod, so Prometheus drops it: container ${container} has no ${variable} ` +
      '(the injector gives Prometheus POD_NAME from the downward API: re-create the pod; or add env from fieldRef metadata.name)');
  }
  return pitfalls;
}

/** A pod's external labels as its Prometheus uses them, or why they cannot be told. */
export interface PodLabels {
  labels: ExternalLabels | { kind: 'unknown'; reason: string };
  pitfalls: string[];
}

export function podExternalLabels(namespace: string, pod: V1Pod, source: ConfigSource, objects: ConfigObjects): PodLabels {
  const file = readConfigFile(namespace, source, objects);
  if ('problem' in file) return { labels: { kind: 'unknown', reason: file.problem.reason }, pitfalls: [] };
  const labels = externalLabels(pod, file.text, pod.metadata?.name);
  const container = source.kind === 'objects' ? source.container : 'prometheus';
  return { labels, pitfalls: labels.kind === 'labels' ? labelPitfalls(labels, container) : [] };
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) => describeLabels(a) === describeLabels(b);

/**
 * The configuration file sets a non-empty global.external_labels. With `pod`, also what they
 * become for that pod (shown when a variable changes them) and their pitfalls (a warning).
 */
export function checkExternalLabels(namespace: string, source: ConfigSource, objects: ConfigObjects, pod?: V1Pod): CheckRow {
  const name = CHECK.externalLabels;
  const file = readConfigFile(namespace, source, objects);
  if ('problem' in file) return file.problem.status === 'skip' ? skip(name, file.problem.reason) : fail(name, file.problem.reason);
  const { where } = file;
  let config: unknown;
  try {
    config = parse(file.text);
  } catch (error) {
    return fail(name, `${where} is not valid YAML (${messageOf(error).split('\n')[0]}): Prometheus does not start`);
  }
  const labels = (config as { global?: { external_labels?: unknown } } | null)?.global?.external_labels;
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels) || Object.keys(labels).length === 0) {
    return fail(name, `${where} has no global.external_labels: the sidecar exits without unique external labels; add e.g. global.external_labels: {cluster: <name>} ` +
      '(prometheus-community chart: --set server.global.external_labels.cluster=<name>), plus replica: ${POD_NAME} for an HA pair, and reload Prometheus');
  }
  const written = describeLabels(labels as Record<string, unknown>);
  if (pod === undefined) return ok(name, `${where}: ${written}`);
  const { labels: used, pitfalls } = podExternalLabels(namespace, pod, source, objects);
  const expanded = used.kind === 'labels' && !sameLabels(used.labels, used.written) ? ` (for pod ${pod.metadata?.name ?? ''}: ${describeLabels(used.labels)})` : '';
  if (pitfalls.length > 0) return warn(name, `${where}: ${written}${expanded}; ${pitfalls.join('; ')}`);
  return ok(name, `${where}: ${written}${expanded}`);
}
