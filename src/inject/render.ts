// What the injection adds to one pod: the sidecar, volumes, Prometheus flag edits, the pod-level
// securityContext and the marks. Pure: settings are resolved first, nothing here does I/O.
import { posix } from 'node:path';
import type { V1Container, V1EnvVar, V1Lifecycle, V1PodSecurityContext, V1PodSpec, V1SecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { preStopWait } from './shutdown.ts';
import { renderedRecord, type InjectionStatus } from './status.ts';
import { createdCollections, createdMarkCollections } from './patch.ts';
import { VERSION } from '../version.ts';
import { INJECTED_LABEL, PREFIX, SIDECAR_NAME, STATUS_ANNOTATION } from './names.ts';
import { EPHEMERAL_TSDB_FIX, ephemeralTsdbCost, tsdbVolume, type EphemeralTsdbAction, type TsdbVolume } from './tsdb-volume.ts';
import type { Settings, SidecarMode } from './overrides.ts';
import { allContainers, mountHolding, type PodLike } from './pod.ts';
import { cleanPath } from '../files.ts';
import { sidecarSecretMounts, type SecretMount } from '../config/schema.ts';
import { atLeast, chooseCompaction, SHIPPER_META_FILE, UPLOAD_COMPACTED_FLAG, type CompactionMode } from './compaction.ts';
import { DELAY_COMPACT_FLAG, enabledFeatures, imageDefaultArgs, imageVersion, MAX_BLOCK_FLAG, MIN_BLOCK_FLAG, OVERLAPPING_COMPACTION_FLAG, prometheusIndex, prometheusMajor, type Flag, type PrometheusView } from './prometheus.ts';
import { parseDuration } from '../units.ts';

/** Replace one element of the Prometheus container's command or args. */
export interface FlagEdit {
  list: 'command' | 'args';
  index: number;
  value: string;
}

export interface InjectionPlan {
  mode: SidecarMode;
  prometheusIndex: number;
  sidecar: V1Container;
  /** Appended to spec.volumes. */
  volumes: V1Volume[];
  /** Appended to the Prometheus container's volumeMounts (only when no volume held the TSDB). */
  prometheusMounts: V1VolumeMount[];
  /** Appended to the Prometheus container's env (POD_NAME, unless it has one). */
  prometheusEnv: V1EnvVar[];
  replaceFlags: FlagEdit[];
  /** Appended to the Prometheus container's args (which are created when absent). */
  appendArgs: string[];
  /** Pod securityContext fields to set; only fields the pod leaves unset appear here. */
  podSecurityContext: V1PodSecurityContext;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  warnings: string[];
  /** Where Prometheus' TSDB lives, and whether it outlives the pod. */
  tsdb: TsdbVolume;
  /** While uploading from a TSDB deleted with the pod: what that costs (the ephemeralTsdb policy's message). */
  ephemeralCost?: string;
  /** The lists and maps the patch adds whole (patch.ts' createdCollections), recorded for `uninject`. */
  created: string[];
}

export type RenderResult = { plan: InjectionPlan } | { error: string };

function uniqueName(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** Mount names a pod template may refer to: its volumes (StatefulSet claims are added later by the controller). */
function volumeNames(spec: V1PodSpec): Set<string> {
  const names = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const container of allContainers(spec)) for (const mount of container.volumeMounts ?? []) names.add(mount.name);
  return names;
}

/** The volumes the injection appends to the pod and the sidecar's mounts, with the names taken so far. */
interface SidecarVolumes {
  taken: Set<string>;
  volumes: V1Volume[];
  sidecarMounts: V1VolumeMount[];
  /** What each of the sidecar's mount paths holds, for the error when another mount wants it. */
  holds: Map<string, string>;
}

function addSidecarMount(into: SidecarVolumes, mount: V1VolumeMount, holds: string): void {
  into.sidecarMounts.push(mount);
  into.holds.set(cleanPath(mount.mountPath), holds);
}

/**
 * The sidecar reads and hard-links the TSDB: it mounts the volume that holds Prometheus' TSDB path
 * at the same path (and subPath); with none, an emptyDir for both. Returns Prometheus' new mounts.
 */
function mountTsdb(into: SidecarVolumes, spec: V1PodSpec, prometheus: PrometheusView, warnings: string[]): { mounts: V1VolumeMount[]; tsdb: TsdbVolume } {
  const { tsdbPath } = prometheus;
  const tsdbMount = mountHolding(prometheus.container.volumeMounts, tsdbPath)?.mount;
  if (tsdbMount !== undefined) {
    addSidecarMount(into, {
      name: tsdbMount.name,
      mountPath: tsdbMount.mountPath,
      ...(tsdbMount.subPath !== undefined ? { subPath: tsdbMount.subPath } : {}),
      ...(tsdbMount.subPathExpr !== undefined ? { subPathExpr: tsdbMount.subPathExpr } : {}),
    }, "Prometheus' TSDB");
    return { mounts: [], tsdb: tsdbVolume(spec, tsdbMount.name) };
  }
  const name = uniqueName('thanos-tsdb', into.taken);
  into.taken.add(name);
  into.volumes.push({ name, emptyDir: {} });
  addSidecarMount(into, { name, mountPath: tsdbPath }, "Prometheus' TSDB");
  warnings.push(`no volume held Prometheus' TSDB path ${tsdbPath}; added emptyDir volume ${name} for Prometheus and the sidecar`);
  return { mounts: [{ name, mountPath: tsdbPath }], tsdb: { volume: name, kind: 'emptyDir', lifetime: 'pod' } };
}

/** Mounts the sidecar's Secrets read-only, each as a new volume named after its base name. */
function mountSecrets(into: SidecarVolumes, mounts: SecretMount[]): string | undefined {
  for (const { setting, volume, secretName, mountPath } of mounts) {
    const holder = into.holds.get(cleanPath(mountPath));
    if (holder !== undefined) {
      return `${holder} is mounted at ${cleanPath(mountPath)}, where the ${setting} Secret goes; expected another ${setting}.mountPath in the injector config`;
    }
    const name = uniqueName(volume, into.taken);
    into.taken.add(name);
    into.volumes.push({ name, secret: { secretName } });
    addSidecarMount(into, { name, mountPath, readOnly: true }, `the ${setting} Secret`);
  }
  return undefined;
}

/**
 * The configuration's own volumes (renamed when the pod already has that name) and the sidecar's
 * mounts of them or of the pod's volumes.
 */
function addConfiguredVolumes(into: SidecarVolumes, settings: Settings, podVolumes: Set<string>): string | undefined {
  const renamed = new Map<string, string>();
  for (const volume of settings.volumes) {
    const name = uniqueName(volume.name, into.taken);
    into.taken.add(name);
    renamed.set(volume.name, name);
    into.volumes.push({ ...volume, name });
  }
  for (const [index, mount] of settings.volumeMounts.entries()) {
    const name = renamed.get(mount.name) ?? (podVolumes.has(mount.name) ? mount.name : undefined);
    if (name === undefined) {
      return `volumeMounts[${index}] in the injector config mounts volume ${mount.name}, which neither its volumes nor this pod has; expected the name of one`;
    }
    const holder = into.holds.get(cleanPath(mount.mountPath));
    if (holder !== undefined) {
      return `volumeMounts[${index}] in the injector config mounts ${mount.name} at ${cleanPath(mount.mountPath)}, where ${holder} is mounted; expected another mountPath`;
    }
    addSidecarMount(into, { ...mount, name }, `volumeMounts[${index}] of the injector config`);
  }
  return undefined;
}

/** The sidecar flags of the Secrets it reads besides the bucket's: gRPC TLS, Prometheus' http client, tracing. */
function secretFlags(settings: Settings): string[] {
  const args: string[] = [];
  const tls = settings.grpcTls;
  if (tls.secretName !== '') {
    args.push(`--grpc-server-tls-cert=${posix.join(tls.mountPath, 'tls.crt')}`, `--grpc-server-tls-key=${posix.join(tls.mountPath, 'tls.key')}`);
    if (tls.clientCa) args.push(`--grpc-server-tls-client-ca=${posix.join(tls.mountPath, 'ca.crt')}`);
    args.push(`--grpc-server-tls-min-version=${tls.minVersion}`);
  }
  const client = settings.prometheus.httpClient;
  if (client.secretName !== '') args.push(`--prometheus.http-client-file=${posix.join(client.mountPath, client.secretKey)}`);
  const tracing = settings.tracing;
  if (tracing.secretName !== '') args.push(`--tracing.config-file=${posix.join(tracing.mountPath, tracing.secretKey)}`);
  return args;
}

interface BlockFlagResult {
  replace: FlagEdit[];
  append: string[];
  changed: string[];
  error?: string;
}

/** Sets Prometheus flag `name` (currently `flag`) to `wanted` where it stands, or appends it; `expected` words the error for a shell script. */
function setFlag(result: BlockFlagResult, prometheus: PrometheusView, name: string, flag: Flag | undefined, wanted: string, expected: string): void {
  if (result.error !== undefined) return;
  if (prometheus.shellScript) {
    result.error = `container ${prometheus.container.name} runs Prometheus through a shell script, so --${name} cannot be set safely; expected ${expected} in the script, or Prometheus flags in args`;
    return;
  }
  result.changed.push(`--${name}=${wanted}`);
  const site = flag?.site;
  if (site === undefined) result.append.push(`--${name}=${wanted}`);
  else result.replace.push({ list: site.list, index: site.index, value: site.form === 'equals' ? `--${name}=${wanted}` : wanted });
}

/** Compaction disabled: min and max block duration equal to `wanted`, editing flags where they stand. */
function equalBlockFlags(prometheus: PrometheusView, wanted: string, explicit: boolean): BlockFlagResult {
  const result: BlockFlagResult = { replace: [], append: [], changed: [] };
  const { minBlock, maxBlock } = prometheus;
  const equalAlready =
    minBlock !== undefined && maxBlock !== undefined && parseDuration(minBlock.value) === parseDuration(maxBlock.value) &&
    parseDuration(minBlock.value) !== undefined;
  if (equalAlready && (!explicit || parseDuration(minBlock.value) === parseDuration(wanted))) return result;
  for (const [name, flag] of [[MIN_BLOCK_FLAG, minBlock], [MAX_BLOCK_FLAG, maxBlock]] as [string, Flag | undefined][]) {
    if (flag !== undefined && parseDuration(flag.value) === parseDuration(wanted)) continue;
    setFlag(result, prometheus, name, flag, wanted, `--${MIN_BLOCK_FLAG} and --${MAX_BLOCK_FLAG} both set to ${wanted}`);
  }
  return result;
}

/**
 * Compaction delayed: Prometheus waits for the sidecar's upload record before compacting a block.
 * Block durations stay Prometheus' own, except a per-pod block duration, which sets the shortest.
 */
function delayedCompactionFlags(prometheus: PrometheusView, blockDuration: string, explicit: boolean): BlockFlagResult {
  const result: BlockFlagResult = { replace: [], append: [], changed: [] };
  const record = posix.join(prometheus.tsdbPath, SHIPPER_META_FILE);
  const current = prometheus.delayCompactFile;
  if (current !== undefined && posix.resolve(prometheus.container.workingDir ?? '/prometheus', current.value) !== record) {
    result.error = `container ${prometheus.container.name} sets --${DELAY_COMPACT_FLAG}=${current.value}, but the sidecar writes its upload record to ${record}; expected that path, or no such flag`;
    return result;
  }
  if (current === undefined) setFlag(result, prometheus, DELAY_COMPACT_FLAG, undefined, record, `--${DELAY_COMPACT_FLAG}=${record}`);
  if (explicit && parseDuration(prometheus.minBlock?.value ?? '') !== parseDuration(blockDuration)) {
    setFlag(result, prometheus, MIN_BLOCK_FLAG, prometheus.minBlock, blockDuration, `--${MIN_BLOCK_FLAG}=${blockDuration}`);
  }
  return result;
}

function sidecarSecurityContext(prometheusContext: V1SecurityContext | undefined, runsAsRoot: boolean): V1SecurityContext {
  return {
    // Same user and group as Prometheus, so the shipper may hard-link its block files.
    ...(prometheusContext?.runAsUser !== undefined ? { runAsUser: prometheusContext.runAsUser } : {}),
    ...(prometheusContext?.runAsGroup !== undefined ? { runAsGroup: prometheusContext.runAsGroup } : {}),
    runAsNonRoot: !runsAsRoot,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Out-of-order data: Prometheus merges overlapping blocks (vertical compaction) into blocks the
 * sidecar never uploads, whatever the block durations. From 2.55 it can be told not to; the
 * out-of-order window may be set in the config file, which the webhook cannot read, so it is
 * always told while uploading (as prometheus-operator does).
 */
function overlappingCompactionFlag(prometheus: PrometheusView): { append?: string; warning?: string } {
  const flag = `--no-${OVERLAPPING_COMPACTION_FLAG}`;
  if (prometheus.overlappingCompaction === false) return {};
  if (prometheus.overlappingCompaction === true) {
    return { warning: `container ${prometheus.container.name} sets --${OVERLAPPING_COMPACTION_FLAG}: blocks merged from out-of-order data are not uploaded` };
  }
  const version = imageVersion(prometheus.container.image);
  if (version === undefined) {
    return { warning: `the Prometheus version of image ${prometheus.container.image ?? '(none)'} cannot be told from its tag, so ${flag} (Prometheus >= 2.55) was not added; with out-of-order ingestion, add it to the container's args` };
  }
  if (!atLeast(version, NO_OVERLAP_FROM)) return {};
  if (prometheus.shellScript) {
    return { warning: `container ${prometheus.container.name} runs Prometheus through a shell script, so ${flag} was not added; with out-of-order ingestion, add it to the script` };
  }
  return { append: flag };
}

/**
 * The sidecar's declared ports and probes. A server bound to 127.0.0.1 (listenLocal) declares no
 * port (a proxy in front may name its own `grpc`, which registration then follows), and the kubelet,
 * which probes the pod's IP, cannot probe it.
 */
function sidecarPorts(settings: Settings): Pick<V1Container, 'ports'> {
  const ports = [
    ...(settings.listenLocal.grpc ? [] : [{ name: 'grpc', containerPort: settings.grpcPort, protocol: 'TCP' }]),
    ...(settings.listenLocal.http ? [] : [{ name: 'http', containerPort: settings.httpPort, protocol: 'TCP' }]),
  ];
  return ports.length > 0 ? { ports } : {};
}

function sidecarProbes(settings: Settings): Pick<V1Container, 'readinessProbe' | 'livenessProbe'> {
  if (settings.listenLocal.http) return {};
  return {
    readinessProbe: { httpGet: { path: '/-/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/-/healthy', port: 'http' }, periodSeconds: 30, failureThreshold: 4 },
  };
}

/**
 * The bucket: the objstore config file (a Secret mounted, or a file the pod provides) and the
 * Prometheus flags that keep a block from being compacted before it is uploaded.
 */
function uploadFlags(prometheus: PrometheusView, settings: Settings, args: string[], warnings: string[]): { blocks: BlockFlagResult; compaction: CompactionMode; minBlock: string } | { error: string } {
  const { configFile, mountPath, secretKey } = settings.objstore;
  args.push(`--objstore.config-file=${configFile ?? posix.join(mountPath, secretKey)}`);
  // Thanos uploads only level-1 blocks: Prometheus must not compact one before it is uploaded.
  // The history goes up with compaction disabled (Thanos' condition for --shipper.upload-compacted), unless delayed is asked for.
  const choice = chooseCompaction(settings.uploadHistory && settings.compaction === 'auto' ? 'disabled' : settings.compaction, prometheus.container.image, settings.image);
  if ('error' in choice) return { error: choice.error };
  if (choice.warning !== undefined) warnings.push(choice.warning);
  const compaction = choice.mode;
  let blocks: BlockFlagResult;
  if (settings.uploadHistory) {
    if (compaction === 'delayed') {
      return { error: `annotation ${PREFIX}upload-history: true needs Prometheus' compaction disabled while its history goes up (with delayed compaction the level-1 blocks are uploaded and then compacted: the bucket would hold their samples twice); expected compaction auto or disabled, not delayed` };
    }
    // Thanos uploads the compacted blocks too, each only where no block of the bucket with these labels overlaps it.
    args.push(UPLOAD_COMPACTED_FLAG);
    warnings.push(`${PREFIX}upload-history: the blocks Prometheus compacted before it was injected are uploaded once, none that overlaps the bucket (the sidecar refuses those, and says so); when thanos-injector check --pod says it is done, remove the annotation and roll the pod`);
  }
  if (compaction === 'delayed') {
    blocks = delayedCompactionFlags(prometheus, settings.blockDuration, settings.blockDurationExplicit);
    args.push(`--shipper.meta-file-name=${SHIPPER_META_FILE}`, '--shipper.ignore-unequal-block-size');
  } else {
    blocks = equalBlockFlags(prometheus, settings.blockDuration, settings.blockDurationExplicit);
  }
  if (blocks.error !== undefined) return { error: blocks.error };
  const overlap = overlappingCompactionFlag(prometheus);
  if (overlap.warning !== undefined) warnings.push(overlap.warning);
  if (overlap.append !== undefined) {
    blocks.append.push(overlap.append);
    blocks.changed.push(overlap.append);
  }
  // The shortest block Prometheus will cut: keep at least three locally.
  const minBlock = compaction === 'delayed' && !settings.blockDurationExplicit
    ? (prometheus.minBlock?.value ?? '2h')
    : blocks.changed.some((flag) => flag.startsWith(`--${MIN_BLOCK_FLAG}=`)) ? settings.blockDuration : (prometheus.minBlock?.value ?? settings.blockDuration);
  const retention = parseDuration(prometheus.retention ?? '15d');
  if (retention !== undefined && retention < 3 * (parseDuration(minBlock) ?? 0)) {
    warnings.push(`retention ${prometheus.retention ?? '15d'} is under 3x the block duration; keep at least 3 blocks locally`);
  }
  return { blocks, compaction, minBlock };
}

/** The variable a replica external label names (`replica: ${POD_NAME}`), from the downward API. */
export const POD_NAME_ENV = 'POD_NAME';
/** Prometheus from 2.55 can be told not to compact overlapping blocks. */
export const NO_OVERLAP_FROM: [number, number, number] = [2, 55, 0];
/** Prometheus 2.27 to 2.x expands ${VAR} in external labels only with this feature (3.0 always does). */
export const EXPAND_FROM: [number, number, number] = [2, 27, 0];
export const EXPAND_EXTERNAL_LABELS = 'expand-external-labels';

/**
 * An HA pair needs one external label that differs per pod, and stays with the pod across restarts
 * (StatefulSet names): Prometheus expands `${POD_NAME}` in external labels, so the pod name is
 * given to it as POD_NAME, and on 2.27-2.55 (by the image tag) the feature that expands it is
 * turned on. The user's one line is then `replica: ${POD_NAME}` under global.external_labels.
 */
function replicaIdentity(prometheus: PrometheusView): { env: V1EnvVar[]; append: string[]; warning?: string } {
  const { container } = prometheus;
  const env = (container.env ?? []).some((e) => e.name === POD_NAME_ENV)
    ? []
    : [{ name: POD_NAME_ENV, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }];
  const version = imageVersion(container.image);
  const needsFeature = version !== undefined && version[0] === 2 && atLeast(version, EXPAND_FROM) && !enabledFeatures(container).has(EXPAND_EXTERNAL_LABELS);
  if (!needsFeature) return { env, append: [] };
  const flag = `--enable-feature=${EXPAND_EXTERNAL_LABELS}`;
  if (prometheus.shellScript) {
    return { env, append: [], warning: `container ${container.name} runs Prometheus 2.x through a shell script, so ${flag} was not added; add it for \${${POD_NAME_ENV}} in external labels (HA pairs)` };
  }
  return { env, append: [flag] };
}

/** The sidecar's flags set only when configured: log format, min time, the waits for Prometheus. */
function optionalFlags(settings: Settings): string[] {
  const flags: [string, string | undefined][] = [['log.format', settings.logFormat], ['min-time', settings.minTime], ['prometheus.ready_timeout', settings.readyTimeout],
    ['prometheus.get_config_interval', settings.getConfigInterval], ['prometheus.get_config_timeout', settings.getConfigTimeout]];
  return flags.filter(([, value]) => value !== undefined).map(([flag, value]) => `--${flag}=${value}`);
}

/** Warnings about how the sidecar reaches its inputs: a bucket file no volume holds, a Prometheus it calls without credentials. */
function accessWarnings(prometheus: PrometheusView, settings: Settings, sidecarMounts: V1VolumeMount[], warnings: string[]): void {
  const configFile = settings.objstore.enabled ? settings.objstore.configFile : undefined;
  if (configFile !== undefined && mountHolding(sidecarMounts, configFile) === undefined) {
    warnings.push(`no volume of the sidecar holds the objstore config file ${configFile}; it must be mounted into container ${SIDECAR_NAME} by something else (or add volumes and volumeMounts to the injector config)`);
  }
  if (settings.prometheus.httpClient.secretName === '' && prometheus.webConfigFile !== undefined) {
    warnings.push(
      `Prometheus uses --web.config.file (TLS or authentication) and the sidecar has no http-client file, so it calls ${settings.prometheus.scheme}://localhost without credentials; ` +
        'set the annotations thanos-injector/prometheus-http-client-secret (a Secret with the Thanos http-client YAML) and, for TLS, thanos-injector/prometheus-scheme: https',
    );
  }
}

/** The pod-level user and groups to set where the pod leaves them unset, and the user its containers then run as by default. */
function podUser(spec: V1PodSpec, settings: Settings, warnings: string[]): { podSecurityContext: V1PodSecurityContext; podUser: number } {
  const podContext = spec.securityContext ?? {};
  const podSecurityContext: V1PodSecurityContext = {};
  if (podContext.runAsUser === undefined) podSecurityContext.runAsUser = settings.runAsUser;
  else if (settings.runAsUserExplicit && podContext.runAsUser !== settings.runAsUser) {
    warnings.push(`run-as-user ${settings.runAsUser} not applied: the pod already sets runAsUser ${podContext.runAsUser}`);
  }
  if (podContext.runAsGroup === undefined) podSecurityContext.runAsGroup = settings.runAsGroup;
  if (podContext.fsGroup === undefined) podSecurityContext.fsGroup = settings.fsGroup;
  const user = podContext.runAsUser ?? settings.runAsUser;
  const someRoot = allContainers(spec).some((c) => (c.securityContext?.runAsUser ?? user) === 0);
  if (podContext.runAsNonRoot === undefined && !someRoot) podSecurityContext.runAsNonRoot = true;
  return { podSecurityContext, podUser: user };
}

/** One user for both containers (the seed's "hard link ... operation not permitted"): the pod fields to set, and Prometheus' user. */
function oneUser(spec: V1PodSpec, prometheus: PrometheusView, settings: Settings, warnings: string[]): { podSecurityContext: V1PodSecurityContext; prometheusUser: number } {
  const { podSecurityContext, podUser: user } = podUser(spec, settings, warnings);
  const prometheusUser = prometheus.container.securityContext?.runAsUser ?? user;
  if (prometheusUser === 0) {
    warnings.push('Prometheus runs as root, so the sidecar does too (it must share the user); this fails Pod Security restricted');
  }
  return { podSecurityContext, prometheusUser };
}

/**
 * All containers share the pod's network: a port already taken would keep the sidecar from
 * binding (and with hostNetwork the apiserver rejects the duplicate host port outright).
 */
function portClash(spec: V1PodSpec, settings: Settings): string | undefined {
  for (const container of allContainers(spec)) {
    const taken = (container.ports ?? []).find((port) => port.containerPort === settings.grpcPort || port.containerPort === settings.httpPort);
    if (taken !== undefined) {
      return `container ${container.name} already uses port ${taken.containerPort}, which the Thanos sidecar needs; ` +
        `expected ports ${settings.grpcPort} and ${settings.httpPort} free (change grpcPort/httpPort in the injector config, or label the pod thanos-injection=disabled)`;
    }
  }
  return undefined;
}

/** Flags appended to Prometheus' args; args replace the image's CMD, so with none that CMD is written out first, as the image's version has it. */
function prometheusAppendArgs(prometheus: PrometheusView, append: string[], warnings: string[]): string[] {
  if (append.length === 0 || !prometheus.usesImageDefaults) return append;
  const major = prometheusMajor(prometheus.container.image);
  warnings.push(
    major === undefined
      ? `container ${prometheus.container.name} had no args and the Prometheus version of image ${prometheus.container.image ?? '(none)'} cannot be told from its tag; the 3.x image's default args were written out to add the block flags (a 2.x image also needs --web.console.libraries and --web.console.templates: set the container's args)`
      : `container ${prometheus.container.name} had no args; the ${major}.x image's default args were written out to add the block flags`,
  );
  return [...imageDefaultArgs(major), ...append];
}

function sidecarContainer(settings: Settings, args: string[], volumeMounts: V1VolumeMount[], securityContext: V1SecurityContext, lifecycle: V1Lifecycle | undefined): V1Container {
  return {
    name: SIDECAR_NAME,
    image: settings.image,
    args,
    ...(settings.env.length > 0 ? { env: settings.env } : {}),
    ...sidecarPorts(settings),
    resources: settings.resources,
    volumeMounts,
    ...sidecarProbes(settings),
    ...(lifecycle !== undefined ? { lifecycle } : {}),
    securityContext,
    // A sidecar that exits leaves its last log lines in the pod's status (lastState.terminated.message),
    // where `check` and `register` read why without access to logs.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    ...(settings.mode === 'native' ? { restartPolicy: 'Always' } : {}),
  };
}

/** The sidecar's first flags: where Prometheus and its TSDB are, where the sidecar listens, its log level. */
function baseArgs(prometheus: PrometheusView, settings: Settings): string[] {
  return [
    'sidecar',
    `--prometheus.url=${settings.prometheus.scheme}://localhost:${prometheus.port}${prometheus.routePrefix}`,
    `--tsdb.path=${prometheus.tsdbPath}`,
    `--grpc-address=${settings.listenLocal.grpc ? '127.0.0.1' : '0.0.0.0'}:${settings.grpcPort}`,
    `--http-address=${settings.listenLocal.http ? '127.0.0.1' : '0.0.0.0'}:${settings.httpPort}`,
    `--log.level=${settings.logLevel}`,
  ];
}

/** The status annotation's JSON: what the injection did to this pod, for `kubectl describe`, `check` and `uninject`. */
function statusAnnotation(
  settings: Settings,
  prometheus: PrometheusView,
  done: { compaction: CompactionMode | undefined; tsdb: TsdbVolume; flags: string[]; warnings: string[] },
  plan: Omit<InjectionPlan, 'annotations' | 'created'>,
  created: string[],
): string {
  const status: InjectionStatus = {
    version: VERSION,
    container: SIDECAR_NAME,
    mode: settings.mode,
    ...(done.compaction !== undefined ? { compaction: done.compaction } : {}),
    prometheus: prometheus.container.name,
    tsdb: done.tsdb,
    volumes: plan.volumes.map((v) => v.name),
    flags: done.flags,
    ...(plan.prometheusEnv.length > 0 ? { env: plan.prometheusEnv.map((e) => e.name) } : {}),
    securityContext: Object.keys(plan.podSecurityContext),
    ...(done.warnings.length > 0 ? { warnings: done.warnings } : {}),
    rendered: renderedRecord(plan),
    undo: {
      created,
      replaced: plan.replaceFlags.map(({ list, index }) => ({ list, index, was: prometheus.container[list]?.[index] ?? '' })),
      appended: plan.appendArgs.length,
    },
  };
  return JSON.stringify(status);
}

/**
 * `ephemeralTsdb`: what this pod's policy says about a TSDB deleted with the pod; rendering warns for
 * `warn` (the caller turns skip and deny into its answer, from plan.tsdb).
 */
export function render(pod: PodLike, prometheus: PrometheusView, settings: Settings, notes: string[], ephemeralTsdb: EphemeralTsdbAction = 'warn'): RenderResult {
  const spec = pod.spec as V1PodSpec;
  const clash = portClash(spec, settings);
  if (clash !== undefined) return { error: clash };
  const warnings = [...notes];
  const podVolumes = volumeNames(spec);
  const into: SidecarVolumes = { taken: new Set(podVolumes), volumes: [], sidecarMounts: [], holds: new Map() };
  const { mounts: prometheusMounts, tsdb } = mountTsdb(into, spec, prometheus, warnings);
  const error = mountSecrets(into, sidecarSecretMounts(settings)) ?? addConfiguredVolumes(into, settings, podVolumes);
  if (error !== undefined) return { error };

  const args = baseArgs(prometheus, settings);
  const upload = settings.objstore.enabled ? uploadFlags(prometheus, settings, args, warnings) : undefined;
  if (upload !== undefined && 'error' in upload) return { error: upload.error };
  const ephemeralCost = upload !== undefined && tsdb.lifetime === 'pod' ? ephemeralTsdbCost(tsdb, upload.minBlock) : undefined;
  if (ephemeralCost !== undefined && ephemeralTsdb === 'warn') warnings.push(`${ephemeralCost}; ${EPHEMERAL_TSDB_FIX}, or annotate the pod ${PREFIX}ephemeral-tsdb: allow to accept the loss`);
  const blocks = upload?.blocks ?? { replace: [], append: [], changed: [] };
  const identity = replicaIdentity(prometheus);
  if (identity.warning !== undefined && upload !== undefined) warnings.push(identity.warning);
  if (upload !== undefined) {
    blocks.append.push(...identity.append);
    blocks.changed.push(...identity.append);
  }
  args.push(...optionalFlags(settings), ...secretFlags(settings), ...settings.extraArgs);
  accessWarnings(prometheus, settings, into.sidecarMounts, warnings);
  const { podSecurityContext, prometheusUser } = oneUser(spec, prometheus, settings, warnings);
  if (settings.mode === 'container' && (spec.restartPolicy ?? 'Always') !== 'Always') {
    warnings.push(`the sidecar is a regular container here (sidecarMode container), so this ${spec.restartPolicy} pod never completes`);
  }

  const lifecycle = upload !== undefined && settings.waitForUploadsOnStop ? preStopWait(prometheus.tsdbPath, tsdb.lifetime, spec.terminationGracePeriodSeconds) : undefined;
  const sidecar = sidecarContainer(settings, args, into.sidecarMounts, sidecarSecurityContext(prometheus.container.securityContext, prometheusUser === 0), lifecycle);
  const appendArgs = prometheusAppendArgs(prometheus, blocks.append, warnings);
  const plan = {
    mode: settings.mode,
    prometheusIndex: prometheus.index,
    sidecar,
    volumes: into.volumes,
    prometheusMounts,
    prometheusEnv: identity.env,
    replaceFlags: blocks.replace,
    appendArgs,
    podSecurityContext,
    labels: { [INJECTED_LABEL]: 'true' },
    warnings,
    tsdb,
    ...(ephemeralCost !== undefined ? { ephemeralCost } : {}),
  };
  const created = createdCollections(pod, plan);
  const status = statusAnnotation(settings, prometheus, { compaction: upload?.compaction, tsdb, flags: blocks.changed, warnings }, plan, created);
  return { plan: { ...plan, created, annotations: { [STATUS_ANNOTATION]: status } } };
}

/**
 * The seed's own fix (its step 8) for a pod that brings its own Thanos sidecar: the pod-level user
 * and groups, where the pod leaves them unset, so that sidecar may hard-link Prometheus' blocks.
 * Nothing else of the pod changes. A container that sets another user of its own still differs:
 * that is a warning, since the injector never overwrites what the user set.
 */
export function shareUserPlan(pod: PodLike, sidecarName: string, settings: Settings): { podSecurityContext: V1PodSecurityContext; annotations: Record<string, string>; warnings: string[] } {
  const spec = pod.spec as V1PodSpec;
  const warnings: string[] = [];
  const { podSecurityContext, podUser: user } = podUser(spec, settings, warnings);
  const sidecar = allContainers(spec).find((c) => c.name === sidecarName);
  const index = prometheusIndex(pod);
  const prometheus = index === undefined ? undefined : spec.containers[index];
  const users = [sidecar, prometheus].map((c) => c?.securityContext?.runAsUser ?? user);
  if (prometheus !== undefined && users[0] !== users[1]) {
    warnings.push(`containers ${sidecarName} and ${prometheus.name} still run as users ${users[0]} and ${users[1]} (set in their own securityContext): give both the same runAsUser, or ${sidecarName} cannot hard-link Prometheus' blocks`);
  }
  const status: InjectionStatus = {
    version: VERSION,
    existingSidecar: sidecarName,
    securityContext: Object.keys(podSecurityContext),
    ...(warnings.length > 0 ? { warnings } : {}),
    undo: { created: createdMarkCollections(pod, false), replaced: [], appended: 0 },
  };
  return { podSecurityContext, annotations: { [STATUS_ANNOTATION]: JSON.stringify(status) }, warnings };
}
