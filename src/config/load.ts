// Loads the configuration file: YAML -> defaults filled from the schema -> validated once.
// Errors name the field, the value and the accepted form; the rest of the program trusts the result.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import Value from 'typebox/value';
import { ConfigSchema, sidecarSecretMounts, type Config } from './schema.ts';
import { compileCheck } from '../validation.ts';
import { isBlockDuration, parseQuantity } from '../units.ts';
import { readFailure } from '../files.ts';
import { ConfigError, messageOf } from '../errors.ts';
import { cleanPath } from '../files.ts';


/** The sidecar flags the injector sets, and the setting that decides each: never in extraArgs. */
const SIDECAR_FLAG_OWNERS: Record<string, string> = {
  'prometheus.url': "from Prometheus' --web.listen-address and route prefix",
  'tsdb.path': "from Prometheus' --storage.tsdb.path",
  'grpc-address': 'grpcPort',
  'http-address': 'httpPort',
  'log.level': 'logLevel',
  'log.format': 'logFormat',
  'objstore.config-file': 'objstore',
  'objstore.config': 'objstore',
  'shipper.meta-file-name': 'compaction',
  'shipper.ignore-unequal-block-size': 'compaction',
  'shipper.upload-compacted': 'upload-history: annotate the pod thanos-injector/upload-history: true to upload the blocks Prometheus compacted before it was injected, once',
  'min-time': 'minTime',
  'grpc-server-tls-cert': 'grpcTls',
  'grpc-server-tls-key': 'grpcTls',
  'grpc-server-tls-client-ca': 'grpcTls',
  'grpc-server-tls-min-version': 'grpcTls',
  'prometheus.http-client-file': 'prometheus.httpClient',
  'prometheus.http-client': 'prometheus.httpClient',
  'prometheus.ready_timeout': 'readyTimeout',
  'prometheus.get_config_interval': 'getConfigInterval',
  'prometheus.get_config_timeout': 'getConfigTimeout',
  'tracing.config-file': 'tracing',
  'tracing.config': 'tracing',
};

/** The first value seen twice in `values`, with the index of its second appearance. */
function firstRepeat(values: string[]): { value: string; index: number } | undefined {
  const seen = new Set<string>();
  for (const [index, value] of values.entries()) {
    if (seen.has(value)) return { value, index };
    seen.add(value);
  }
  return undefined;
}

/** The rules between fields that a schema cannot say: env, volumes and mounts. */
function checkSidecarAdditions(config: Config): string | undefined {
  const env = config.env.findIndex((variable) => variable.value !== undefined && variable.valueFrom !== undefined);
  if (env >= 0) return `env[${env}]: ${config.env[env]?.name} has both value and valueFrom; expected one of them`;
  const repeatedEnv = firstRepeat(config.env.map((variable) => variable.name));
  if (repeatedEnv) return `env[${repeatedEnv.index}]: ${repeatedEnv.value} is already set; expected each variable once`;
  const repeatedVolume = firstRepeat(config.volumes.map((volume) => volume.name));
  if (repeatedVolume) return `volumes[${repeatedVolume.index}]: ${repeatedVolume.value} is already a volume; expected each name once`;
  // The sidecar's own mounts, present on every pod the setting applies to.
  const own = sidecarSecretMounts(config);
  const paths = config.volumeMounts.map((mount) => cleanPath(mount.mountPath));
  const repeatedPath = firstRepeat(paths);
  if (repeatedPath) return `volumeMounts[${repeatedPath.index}]: ${repeatedPath.value} is already a mount path; expected each path once`;
  for (const [index, path] of paths.entries()) {
    const clash = own.find((mount) => cleanPath(mount.mountPath) === path);
    if (clash) return `volumeMounts[${index}]: ${path} is where the sidecar mounts ${clash.setting}.mountPath; expected another path`;
  }
  return undefined;
}

const checkConfig = compileCheck(ConfigSchema);

/** Validates a parsed config object (null/undefined = all defaults) and fills the defaults. */
export function buildConfig(input: unknown, source = 'config'): Config {
  if (input === null || input === undefined) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(`${source}: expected a YAML mapping of settings at the top level`);
  }
  const filled = Value.Default(ConfigSchema, structuredClone(input));
  const problems = checkConfig(filled);
  if (problems.length > 0) throw new ConfigError(`${source}: ${problems.join('; ')}`);
  const config = filled as Config;
  if (!isBlockDuration(config.blockDuration)) {
    throw new ConfigError(`${source}: blockDuration: "${config.blockDuration}" is not valid; expected a Prometheus duration from 1m to 31d, such as 2h`);
  }
  for (const resource of ['cpu', 'memory'] as const) {
    const request = config.resources.requests[resource];
    const limit = config.resources.limits[resource];
    if (request !== undefined && limit !== undefined && (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? Infinity)) {
      throw new ConfigError(`${source}: resources.requests.${resource} ${request} is above resources.limits.${resource} ${limit}; expected a request no larger than the limit`);
    }
  }
  config.extraArgs.forEach((arg, i) => {
    const name = /^--(?:no-)?([^=]+)/.exec(arg)?.[1] ?? '';
    const owner = SIDECAR_FLAG_OWNERS[name];
    if (owner !== undefined) throw new ConfigError(`${source}: extraArgs[${i}]: ${arg} is a flag the injector sets (${owner}); expected a flag it does not set`);
  });
  const addition = checkSidecarAdditions(config);
  if (addition !== undefined) throw new ConfigError(`${source}: ${addition}`);
  if (config.injectorNamespace === '') config.injectorNamespace = process.env.POD_NAMESPACE ?? '';
  return config;
}

export async function loadConfig(path: string | undefined): Promise<Config> {
  if (path === undefined) return buildConfig({});
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${readFailure(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${messageOf(error).split('\n')[0]}`);
  }
  return buildConfig(parsed, `config file ${path}`);
}
