// Prometheus' configuration file as a pod sees it: where --config.file comes from (the volume
// mount that holds it, the ConfigMap or Secret behind that volume and the key), and the external
// labels that file gives this pod once Prometheus has expanded its environment variables. The
// labels are the identity of every block the sidecar uploads; read by `inject -f` (with the
// ConfigMap in the stream), `check` and `register`. Pure.
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { V1ConfigMap, V1Secret, V1Volume } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { messageOf } from '../errors.ts';
import { mountHolding, type Container, type PodLike } from './pod.ts';
import { enabledFeatures, imageVersion, prometheusIndex, readPrometheus } from './prometheus.ts';

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

/** The Prometheus container of a pod or pod template, as the injector finds it. */
function prometheusOf(pod: PodLike): Container | undefined {
  const index = prometheusIndex(pod);
  return index === undefined ? undefined : pod.spec?.containers[index];
}

/** Follows --config.file to the object that holds it. */
export function prometheusConfigSource(pod: PodLike): ConfigSource {
  const spec = pod.spec;
  if (spec === undefined) return { kind: 'unknown', reason: 'the pod has no spec' };
  const index = prometheusIndex(pod);
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

/** The text of a ConfigMap's or Secret's key (gunzipped for a `.gz` key); undefined without that key. */
export function configText(ref: ConfigObjectRef, object: V1ConfigMap | V1Secret): { text: string } | { error: string } | undefined {
  let content: Buffer | undefined;
  if (ref.kind === 'ConfigMap') {
    const configMap = object as V1ConfigMap;
    const text = configMap.data?.[ref.key];
    const binary = configMap.binaryData?.[ref.key];
    content = text !== undefined ? Buffer.from(text, 'utf8') : binary === undefined ? undefined : Buffer.from(binary, 'base64');
  } else {
    const data = (object as V1Secret).data?.[ref.key] ?? (object as V1Secret).stringData?.[ref.key];
    content = data === undefined ? undefined : (object as V1Secret).data?.[ref.key] !== undefined ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8');
  }
  if (content === undefined) return undefined;
  if (ref.key.endsWith('.gz')) {
    try {
      content = gunzipSync(content);
    } catch {
      return { error: 'is not gzip data' };
    }
  }
  return { text: content.toString('utf8') };
}

/**
 * The first readable text of a source's candidates, with the object it came from; `find` returns the
 * object of a candidate as the caller has it (the input's manifests, the ConfigMaps read), or undefined.
 */
export function readConfigText(source: ConfigSource, find: (ref: ConfigObjectRef) => V1ConfigMap | V1Secret | undefined): { ref: ConfigObjectRef; text: string } | undefined {
  if (source.kind !== 'objects') return undefined;
  for (const ref of source.candidates) {
    const object = find(ref);
    const content = object === undefined ? undefined : configText(ref, object);
    if (content !== undefined && 'text' in content) return { ref, text: content.text };
  }
  return undefined;
}

/** What a pod's Prometheus makes of global.external_labels. */
export type ExternalLabels =
  | { kind: 'invalid'; error: string }
  | { kind: 'none' }
  | {
    kind: 'labels';
    /** As written in the file. */
    written: Record<string, string>;
    /** As Prometheus uses them for this pod (variables expanded); `<pod name>` where the name is not known yet (a template). */
    labels: Record<string, string>;
    /** Some label differs per pod (its pod name, through POD_NAME, HOSTNAME or another downward-API variable of metadata.name). */
    perPod: boolean;
    /** Labels holding prometheus-operator's `$(VAR)` form, which Prometheus itself keeps literally. */
    literal: string[];
    /** Prometheus expands variables here (3.x, or 2.x with --enable-feature=expand-external-labels). */
    expands: boolean;
  };

/** Stands for the pod name in the labels of a template, whose pods are not named yet. */
export const POD_NAME_PLACEHOLDER = '<pod name>';

/** The environment Prometheus sees: literal values and the pod's own name and namespace; other sources are constant per pod set. */
function environment(container: Container, pod: PodLike, podName: string | undefined): Map<string, { value: string; perPod: boolean }> {
  const name = podName ?? POD_NAME_PLACEHOLDER;
  // The runtime sets HOSTNAME to the pod's hostname: spec.hostname, else its name.
  const env = new Map<string, { value: string; perPod: boolean }>([['HOSTNAME', pod.spec?.hostname ? { value: pod.spec.hostname, perPod: false } : { value: name, perPod: true }]]);
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (variable.value !== undefined) env.set(variable.name, { value: variable.value, perPod: false });
    else if (field === 'metadata.name') env.set(variable.name, { value: name, perPod: true });
    else if (field === 'metadata.namespace') env.set(variable.name, { value: pod.metadata?.namespace ?? '<namespace>', perPod: false });
    else if (variable.valueFrom !== undefined) env.set(variable.name, { value: `<${variable.name}>`, perPod: field !== undefined && field !== 'spec.nodeName' });
  }
  return env;
}

/** Go's os.Expand as Prometheus applies it to external label values: `${VAR}` and `$VAR`; `$$` is a `$` (2.34+). */
function expand(value: string, env: Map<string, { value: string; perPod: boolean }>): { value: string; perPod: boolean } {
  let perPod = false;
  const result = value.replace(/\$(\$|\{([^}]*)\}|([A-Za-z0-9_]+))/g, (whole, _all: string, braced: string | undefined, bare: string | undefined) => {
    if (whole === '$$') return '$';
    const found = env.get(braced ?? bare ?? '');
    if (found?.perPod) perPod = true;
    return found?.value ?? '';
  });
  return { value: result, perPod };
}

/**
 * The external labels `configText` gives this pod (or template, when `podName` is undefined): read
 * from global.external_labels and expanded as its Prometheus would (by its image tag and flags;
 * where the tag does not tell, as 3.x does).
 */
export function externalLabels(pod: PodLike, config: string, podName?: string): ExternalLabels {
  let parsed: unknown;
  try {
    parsed = parse(config);
  } catch (error) {
    return { kind: 'invalid', error: `not valid YAML (${messageOf(error).split('\n')[0]})` };
  }
  const written = (parsed as { global?: { external_labels?: unknown } } | null)?.global?.external_labels;
  if (written === undefined || written === null) return { kind: 'none' };
  if (typeof written !== 'object' || Array.isArray(written)) return { kind: 'invalid', error: 'global.external_labels is not a map of label names to values' };
  const entries = Object.entries(written as Record<string, unknown>).map(([key, value]) => [key, String(value)] as const);
  if (entries.length === 0) return { kind: 'none' };
  const container = prometheusOf(pod);
  const version = imageVersion(container?.image);
  const expands = version === undefined || version[0] >= 3 || (container !== undefined && enabledFeatures(container).has('expand-external-labels'));
  const env = container === undefined ? new Map<string, { value: string; perPod: boolean }>() : environment(container, pod, podName);
  const labels: Record<string, string> = {};
  let perPod = false;
  for (const [key, value] of entries) {
    const expanded = expands ? expand(value, env) : { value, perPod: false };
    labels[key] = expanded.value;
    perPod ||= expanded.perPod;
  }
  return {
    kind: 'labels',
    written: Object.fromEntries(entries),
    labels,
    perPod,
    literal: entries.filter(([, value]) => /\$\([A-Za-z_][A-Za-z0-9_]*\)/.test(value)).map(([key]) => key),
    expands,
  };
}

/** `cluster=prometheus-k8s, replica=a` */
export function describeLabels(labels: Record<string, unknown>): string {
  return Object.entries(labels).map(([key, value]) => `${key}=${String(value)}`).join(', ');
}
