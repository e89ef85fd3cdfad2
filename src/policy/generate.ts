// The injection as a MutatingAdmissionPolicy: the apiserver applies it itself, in process, with no
// server to call. Generated from the engine, not written beside it: the sidecar container, the
// volumes and the flags come from render() run on stand-in pods (one per case that changes what it
// renders), and the CEL only finds the real pod's values and puts them where the stand-ins were.
// The policy claims only the pods whose injection it reproduces exactly (`claimed` below: the
// common shapes, with no warning and no error in the engine); it leaves every other pod as it is,
// unlabelled, and the webhook injects those. A differential test on the real apiserver holds the
// two to the same result (test/e2e/policy.test.ts). Pure.
import { createHash } from 'node:crypto';
import type { V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { sidecarSecretMounts, type Config } from '../config/schema.ts';
import { cleanPath } from '../files.ts';
import { atLeast, PROMETHEUS_MIN, SHIPPER_META_FILE, THANOS_MIN } from '../inject/compaction.ts';
import { matchConditions, type MatchCondition } from '../inject/match-conditions.ts';
import { INJECTED_LABEL, INJECTION_LABEL, MIRROR_ANNOTATION, PREFIX, SIDECAR_NAME, STATUS_ANNOTATION } from '../inject/names.ts';
import { resolveSettings, type Settings } from '../inject/overrides.ts';
import { escapePointer } from '../inject/pod.ts';
import { DELAY_COMPACT_FLAG, imageVersion, MAX_BLOCK_FLAG, MIN_BLOCK_FLAG, OVERLAPPING_COMPACTION_FLAG, readPrometheus } from '../inject/prometheus.ts';
import { EXPAND_EXTERNAL_LABELS, EXPAND_FROM, NO_OVERLAP_FROM, POD_NAME_ENV, render } from '../inject/render.ts';
import { DURATION_PATTERN, parseDuration } from '../units.ts';
import { VERSION } from '../version.ts';
import { celString, variantsExpression, type Variant } from './cel.ts';

/** The first release that serves admissionregistration.k8s.io/v1 policies and does not crash on list values holding objects (policy-facts.md 2, 9). */
export const POLICY_MIN_KUBERNETES = [1, 36, 6] as const;

/** Why a cluster of `kubernetesVersion` cannot run the policy; undefined when it can (or the version cannot be read: the caller says so). */
export function policyUnsupported(kubernetesVersion: string): string | undefined {
  const version = imageVersion(`:${kubernetesVersion}`);
  if (version === undefined) return undefined;
  const [major, minor, patch] = version;
  const [minMajor, minMinor, minPatch] = POLICY_MIN_KUBERNETES;
  if (major === minMajor && (minor > minMinor || (minor === minMinor && patch >= minPatch))) return undefined;
  return `Kubernetes ${kubernetesVersion} cannot run the policy: admissionregistration.k8s.io/v1 MutatingAdmissionPolicy is served from 1.36, and apiservers before v${POLICY_MIN_KUBERNETES.join('.')} crash on the list values it adds; the webhook injects there`;
}

/** The back ends that inject. */
export type InjectionMode = 'webhook' | 'policy' | 'both';

/** The configuration's mode on a cluster of `kubernetesVersion`: auto is both where the policy runs, else webhook (also when the version cannot be read). */
export function injectionMode(config: Pick<Config, 'mode'>, kubernetesVersion: string): InjectionMode {
  if (config.mode !== 'auto') return config.mode;
  return imageVersion(`:${kubernetesVersion}`) !== undefined && policyUnsupported(kubernetesVersion) === undefined ? 'both' : 'webhook';
}

/** On the policy: its generation, which the pods it injects record (`check` compares it with the configuration's). */
export const GENERATION_ANNOTATION = `${PREFIX}generation`;

/** A configuration the policy cannot express: the webhook does it all. */
export class PolicyScopeError extends Error {}

export interface GeneratedPolicy {
  /** The MutatingAdmissionPolicy and its two bindings (namespace opt-in, pod opt-in), as the chart's two webhooks select. */
  objects: object[];
  /** The ValidatingAdmissionPolicy that gives the webhook's warnings for the pods the policy injects, and its two bindings (Warn). */
  warnings: object[];
  /** A digest of what the policy does to a pod it claims: the status annotation records it. */
  generation: string;
}

const has = (path: string) => `has(${path})`;
/** A list field of the pod that may be absent, as a list. */
const listOr = (path: string) => `(${has(path)} ? ${path} : [])`;
/** A path with one trailing slash taken off. */
const trimSlash = (path: string) => `(${path}.endsWith('/') ? ${path}.substring(0, size(${path}) - 1) : ${path})`;

/** Stand-in values, chosen so that no configuration holds them (checked). */
const STAND_IN = {
  mountPath: '/zq7-mount',
  tsdbPath: '/zq7-mount/zq7-tsdb',
  volume: 'zq7-volume',
  route: '/zq7-route',
  subPath: 'zq7-sub-path',
  port: 47913,
  grace: 4711,
  user: 4242,
  group: 4343,
} as const;

/** A plain absolute path: no `.` or `..` segment, no doubled slash, at most one trailing slash. */
export const SAFE_PATH = '^(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+/?$';
/** A plain relative path (to the image's working directory). */
export const RELATIVE_PATH = '^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?$';
/** A version tag (src/inject/prometheus.ts imageVersion), with numbers CEL's int() takes. */
export const VERSION_TAG = '^v?[0-9]{1,6}\\.[0-9]{1,6}(\\.[0-9]{1,6})?([-+].*)?$';
const PROMETHEUS_IMAGE = '^([^@]*/)?prometheus(:[^/@]*)?(@.*)?$';
const THANOS_IMAGE = '^([^@]*/)?thanos(:[^/@]*)?(@.*)?$';
const DURATION_UNITS_MS: [string, number][] = [['ms', 1], ['s', 1e3], ['m', 60e3], ['h', 3600e3], ['d', 86400e3], ['w', 7 * 86400e3], ['y', 365 * 86400e3]];
/** Sources whose volume is deleted with the pod (src/inject/tsdb-volume.ts). */
const POD_SOURCES = ['emptyDir', 'ephemeral', 'csi', 'configMap', 'secret', 'downwardAPI', 'projected', 'image', 'gitRepo'];

/** Prometheus flags whose presence leaves a pod to the webhook (the engine edits them in place, or they need a warning or an error). */
export const LEFT_TO_WEBHOOK_FLAGS = [MIN_BLOCK_FLAG, MAX_BLOCK_FLAG, DELAY_COMPACT_FLAG, OVERLAPPING_COMPACTION_FLAG, `no-${OVERLAPPING_COMPACTION_FLAG}`, 'web.external-url', 'agent'];

/** The values of `--name=value` in the Prometheus container's args, first first. */
/** The Prometheus image's version is at least `version` (major and minor: the patch never decides here), in CEL. */
const versionAtLeast = ([major, minor]: readonly number[]) => `(variables.major > ${major} || (variables.major == ${major} && variables.minor >= ${minor}))`;

const flagValues = (name: string) => `variables.args.filter(a, a.startsWith('--${name}=')).map(a, a.substring(${name.length + 3}))`;

/** Programs that run a script (src/inject/prometheus.ts reads flags in their script, but cannot edit them). */
export const SHELLS = ['sh', 'bash', 'ash', 'dash', 'zsh'];

/** A whole number of one unit in milliseconds. */
const durationMs = (text: string) =>
  DURATION_UNITS_MS.map(([unit, ms]) => `${text}.endsWith('${unit}') ? int(${text}.substring(0, size(${text}) - ${unit.length})) * ${ms} : `).join('') + '0';

type Compaction = 'delayed' | 'disabled';

/** What changes the rendered sidecar besides the stand-in values. */
interface Case {
  compaction: Compaction;
  podLifetime: boolean;
  hook: boolean;
  user: boolean;
  group: boolean;
  /** The TSDB mount has a subPath (or a subPathExpr): the sidecar mounts it the same way. */
  subPath: 'none' | 'subPath' | 'subPathExpr';
}

function checkScope(config: Config, settings: Settings): void {
  const out = (why: string) => new PolicyScopeError(`${why}: the webhook injects with this configuration, the policy cannot`);
  if (!settings.objstore.enabled) throw out('objstore.enabled is false');
  if (settings.objstore.configFile !== undefined) throw out('objstore.configFile names a file something else mounts (the webhook warns when no volume holds it)');
  const own = new Set(config.volumes.map((volume) => volume.name));
  const foreign = config.volumeMounts.find((mount) => !own.has(mount.name));
  if (foreign !== undefined) throw out(`volumeMounts mounts ${foreign.name}, a volume of the pod`);
  const text = JSON.stringify(config);
  for (const value of Object.values(STAND_IN)) {
    if (text.includes(String(value))) throw out(`the configuration holds ${String(value)}, a stand-in of the generator`);
  }
}

/** The stand-in pod of one case: everything the CEL reads from the real pod is a stand-in value. */
function standInPod(c: Case): { spec: V1PodSpec } {
  const volume: V1Volume = c.podLifetime ? { name: STAND_IN.volume, emptyDir: {} } : { name: STAND_IN.volume, persistentVolumeClaim: { claimName: 'data' } };
  const securityContext = { ...(c.user ? { runAsUser: STAND_IN.user } : {}), ...(c.group ? { runAsGroup: STAND_IN.group } : {}) };
  return {
    spec: {
      containers: [{
        name: 'prometheus',
        image: `quay.io/prometheus/prometheus:${c.compaction === 'delayed' ? 'v3.9.0' : 'v3.0.0'}`,
        args: [`--storage.tsdb.path=${STAND_IN.tsdbPath}`, `--web.listen-address=:${STAND_IN.port}`, `--web.route-prefix=${STAND_IN.route}`],
        volumeMounts: [{ name: STAND_IN.volume, mountPath: STAND_IN.mountPath, ...(c.subPath === 'none' ? {} : { [c.subPath]: STAND_IN.subPath }) }],
        ...(c.user || c.group ? { securityContext } : {}),
      }],
      volumes: [volume],
      terminationGracePeriodSeconds: c.hook ? STAND_IN.grace : 1,
    },
  };
}

/** Every combination of the cases' features, for the compaction modes the setting allows. */
function cases(compactions: readonly Compaction[]): Case[] {
  return compactions.flatMap((compaction) => (['none', 'subPath', 'subPathExpr'] as const).flatMap((subPath) => Array.from({ length: 16 }, (_, bits) => ({
    compaction, podLifetime: (bits & 1) !== 0, hook: (bits & 2) !== 0, user: (bits & 4) !== 0, group: (bits & 8) !== 0, subPath,
  }))));
}

/** A case's features, as the variants carry them. */
const caseFeatures = (c: Case): Record<string, string> => ({
  compaction: c.compaction, podLifetime: String(c.podLifetime), hook: String(c.hook), user: String(c.user), group: String(c.group), subPath: c.subPath,
});

/** Each feature as a condition on the real pod. */
const FEATURE_CONDITIONS: Record<string, (value: string) => string> = {
  compaction: (value) => `variables.compaction == '${value}'`,
  podLifetime: (value) => `${value === 'true' ? '' : '!'}variables.podLifetime`,
  hook: (value) => (value === 'true' ? 'variables.grace > 2' : 'variables.grace <= 2'),
  user: (value) => `${value === 'true' ? '' : '!'}variables.promUserSet`,
  group: (value) => `${value === 'true' ? '' : '!'}variables.promGroupSet`,
  subPath: (value) => (value === 'none' ? '!has(variables.tsdbMount.subPath) && !has(variables.tsdbMount.subPathExpr)' : `has(variables.tsdbMount.${value})`),
};
const featureCondition = (feature: string, value: string) => (FEATURE_CONDITIONS[feature] as (value: string) => string)(value);

/** The names of the volumes the injection adds to every pod (a pod that has one already is the webhook's: it renames). */
export function policyVolumeNames(settings: Settings): string[] {
  return [...sidecarSecretMounts(settings).map((mount) => mount.volume), ...settings.volumes.map((volume) => volume.name)];
}

/** The compaction modes pods get: auto picks by the Prometheus image, when the sidecar's Thanos can delay. */
function compactionModes(settings: Settings): Compaction[] {
  const thanos = imageVersion(settings.image);
  if (settings.compaction === 'disabled') return ['disabled'];
  if (thanos === undefined) throw new PolicyScopeError(`compaction ${settings.compaction} with image ${settings.image}, whose tag does not tell its Thanos version: the webhook injects with this configuration, the policy cannot`);
  const delays = atLeast(thanos, THANOS_MIN);
  if (settings.compaction === 'delayed' && !delays) throw new PolicyScopeError(`compaction delayed needs Thanos >= ${THANOS_MIN.join('.')}, and image ${settings.image} is older`);
  return settings.compaction === 'delayed' ? ['delayed'] : delays ? ['delayed', 'disabled'] : ['disabled'];
}

/**
 * The webhook's warning on a TSDB deleted with the pod (ephemeralTsdb warn), as CEL: the engine's own
 * words, rendered on stand-ins for each compaction mode and volume source, with the real volume's
 * name put where the stand-in's was.
 */
function ephemeralWarning(settings: Settings, compactions: readonly Compaction[]): string {
  const arms: string[] = [];
  for (const compaction of compactions) {
    for (const kind of POD_SOURCES) {
      for (const memory of kind === 'emptyDir' ? [true, false] : [false]) {
        const pod = standInPod({ compaction, podLifetime: true, hook: false, user: false, group: false, subPath: 'none' });
        pod.spec.volumes = [{ name: STAND_IN.volume, [kind]: memory ? { medium: 'Memory' } : {} }];
        const result = render(pod, readPrometheus(pod.spec, 0), settings, [], 'warn');
        if ('error' in result) throw new PolicyScopeError(result.error);
        const [text, ...others] = result.plan.warnings;
        const parts = text?.split(STAND_IN.volume) ?? [];
        if (others.length > 0 || parts.length !== 2 || /["\\]/.test(text ?? '')) throw new Error(`the generator expected one warning naming the volume once, without quotes, on a ${kind} TSDB: ${JSON.stringify(result.plan.warnings)}`);
        const condition = `variables.compaction == '${compaction}' && variables.kind == '${kind}'${kind === 'emptyDir' ? ` && ${memory ? '' : '!'}variables.inMemory` : ''}`;
        arms.push(`${condition} ? ${celString(parts[0] ?? '')} + variables.tsdbMount.name + ${celString(parts[1] ?? '')}`);
      }
    }
  }
  return `${arms.join(' : ')} : ''`;
}

/** The ValidatingAdmissionPolicy that gives the warning the policy recorded in a pod's status annotation (the mutating one cannot warn). */
function warningPolicy(name: string): object {
  const status = `object.metadata.annotations['${STATUS_ANNOTATION}']`;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Ignore',
      matchConstraints: { resourceRules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }] },
      variables: [{ name: 'status', expression: `${has('object.metadata.annotations')} && '${STATUS_ANNOTATION}' in object.metadata.annotations ? ${status} : ''` }],
      validations: [{
        expression: `!(variables.status.contains('"policy":"') && variables.status.contains('"warnings":["'))`,
        messageExpression: `variables.status.substring(variables.status.indexOf('"warnings":["') + 13, variables.status.indexOf('"],"policy":"'))`,
        reason: 'Invalid',
      }],
    },
  };
}

export function generatePolicy(config: Config, name: string): GeneratedPolicy {
  const { settings, errors } = resolveSettings(config, {}, `v${POLICY_MIN_KUBERNETES.join('.')}`);
  if (errors.length > 0) throw new PolicyScopeError(errors.join('; '));
  checkScope(config, settings);
  const compactions = compactionModes(settings);

  const rendered = cases(compactions).map((c) => {
    const pod = standInPod(c);
    const result = render(pod, readPrometheus(pod.spec, 0), settings, [], 'allow');
    if ('error' in result) throw new PolicyScopeError(result.error);
    return { c, plan: result.plan };
  });
  const sidecarType = settings.mode === 'native' ? 'Object.spec.initContainers' : 'Object.spec.containers';
  const standIns = new Map<string | number, string>([
    [STAND_IN.tsdbPath, 'variables.tsdbPath'],
    [STAND_IN.mountPath, 'variables.tsdbMount.mountPath'],
    [STAND_IN.volume, 'variables.tsdbMount.name'],
    [STAND_IN.subPath, "(has(variables.tsdbMount.subPath) ? variables.tsdbMount.subPath : variables.tsdbMount.subPathExpr)"],
    [`:${STAND_IN.port}${STAND_IN.route}`, "':' + string(variables.port) + variables.routePrefix"],
    [String(STAND_IN.grace - 2), 'string(variables.grace - 2)'],
    [STAND_IN.user, 'variables.prometheus.securityContext.runAsUser'],
    [STAND_IN.group, 'variables.prometheus.securityContext.runAsGroup'],
  ]);
  const sidecar = variantsExpression(rendered.map(({ c, plan }): Variant => ({ features: caseFeatures(c), value: plan.sidecar })), sidecarType, standIns, featureCondition);

  // What the configuration adds whatever the pod: the volumes of the Secrets the sidecar reads.
  const volumes = rendered[0]?.plan.volumes ?? [];
  const volumeNames = JSON.stringify(policyVolumeNames(settings));
  const secretPaths = [...sidecarSecretMounts(settings), ...settings.volumeMounts].map((mount) => cleanPath(mount.mountPath));
  const minBlockMs = { delayed: 2 * 3600e3, disabled: parseDuration(settings.blockDuration) ?? 0 };
  // The ephemeralTsdb action of the request's namespace (the pods the policy claims have no annotation of ours).
  const ephemeralAction = `(request.namespace in ${JSON.stringify(config.ephemeralTsdb.namespaces)} ? ${JSON.stringify(config.ephemeralTsdb.namespaces)}[request.namespace] : '${config.ephemeralTsdb.action}')`;
  const warning = ephemeralWarning(settings, compactions);
  const excluded = [...config.excludedNamespaces, ...(config.injectorNamespace === '' ? [] : [config.injectorNamespace])];
  const allContainers = `(object.spec.containers + ${listOr('object.spec.initContainers')})`;

  const variables: MatchCondition[] = [
    { name: 'byName', expression: "object.spec.containers.map(c, c.name).indexOf('prometheus')" },
    { name: 'prom', expression: `variables.byName >= 0 ? variables.byName : object.spec.containers.map(c, has(c.image) && c.image.matches(${celString(PROMETHEUS_IMAGE)})).indexOf(true)` },
    { name: 'prometheus', expression: 'object.spec.containers[variables.prom]' },
    { name: 'args', expression: listOr('variables.prometheus.args') },
    { name: 'tsdbFlag', expression: `${flagValues('storage.tsdb.path')} + ['data']` },
    // Relative to the image's working directory (the policy claims no pod that sets another).
    { name: 'tsdbPath', expression: `(variables.tsdbFlag[0].startsWith('/') ? '' : '/prometheus/') + ${trimSlash('variables.tsdbFlag[0]')}` },
    { name: 'mounts', expression: listOr('variables.prometheus.volumeMounts') },
    { name: 'holders', expression: `variables.mounts.map(m, ${trimSlash('m.mountPath')}).map(p, variables.tsdbPath == p || variables.tsdbPath.startsWith(p + '/') ? size(p) : -1)` },
    { name: 'tsdbMount', expression: 'variables.mounts[variables.holders.indexOf(variables.holders.max())]' },
    { name: 'tsdbVolumes', expression: `${listOr('object.spec.volumes')}.filter(v, v.name == variables.tsdbMount.name)` },
    { name: 'kind', expression: "variables.tsdbVolumes[0].filter(k, k != 'name')[0]" },
    { name: 'podLifetime', expression: `variables.kind in ${JSON.stringify(POD_SOURCES)}` },
    { name: 'lifetime', expression: "variables.kind == 'hostPath' ? 'node' : variables.podLifetime ? 'pod' : 'persistent'" },
    { name: 'ephemeralAction', expression: ephemeralAction },
    { name: 'inMemory', expression: "variables.kind == 'emptyDir' && has(variables.tsdbVolumes[0].emptyDir.medium) && variables.tsdbVolumes[0].emptyDir.medium == 'Memory'" },
    { name: 'listen', expression: flagValues('web.listen-address') },
    { name: 'port', expression: "size(variables.listen) == 0 ? 9090 : int(variables.listen[0].substring(variables.listen[0].lastIndexOf(':') + 1))" },
    { name: 'route', expression: flagValues('web.route-prefix') },
    { name: 'routePrefix', expression: `size(variables.route) == 0 || variables.route[0] in ['', '/'] ? '' : (variables.route[0].startsWith('/') ? '' : '/') + ${trimSlash('variables.route[0]')}` },
    { name: 'retention', expression: `${flagValues('storage.tsdb.retention.time')} + ${flagValues('storage.tsdb.retention')} + ['15d']` },
    { name: 'image', expression: "(has(variables.prometheus.image) ? variables.prometheus.image : '').split('@')[0]" },
    { name: 'tag', expression: "variables.image.lastIndexOf(':') > variables.image.lastIndexOf('/') ? variables.image.substring(variables.image.lastIndexOf(':') + 1) : ''" },
    { name: 'release', expression: "variables.tag.startsWith('v') ? variables.tag.substring(1) : variables.tag" },
    { name: 'major', expression: "int(variables.release.find('^[0-9]+'))" },
    { name: 'minor', expression: "int(variables.release.substring(size(variables.release.find('^[0-9]+')) + 1).find('^[0-9]+'))" },
    { name: 'compaction', expression: compactions.length > 1 ? `${versionAtLeast(PROMETHEUS_MIN)} ? 'delayed' : 'disabled'` : `'${compactions[0] ?? 'disabled'}'` },
    { name: 'features', expression: "variables.args.filter(a, a.startsWith('--enable-feature=')).map(a, a.substring(17).split(',').map(f, f.trim()))" },
    { name: 'overlap', expression: versionAtLeast(NO_OVERLAP_FROM) },
    { name: 'expand', expression: `variables.major == ${EXPAND_FROM[0]} && ${versionAtLeast(EXPAND_FROM)} && !variables.features.exists(l, l.exists(f, f == '${EXPAND_EXTERNAL_LABELS}'))` },
    {
      name: 'appended',
      expression: `(variables.compaction == 'delayed' ? [${celString(`--${DELAY_COMPACT_FLAG}=`)} + variables.tsdbPath + ${celString(`/${SHIPPER_META_FILE}`)}] : ` +
        `[${celString(`--${MIN_BLOCK_FLAG}=${settings.blockDuration}`)}, ${celString(`--${MAX_BLOCK_FLAG}=${settings.blockDuration}`)}])` +
        ` + (variables.overlap ? [${celString(`--no-${OVERLAPPING_COMPACTION_FLAG}`)}] : []) + (variables.expand ? [${celString(`--enable-feature=${EXPAND_EXTERNAL_LABELS}`)}] : [])`,
    },
    { name: 'podNameSet', expression: `${listOr('variables.prometheus.env')}.exists(e, e.name == '${POD_NAME_ENV}')` },
    { name: 'podUser', expression: `has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) ? object.spec.securityContext.runAsUser : ${settings.runAsUser}` },
    { name: 'someRoot', expression: `${allContainers}.exists(c, (has(c.securityContext) && has(c.securityContext.runAsUser) ? c.securityContext.runAsUser : variables.podUser) == 0)` },
    { name: 'promUserSet', expression: 'has(variables.prometheus.securityContext) && has(variables.prometheus.securityContext.runAsUser)' },
    { name: 'promGroupSet', expression: 'has(variables.prometheus.securityContext) && has(variables.prometheus.securityContext.runAsGroup)' },
    { name: 'promUser', expression: 'variables.promUserSet ? variables.prometheus.securityContext.runAsUser : variables.podUser' },
    {
      name: 'podFields',
      expression: ['runAsUser', 'runAsGroup', 'fsGroup'].map((field) => `(has(object.spec.securityContext) && has(object.spec.securityContext.${field}) ? [] : ['${field}'])`).join(' + ') +
        " + (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) || variables.someRoot ? [] : ['runAsNonRoot'])",
    },
    { name: 'grace', expression: `${has('object.spec.terminationGracePeriodSeconds')} ? object.spec.terminationGracePeriodSeconds : 30` },
    {
      // The pods whose injection the policy reproduces exactly; each line names what leaves a pod to the webhook.
      name: 'claimed',
      expression: [
        `!(request.namespace in ${JSON.stringify(excluded)})`,
        `!(${has('object.metadata.labels')} && '${INJECTION_LABEL}' in object.metadata.labels && object.metadata.labels['${INJECTION_LABEL}'] == 'disabled')`,
        `!(${has('object.metadata.annotations')} && object.metadata.annotations.exists(k, k.startsWith('${PREFIX}') || k == '${MIRROR_ANNOTATION}'))`,
        `!${allContainers}.exists(c, c.name == '${SIDECAR_NAME}' || (has(c.image) && c.image.matches(${celString(THANOS_IMAGE)})) || ${listOr('c.command')}.exists(a, a.contains('thanos')) || ${listOr('c.args')}.exists(a, a.contains('thanos')))`,
        `!${allContainers}.exists(c, ${listOr('c.ports')}.exists(p, p.containerPort in ${JSON.stringify([settings.grpcPort, settings.httpPort])}))`,
        'variables.prom >= 0',
        // The program alone (the image's entrypoint written out), not a shell and no flags: the flags are all in args.
        `!has(variables.prometheus.command) || (size(variables.prometheus.command) == 1 && !variables.prometheus.command[0].startsWith('-') && !(variables.prometheus.command[0].substring(variables.prometheus.command[0].lastIndexOf('/') + 1) in ${JSON.stringify(SHELLS)}))`,
        "size(variables.args) > 0 && variables.args.all(a, a.startsWith('--') && a != '--')",
        `!variables.args.exists(a, ${JSON.stringify(LEFT_TO_WEBHOOK_FLAGS.map((flag) => `--${flag}`))}.exists(f, a == f || a.startsWith(f + '=')))`,
        ...(settings.prometheus.httpClient.secretName === '' ? ["!variables.args.exists(a, a == '--web.config.file' || a.startsWith('--web.config.file='))"] : []),
        "!variables.features.exists(l, l.exists(f, f == 'agent'))",
        `variables.tsdbFlag[0].matches(${celString(SAFE_PATH)}) || (!has(variables.prometheus.workingDir) && variables.tsdbFlag[0].matches(${celString(RELATIVE_PATH)}))`,
        `variables.mounts.all(m, m.mountPath.matches(${celString(SAFE_PATH)}))`,
        'variables.holders.exists(h, h >= 0)',
        `!(${trimSlash('variables.tsdbMount.mountPath')} in ${JSON.stringify(secretPaths)})`,
        "size(variables.tsdbVolumes) == 1 && size(variables.tsdbVolumes[0].filter(k, k != 'name')) == 1",
        '!(has(variables.tsdbMount.subPath) && has(variables.tsdbMount.subPathExpr))',
        // allow injects silently, warn with the webhook's warning (recorded in the status annotation, given by the ValidatingAdmissionPolicy).
        "!variables.podLifetime || variables.ephemeralAction in ['allow', 'warn']",
        "size(variables.listen) == 0 || (variables.listen[0].matches(':[1-9][0-9]{0,4}$') && variables.port <= 65535)",
        "size(variables.route) == 0 || variables.route[0].matches('^/?([A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*/?)?$')",
        `variables.retention[0] != '' && variables.retention[0].matches(${celString(DURATION_PATTERN.source)}) && !variables.retention[0].matches('[0-9]{7,}')`,
        `variables.retention[0].findAll('[0-9]+(ms|[ywdhms])').map(x, ${durationMs('x')}).sum() >= 3 * (variables.compaction == 'delayed' ? ${minBlockMs.delayed} : ${minBlockMs.disabled})`,
        `variables.tag.matches(${celString(VERSION_TAG)})`,
        ...(settings.compaction === 'delayed' ? [versionAtLeast(PROMETHEUS_MIN)] : []),
        'variables.promUser != 0',
        ...(settings.mode === 'container' ? ["!has(object.spec.restartPolicy) || object.spec.restartPolicy == 'Always'"] : []),
        `!${listOr('object.spec.volumes')}.exists(v, v.name in ${volumeNames})`,
        `!${allContainers}.exists(c, ${listOr('c.volumeMounts')}.exists(m, m.name in ${volumeNames}))`,
      ].map((line) => `(${line})`).join(' &&\n'),
    },
  ];

  const prometheusPath = "'/spec/containers/' + string(variables.prom)";
  const op = (operation: string, path: string, value: string) => `JSONPatch{op: "${operation}", path: ${path}, value: ${value}}`;
  const created = [
    `(${has('variables.prometheus.env')} || variables.podNameSet ? [] : [${prometheusPath} + '/env'])`,
    ...(settings.mode === 'native' ? [`(${has('object.spec.initContainers')} ? [] : ['/spec/initContainers'])`] : []),
    `(${has('object.metadata.labels')} ? [] : ['/metadata/labels'])`,
    `(${has('object.metadata.annotations')} ? [] : ['/metadata/annotations'])`,
  ].join(' + ');
  const jsonList = (list: string) => `'[' + ${list}.map(s, '"' + s + '"').join(',') + ']'`;
  const generationMark = '@generation@';
  const status = [
    celString(`{"version":${JSON.stringify(VERSION)},"container":"${SIDECAR_NAME}","mode":"${settings.mode}","compaction":"`), 'variables.compaction',
    celString('","prometheus":"'), 'variables.prometheus.name',
    celString('","tsdb":{"volume":"'), 'variables.tsdbMount.name',
    celString('","kind":"'), 'variables.kind', celString('"'),
    `(variables.inMemory ? ${celString(',"medium":"Memory"')} : '')`,
    celString(',"lifetime":"'), 'variables.lifetime',
    celString(`"},"volumes":${volumeNames},"flags":`), jsonList('variables.appended'),
    `(variables.podNameSet ? '' : ${celString(`,"env":["${POD_NAME_ENV}"]`)})`,
    celString(',"securityContext":'), jsonList('variables.podFields'),
    `(variables.podLifetime && variables.ephemeralAction == 'warn' ? ${celString(',"warnings":["')} + (${warning}) + ${celString('"]')} : '')`,
    celString(`,"policy":"${generationMark}","undo":{"created":`), jsonList(`(${created})`),
    celString(',"replaced":[],"appended":'), 'string(size(variables.appended))', celString('}}'),
  ].join(' + ');

  const sidecarList = settings.mode === 'native' ? 'initContainers' : 'containers';
  const podFields: [string, string][] = [['runAsUser', String(settings.runAsUser)], ['runAsGroup', String(settings.runAsGroup)], ['fsGroup', String(settings.fsGroup)], ['runAsNonRoot', 'true']];
  const podName = `Object.spec.containers.env{name: "${POD_NAME_ENV}", valueFrom: Object.spec.containers.env.valueFrom{fieldRef: Object.spec.containers.env.valueFrom.fieldRef{apiVersion: "v1", fieldPath: "metadata.name"}}}`;
  // Lists the pod lacks are added empty, then appended to, in this one expression (a list value
  // holding objects crashes apiservers before 1.36.6; an empty list added in an earlier mutation is gone by the next).
  const patch = [
    `variables.appended.map(f, ${op('add', `${prometheusPath} + '/args/-'`, 'f')})`,
    `(variables.podNameSet ? [] : (${has('variables.prometheus.env')} ? [] : [${op('add', `${prometheusPath} + '/env'`, '[]')}]) + [${op('add', `${prometheusPath} + '/env/-'`, podName)}])`,
    `[${volumes.map((volume) => op('add', "'/spec/volumes/-'", variantsExpression([{ features: {}, value: volume }], 'Object.spec.volumes', new Map(), featureCondition))).join(', ')}]`,
    ...(settings.mode === 'native' ? [`(${has('object.spec.initContainers')} ? [] : [${op('add', "'/spec/initContainers'", '[]')}])`] : []),
    `[${op('add', `'/spec/${sidecarList}/-'`, sidecar)}]`,
    `(${has('object.spec.securityContext')} ? ${podFields.map(([field, value]) => `(variables.podFields.exists(k, k == '${field}') ? [${op('add', `'/spec/securityContext/${field}'`, value)}] : [])`).join(' + ')} : ` +
      `[${op('add', "'/spec/securityContext'", `Object.spec.securityContext{${podFields.slice(0, 3).map(([field, value]) => `${field}: ${value}`).join(', ')}, ?runAsNonRoot: variables.someRoot ? optional.none() : optional.of(true)}`)}])`,
    `(${has('object.metadata.labels')} ? [${op('add', `'/metadata/labels/${escapePointer(INJECTED_LABEL)}'`, '"true"')}] : [${op('add', "'/metadata/labels'", `{"${INJECTED_LABEL}": "true"}`)}])`,
    `(${has('object.metadata.annotations')} ? [${op('add', `'/metadata/annotations/${escapePointer(STATUS_ANNOTATION)}'`, 'variables.status')}] : [${op('add', "'/metadata/annotations'", `{"${STATUS_ANNOTATION}": variables.status}`)}])`,
  ].join(' +\n');
  const mutation = `variables.claimed ? ${patch} : []`;

  const generation = createHash('sha256').update(JSON.stringify({ variables, mutation, status })).digest('hex').slice(0, 12);
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingAdmissionPolicy',
    metadata: { name, annotations: { [GENERATION_ANNOTATION]: generation } },
    spec: {
      // An error (none expected: every field read is guarded) leaves the pod to the webhook.
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'IfNeeded',
      matchConstraints: { resourceRules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }] },
      matchConditions: matchConditions(),
      variables: [...variables, { name: 'status', expression: status.replace(generationMark, generation) }],
      mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: mutation } }],
    },
  };
  const binding = (scope: 'namespace' | 'pod', kind = 'MutatingAdmissionPolicyBinding') => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name: `${name}-${scope}` },
    spec: {
      policyName: name,
      ...(kind === 'ValidatingAdmissionPolicyBinding' ? { validationActions: ['Warn'] } : {}),
      matchResources: {
        // Pod creation only, whatever the policy says: the binding bounds what it can touch.
        resourceRules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector: {
          matchExpressions: [
            scope === 'namespace' ? { key: INJECTION_LABEL, operator: 'In', values: ['enabled'] } : { key: INJECTION_LABEL, operator: 'DoesNotExist' },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded },
          ],
        },
        objectSelector: scope === 'namespace'
          ? { matchExpressions: [{ key: INJECTION_LABEL, operator: 'NotIn', values: ['disabled'] }] }
          : { matchLabels: { [INJECTION_LABEL]: 'enabled' } },
      },
    },
  });
  return {
    objects: [policy, binding('namespace'), binding('pod')],
    warnings: [warningPolicy(name), binding('namespace', 'ValidatingAdmissionPolicyBinding'), binding('pod', 'ValidatingAdmissionPolicyBinding')],
    generation,
  };
}
