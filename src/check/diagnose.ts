// The diagnosis: reads what each check needs through a ClusterReader, in the order a user would
// look (webhook -> injector and its certificate -> configuration -> namespace -> pod -> its
// sidecar's uploads), and returns the rows. The judging is done by the pure checks of the other
// modules.
import type { V1ConfigMap, V1MutatingWebhookConfiguration, V1Namespace, V1Secret } from '@kubernetes/client-node';
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
import { checkExternalLabels } from './prometheus-config.ts';
import { prometheusConfigSource } from '../inject/prometheus-config.ts';
import { checkPodRegistered, checkQueryConfigMap, DEFAULT_QUERY_CONFIGMAP, type ConfigMapRef } from './registration.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { checkSidecarUploads, sidecarHttpPort, sidecarRuns, type SidecarState } from './uploads.ts';
import { checkWebhooks, chooseConfiguration, installLocation, WEBHOOK_SUFFIX, type InstallLocation, type WebhookTarget } from './webhook.ts';

/** The key of the chart's injector ConfigMap (templates/configmap.yaml). */
export const CONFIG_KEY = 'config.yaml';

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
async function injectorConfig(reader: ClusterReader, location: InstallLocation | undefined, options: CheckOptions): Promise<{ config: Config; row: CheckRow }> {
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

async function podRows(
  reader: ClusterReader,
  namespace: V1Namespace,
  podName: string,
  config: Config,
  configuration: V1MutatingWebhookConfiguration | undefined,
  queryRef: ConfigMapRef | undefined,
  queryConfigMap: V1ConfigMap | undefined,
): Promise<CheckRow[]> {
  const namespaceName = namespace.metadata?.name ?? '';
  const pod = await reader.pod(namespaceName, podName);
  if (pod === undefined) {
    return [fail(CHECK.pod, `pod ${namespaceName}/${podName} not found: kubectl -n ${namespaceName} get pods`)];
  }
  const decision = checkPodDecision(pod, namespace, config, configuration);
  const injected = sidecarOf(pod) !== undefined;
  const objstore = objstoreReference(pod, config);
  const source = prometheusConfigSource(pod);
  const refs = source.kind === 'objects' ? source.candidates : [];
  const [secret, sidecarService, ...configObjects] = await Promise.all([
    objstore.kind === 'secret' ? reader.secret(namespaceName, objstore.name) : Promise.resolve(undefined),
    injected ? reader.service(namespaceName, SERVICE_NAME) : Promise.resolve(undefined),
    ...refs.map((ref): Promise<V1ConfigMap | V1Secret | undefined> =>
      ref.kind === 'ConfigMap' ? reader.configMap(namespaceName, ref.name) : reader.secret(namespaceName, ref.name)),
  ]);
  const objects = new Map(refs.map((ref, i) => [`${ref.kind}/${ref.name}`, configObjects[i]] as const));
  return [
    decision.row,
    checkPodInjected(pod, decision.injectable),
    checkObjstoreSecret(namespaceName, objstore, secret),
    checkExternalLabels(namespaceName, source, objects),
    checkPodRegistered(pod, injected, queryRef, queryConfigMap, sidecarService),
    checkSidecarUploads(pod, sidecarRuns(pod) ? await sidecarState(reader, namespaceName, podName, sidecarHttpPort(pod)) : undefined),
  ];
}

/** What the sidecar says about its uploads: its metrics and recent log lines, through the API. */
async function sidecarState(reader: ClusterReader, namespace: string, pod: string, port: number | undefined): Promise<SidecarState> {
  const [metrics, log] = await Promise.all([
    port === undefined
      ? { error: 'its HTTP server listens on 127.0.0.1 only (listenLocal.http), out of the pod proxy\'s reach' }
      : reader.podProxy(namespace, pod, port, '/metrics').then((text) => ({ text }), (error: Error) => ({ error: error.message })),
    reader.podLog(namespace, pod, SIDECAR_NAME, 400).catch(() => ''),
  ]);
  return { metrics, log };
}

export async function diagnose(reader: ClusterReader, options: CheckOptions): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const [named, all] = await Promise.all([
    reader.webhookConfiguration(options.webhookConfig),
    reader.webhookConfigurations(),
  ]);
  const choice = chooseConfiguration(options.webhookConfig, options.webhookConfigExplicit, named, all);
  rows.push(choice.row);
  const { configuration } = choice;
  let target: WebhookTarget | undefined;
  if (configuration === undefined) {
    rows.push(skip(CHECK.webhooks, 'no webhook configuration'));
  } else {
    const webhooks = checkWebhooks(configuration);
    target = webhooks.target;
    rows.push(webhooks.row);
  }
  const failurePolicy = configuration?.webhooks?.find((w) => w.name.endsWith(WEBHOOK_SUFFIX))?.failurePolicy ?? 'Fail';
  rows.push(...(await checkInjector(reader, target, failurePolicy, options)));

  const location = configuration === undefined ? undefined : installLocation(configuration, target);
  const { config, row: configRow } = await injectorConfig(reader, location, options);
  rows.push(configRow);

  const queryRef = options.queryConfigMap ?? (location === undefined ? undefined : { namespace: location.namespace, name: DEFAULT_QUERY_CONFIGMAP });
  const queryConfigMap = queryRef === undefined ? undefined : await reader.configMap(queryRef.namespace, queryRef.name);
  rows.push(checkQueryConfigMap(queryRef, queryConfigMap));

  if (options.namespace !== undefined) {
    const namespace = await reader.namespace(options.namespace);
    rows.push(checkNamespace(options.namespace, namespace, config, configuration));
    if (options.pod !== undefined && namespace !== undefined) {
      rows.push(...(await podRows(reader, namespace, options.pod, config, configuration, queryRef, queryConfigMap)));
    }
  }
  return rows;
}
