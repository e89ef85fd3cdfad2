// Per-pod overrides by annotation (`thanos-injector/<key>`), resolved against the configuration
// into the settings that rendering uses. An invalid value is an error naming the annotation, the
// value and the accepted form: it rejects the pod, it is never silently replaced.
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import { ABSOLUTE_PATH_PATTERN, LOG_LEVELS, MIN_TIME_FORM, MIN_TIME_PATTERN, OBJECT_NAME_PATTERN, type Config } from '../config/schema.ts';
import type { CompactionSetting } from './compaction.ts';
import { OVERRIDE_KEYS, PREFIX, STATUS_ANNOTATION, type OverrideKey } from './names.ts';
import { isBlockDuration, parseQuantity, QUANTITY_PATTERN } from '../units.ts';
import { EPHEMERAL_TSDB_ACTIONS } from './tsdb-volume.ts';

export type SidecarMode = 'native' | 'container';

/** Everything rendering needs, config and overrides already merged. */
export interface Settings {
  image: string;
  logLevel: string;
  mode: SidecarMode;
  compaction: CompactionSetting;
  blockDuration: string;
  /** The block duration was asked for on this pod (annotation), so it wins over flags already set. */
  blockDurationExplicit: boolean;
  grpcPort: number;
  httpPort: number;
  /** The bucket configuration: a Secret mounted at mountPath, or a file something else provides (configFile). */
  objstore: { enabled: boolean; secretName: string; secretKey: string; mountPath: string; configFile?: string };
  /** Tracing configuration from a Secret (secretName '' = none). */
  tracing: Config['tracing'];
  listenLocal: Config['listenLocal'];
  env: Config['env'];
  volumes: Config['volumes'];
  volumeMounts: Config['volumeMounts'];
  /** TLS for the sidecar's gRPC server (secretName '' = none). */
  grpcTls: Config['grpcTls'];
  /** How the sidecar calls Prometheus: scheme, and the http-client file's Secret (name '' = none). */
  prometheus: { scheme: 'http' | 'https'; httpClient: { secretName: string; secretKey: string; mountPath: string } };
  runAsUser: number;
  runAsUserExplicit: boolean;
  runAsGroup: number;
  fsGroup: number;
  resources: V1ResourceRequirements;
  /** Sidecar flags from the config and the min-time annotation, written when set. */
  logFormat?: string;
  minTime?: string;
  readyTimeout?: string;
  getConfigInterval?: string;
  getConfigTimeout?: string;
  extraArgs: string[];
  /** The sidecar's preStop hook waits for uploads (config waitForUploadsOnStop). */
  waitForUploadsOnStop: boolean;
  /** Upload the blocks Prometheus compacted before it was injected, once (annotation upload-history). */
  uploadHistory: boolean;
}

const SECRET_NAME = new RegExp(OBJECT_NAME_PATTERN);
const ABSOLUTE_PATH = new RegExp(ABSOLUTE_PATH_PATTERN);
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IMAGE = /^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$/;
const MIN_TIME = new RegExp(MIN_TIME_PATTERN);

interface Rule {
  valid: (value: string) => boolean;
  form: string;
}

/** A Secret, optionally with its key: NAME or NAME/KEY. */
const SECRET_REFERENCE: Rule = {
  valid: (v) => {
    const [name = '', key, ...rest] = v.split('/');
    // Secret keys: [-._a-zA-Z0-9]+, never `.` or `..`, never starting with `..`.
    const keyValid = key === undefined || (SECRET_KEY.test(key) && key !== '.' && !key.startsWith('..'));
    return rest.length === 0 && name.length <= 253 && SECRET_NAME.test(name) && keyValid;
  },
  form: 'a Secret name, optionally with its key: NAME or NAME/KEY',
};

const RULES: Record<OverrideKey, Rule> = {
  image: { valid: (v) => IMAGE.test(v) && v.length <= 512, form: 'an image reference such as quay.io/thanos/thanos:v0.42.5' },
  'objstore-secret': SECRET_REFERENCE,
  'objstore-config-file': { valid: (v) => ABSOLUTE_PATH.test(v) && v.length <= 4096, form: 'an absolute path such as /vault/secrets/objstore.yml' },
  'prometheus-http-client-secret': SECRET_REFERENCE,
  'prometheus-scheme': { valid: (v) => v === 'http' || v === 'https', form: 'http or https' },
  'block-duration': {
    valid: (v) => isBlockDuration(v),
    form: 'a Prometheus duration from 1m to 31d, such as 2h or 30m',
  },
  compaction: { valid: (v) => ['auto', 'delayed', 'disabled'].includes(v), form: 'one of auto, delayed, disabled' },
  'sidecar-mode': { valid: (v) => ['auto', 'native', 'container'].includes(v), form: 'one of auto, native, container' },
  'prometheus-container': { valid: (v) => v.length <= 63 && DNS_LABEL.test(v), form: 'the name of a container in this pod' },
  'run-as-user': {
    valid: (v) => /^[0-9]+$/.test(v) && Number(v) >= 1 && Number(v) <= 2147483647,
    form: 'a user id from 1 to 2147483647',
  },
  'log-level': { valid: (v) => (LOG_LEVELS as readonly string[]).includes(v), form: 'one of debug, info, warn, error' },
  'cpu-request': { valid: (v) => QUANTITY_PATTERN.test(v), form: 'a CPU quantity such as 100m or 0.5' },
  'memory-request': { valid: (v) => QUANTITY_PATTERN.test(v), form: 'a memory quantity such as 128Mi or 1Gi' },
  'memory-limit': { valid: (v) => QUANTITY_PATTERN.test(v), form: 'a memory quantity such as 512Mi or 1Gi' },
  'cpu-limit': { valid: (v) => QUANTITY_PATTERN.test(v), form: 'a CPU quantity such as 500m or 1' },
  'min-time': { valid: (v) => MIN_TIME.test(v), form: MIN_TIME_FORM },
  'existing-sidecar': { valid: (v) => v === 'share-user' || v === 'leave', form: 'share-user (set the pod-level user so that the pod\'s own sidecar can upload) or leave' },
  'upload-history': {
    valid: (v) => v === 'true' || v === 'false',
    form: 'true (upload the blocks Prometheus compacted before it was injected, once) or false',
  },
  'ephemeral-tsdb': {
    valid: (v) => (EPHEMERAL_TSDB_ACTIONS as readonly string[]).includes(v),
    form: 'allow, warn, skip (admit the pod without the sidecar) or deny (refuse the pod): what to do when its TSDB volume is deleted with the pod',
  },
};

export interface ParsedOverrides {
  values: Partial<Record<OverrideKey, string>>;
  errors: string[];
  warnings: string[];
}

function quoted(value: string): string {
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}

/** Reads and checks the override annotations. Unknown `thanos-injector/` keys are warnings. */
export function parseOverrides(annotations: Record<string, string> | undefined): ParsedOverrides {
  const result: ParsedOverrides = { values: {}, errors: [], warnings: [] };
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (!key.startsWith(PREFIX) || key === STATUS_ANNOTATION) continue;
    const short = key.slice(PREFIX.length);
    if (!(OVERRIDE_KEYS as readonly string[]).includes(short)) {
      result.warnings.push(`unknown annotation ${key} ignored`);
      continue;
    }
    const rule = RULES[short as OverrideKey];
    const trimmed = value.trim();
    if (rule.valid(trimmed)) result.values[short as OverrideKey] = trimmed;
    else result.errors.push(`annotation ${key}: ${quoted(value)} is not valid; expected ${rule.form}`);
  }
  return result;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const match = /^v?([0-9]+)\.([0-9]+)/.exec(version);
  if (!match) return false;
  const [have, haveMinor] = [Number(match[1]), Number(match[2])];
  return have > major || (have === major && haveMinor >= minor);
}

/** auto -> native from Kubernetes 1.29 (SidecarContainers on by default), else a regular container. */
export function resolveMode(mode: string, kubernetesVersion: string): SidecarMode {
  if (mode === 'native' || mode === 'container') return mode;
  return versionAtLeast(kubernetesVersion, 1, 29) ? 'native' : 'container';
}

/** Config + overrides -> settings; or the errors that make the combination invalid. */
/** Settings without overrides depend only on the config and the version: resolved once. */
const withoutOverrides = new WeakMap<Config, Map<string, { settings: Settings; errors: string[] }>>();

export function resolveSettings(
  config: Config,
  values: ParsedOverrides['values'],
  kubernetesVersion: string,
): { settings: Settings; errors: string[] } {
  if (Object.keys(values).length > 0) return resolve(config, values, kubernetesVersion);
  let byVersion = withoutOverrides.get(config);
  if (byVersion === undefined) withoutOverrides.set(config, (byVersion = new Map<string, { settings: Settings; errors: string[] }>()));
  let resolved = byVersion.get(kubernetesVersion);
  if (resolved === undefined) byVersion.set(kubernetesVersion, (resolved = resolve(config, values, kubernetesVersion)));
  return resolved;
}

/** The sidecar's requests and limits: the config's, with the pod's annotations over them; a request above its limit is an error. */
function sidecarResources(config: Config, values: ParsedOverrides['values'], errors: string[]): V1ResourceRequirements {
  const requests: Record<string, string> = { ...config.resources.requests };
  const limits: Record<string, string> = {};
  for (const [name, quantity] of Object.entries(config.resources.limits)) if (quantity !== undefined) limits[name] = quantity;
  if (values['cpu-request']) requests.cpu = values['cpu-request'];
  if (values['memory-request']) requests.memory = values['memory-request'];
  if (values['memory-limit']) limits.memory = values['memory-limit'];
  if (values['cpu-limit']) limits.cpu = values['cpu-limit'];
  for (const resource of ['cpu', 'memory'] as const) {
    const request = requests[resource];
    const limit = limits[resource];
    if (request === undefined || limit === undefined) continue;
    if ((parseQuantity(request) ?? 0) <= (parseQuantity(limit) ?? Infinity)) continue;
    const requestKey = `${resource}-request` as const;
    if (values[requestKey] !== undefined) {
      errors.push(`annotation ${PREFIX}${requestKey}: ${quoted(request)} is above the sidecar's ${resource} limit ${limit}; expected a request no larger than the limit`);
    } else {
      errors.push(`annotation ${PREFIX}${resource}-limit: ${quoted(limit)} is below the sidecar's ${resource} request ${request}; expected a limit no smaller than the request`);
    }
  }
  return { requests, ...(Object.keys(limits).length > 0 ? { limits } : {}) };
}

/** Where the bucket configuration comes from: a per-pod Secret replaces a configured file, a per-pod file the configured Secret. */
function bucketSettings(config: Config, values: ParsedOverrides['values'], errors: string[]): Settings['objstore'] {
  if (values['objstore-secret'] !== undefined && values['objstore-config-file'] !== undefined) {
    errors.push(`annotations ${PREFIX}objstore-secret and ${PREFIX}objstore-config-file both say where the bucket configuration is; expected one of them`);
  }
  const [secretName, secretKey] = values['objstore-secret']?.split('/') ?? [];
  const configFile = values['objstore-config-file'] ?? (values['objstore-secret'] === undefined && config.objstore.configFile !== '' ? config.objstore.configFile : undefined);
  return {
    enabled: config.objstore.enabled,
    secretName: secretName ?? config.objstore.secretName,
    secretKey: secretKey ?? config.objstore.secretKey,
    mountPath: config.objstore.mountPath,
    ...(configFile !== undefined ? { configFile } : {}),
  };
}

function resolve(config: Config, values: ParsedOverrides['values'], kubernetesVersion: string): { settings: Settings; errors: string[] } {
  const errors: string[] = [];
  const [clientSecretName, clientSecretKey] = values['prometheus-http-client-secret']?.split('/') ?? [];
  const settings: Settings = {
    image: values.image ?? config.image,
    logLevel: values['log-level'] ?? config.logLevel,
    mode: resolveMode(values['sidecar-mode'] ?? config.sidecarMode, kubernetesVersion),
    compaction: (values.compaction as CompactionSetting | undefined) ?? config.compaction,
    blockDuration: values['block-duration'] ?? config.blockDuration,
    blockDurationExplicit: values['block-duration'] !== undefined,
    grpcPort: config.grpcPort,
    httpPort: config.httpPort,
    objstore: bucketSettings(config, values, errors),
    tracing: config.tracing,
    listenLocal: config.listenLocal,
    env: config.env,
    volumes: config.volumes,
    volumeMounts: config.volumeMounts,
    grpcTls: config.grpcTls,
    prometheus: {
      scheme: (values['prometheus-scheme'] as 'http' | 'https' | undefined) ?? config.prometheus.scheme,
      httpClient: {
        secretName: clientSecretName ?? config.prometheus.httpClient.secretName,
        secretKey: clientSecretKey ?? config.prometheus.httpClient.secretKey,
        mountPath: config.prometheus.httpClient.mountPath,
      },
    },
    runAsUser: values['run-as-user'] !== undefined ? Number(values['run-as-user']) : config.securityContext.runAsUser,
    runAsUserExplicit: values['run-as-user'] !== undefined,
    runAsGroup: config.securityContext.runAsGroup,
    fsGroup: config.securityContext.fsGroup,
    resources: sidecarResources(config, values, errors),
    logFormat: config.logFormat,
    minTime: values['min-time'] ?? config.minTime,
    readyTimeout: config.readyTimeout,
    getConfigInterval: config.getConfigInterval,
    getConfigTimeout: config.getConfigTimeout,
    extraArgs: config.extraArgs,
    waitForUploadsOnStop: config.waitForUploadsOnStop,
    uploadHistory: values['upload-history'] === 'true',
  };
  return { settings, errors };
}
