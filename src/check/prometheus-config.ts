// Whether the file behind a Prometheus pod's --config.file (inject/prometheus-config.ts follows it)
// sets the global.external_labels the Thanos sidecar cannot run without. Pure.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { configText, describeLabels, type ConfigObjectRef, type ConfigSource } from '../inject/prometheus-config.ts';
import { CHECK, fail, ok, skip, type CheckRow } from './rows.ts';
import { messageOf } from '../errors.ts';
import { parse } from 'yaml';

const refName = (ref: ConfigObjectRef) => `${ref.kind} ${ref.name}`;

/**
 * The configuration file sets a non-empty global.external_labels. `objects` holds what was read
 * for each candidate, by `<kind>/<name>` (undefined: not found).
 */
export function checkExternalLabels(namespace: string, source: ConfigSource, objects: ReadonlyMap<string, V1ConfigMap | V1Secret | undefined>): CheckRow {
  const name = CHECK.externalLabels;
  if (source.kind === 'unknown') return skip(name, `cannot check: ${source.reason}; make sure it sets global.external_labels`);
  const flag = `--config.file=${source.path}`;
  const problems: string[] = [];
  for (const ref of source.candidates) {
    const object = objects.get(`${ref.kind}/${ref.name}`);
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
    if ('error' in content) return fail(name, `${where} ${content.error}`);
    let config: unknown;
    try {
      config = parse(content.text);
    } catch (error) {
      return fail(name, `${where} is not valid YAML (${messageOf(error).split('\n')[0]}): Prometheus does not start`);
    }
    const labels = (config as { global?: { external_labels?: unknown } } | null)?.global?.external_labels;
    if (labels === null || typeof labels !== 'object' || Array.isArray(labels) || Object.keys(labels).length === 0) {
      return fail(name, `${where} has no global.external_labels: the sidecar exits without unique external labels; add e.g. global.external_labels: {cluster: <name>, replica: <pod>} and reload Prometheus`);
    }
    return ok(name, `${where}: ${describeLabels(labels as Record<string, unknown>)}`);
  }
  return fail(name, `${flag} on volume ${source.volume}: ${problems.join('; ')}; the sidecar cannot read external labels from a Prometheus that does not start`);
}
