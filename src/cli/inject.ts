// `thanos-injector inject -f FILE|-`: the webhook's injection, offline (like istioctl kube-inject).
// Reads Pods, workloads, Lists and multi-document YAML; prints the injected YAML (or, for one Pod,
// the JSON patch the webhook would return). Notes and warnings go to stderr, among them what is
// wrong with the external labels of a Prometheus whose ConfigMap is in the input (labels-advice.ts).
import type { V1ConfigMap, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { checkPodTemplate } from '../admission/schema.ts';
import { existingSidecar } from '../inject/decide.ts';
import { injectPod, type Injection } from '../inject/inject.ts';
import { labelsAdvice, workloadReplicas, type ConfigFile } from '../inject/labels-advice.ts';
import { SIDECAR_NAME } from '../inject/names.ts';
import { applyPatchInPlace, type PatchOperation } from '../inject/patch.ts';
import { allContainers, type PodLike } from '../inject/pod.ts';
import { prometheusConfigSource, readConfigText } from '../inject/prometheus-config.ts';
import { parseFlags } from './args.ts';
import { CommandError, UsageError } from '../errors.ts';
import { describe, printManifests, readManifests, type Manifest } from './manifests.ts';
import { resolvePointer } from '../validation.ts';
import { podPointer } from './workloads.ts';
import { policyClaim } from '../policy/claim.ts';
import { generatePolicy, injectionMode, policyUnsupported, PolicyScopeError } from '../policy/generate.ts';
import { table } from '../table.ts';

export const help = `Usage: thanos-injector inject -f FILE|- [flags]

Injects the Thanos sidecar into the Prometheus pods of the manifests in FILE (or stdin with -f -),
exactly as the webhook would, and prints the result. Understands Pod, Deployment, StatefulSet,
DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, PodTemplate and List; other kinds
pass through unchanged.

Flags:
  -f, --filename FILE     manifest file, or - for stdin (required)
  -o, --output FORMAT     yaml (default); patch (the JSON patch, for a single Pod); explain (which
                          back end injects each pod, and why: the policy of thanos-injector
                          policy, the webhook, or none: mode policy has no webhook)
      --config FILE       injector configuration (YAML); defaults apply without it
  -n, --namespace NAME    namespace for objects that name none (default: default)
      --kube-version V    Kubernetes version for sidecarMode auto (default: config kubernetesVersion)
  -h, --help              show this help
`;

interface InjectRun {
  config: Config;
  kubernetesVersion: string;
  /** --namespace, over each object's own. */
  namespace: string | undefined;
  /** Refusals, one line each; the run fails when there is any. */
  denials: string[];
}

/** --namespace, else the object's own, else default. */
function namespaceOf(object: Manifest, run: Pick<InjectRun, 'namespace'>): string {
  return run.namespace ?? (typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : 'default');
}

/**
 * Injects a Pod, a workload's pod template or each item of a List, in place; returns the operations
 * against the object (`at`: its place in the document).
 */
function injectObject(object: Manifest, run: InjectRun, at = ''): PatchOperation[] {
  if (object === null || typeof object !== 'object' || typeof object.kind !== 'string') return [];
  if (object.kind === 'List' && Array.isArray(object.items)) {
    return object.items.flatMap((item, i) => injectObject(item as Manifest, run, `${at}/items/${i}`));
  }
  const pointer = podPointer(object.kind);
  if (pointer === undefined) return [];
  const where = describe(object);
  const template = resolvePointer(object, pointer);
  const problems = checkPodTemplate(`${where} ${pointer === '' ? '' : pointer.slice(1).replaceAll('/', '.')}`.trim())(template);
  if (problems.length > 0) {
    run.denials.push(`${where}: ${problems.join('; ')}`);
    return [];
  }
  const namespace = namespaceOf(object, run);
  const result: Injection = injectPod(template as PodLike, { config: run.config, namespace, kubernetesVersion: run.kubernetesVersion });
  if (result.outcome === 'denied') {
    run.denials.push(`${where}: ${result.message}`);
    return [];
  }
  for (const warning of result.warnings) process.stderr.write(`${where}: warning: ${warning}\n`);
  const patch = result.patch ?? [];
  if (patch.length > 0) applyPatchInPlace(template as object, patch);
  process.stderr.write(result.outcome === 'skipped' ? `${where}: skipped (${result.reason}): ${result.message}\n` : `${where}: injected\n`);
  return patch.map((operation) => ({ ...operation, path: `${at}${pointer}${operation.path}` }));
}

/** The objects of the input, each List replaced by its items. */
function flatten(objects: unknown[]): Manifest[] {
  return objects.flatMap((object) => {
    if (object === null || typeof object !== 'object') return [];
    const manifest = object as Manifest;
    return manifest.kind === 'List' && Array.isArray(manifest.items) ? flatten(manifest.items) : [manifest];
  });
}

/** Injected here or before, or a Thanos sidecar of the pod's own: either uploads under Prometheus' external labels. */
function hasThanosSidecar(spec: V1PodSpec | undefined): boolean {
  return spec !== undefined && (allContainers(spec).some((c) => c.name === SIDECAR_NAME) || existingSidecar(spec) !== undefined);
}

/** The Prometheus configuration file of a pod template, when the ConfigMap or Secret that holds it is in the input. */
function configFileOf(template: PodLike, namespace: string, objects: readonly Manifest[], run: InjectRun): ConfigFile | undefined {
  const source = prometheusConfigSource(template);
  const found = readConfigText(source, (ref) =>
    objects.find((o) => o.kind === ref.kind && o.metadata?.name === ref.name && namespaceOf(o, run) === namespace) as V1ConfigMap | V1Secret | undefined);
  return found === undefined || source.kind !== 'objects' ? undefined : { ...found, path: source.path, container: source.container };
}

/**
 * Warns (stderr) about the external labels each workload with a Thanos sidecar would upload under:
 * only the input's own ConfigMaps and Secrets are read, so without them nothing is said.
 */
function adviseOnLabels(objects: readonly Manifest[], run: InjectRun): void {
  for (const object of objects) {
    const pointer = typeof object.kind === 'string' ? podPointer(object.kind) : undefined;
    if (pointer === undefined) continue;
    const template = resolvePointer(object, pointer) as PodLike;
    if (!hasThanosSidecar(template.spec)) continue;
    const config = configFileOf(template, namespaceOf(object, run), objects, run);
    if (config === undefined) continue;
    const kind = object.kind as string;
    for (const warning of labelsAdvice(template, { kind, replicas: workloadReplicas(kind, object.spec) }, config)) {
      process.stderr.write(`${describe(object)}: warning: ${warning}\n`);
    }
  }
}

/**
 * For each pod and pod template: which back end injects it once the policy is bound (the pods a
 * workload's controller creates: a StatefulSet's claims among their volumes), and why.
 */
function explain(objects: readonly Manifest[], run: InjectRun): string {
  const mode = injectionMode(run.config, run.kubernetesVersion);
  let noPolicy = run.config.mode === 'webhook' ? 'injection mode webhook: no policy' : policyUnsupported(run.kubernetesVersion);
  if (noPolicy === undefined) {
    try {
      generatePolicy(run.config, 'thanos-sidecar-injector');
    } catch (error) {
      if (!(error instanceof PolicyScopeError)) throw error;
      noPolicy = `the configuration has no policy: ${error.message}`;
    }
  }
  const rows = objects.flatMap((object) => {
    const pointer = typeof object.kind === 'string' ? podPointer(object.kind) : undefined;
    if (pointer === undefined) return [];
    const template = resolvePointer(object, pointer) as PodLike;
    const claims = ((object.spec as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates ?? [])
      .map((claim) => ({ name: claim.metadata?.name ?? '', persistentVolumeClaim: { claimName: claim.metadata?.name ?? '' } }));
    const pod = { ...template, spec: { ...template.spec!, volumes: [...(template.spec?.volumes ?? []), ...claims] } };
    const claim = noPolicy === undefined ? policyClaim(pod, namespaceOf(object, run), run.config, run.kubernetesVersion) : { backEnd: 'webhook' as const, why: noPolicy };
    if (claim.backEnd === 'policy') return [[describe(object), 'policy', 'the apiserver injects it, exactly as the webhook would']];
    // Mode policy has no webhook: what the policy leaves is created as it is.
    return [mode === 'policy' ? [describe(object), 'none', `not injected: injection mode policy has no webhook, and ${claim.why}`] : [describe(object), 'webhook', claim.why]];
  });
  return table(['OBJECT', 'BACK END', 'WHY'], rows);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    filename: { type: 'string', short: 'f' },
    output: { type: 'string', short: 'o', default: 'yaml' },
    config: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    'kube-version': { type: 'string' },
  }, 'inject');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.filename === undefined) throw new UsageError("inject needs -f FILE (or -f - for stdin)\nRun 'thanos-injector inject --help' for usage.");
  if (!['yaml', 'patch', 'explain'].includes(values.output)) throw new UsageError(`--output: "${values.output}" is not valid; expected yaml, patch or explain`);
  const config = await loadConfig(values.config);
  const kubernetesVersion = values['kube-version'] ?? config.kubernetesVersion;
  if (!/^v?[0-9]+\.[0-9]+/.test(kubernetesVersion)) throw new UsageError(`--kube-version: "${kubernetesVersion}" is not valid; expected a version such as 1.33`);

  const { source, input, parsed } = await readManifests(values.filename);
  const objects = parsed.map((p) => p.object);
  if (values.output === 'explain') {
    process.stdout.write(explain(flatten(objects), { config, kubernetesVersion, namespace: values.namespace, denials: [] }));
    return 0;
  }
  const injection: InjectRun = { config, kubernetesVersion, namespace: values.namespace, denials: [] };
  const operations = objects.map((object) => injectObject(object as Manifest, injection));
  if (injection.denials.length > 0) throw new CommandError(injection.denials.join('\n'));
  adviseOnLabels(flatten(objects), injection);
  if (values.output === 'yaml') {
    printManifests(input, parsed, operations);
    return 0;
  }
  const pods = objects.filter((o) => (o as Manifest).kind === 'Pod');
  if (objects.length !== 1 || pods.length !== 1) {
    throw new UsageError(`-o patch needs exactly one Pod in the input; ${source} has ${objects.length} object(s), ${pods.length} Pod(s)`);
  }
  // One Pod: its operations are the webhook's patch (paths from the Pod's root).
  process.stdout.write(`${JSON.stringify(operations[0], null, 2)}\n`);
  return 0;
}
