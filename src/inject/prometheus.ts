// Reads the Prometheus container of a pod: which container it is, and what its flags say about
// where the TSDB lives, where the web server listens and how blocks are cut.
import { posix } from 'node:path';
import type { V1PodSpec } from '@kubernetes/client-node';
import { PREFIX } from './names.ts';
import type { Container } from './pod.ts';

/** The official 3.x image's CMD, used when a container sets neither `command` nor `args`. */
const IMAGE_DEFAULT_ARGS = ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'];
/** What the 2.x images' CMD adds (flags that 3.0 removed). */
const IMAGE_DEFAULT_ARGS_2X = ['--web.console.libraries=/usr/share/prometheus/console_libraries', '--web.console.templates=/usr/share/prometheus/consoles'];

/**
 * The version an image's tag names (v2.54.1, 3.5.0, v3.5.0-rc.0, v0.42 -> [0, 42, 0]); undefined for
 * a digest alone, `latest` or a custom tag. A pre-release counts as its release.
 */
export function imageVersion(image: string | undefined): [number, number, number] | undefined {
  const name = (image ?? '').split('@')[0] ?? '';
  const colon = name.lastIndexOf(':');
  if (colon < 0 || colon < name.lastIndexOf('/')) return undefined;
  const match = /^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:[-+].*)?$/.exec(name.slice(colon + 1));
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

/** The major version of a Prometheus image from its tag; undefined when the tag does not tell. */
export function prometheusMajor(image: string | undefined): number | undefined {
  return imageVersion(image)?.[0];
}

/** The image's own default arguments (its CMD) for that major version; 3.x's when it cannot be told. */
export function imageDefaultArgs(major: number | undefined): string[] {
  return major !== undefined && major < 3 ? [...IMAGE_DEFAULT_ARGS, ...IMAGE_DEFAULT_ARGS_2X] : IMAGE_DEFAULT_ARGS;
}
const IMAGE_WORKING_DIR = '/prometheus';
const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'zsh']);

export const MIN_BLOCK_FLAG = 'storage.tsdb.min-block-duration';
export const MAX_BLOCK_FLAG = 'storage.tsdb.max-block-duration';
/**
 * Prometheus >= 2.55, a hidden boolean (on by default): vertical compaction of overlapping blocks
 * (out-of-order data). Turned off with `--no-` (kingpin refuses `=false`) while the sidecar uploads.
 */
export const OVERLAPPING_COMPACTION_FLAG = 'storage.tsdb.allow-overlapping-compaction';
/** Flags without a value (kingpin's booleans); `--no-X` ones too. */
const BOOLEAN_FLAGS = new Set(['web.enable-lifecycle', OVERLAPPING_COMPACTION_FLAG]);
/** Prometheus >= 3.9: compaction waits for the blocks this file (the sidecar's upload record) lists. */
export const DELAY_COMPACT_FLAG = 'storage.tsdb.delay-compact-file.path';

/** Where a flag's value stands: `--flag=value` at index, or `--flag value` with the value at index. */
export interface FlagSite {
  list: 'command' | 'args';
  index: number;
  form: 'equals' | 'separate' | 'bare';
}

export interface Flag {
  value: string;
  /** Undefined when the flag is inside a shell script and cannot be edited in place. */
  site?: FlagSite;
}

export interface PrometheusView {
  index: number;
  container: Container;
  /** Absolute, normalised (no trailing slash). */
  tsdbPath: string;
  port: number;
  /** '' or a path starting with '/' and without a trailing '/'. */
  routePrefix: string;
  configFile?: string;
  retention?: string;
  webConfigFile?: string;
  minBlock?: Flag;
  maxBlock?: Flag;
  delayCompactFile?: Flag;
  /** true: `--storage.tsdb.allow-overlapping-compaction`, false: `--no-storage.tsdb.allow-overlapping-compaction`. */
  overlappingCompaction?: boolean;
  /** The container runs Prometheus through `sh -c '...'`: flags can be read but not edited. */
  shellScript: boolean;
  /** Neither command nor args: the image's default arguments apply. */
  usesImageDefaults: boolean;
}

/** True for a Prometheus server image (`prom/prometheus`, `quay.io/prometheus/prometheus:v3`, digests...). */
export function isPrometheusImage(image: string | undefined): boolean {
  if (!image) return false;
  const withoutDigest = image.split('@')[0] ?? '';
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1);
  return lastSegment.split(':')[0] === 'prometheus';
}

/**
 * The index in `spec.containers` of the Prometheus container: the one named by the
 * prometheus-container annotation, else one named `prometheus`, else one running a Prometheus image.
 */
export function findPrometheus(spec: V1PodSpec, requestedName: string | undefined): number | undefined {
  const containers = spec.containers;
  if (requestedName !== undefined) {
    const index = containers.findIndex((c) => c.name === requestedName);
    return index >= 0 ? index : undefined;
  }
  const byName = containers.findIndex((c) => c.name === 'prometheus');
  if (byName >= 0) return byName;
  const byImage = containers.findIndex((c) => isPrometheusImage(c.image));
  return byImage >= 0 ? byImage : undefined;
}

/** The annotation that names the Prometheus container (the escape hatch for any other container). */
export const PROMETHEUS_CONTAINER_ANNOTATION = `${PREFIX}prometheus-container`;

/** The name the prometheus-container annotation gives, trimmed; undefined without it. */
export function requestedPrometheus(annotations: Record<string, string> | undefined): string | undefined {
  return annotations?.[PROMETHEUS_CONTAINER_ANNOTATION]?.trim();
}

/** The index of a pod's (or template's) Prometheus container, as the injector finds it. */
export function prometheusIndex(pod: { metadata?: { annotations?: Record<string, string> }; spec?: V1PodSpec }): number | undefined {
  return pod.spec === undefined ? undefined : findPrometheus(pod.spec, requestedPrometheus(pod.metadata?.annotations));
}

interface Token {
  text: string;
  site?: { list: 'command' | 'args'; index: number };
}

function shellScript(container: Container): string | undefined {
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  const program = argv[0];
  if (program === undefined || !SHELLS.has(posix.basename(program))) return undefined;
  // `-c`, or combined short options such as `-ec` or `-xc`: the script is the next argument.
  const dashC = argv.findIndex((arg, i) => i > 0 && /^-[a-zA-Z]*c[a-zA-Z]*$/.test(arg));
  return dashC >= 0 ? argv[dashC + 1] : undefined;
}

function tokens(container: Container, script: string | undefined): Token[] {
  if (script !== undefined) {
    return script
      .split(/\s+/)
      .filter(Boolean)
      .map((text) => ({ text: text.replace(/['"]/g, '') }));
  }
  const result: Token[] = [];
  for (const list of ['command', 'args'] as const) {
    (container[list] ?? []).forEach((text, index) => result.push({ text, site: { list, index } }));
  }
  return result;
}

/**
 * Prometheus in agent mode: `--agent` (3.x) or `agent` among the `--enable-feature` values (2.x;
 * the flag repeats and takes comma-separated lists). An agent keeps only a WAL: it cuts no blocks
 * to upload, and it refuses the server-only block-duration flags at start-up.
 */
export function runsAsAgent(container: Container): boolean {
  const list = tokens(container, shellScript(container)).map((token) => token.text);
  return list.includes('--agent') || list.includes('--agent=true') || enabledFeatures(container).has('agent');
}

/** The `--enable-feature` values of a container (the flag repeats and takes comma-separated lists). */
export function enabledFeatures(container: Container): Set<string> {
  const list = tokens(container, shellScript(container)).map((token) => token.text);
  const features = new Set<string>();
  list.forEach((text, i) => {
    const value = text.startsWith('--enable-feature=') ? text.slice('--enable-feature='.length) : text === '--enable-feature' ? list[i + 1] : undefined;
    for (const feature of value?.split(',') ?? []) if (feature.trim() !== '') features.add(feature.trim());
  });
  return features;
}

function readFlags(list: Token[]): Map<string, Flag> {
  const flags = new Map<string, Flag>();
  for (let i = 0; i < list.length; i++) {
    const token = list[i] as Token;
    if (!token.text.startsWith('--') || token.text === '--') continue;
    const body = token.text.slice(2);
    const equals = body.indexOf('=');
    const name = equals >= 0 ? body.slice(0, equals) : body;
    if (flags.has(name)) continue; // Prometheus refuses repeated flags; the first one is the one we report.
    if (equals >= 0) {
      flags.set(name, { value: body.slice(equals + 1), site: token.site && { ...token.site, form: 'equals' } });
    } else if (BOOLEAN_FLAGS.has(name) || name.startsWith('no-')) {
      flags.set(name, { value: 'true', site: token.site && { ...token.site, form: 'bare' } });
    } else {
      const next = list[i + 1];
      if (next === undefined || next.text.startsWith('--')) continue;
      flags.set(name, { value: next.text, site: next.site && { ...next.site, form: 'separate' } });
      i++;
    }
  }
  return flags;
}

function portOf(listenAddress: string | undefined): number {
  if (listenAddress === undefined) return 9090;
  const port = Number(listenAddress.slice(listenAddress.lastIndexOf(':') + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : 9090;
}

/** Prometheus: an empty or absent --web.route-prefix defaults to the path of --web.external-url. */
function routePrefixOf(routePrefix: string | undefined, externalUrl: string | undefined): string {
  let prefix = routePrefix;
  if ((prefix === undefined || prefix === '') && externalUrl !== undefined) {
    try {
      // A bare path ("/prometheus/") is a valid external URL for Prometheus (Go's url.Parse).
      prefix = new URL(externalUrl, 'http://localhost').pathname;
    } catch {
      prefix = undefined;
    }
  }
  if (prefix === undefined) return '';
  const trimmed = prefix.replace(/\/+$/, '');
  return trimmed === '' ? '' : trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

export function readPrometheus(spec: V1PodSpec, index: number): PrometheusView {
  const container = spec.containers[index] as Container;
  const usesImageDefaults = !Array.isArray(container.command) && !Array.isArray(container.args);
  const script = shellScript(container);
  const flags = readFlags(tokens(container, script));
  const value = (name: string) => flags.get(name)?.value;
  const workingDir = container.workingDir ?? IMAGE_WORKING_DIR;
  const tsdbFlag = value('storage.tsdb.path');
  const tsdbPath = tsdbFlag !== undefined
    ? posix.resolve(workingDir, tsdbFlag)
    : usesImageDefaults ? '/prometheus' : posix.resolve(workingDir, 'data/');
  return {
    index,
    container,
    tsdbPath,
    port: portOf(value('web.listen-address')),
    routePrefix: routePrefixOf(value('web.route-prefix'), value('web.external-url')),
    configFile: value('config.file') ?? (usesImageDefaults ? '/etc/prometheus/prometheus.yml' : 'prometheus.yml'),
    retention: value('storage.tsdb.retention.time') ?? value('storage.tsdb.retention'),
    webConfigFile: value('web.config.file'),
    minBlock: flags.get(MIN_BLOCK_FLAG),
    maxBlock: flags.get(MAX_BLOCK_FLAG),
    delayCompactFile: flags.get(DELAY_COMPACT_FLAG),
    overlappingCompaction: flags.has(`no-${OVERLAPPING_COMPACTION_FLAG}`) ? false : flags.has(OVERLAPPING_COMPACTION_FLAG) ? flags.get(OVERLAPPING_COMPACTION_FLAG)?.value !== 'false' : undefined,
    shellScript: script !== undefined,
    usesImageDefaults,
  };
}
