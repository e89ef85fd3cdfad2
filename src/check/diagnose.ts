// The diagnosis: reads what each check needs through a ClusterReader, in the order a user would
// look (webhook -> injector and its certificate -> configuration -> namespace and the external
// labels of its pods side by side -> each pod with a sidecar: its containers, its own sidecar, its
// labels; with --pod that one pod in full, down to its sidecar's uploads), and returns the rows.
// The judging is done by the pure checks of the other modules.
import type { V1ConfigMap, V1MutatingAdmissionPolicyBinding, V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1Secret } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { buildConfig } from '../config/load.ts';
import { ConfigError, messageOf } from '../errors.ts';
import type { Config } from '../config/schema.ts';
import { SERVICE_NAME, SIDECAR_NAME } from '../inject/names.ts';
import { checkCaBundle, checkExpiry, type Served } from './certificate.ts';
import type { ClusterReader } from './cluster.ts';
import { checkServiceEndpoints, checkUrlReachable, injectorDeployments, servedFromSecret, servingSecret } from './injector.ts';
import { checkNamespace } from './namespace.ts';
import { checkObjstoreSecret, checkPodDecision, checkPodInjected, objstoreReference, sidecarOf } from './pod.ts';
import { checkExternalLabels, objectKey, podExternalLabels, type ConfigObjects } from './prometheus-config.ts';
import { existingSidecar } from '../inject/decide.ts';
import { prometheusConfigSource, type ConfigObjectRef, type ConfigSource } from '../inject/prometheus-config.ts';
import { checkContainers, containersToExplain, type PreviousLog } from './containers.ts';
import { checkOwnSidecar } from './own-sidecar.ts';
import { isDeleting, isTerminal } from '../kube/pods.ts';
import { checkLabelsDistinct } from './replicas.ts';
import { checkTsdbVolume } from './tsdb.ts';
import { checkSidecarCurrent, sidecarDrift } from './drift.ts';
import { checkHistoryUpload } from './history.ts';
import { checkPodRegistered, checkQueryConfigMap, DEFAULT_QUERY_CONFIGMAP, type ConfigMapRef } from './registration.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { checkSidecarUploads, readUploadEvidence, sidecarRuns, type UploadEvidence } from './uploads.ts';
import { checkMatchConditions } from './match-conditions.ts';
import { checkPolicy, policyEvaluations, policyLocation } from './policy.ts';
import { injectionMode, type InjectionMode } from '../policy/generate.ts';
import { checkWebhooks, chooseConfiguration, installLocation, WEBHOOK_SUFFIX, type InstallLocation, type WebhookTarget } from './webhook.ts';

/** The key of the chart's injector ConfigMap (templates/configmap.yaml). */
export const CONFIG_KEY = 'config.yaml';
/** How much of a crashed container's previous log to read for the line that says why. */
const PREVIOUS_LOG_LINES = 40;

export interface CheckOptions {
  /** --webhook-config, and whether it was given (a default that is not found is no news). */
  webhookConfig: string;
  webhookConfigExplicit: boolean;
  namespace?: string;
  /** Needs `namespace`. */
  pod?: string;
  queryConfigMap?: ConfigMapRef;
  /** From --config FILE; otherwise the install's ConfigMap, else defaults. */
  config?: { config: Config; source: string };
  now: Date;
  /** Trust roots the apiserver would use for a url webhook without caBundle (node:tls rootCertificates). */
  systemRoots?: readonly string[];
}

async function checkInjector(reader: ClusterReader, target: WebhookTarget | undefined, failurePolicy: string, options: CheckOptions): Promise<CheckRow[]> {
  if (target === undefined) {
    const reason = 'no webhook to follow';
    return [skip(CHECK.injectorReachable, reason), skip(CHECK.caBundle, reason), skip(CHECK.certificateExpiry, reason)];
  }
  let reachable: CheckRow;
  let served: Served;
  if (target.kind === 'url') {
    const handshake = await reader.handshake(target.host, target.port);
    reachable = checkUrlReachable(target, handshake, failurePolicy);
    served = 'error' in handshake ? { error: `no TLS answer from ${target.url}`, reported: true } : { certificate: handshake.certificate };
  } else {
    const [service, slices, deployments] = await Promise.all([
      reader.service(target.namespace, target.name),
      reader.endpointSlices(target.namespace, target.name),
      reader.deployments(target.namespace),
    ]);
    reachable = checkServiceEndpoints(target, service, slices, failurePolicy);
    const reference = servingSecret(target.name, injectorDeployments(service, deployments));
    served = servedFromSecret(target.namespace, reference, await reader.secret(target.namespace, reference.name));
  }
  return [reachable, checkCaBundle({ target, served, failurePolicy, now: options.now, systemRoots: options.systemRoots }), checkExpiry(served, options.now)];
}

/** The configuration decide() runs with: --config, else the install's ConfigMap, else defaults. */
async function injectorConfig(reader: ClusterReader, location: InstallLocation | undefined, options: Pick<CheckOptions, 'config'>): Promise<{ config: Config; row: CheckRow }> {
  const name = CHECK.injectorConfig;
  if (options.config !== undefined) return { config: options.config.config, row: ok(name, options.config.source) };
  const defaults = buildConfig({});
  if (location === undefined) {
    return { config: defaults, row: warn(name, 'no install location known (webhook not found, or its url has no Helm release): decisions use the defaults; pass --config FILE') };
  }
  const where = `ConfigMap ${location.namespace}/${location.name}`;
  const configMap = await reader.configMap(location.namespace, location.name);
  const text = configMap?.data?.[CONFIG_KEY];
  if (text === undefined) {
    return { config: defaults, row: warn(name, `${where} ${configMap === undefined ? 'not found' : `has no ${CONFIG_KEY}`}: decisions use the defaults; pass --config FILE`) };
  }
  try {
    return { config: buildConfig(parse(text) as unknown, `${where} ${CONFIG_KEY}`), row: ok(name, `${where} ${CONFIG_KEY}`) };
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : `${where} ${CONFIG_KEY} is not valid YAML: ${messageOf(error).split('\n')[0]}`;
    return { config: defaults, row: fail(name, `${message}: the injector refuses to start with it; decisions use the defaults`) };
  }
}

/** What every pod row needs besides the pod: the decision's inputs, registration, the clock. */
interface PodContext {
  reader: ClusterReader;
  namespace: V1Namespace;
  config: Config;
  configuration: V1MutatingWebhookConfiguration | undefined;
  mode: InjectionMode;
  queryRef: ConfigMapRef | undefined;
  queryConfigMap: V1ConfigMap | undefined;
  now: Date;
  /** The cluster's version (sidecarMode auto), for what the configuration injects now. */
  kubernetesVersion: string;
  /** The objects behind a pod's --config.file, each read once per namespace. */
  configObjects: (source: ConfigSource) => Promise<ConfigObjects>;
}

/** Reads the ConfigMaps and Secrets behind Prometheus' config files, each once (the pods of a StatefulSet share one). */
export function configObjectReader(reader: ClusterReader, namespace: string): (source: ConfigSource) => Promise<ConfigObjects> {
  const reads = new Map<string, Promise<V1ConfigMap | V1Secret | undefined>>();
  const read = (ref: ConfigObjectRef) => {
    const key = objectKey(ref);
    const known = reads.get(key);
    if (known !== undefined) return known;
    const reading = ref.kind === 'ConfigMap' ? reader.configMap(namespace, ref.name) : reader.secret(namespace, ref.name);
    reads.set(key, reading);
    return reading;
  };
  return async (source) => {
    const refs = source.kind === 'objects' ? source.candidates : [];
    return new Map(await Promise.all(refs.map(async (ref) => [objectKey(ref), await read(ref)] as const)));
  };
}

/** The log of each crash-looping container's previous instance that left no termination message. */
async function previousLogs(reader: ClusterReader, pod: V1Pod, now: Date): Promise<Map<string, PreviousLog>> {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const read = (container: string): Promise<PreviousLog> =>
    reader.podLog(namespace, name, container, { lines: PREVIOUS_LOG_LINES, previous: true }).then((text) => ({ text }), (error: Error) => ({ error: error.message }));
  return new Map(await Promise.all(containersToExplain(pod, now).map(async (container) => [container, await read(container)] as const)));
}

async function containersRow(context: PodContext, pod: V1Pod): Promise<CheckRow> {
  return checkContainers(pod, await previousLogs(context.reader, pod, context.now), context.now);
}

/** A pod with the injector's sidecar or one of its own: the pods `check -n` looks at. */
function hasThanosSidecar(pod: V1Pod): boolean {
  return pod.spec !== undefined && (sidecarOf(pod) !== undefined || existingSidecar(pod.spec) !== undefined);
}

/** In namespace mode a row is one of many pods' rows: it names its pod. */
function aboutPod(pod: V1Pod, row: CheckRow): CheckRow {
  return { ...row, detail: `pod ${pod.metadata?.name ?? ''}: ${row.detail}` };
}

function currentRow(context: PodContext, pod: V1Pod): CheckRow {
  const namespace = context.namespace.metadata?.name ?? '';
  return checkSidecarCurrent(pod, sidecarDrift(pod, { config: context.config, namespace, kubernetesVersion: context.kubernetesVersion }));
}

/** `check -n NS`: how one pod with a sidecar runs, and the labels its blocks get. */
async function podHealthRows(context: PodContext, pod: V1Pod): Promise<CheckRow[]> {
  const namespace = context.namespace.metadata?.name ?? '';
  const source = prometheusConfigSource(pod);
  const own = checkOwnSidecar(pod, context.config);
  return [
    await containersRow(context, pod),
    aboutPod(pod, checkTsdbVolume(pod)),
    aboutPod(pod, currentRow(context, pod)),
    ...(own === undefined ? [] : [own]),
    aboutPod(pod, checkExternalLabels(namespace, source, await context.configObjects(source), pod)),
  ];
}

/** `check -n NS --pod NAME`: everything about one pod. */
async function podRows(context: PodContext, podName: string, pod: V1Pod | undefined): Promise<CheckRow[]> {
  const { reader, namespace, config } = context;
  const namespaceName = namespace.metadata?.name ?? '';
  if (pod === undefined) {
    return [fail(CHECK.pod, `pod ${namespaceName}/${podName} not found: kubectl -n ${namespaceName} get pods`)];
  }
  const decision = checkPodDecision(pod, namespace, config, context.configuration, { mode: context.mode, kubernetesVersion: context.kubernetesVersion });
  const injected = sidecarOf(pod) !== undefined;
  const objstore = objstoreReference(pod, config);
  const source = prometheusConfigSource(pod);
  const [secret, sidecarService, objects, containers] = await Promise.all([
    objstore.kind === 'secret' ? reader.secret(namespaceName, objstore.name) : Promise.resolve(undefined),
    injected ? reader.service(namespaceName, SERVICE_NAME) : Promise.resolve(undefined),
    context.configObjects(source),
    containersRow(context, pod),
  ]);
  const own = checkOwnSidecar(pod, config);
  return [
    decision.row,
    checkPodInjected(pod, decision.injectable),
    containers,
    checkTsdbVolume(pod),
    currentRow(context, pod),
    ...(own === undefined ? [] : [own]),
    checkObjstoreSecret(namespaceName, objstore, secret),
    checkExternalLabels(namespaceName, source, objects, pod),
    checkPodRegistered(pod, injected, context.queryRef, context.queryConfigMap, sidecarService),
    ...uploadRows(pod, sidecarRuns(pod) ? await uploadEvidence(reader, pod) : undefined, context.now.getTime()),
  ];
}

/**
 * The namespace's pods with a sidecar: one row comparing their external labels, then their own
 * rows (every such pod; with --pod only that one, in full).
 */
async function namespaceRows(context: PodContext, podName: string | undefined): Promise<CheckRow[]> {
  const namespace = context.namespace.metadata?.name ?? '';
  const pods = (await context.reader.pods(namespace)).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const withSidecar = pods.filter(hasThanosSidecar);
  const identities = await Promise.all(withSidecar.filter((pod) => !isDeleting(pod) && !isTerminal(pod)).map(async (pod) => {
    const source = prometheusConfigSource(pod);
    return { pod, ...podExternalLabels(namespace, pod, source, await context.configObjects(source)) };
  }));
  const labelsRow = checkLabelsDistinct(namespace, identities);
  if (podName !== undefined) {
    return [labelsRow, ...(await podRows(context, podName, pods.find((pod) => pod.metadata?.name === podName)))];
  }
  const perPod = await Promise.all(withSidecar.map((pod) => podHealthRows(context, pod)));
  return [labelsRow, ...perPod.flat()];
}

/** The uploads row, and the history's when the pod uploads it (annotation upload-history). */
function uploadRows(pod: V1Pod, evidence: UploadEvidence | undefined, now: number): CheckRow[] {
  const history = checkHistoryUpload(pod, evidence);
  return [checkSidecarUploads(pod, evidence, now), ...(history === undefined ? [] : [history])];
}

/** What the sidecar and its Prometheus say about uploads (metrics, blocks, retention, the sidecar's recent log lines), through the API. */
function uploadEvidence(reader: ClusterReader, pod: V1Pod): Promise<UploadEvidence> {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  // Read twice, a second apart, before doing without: the log is what names the cause of a stall.
  const log = () => reader.podLog(namespace, name, SIDECAR_NAME, { lines: 400 });
  const again = async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return log();
  };
  return readUploadEvidence(pod, (port, path) => reader.podProxy(namespace, name, port, path), log().catch(again));
}

/** The install `check` diagnoses and `rollout` judges by: its webhook configuration, where it lives, and the configuration it injects with. */
export interface Install {
  configuration: V1MutatingWebhookConfiguration | undefined;
  target: WebhookTarget | undefined;
  location: InstallLocation | undefined;
  config: Config;
  /** The configuration's mode on this cluster (auto resolved by its version). */
  mode: InjectionMode;
  /** The name of the install's MutatingAdmissionPolicy (the chart names it as the webhook configuration). */
  policyName: string | undefined;
  kubernetesVersion: string;
  bindings: V1MutatingAdmissionPolicyBinding[];
  /** The rows that found them: the webhook configuration, its webhooks and matchConditions, and the configuration's source. */
  rows: { choice: CheckRow; webhooks: CheckRow[]; config: CheckRow };
}

/** The values of settled promises, or the reason of the first that was rejected. */
function firstFailure<T extends readonly unknown[]>(settled: { [K in keyof T]: PromiseSettledResult<T[K]> }): T {
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

export async function findInstall(reader: ClusterReader, options: Pick<CheckOptions, 'webhookConfig' | 'webhookConfigExplicit' | 'config'>): Promise<Install> {
  // Asked at once; when several fail, the first in this order is the one reported (the same line every time).
  const [named, all, bindings, kubernetesVersion] = firstFailure(await Promise.allSettled([
    reader.webhookConfiguration(options.webhookConfig),
    reader.webhookConfigurations(),
    reader.admissionPolicyBindings(),
    reader.version(),
  ] as const));
  const choice = chooseConfiguration(options.webhookConfig, options.webhookConfigExplicit, named, all);
  const { configuration } = choice;
  let target: WebhookTarget | undefined;
  let webhookRows: CheckRow[];
  if (configuration === undefined) {
    webhookRows = [skip(CHECK.webhooks, 'no webhook configuration'), skip(CHECK.matchConditions, 'no webhook configuration')];
  } else {
    const webhooks = checkWebhooks(configuration);
    target = webhooks.target;
    webhookRows = [webhooks.row, checkMatchConditions(configuration)];
  }
  // An install in injection mode policy has no webhook configuration: the chart's policy bindings say where it lives.
  const policyInstall = configuration === undefined ? policyLocation(options.webhookConfig, bindings) : undefined;
  const location = configuration === undefined ? policyInstall : installLocation(configuration, target);
  const policyName = configuration?.metadata?.name ?? policyInstall?.name;
  const { config, row } = await injectorConfig(reader, location, options);
  const mode = injectionMode(config, kubernetesVersion);
  let choiceRow = choice.row;
  if (configuration === undefined && mode === 'policy' && policyInstall !== undefined) {
    const reason = `injection mode policy: MutatingAdmissionPolicy ${policyInstall.name} injects, with no webhook`;
    choiceRow = skip(CHECK.webhookConfiguration, reason);
    webhookRows = [skip(CHECK.webhooks, reason), skip(CHECK.matchConditions, reason)];
  }
  return { configuration, target, location, config, mode, policyName, kubernetesVersion, bindings, rows: { choice: choiceRow, webhooks: webhookRows, config: row } };
}

export async function diagnose(reader: ClusterReader, options: CheckOptions): Promise<CheckRow[]> {
  const install = await findInstall(reader, options);
  const { configuration, target, location, config, mode, policyName, kubernetesVersion, rows: found } = install;
  const rows: CheckRow[] = [found.choice, ...found.webhooks];
  const failurePolicy = configuration?.webhooks?.find((w) => w.name.endsWith(WEBHOOK_SUFFIX))?.failurePolicy ?? 'Fail';
  rows.push(...(mode === 'policy' && configuration === undefined
    ? [CHECK.injectorReachable, CHECK.caBundle, CHECK.certificateExpiry].map((name) => skip(name, 'injection mode policy: no webhook to serve'))
    : await checkInjector(reader, target, failurePolicy, options)));
  rows.push(found.config);
  if (policyName !== undefined) {
    const [policy, evaluations, warnings] = await Promise.all([
      reader.admissionPolicy(policyName),
      mode === 'webhook' ? undefined : reader.apiserverMetrics().then((text) => policyEvaluations(text, policyName), (error: unknown) => ({ error: messageOf(error) })),
      mode === 'webhook' ? undefined : reader.warningPolicy(policyName),
    ]);
    const row = checkPolicy(config, mode, policyName, location?.namespace, policy, install.bindings, { evaluations, warnings });
    if (row !== undefined) rows.push(row);
  }

  const queryRef = options.queryConfigMap ?? (location === undefined ? undefined : { namespace: location.namespace, name: DEFAULT_QUERY_CONFIGMAP });
  const queryConfigMap = queryRef === undefined ? undefined : await reader.configMap(queryRef.namespace, queryRef.name);
  rows.push(checkQueryConfigMap(queryRef, queryConfigMap));

  if (options.namespace !== undefined) {
    const namespace = await reader.namespace(options.namespace);
    rows.push(checkNamespace(options.namespace, namespace, config, configuration));
    if (namespace !== undefined) {
      const context: PodContext = {
        reader, namespace, config, configuration, mode, queryRef, queryConfigMap, now: options.now, configObjects: configObjectReader(reader, options.namespace), kubernetesVersion,
      };
      rows.push(...(await namespaceRows(context, options.pod)));
    }
  }
  return rows;
}
