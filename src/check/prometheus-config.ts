// Where a Prometheus pod's configuration file comes from (its --config.file, the volume mount that
// holds it, the ConfigMap or Secret behind that volume and the key), and whether that file sets
// the global.external_labels the Thanos sidecar cannot run without. Pure.
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { V1ConfigMap, V1Pod, V1Secret, V1Volume } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { PREFIX } from '../inject/names.ts';
import { mountHolding, type Container } from '../inject/pod.ts';
import { findPrometheus, readPrometheus } from '../inject/prometheus.ts';
import { CHECK, fail, ok, skip, type CheckRow } from './rows.ts';
import { messageOf } from '../errors.ts';

/** The image's working directory, against which a relative --config.file is resolved. */
const IMAGE_WORKING_DIR = '/prometheus';

export interface ConfigObjectRef {
  kind: 'ConfigMap' | 'Secret';
  name: string;
  key: string;
}

export type ConfigSource =
  | {
    kind: 'objects';
    /** The absolute path Prometheus reads. */
    path: string;
    container: string;
    volume: string;
    /** Where the file may come from, in order (a projected volume may have several). */
    candidates: ConfigObjectRef[];
  }
  | { kind: 'unknown'; reason: string };


function candidatesOf(volume: V1Volume, relative: string): ConfigObjectRef[] | string {
  const fromItems = (items: { key: string; path: string }[] | undefined) =>
    items === undefined ? relative : items.find((item) => item.path === relative)?.key;
  if (volume.configMap?.name !== undefined) {
    const key = fromItems(volume.configMap.items);
    return key === undefined ? `volume ${volume.name} projects no ${relative} from ConfigMap ${volume.configMap.name} (its items)` : [{ kind: 'ConfigMap', name: volume.configMap.name, key }];
  }
  if (volume.secret?.secretName !== undefined) {
    const key = fromItems(volume.secret.items);
    return key === undefined ? `volume ${volume.name} projects no ${relative} from Secret ${volume.secret.secretName} (its items)` : [{ kind: 'Secret', name: volume.secret.secretName, key }];
  }
  if (volume.projected !== undefined) {
    const candidates: ConfigObjectRef[] = [];
    for (const source of volume.projected.sources ?? []) {
      if (source.configMap?.name !== undefined) {
        const key = fromItems(source.configMap.items);
        if (key !== undefined) candidates.push({ kind: 'ConfigMap', name: source.configMap.name, key });
      } else if (source.secret?.name !== undefined) {
        const key = fromItems(source.secret.items);
        if (key !== undefined) candidates.push({ kind: 'Secret', name: source.secret.name, key });
      }
    }
    return candidates.length > 0 ? candidates : `projected volume ${volume.name} holds no ConfigMap or Secret that projects ${relative}`;
  }
  const type = Object.keys(volume).find((key) => key !== 'name') ?? 'unknown';
  return `it is on volume ${volume.name} (${type}), written at run time (a config reloader or init container?)`;
}

/** Follows --config.file to the object that holds it. */
export function prometheusConfigSource(pod: V1Pod): ConfigSource {
  const spec = pod.spec;
  if (spec === undefined) return { kind: 'unknown', reason: 'the pod has no spec' };
  const index = findPrometheus(spec, pod.metadata?.annotations?.[`${PREFIX}prometheus-container`]?.trim());
  if (index === undefined) return { kind: 'unknown', reason: 'the pod has no Prometheus container' };
  const view = readPrometheus(spec, index);
  const container: Container = view.container;
  const path = posix.resolve(container.workingDir ?? IMAGE_WORKING_DIR, view.configFile ?? 'prometheus.yml');
  const held = mountHolding(container.volumeMounts, path);
  const flag = `--config.file=${path}`;
  if (held === undefined) return { kind: 'unknown', reason: `${flag} is on no volume of container ${container.name}: it comes with the image` };
  const volume = spec.volumes?.find((v) => v.name === held.mount.name);
  if (volume === undefined) return { kind: 'unknown', reason: `${flag}: volume ${held.mount.name} is not in the pod` };
  const candidates = candidatesOf(volume, held.inVolume);
  if (typeof candidates === 'string') return { kind: 'unknown', reason: `${flag}: ${candidates}` };
  return { kind: 'objects', path, container: container.name, volume: volume.name, candidates };
}

const refName = (ref: ConfigObjectRef) => `${ref.kind} ${ref.name}`;

function contentOf(ref: ConfigObjectRef, object: V1ConfigMap | V1Secret): Buffer | undefined {
  if (ref.kind === 'ConfigMap') {
    const configMap = object as V1ConfigMap;
    const text = configMap.data?.[ref.key];
    if (text !== undefined) return Buffer.from(text, 'utf8');
    const binary = configMap.binaryData?.[ref.key];
    return binary === undefined ? undefined : Buffer.from(binary, 'base64');
  }
  const data = (object as V1Secret).data?.[ref.key];
  return data === undefined ? undefined : Buffer.from(data, 'base64');
}

/** `cluster=prometheus-k8s, replica=a` */
function describeLabels(labels: Record<string, unknown>): string {
  return Object.entries(labels).map(([key, value]) => `${key}=${String(value)}`).join(', ');
}

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
    let content = contentOf(ref, object);
    if (content === undefined) {
      problems.push(`${refName(ref)} has no key ${ref.key}`);
      continue;
    }
    const where = `${ref.kind} ${namespace}/${ref.name} key ${ref.key} (${flag})`;
    if (ref.key.endsWith('.gz')) {
      try {
        content = gunzipSync(content);
      } catch {
        return fail(name, `${where} is not gzip data`);
      }
    }
    let config: unknown;
    try {
      config = parse(content.toString('utf8'));
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
